//! The audit line of each `tools/call` through an upstream, on its own
//! target (`mcpgate::audit`): who called which tool where, what mcpgate
//! decided, what the upstream answered and how long it took. Never the
//! arguments or the result: they may hold secrets.

use std::sync::Arc;
use std::time::Instant;

use crate::tokens::access::VerifiedToken;

/// The tool calls of one request, until their outcome is known.
pub(crate) struct Audit {
    request_id: String,
    caller: VerifiedToken,
    upstream: Arc<str>,
    tools: Vec<String>,
    started: Instant,
}

/// How a call ended, as far as mcpgate saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Refused by the tool policy; never sent.
    Denied,
    /// The upstream's answer was passed on whole.
    Completed,
    /// The client left before the answer ended.
    ClientGone,
    /// The upstream broke off its answer.
    UpstreamBroken,
    /// No answer: unreachable, too slow, or it refused mcpgate's identity.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Denied => "denied",
            Outcome::Completed => "completed",
            Outcome::ClientGone => "client_gone",
            Outcome::UpstreamBroken => "upstream_broken",
            Outcome::Failed => "failed",
        }
    }
}

impl Audit {
    /// `None` when the request calls no tool.
    pub(crate) fn new(
        request_id: &http::HeaderValue,
        caller: &VerifiedToken,
        upstream: &Arc<str>,
        tools: Vec<String>,
    ) -> Option<Audit> {
        (!tools.is_empty()).then(|| Audit {
            request_id: request_id.to_str().unwrap_or("-").to_owned(),
            caller: caller.clone(),
            upstream: upstream.clone(),
            tools,
            started: Instant::now(),
        })
    }

    /// Writes one line per tool call. `status`: the upstream's, when it
    /// answered.
    pub(crate) fn write(&self, outcome: Outcome, status: Option<u16>) {
        let decision = if outcome == Outcome::Denied {
            "denied"
        } else {
            "allowed"
        };
        let millis = self.started.elapsed().as_secs_f64() * 1000.0;
        for tool in &self.tools {
            // Strings as strings, not through `Display`: the line is
            // written on every call (PERFORMANCE.md, tenth round).
            tracing::info!(
                target: "mcpgate::audit",
                request_id = self.request_id.as_str(),
                sub = self.caller.sub(),
                email = self.caller.email(),
                client_id = self.caller.client_id(),
                upstream = &*self.upstream,
                tool = tool.as_str(),
                decision,
                outcome = outcome.as_str(),
                upstream_status = status.unwrap_or(0),
                duration_ms = (millis * 1000.0).round() / 1000.0,
                "tools/call"
            );
        }
    }
}

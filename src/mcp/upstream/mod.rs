//! Upstream mounts: an organization's existing MCP servers (Streamable
//! HTTP), each mounted at its own path behind the sign-in.
//!
//! Each mount is its own protected resource: `issuer + path` on every
//! host, its own RFC 9728 document at
//! `/.well-known/oauth-protected-resource<path>` and its own challenge;
//! a token is accepted only when its `aud` is this mount's resource
//! (RFC 8707), on this host or, with `mcp.one_resource`, on any host.
//!
//! # Parse → decide → forward
//!
//! `handle` admits the caller (origin, bearer token for this mount, the
//! mount's `allow`), reads the body and `inspect`s it (the policy refuses
//! a `tools/call` of a tool the caller may not use, in mcpgate: it never
//! reaches the upstream), then forwards the request byte for byte with
//! the headers of `forward` and the identity the mount forwards, never
//! the client's own credentials (MCP authorization: no token
//! passthrough). The answer streams back through `relay`, which cuts
//! `tools/list` results (`filter`) and writes the `audit` line when it
//! ends; a small answer of known length that is not an event stream (one
//! JSON-RPC message, already written whole) goes back whole, in one write.
//!
//! # Refusals
//!
//! Bearer refusals are `mcp::auth::AuthFailure`'s, with this mount's
//! challenge; everything else, upstream failures included (502, 504,
//! with the request's id), is a JSON-RPC `RpcError`, rendered by its one
//! function.

mod audit;
mod client;
mod filter;
mod forward;
mod inspect;
mod plain_http;
mod relay;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::{Body as _, Incoming};
use serde_json::json;
use serde_json::value::RawValue;

use super::auth::{self, AuthFailure};
use super::error::RpcError;
use crate::clock::unix_now;
use crate::http::error::HttpError;
use crate::http::host::Host;
use crate::http::response::{self, whole, Reply, ReplyBody, Resp};
use crate::http::{cors, Ctx};
use crate::metrics::{UpstreamError, UpstreamMetrics};
use crate::settings::upstream::{ForwardIdentity, Upstream};
use crate::settings::Settings;
use crate::tokens::access::VerifiedToken;
use crate::tokens::identity::{self, Assertions};
use crate::tokens::scope::DEFAULT_SCOPE;
use crate::tokens::verified::VerifiedTokens;
use audit::{Audit, Outcome};
use relay::{Mode, Relay};

/// Request bodies forwarded to an upstream: JSON-RPC messages, read whole
/// (the policy reads them), bounded.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Answers of known length up to this size, other than event streams,
/// are passed on whole (see `forward`).
const HOLD_WHOLE: u64 = 64 * 1024;

/// Every mount, by path.
pub(crate) struct Mounts {
    mounts: Vec<Arc<Mount>>,
    /// Mount path → index.
    by_path: HashMap<String, usize>,
    /// `/.well-known/oauth-protected-resource<path>` → index.
    by_metadata: HashMap<String, usize>,
    /// Identity JWTs minted, reused until near expiry.
    assertions: Assertions,
}

/// One mounted upstream and what serving it needs.
pub(crate) struct Mount {
    index: usize,
    upstream: Upstream,
    /// `upstream.name`, shared with audit lines.
    name: Arc<str>,
    client: client::Client,
    /// Per host, in `[[hosts]]` order.
    hosts: Vec<MountHost>,
    metrics: Arc<UpstreamMetrics>,
}

struct MountHost {
    /// `WWW-Authenticate` for a request without a token.
    challenge: HeaderValue,
    /// Its parameters, to add an `error` to.
    challenge_params: String,
    /// The RFC 9728 document.
    metadata: Bytes,
}

/// The person calling through a mount, and the mount: what the tool
/// policy decides on.
pub(crate) struct Caller {
    token: VerifiedToken,
    mount: Arc<Mount>,
}

impl Caller {
    pub(crate) fn may_call(&self, tool: &str) -> bool {
        self.mount
            .upstream
            .tools
            .allows(tool, self.token.email(), self.token.groups())
    }
}

impl Mounts {
    pub(crate) fn new(settings: &Settings) -> Mounts {
        let mut mounts = Vec::new();
        let mut by_path = HashMap::new();
        let mut by_metadata = HashMap::new();
        for (index, up) in settings.upstreams.iter().enumerate() {
            let hosts = settings
                .sites
                .iter()
                .zip(&up.resources)
                .map(|(site, resource)| {
                    let metadata_url = format!(
                        "{}/.well-known/oauth-protected-resource{}",
                        site.issuer, up.path
                    );
                    let params =
                        format!("resource_metadata=\"{metadata_url}\", scope=\"{DEFAULT_SCOPE}\"");
                    let doc = json!({
                        "resource": resource,
                        "authorization_servers": [site.issuer],
                        "bearer_methods_supported": ["header"],
                        "scopes_supported": [DEFAULT_SCOPE],
                        "resource_name": up.name,
                    });
                    MountHost {
                        challenge: HeaderValue::from_str(&format!("Bearer {params}"))
                            .expect("issuers and paths are valid header text"),
                        challenge_params: params,
                        metadata: Bytes::from(serde_json::to_vec(&doc).expect("JSON")),
                    }
                })
                .collect();
            by_path.insert(up.path.clone(), index);
            by_path.insert(format!("{}/", up.path), index);
            by_metadata.insert(
                format!("/.well-known/oauth-protected-resource{}", up.path),
                index,
            );
            mounts.push(Arc::new(Mount {
                index,
                name: up.name.as_str().into(),
                client: client::build(&up.uri, &up.extra_roots),
                hosts,
                metrics: Arc::new(UpstreamMetrics::new(&up.name)),
                upstream: up.clone(),
            }));
        }
        Mounts {
            mounts,
            by_path,
            by_metadata,
            assertions: Assertions::new(settings.verified_cache_size),
        }
    }

    /// The mount serving `path`, if any.
    pub(crate) fn at(&self, path: &str) -> Option<usize> {
        if self.mounts.is_empty() {
            return None;
        }
        self.by_path.get(path).copied()
    }

    /// The mount whose RFC 9728 document `path` is, if any.
    pub(crate) fn metadata_at(&self, path: &str) -> Option<usize> {
        if self.mounts.is_empty() {
            return None;
        }
        self.by_metadata.get(path).copied()
    }

    /// `GET /.well-known/oauth-protected-resource<path>` of mount `i`.
    pub(crate) fn metadata(&self, i: usize, host: &Host) -> Resp {
        let doc = &self.mounts[i].hosts[host.index].metadata;
        response::json_bytes(StatusCode::OK, doc.clone())
    }
}

/// A request to mount `i`.
pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    mounts: &Mounts,
    i: usize,
    verified_tokens: &VerifiedTokens,
    req: Request<Incoming>,
) -> Reply {
    let mount = &mounts.mounts[i];
    let (parts, body) = req.into_parts();
    let read = ctx.read_body(&parts.headers, body, MAX_BODY);
    let caller = match admit(ctx, mount, verified_tokens, &parts) {
        Ok(token) => token,
        Err(refusal) => {
            // As `/mcp` does: take in the body before answering, so the
            // connection survives the answer (RFC 9112 §9.6); a JSON-RPC
            // refusal answers the request by its id when it has one.
            let body = read.await.unwrap_or_default();
            let inspected = match (&refusal, parts.method == Method::POST) {
                (Refusal::Rpc(_), true) => inspect::inspect(&body).ok(),
                _ => None,
            };
            let id = inspected.as_ref().and_then(|i| i.id());
            return whole(refusal.into_response(ctx, mount, id));
        }
    };
    let body = match read.await {
        Ok(b) => b,
        Err(e) => return whole(RpcError::Body(e).into_response(None)),
    };
    let caller = Arc::new(Caller {
        token: caller,
        mount: mount.clone(),
    });
    forward(ctx, mounts, caller, parts, body).await
}

/// Why a request to a mount is refused before its body is looked at:
/// a refusal of one of the protocols it speaks, each rendered by that
/// protocol's one function.
enum Refusal {
    /// JSON-RPC: a foreign browser origin, or someone not in `allow`.
    Rpc(RpcError),
    /// RFC 6750: no usable bearer token for this mount.
    Bearer(AuthFailure),
    /// HTTP: not a method of the Streamable HTTP transport.
    Method,
}

impl Refusal {
    fn into_response(self, ctx: &Ctx<'_>, mount: &Mount, id: Option<&RawValue>) -> Resp {
        match self {
            Refusal::Rpc(e) => e.into_response(id),
            Refusal::Bearer(f) => {
                let host = &mount.hosts[ctx.host.index];
                f.respond(ctx, &host.challenge, &host.challenge_params)
            }
            Refusal::Method => HttpError::MethodNotAllowed {
                allow: "GET, POST, DELETE",
            }
            .respond(),
        }
    }
}

/// Who may call this mount: an allowed origin (or none), a bearer token
/// for this mount's resource, someone in its `allow`, by a method of the
/// Streamable HTTP transport.
fn admit(
    ctx: &Ctx<'_>,
    mount: &Mount,
    verified_tokens: &VerifiedTokens,
    parts: &http::request::Parts,
) -> Result<VerifiedToken, Refusal> {
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        if !cors::mcp_origin_allowed(ctx, origin) {
            return Err(Refusal::Rpc(RpcError::Origin));
        }
    }
    let up = &mount.upstream;
    let audiences = if ctx.settings.one_resource {
        &up.resources[..]
    } else {
        std::slice::from_ref(&up.resources[ctx.host.index])
    };
    let token = auth::authenticate_for(
        ctx,
        verified_tokens,
        &parts.headers,
        parts.uri.query(),
        audiences,
    )
    .map_err(Refusal::Bearer)?;
    if let Some(allow) = &up.allow {
        if !allow.contains(token.email(), token.groups()) {
            tracing::info!(
                target: "mcpgate::mcp",
                upstream = %up.name,
                email = %token.email(),
                "upstream refused: not in its allow list"
            );
            return Err(Refusal::Rpc(RpcError::UpstreamNotGranted(up.name.clone())));
        }
    }
    if !matches!(parts.method, Method::POST | Method::GET | Method::DELETE) {
        return Err(Refusal::Method);
    }
    Ok(token)
}

/// Decides on the tool calls, then sends the request and relays the answer.
async fn forward(
    ctx: &Ctx<'_>,
    mounts: &Mounts,
    caller: Arc<Caller>,
    parts: http::request::Parts,
    body: Bytes,
) -> Reply {
    let mount = &caller.mount;
    let up = &mount.upstream;
    let inspected = if parts.method == Method::POST {
        match inspect::inspect(&body) {
            Ok(i) => Some(i),
            Err(e) => return whole(e.into_response(None)),
        }
    } else {
        None
    };
    let mut called = Vec::new();
    if let Some(inspected) = &inspected {
        let tools = || inspected.messages.iter().flat_map(|m| &m.tools);
        if let Some(denied) = refused_call(&caller, inspected, &parts.headers) {
            let mut tools: Vec<String> = tools().map(|t| t.to_string()).collect();
            // A refusal is audited even when the body names no tool (the
            // name was in `Mcp-Name`, or could not be read: `""`).
            let refused = match denied {
                Denied::Tool(t) => t,
                Denied::Unnamed => "",
            };
            if !tools.iter().any(|t| t == refused) {
                tools.push(refused.to_owned());
            }
            if let Some(a) = Audit::new(ctx.request_id, &caller.token, &mount.name, tools) {
                a.write(Outcome::Denied, None);
            }
            return whole(refuse_tool(inspected, denied));
        }
        called = tools().map(|t| t.to_string()).collect();
    }
    let audit = Audit::new(ctx.request_id, &caller.token, &mount.name, called);
    let id = inspected.as_ref().and_then(|i| i.id());
    let asks_tool_list = inspected.as_ref().is_some_and(|i| i.asks("tools/list"));

    // Only a POST carries messages (Streamable HTTP): a body on a GET or
    // DELETE is one the policy has not read, and is not sent.
    let sent = if parts.method == Method::POST {
        body.clone()
    } else {
        Bytes::new()
    };
    let mut out = Request::new(Full::new(sent));
    *out.method_mut() = parts.method.clone();
    *out.uri_mut() = up.uri.clone();
    forward::request_headers(&parts.headers, out.headers_mut());
    out.headers_mut()
        .insert("x-request-id", ctx.request_id.clone());
    match up.forward_identity {
        ForwardIdentity::Jwt => {
            let ring = ctx.keys.load();
            let to = identity::Audience {
                upstream: (mount.index, &up.url),
                host: (ctx.host.index, &ctx.host.site.issuer),
            };
            let bearer = mounts
                .assertions
                .for_upstream(&ring, &caller.token, to, unix_now());
            out.headers_mut().insert(header::AUTHORIZATION, bearer);
        }
        ForwardIdentity::Headers => forward::identity_headers(&caller.token, out.headers_mut()),
        ForwardIdentity::None => {}
    }

    // An upstream failure the client is told of as a JSON-RPC error:
    // counted, and audited for the tool calls it ends.
    let failed = |kind: UpstreamError, outcome: Outcome, status: Option<u16>, error: RpcError| {
        mount.metrics.failed(kind);
        if let Some(a) = &audit {
            a.write(outcome, status);
        }
        whole(error.into_response(id))
    };
    let timed_out = || {
        tracing::warn!(target: "mcpgate::mcp", upstream = %up.name, timeout = %crate::clock::duration_text(up.timeout), "upstream timed out");
        RpcError::UpstreamTimeout(up.name.clone())
    };
    let started = Instant::now();
    // One budget for the head and, when it is taken in whole, the body.
    let deadline = tokio::time::Instant::from_std(started) + up.timeout;
    let answer = match tokio::time::timeout_at(deadline, mount.client.request(out)).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            tracing::warn!(target: "mcpgate::mcp", upstream = %up.name, error = %error_chain(&*e), "upstream unreachable");
            let error = RpcError::UpstreamUnreachable(up.name.clone());
            return failed(UpstreamError::Unreachable, Outcome::Failed, None, error);
        }
        Err(_) => return failed(UpstreamError::Timeout, Outcome::Failed, None, timed_out()),
    };
    let status = answer.status();
    mount.metrics.answered(status.as_u16(), started.elapsed());
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        // Its challenge names its own authorization, not ours: passed on,
        // it would send the client to sign in where it cannot.
        tracing::warn!(target: "mcpgate::mcp", upstream = %up.name, status = status.as_u16(), "upstream refused mcpgate's identity");
        let error = RpcError::UpstreamRefusedIdentity {
            upstream: up.name.clone(),
            status: status.as_u16(),
        };
        return failed(
            UpstreamError::RefusedIdentity,
            Outcome::Failed,
            Some(status.as_u16()),
            error,
        );
    }
    let (head, upstream_body) = answer.into_parts();
    let media = forward::media_type(&head.headers);
    // A small answer of known length that is not an event stream is one
    // message the upstream has already written whole: taken in whole and
    // passed on in one write, with its head. Streamed instead, hyper
    // writes the head first and the body after a round trip between the
    // two connections' tasks: a third system call and two more wake-ups
    // on every call (benches/proxy.rs).
    let small = upstream_body
        .size_hint()
        .exact()
        .is_some_and(|n| n <= HOLD_WHOLE);
    if small && media != Some(forward::Media::EventStream) {
        let collected = match tokio::time::timeout_at(deadline, upstream_body.collect()).await {
            Ok(Ok(collected)) => collected,
            Ok(Err(e)) => {
                tracing::warn!(target: "mcpgate::mcp", upstream = %up.name, error = %error_chain(&*e), "upstream broke off its answer");
                let error = RpcError::UpstreamUnreachable(up.name.clone());
                let status = Some(status.as_u16());
                return failed(
                    UpstreamError::Broken,
                    Outcome::UpstreamBroken,
                    status,
                    error,
                );
            }
            // Its head came in time, its few bytes did not: too slow all
            // the same (504), not unreachable.
            Err(_) => {
                let status = Some(status.as_u16());
                return failed(UpstreamError::Timeout, Outcome::Failed, status, timed_out());
            }
        };
        let mut bytes = collected.to_bytes();
        // Whatever its `Content-Type` says (none, `text/plain`, a vendor
        // type): a tool list the client may read is cut all the same.
        if asks_tool_list && up.tools.restricts() {
            if let Some(filtered) = filter::filter_json(&bytes, &|t| caller.may_call(t)) {
                bytes = Bytes::from(filtered);
            }
        }
        if let Some(a) = &audit {
            a.write(Outcome::Completed, Some(status.as_u16()));
        }
        let mut reply = http::Response::new(ReplyBody::Whole(Full::new(bytes)));
        *reply.status_mut() = status;
        forward::response_headers(&head.headers, reply.headers_mut());
        return reply;
    }
    let mode = if up.tools.restricts() {
        match media {
            Some(forward::Media::EventStream) => Mode::Sse(Default::default()),
            _ if asks_tool_list => Mode::Json(Default::default()),
            _ => Mode::Pass,
        }
    } else {
        Mode::Pass
    };
    let relay = Relay::new(
        upstream_body,
        mode,
        caller.clone(),
        mount.metrics.clone(),
        audit.map(|a| (a, status.as_u16())),
    );
    let mut reply = http::Response::new(ReplyBody::Stream(relay.boxed_unsync()));
    *reply.status_mut() = status;
    forward::response_headers(&head.headers, reply.headers_mut());
    reply
}

/// Why a request's tool calls are refused.
enum Denied<'a> {
    /// The policy does not let the caller call this tool.
    Tool(&'a str),
    /// A call whose tool the policy cannot read, to an upstream whose
    /// policy can refuse something: what it cannot name, it cannot allow.
    Unnamed,
}

/// The first call in `inspected` the policy refuses, if any.
fn refused_call<'a>(
    caller: &Caller,
    inspected: &'a inspect::Inspected<'_>,
    headers: &'a http::HeaderMap,
) -> Option<Denied<'a>> {
    let restricts = caller.mount.upstream.tools.restricts();
    let calls = inspected.messages.iter().filter(|m| m.is_call());
    if restricts && calls.clone().any(|m| m.unnamed) {
        return Some(Denied::Unnamed);
    }
    if let Some(t) = calls.flat_map(|m| &m.tools).find(|t| !caller.may_call(t)) {
        return Some(Denied::Tool(t));
    }
    // 2026-07-28 names the tool in `Mcp-Name` too: an upstream that
    // routes by the headers is held to the same policy, each value of it,
    // when the body or `Mcp-Method` says `tools/call` (for other methods
    // the header names a prompt or a resource, not a tool).
    let header_call = headers.get_all("mcp-method").iter().any(|v| {
        v.to_str()
            .map_or(true, |m| m.trim().eq_ignore_ascii_case("tools/call"))
    });
    if !restricts || !(header_call || inspected.messages.iter().any(|m| m.is_call())) {
        return None;
    }
    for v in headers.get_all("mcp-name") {
        match v.to_str() {
            Ok(t) if caller.may_call(t) => {}
            Ok(t) => return Some(Denied::Tool(t)),
            Err(_) => return Some(Denied::Unnamed),
        }
    }
    None
}

/// The answer to a request holding a call the policy refuses: that call's
/// error, or for a batch one error per request in it (the batch is not
/// sent: its other messages may depend on the refused one).
fn refuse_tool(inspected: &inspect::Inspected<'_>, denied: Denied<'_>) -> Resp {
    let own = |m: &inspect::Message<'_>| match denied {
        Denied::Tool(tool) => m
            .tools
            .iter()
            .any(|t| t == tool)
            .then(|| RpcError::tool_not_granted(tool)),
        Denied::Unnamed => m.unnamed.then_some(RpcError::ToolNameMissing),
    };
    let culprit = match denied {
        Denied::Tool(tool) => tool,
        Denied::Unnamed => "without a readable name",
    };
    // JSON-RPC 2.0 §4.1, §6: a notification is never answered, and a
    // batch of them gets no (empty) array; as at `/mcp`, 202 and nothing.
    // It is not sent; its audit line says so.
    if inspected.messages.iter().all(|m| m.id.is_none()) {
        return response::empty(StatusCode::ACCEPTED);
    }
    if !inspected.batch {
        let e = match denied {
            Denied::Tool(tool) => RpcError::tool_not_granted(tool),
            Denied::Unnamed => RpcError::ToolNameMissing,
        };
        return e.into_response(inspected.id());
    }
    let mut out = vec![b'['];
    for m in inspected.messages.iter().filter(|m| m.id.is_some()) {
        if out.len() > 1 {
            out.push(b',');
        }
        own(m)
            .unwrap_or_else(|| RpcError::batch_with_tool_not_granted(culprit))
            .write(&mut out, m.id);
    }
    out.push(b']');
    response::json_bytes(StatusCode::OK, out)
}

/// An error and its sources, for a log line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

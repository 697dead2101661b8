//! Whether the shared store is reachable, told once per change.
//!
//! Every failed request is counted (`mcpgate_store_errors_total`), but an
//! outage is logged once when it begins and once when it ends, however
//! many token requests it refuses in between: a store that is down for a
//! minute under load must not write thousands of identical lines.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a request to the store failed.
#[derive(Debug)]
pub(super) enum Failure {
    /// No answer: the connection failed, or the timeout passed.
    Unreachable(String),
    /// The store answered with an error: out of memory, read-only (a
    /// replica after a failover), no permission, a wrong password.
    Refused(String),
    /// The store answered past the request's deadline and did nothing.
    Late,
}

impl Failure {
    fn describe(&self) -> (&'static str, &str) {
        match self {
            Failure::Unreachable(e) => (
                "store unreachable: token requests answer 503 temporarily_unavailable until it is back; /mcp is unaffected",
                e,
            ),
            Failure::Refused(e) => (
                "store refuses requests: token requests answer 503 temporarily_unavailable until it accepts them; /mcp is unaffected",
                e,
            ),
            Failure::Late => (
                "store answers too late (after store.timeout): token requests answer 503 temporarily_unavailable; /mcp is unaffected",
                "",
            ),
        }
    }
}

/// Reachability of the shared store.
pub(crate) struct Health {
    down: AtomicBool,
    /// When the current outage began, in ms after `epoch`.
    since_ms: AtomicU64,
    epoch: Instant,
    endpoint: String,
}

impl Health {
    pub(super) fn new(endpoint: String) -> Health {
        crate::metrics::store_up(true);
        crate::metrics::store_counters_at_zero(&[
            "code",
            "consent",
            "assertion",
            "refresh",
            "probe",
        ]);
        Health {
            down: AtomicBool::new(false),
            since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            endpoint,
        }
    }

    /// Whether the last request to the store succeeded.
    pub(crate) fn is_up(&self) -> bool {
        !self.down.load(Ordering::Relaxed)
    }

    /// A request for `op` got an answer.
    pub(super) fn succeeded(&self) {
        if self.down.load(Ordering::Relaxed) && self.down.swap(false, Ordering::Relaxed) {
            let began = Duration::from_millis(self.since_ms.load(Ordering::Relaxed));
            let lasted = self.epoch.elapsed().saturating_sub(began);
            crate::metrics::store_up(true);
            tracing::info!(
                store = %self.endpoint,
                outage_ms = lasted.as_millis() as u64,
                "store reachable again; token requests are served"
            );
        }
    }

    /// A request for `op` failed. Logged when it begins an outage.
    pub(super) fn failed(&self, op: &'static str, failure: Failure) {
        crate::metrics::store_error(op);
        if !self.down.swap(true, Ordering::Relaxed) {
            self.since_ms
                .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
            crate::metrics::store_up(false);
            crate::metrics::store_outage();
            let (what, error) = failure.describe();
            tracing::error!(store = %self.endpoint, op, error, "{what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_begins_once_and_ends_once() {
        let h = Health::new("redis://127.0.0.1:1/0".into());
        assert!(h.is_up());
        h.succeeded();
        h.failed("code", Failure::Unreachable("refused".into()));
        h.failed("code", Failure::Late);
        assert!(!h.is_up());
        h.succeeded();
        assert!(h.is_up());
    }
}

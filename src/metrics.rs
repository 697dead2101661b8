//! Prometheus metrics: names, labels and the one place each is recorded.
//!
//! Served on `server.metrics_listen` (a separate port, never through the
//! proxy: counts of sign-ins are nobody's business on the internet).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and returns its handle.
pub(crate) fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
                    0.25, 1.0,
                ])
                .expect("static buckets")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder (a test harness) may already be installed:
            // then this handle renders nothing, which is harmless.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Keeps histogram summaries bounded; call periodically.
pub(crate) async fn upkeep(handle: PrometheusHandle) {
    let mut t = tokio::time::interval(Duration::from_secs(5));
    loop {
        t.tick().await;
        handle.run_upkeep();
    }
}

/// The per-request metrics of one route: `mcpgate_http_requests_total`
/// by status and `mcpgate_http_request_duration_seconds`. The handles are
/// registered on first use and kept, so recording a request is an atomic
/// add, not a registry lookup under a lock.
pub(crate) struct RouteMetrics {
    route: &'static str,
    requests: [OnceLock<Counter>; STATUS_LABELS.len()],
    duration: OnceLock<Histogram>,
}

impl RouteMetrics {
    pub(crate) const fn new(route: &'static str) -> RouteMetrics {
        RouteMetrics {
            route,
            requests: [const { OnceLock::new() }; STATUS_LABELS.len()],
            duration: OnceLock::new(),
        }
    }

    /// The `route` label.
    pub(crate) fn route(&self) -> &'static str {
        self.route
    }

    pub(crate) fn record(&self, status: u16, elapsed: Duration) {
        let i = status_index(status);
        let route = self.route;
        self.requests[i]
            .get_or_init(|| {
                metrics::counter!("mcpgate_http_requests_total", "route" => route, "status" => STATUS_LABELS[i])
            })
            .increment(1);
        self.duration
            .get_or_init(
                || metrics::histogram!("mcpgate_http_request_duration_seconds", "route" => route),
            )
            .record(elapsed.as_secs_f64());
    }
}

/// `status` label values: the statuses this server sends, then classes.
const STATUS_LABELS: [&str; 17] = [
    "200", "201", "202", "204", "302", "303", "400", "401", "403", "404", "405", "413", "421",
    "2xx", "3xx", "4xx", "5xx",
];

fn status_index(status: u16) -> usize {
    match status {
        200 => 0,
        201 => 1,
        202 => 2,
        204 => 3,
        302 => 4,
        303 => 5,
        400 => 6,
        401 => 7,
        403 => 8,
        404 => 9,
        405 => 10,
        413 => 11,
        421 => 12,
        s if s < 300 => 13,
        s if s < 400 => 14,
        s if s < 500 => 15,
        _ => 16,
    }
}

/// An access token was issued. `client_kind`: dynamic or configured.
pub(crate) fn token_issued(client_kind: &'static str, grant: &'static str) {
    metrics::counter!("mcpgate_tokens_issued_total", "client_kind" => client_kind, "grant" => grant).increment(1);
}

pub(crate) fn client_registered() {
    metrics::counter!("mcpgate_clients_registered_total").increment(1);
}

pub(crate) fn code_issued() {
    metrics::counter!("mcpgate_codes_issued_total").increment(1);
}

/// A bearer token was refused at `/mcp`.
pub(crate) fn validation_failure(reason: &'static str) {
    metrics::counter!("mcpgate_token_validation_failures_total", "reason" => reason).increment(1);
}

/// A token or grant request was refused with an OAuth error.
pub(crate) fn oauth_error(endpoint: &'static str, error: &'static str) {
    metrics::counter!("mcpgate_oauth_errors_total", "endpoint" => endpoint, "error" => error)
        .increment(1);
}

pub(crate) fn key_ring(generation: u64) {
    metrics::gauge!("mcpgate_key_ring_generation").set(generation as f64);
}

pub(crate) fn key_reload_failed() {
    metrics::counter!("mcpgate_key_reload_failures_total").increment(1);
}

pub(crate) fn ready(ready: bool) {
    metrics::gauge!("mcpgate_ready").set(if ready { 1.0 } else { 0.0 });
}

/// Whether the shared store (`[store] url`) answered its last request.
pub(crate) fn store_up(up: bool) {
    metrics::gauge!("mcpgate_store_up").set(if up { 1.0 } else { 0.0 });
}

/// A request to the shared store failed or timed out; `op`: what it was
/// for (`code`, `consent`, `assertion`, `refresh`, `probe`).
pub(crate) fn store_error(op: &'static str) {
    metrics::counter!("mcpgate_store_errors_total", "op" => op).increment(1);
}

/// The store's counters, exported at 0 before the first failure, so that
/// an `increase()` alert sees the first outage.
pub(crate) fn store_counters_at_zero(ops: &[&'static str]) {
    for &op in ops {
        metrics::counter!("mcpgate_store_errors_total", "op" => op).absolute(0);
    }
    metrics::counter!("mcpgate_store_outages_total").absolute(0);
}

/// A shared-store outage began (counted once per outage).
pub(crate) fn store_outage() {
    metrics::counter!("mcpgate_store_outages_total").increment(1);
}

/// A client metadata document was fetched (`ok`) or refused after a
/// fetch (`refused`).
pub(crate) fn cimd_fetch(outcome: &'static str) {
    metrics::counter!("mcpgate_cimd_fetches_total", "outcome" => outcome).increment(1);
}

/// One upstream's metrics: `mcpgate_upstream_requests_total` by status
/// class, `mcpgate_upstream_errors_total` by kind and
/// `mcpgate_upstream_response_seconds` (until the answer's head arrives;
/// a stream may stay open longer). Handles registered on first use, as
/// [`RouteMetrics`]'.
pub(crate) struct UpstreamMetrics {
    upstream: String,
    requests: [OnceLock<Counter>; UPSTREAM_STATUS.len()],
    errors: [OnceLock<Counter>; UPSTREAM_ERRORS.len()],
    latency: OnceLock<Histogram>,
}

const UPSTREAM_STATUS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Why an upstream request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamError {
    /// No connection, or it broke before an answer.
    Unreachable,
    /// No answer within the upstream's `timeout`.
    Timeout,
    /// It answered 401 or 403 to mcpgate's identity.
    RefusedIdentity,
    /// Its answer broke off mid-stream.
    Broken,
}

const UPSTREAM_ERRORS: [&str; 4] = ["unreachable", "timeout", "refused_identity", "broken"];

impl UpstreamMetrics {
    pub(crate) fn new(upstream: &str) -> UpstreamMetrics {
        UpstreamMetrics {
            upstream: upstream.to_owned(),
            requests: [const { OnceLock::new() }; UPSTREAM_STATUS.len()],
            errors: [const { OnceLock::new() }; UPSTREAM_ERRORS.len()],
            latency: OnceLock::new(),
        }
    }

    /// The upstream's answer began, with `status`, after `elapsed`.
    pub(crate) fn answered(&self, status: u16, elapsed: Duration) {
        let i = usize::from((status / 100).clamp(1, 5) - 1);
        self.requests[i]
            .get_or_init(|| {
                metrics::counter!("mcpgate_upstream_requests_total",
                    "upstream" => self.upstream.clone(), "status" => UPSTREAM_STATUS[i])
            })
            .increment(1);
        self.latency
            .get_or_init(|| {
                metrics::histogram!("mcpgate_upstream_response_seconds", "upstream" => self.upstream.clone())
            })
            .record(elapsed.as_secs_f64());
    }

    pub(crate) fn failed(&self, kind: UpstreamError) {
        let i = kind as usize;
        self.errors[i]
            .get_or_init(|| {
                metrics::counter!("mcpgate_upstream_errors_total",
                    "upstream" => self.upstream.clone(), "kind" => UPSTREAM_ERRORS[i])
            })
            .increment(1);
    }
}

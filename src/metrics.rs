//! Prometheus metrics: names, labels and the one place each is recorded.
//!
//! Served on `server.metrics_listen` (a separate port, never through the
//! proxy: counts of sign-ins are nobody's business on the internet).

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and returns its handle.
pub fn install() -> PrometheusHandle {
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
pub async fn upkeep(handle: PrometheusHandle) {
    let mut t = tokio::time::interval(Duration::from_secs(5));
    loop {
        t.tick().await;
        handle.run_upkeep();
    }
}

pub fn request(route: &'static str, status: u16, elapsed: Duration) {
    let status = status_class(status);
    metrics::counter!("mcpgate_http_requests_total", "route" => route, "status" => status)
        .increment(1);
    metrics::histogram!("mcpgate_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

fn status_class(status: u16) -> &'static str {
    match status {
        200 => "200",
        201 => "201",
        202 => "202",
        204 => "204",
        302 => "302",
        303 => "303",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        421 => "421",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// An access token was issued. `client_kind`: dynamic or configured.
pub fn token_issued(client_kind: &'static str, grant: &'static str) {
    metrics::counter!("mcpgate_tokens_issued_total", "client_kind" => client_kind, "grant" => grant).increment(1);
}

pub fn client_registered() {
    metrics::counter!("mcpgate_clients_registered_total").increment(1);
}

pub fn code_issued() {
    metrics::counter!("mcpgate_codes_issued_total").increment(1);
}

/// A bearer token was refused at `/mcp`.
pub fn validation_failure(reason: &'static str) {
    metrics::counter!("mcpgate_token_validation_failures_total", "reason" => reason).increment(1);
}

/// A token or grant request was refused with an OAuth error.
pub fn oauth_error(endpoint: &'static str, error: &'static str) {
    metrics::counter!("mcpgate_oauth_errors_total", "endpoint" => endpoint, "error" => error)
        .increment(1);
}

pub fn key_ring(generation: u64) {
    metrics::gauge!("mcpgate_key_ring_generation").set(generation as f64);
}

pub fn key_reload_failed() {
    metrics::counter!("mcpgate_key_reload_failures_total").increment(1);
}

pub fn ready(ready: bool) {
    metrics::gauge!("mcpgate_ready").set(if ready { 1.0 } else { 0.0 });
}

//! `/healthz` and `/readyz`, on the main listener (any host: load
//! balancers probe by IP) and on the metrics listener.

use http::StatusCode;

use crate::http::response::{self, Resp};

/// The process is up.
pub(crate) fn healthz() -> Resp {
    response::bytes(StatusCode::OK, "text/plain", "ok\n")
}

/// Whether to send traffic here: not shutting down and the key ring is
/// current (see `App::is_ready`).
pub(crate) fn readyz(ready: bool) -> Resp {
    if ready {
        response::bytes(StatusCode::OK, "text/plain", "ready\n")
    } else {
        response::bytes(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
    }
}

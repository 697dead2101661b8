//! `/healthz` and `/readyz`, on the main listener (any host: load
//! balancers probe by IP) and on the metrics listener.

use http::StatusCode;

use crate::http::response::{self, Resp};
use crate::store::Store;

/// The process is up.
pub(crate) fn healthz() -> Resp {
    response::bytes(StatusCode::OK, "text/plain", "ok\n")
}

/// Whether to send traffic here: not shutting down and the key ring is
/// current (see `App::is_ready`). The body's second line says how the
/// single-use store is; a shared store that is down does not make a
/// replica unready: taking every replica out of the load balancer would
/// stop `/mcp` too, which never needs the store.
pub(crate) fn readyz(ready: bool, store: &Store) -> Resp {
    let (status, word) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    let body = format!("{word}\n{}\n", store.describe());
    response::bytes(status, "text/plain", body)
}

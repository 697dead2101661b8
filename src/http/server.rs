//! Accepts connections and serves HTTP/1.1 and cleartext HTTP/2 (h2c, for
//! load balancers that speak it) on one port, with limits on what a slow
//! or hostile client can hold.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::router;
use crate::app::App;
use crate::metrics::RouteMetrics;

/// Limits on what one client can hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a whole request head (slow-loris).
    pub header_read_timeout: Duration,
    /// Time to send a whole request body, once the head is in.
    pub body_read_timeout: Duration,
    /// Largest request head (HTTP/1.1 buffer; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Open connections at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub max_h2_streams: u32,
    /// After the shutdown signal, how long to keep accepting while
    /// `/readyz` fails, so load balancers stop sending first.
    pub drain_delay: Duration,
    /// Then how long in-flight requests get to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            max_h2_streams: 100,
            drain_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        // hyper's header timeout only fires with a timer set.
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_pending_accept_reset_streams(Some(50))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish
/// (at most `limits.shutdown_grace`).
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let builder = builder(&limits);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(ok) => ok,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |req| {
            let app = app.clone();
            // Boxed: hyper keeps a slot sized for this future in every
            // connection, idle or not; a pointer keeps idle ones small.
            Box::pin(async move { Ok::<_, std::convert::Infallible>(handle(app, peer, req).await) })
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // Errors here are a client going away mid-request: nothing to do.
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    Ok(())
}

/// A request id: the proxy's `X-Request-Id` when it sent a sane one, else
/// a fresh one. Every log line of the request carries it, and so does the
/// response.
fn request_id(req: &http::Request<hyper::body::Incoming>) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(next_request_id)
}

/// `<8 random characters per process><14 hex digits of a counter>`: unique
/// without a system call per request.
fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| crate::tokens::access::random_id()[..8].to_owned());
    format!("{prefix}{:014x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: http::Request<hyper::body::Incoming>,
) -> super::response::Resp {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let method = req.method().clone();
    // The path only: queries carry codes and state.
    let path = req.uri().path().to_owned();
    static PREFLIGHT: RouteMetrics = RouteMetrics::new("preflight");
    let metrics = match method {
        http::Method::OPTIONS => &PREFLIGHT,
        _ => router::Endpoint::for_path(&path).metrics(),
    };
    let id = request_id(&req);
    let span = tracing::info_span!("request", id = %id);
    let mut resp = router::route(app, peer, req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    metrics.record(resp.status().as_u16(), elapsed);
    span.in_scope(|| {
        tracing::info!(
            target: "mcpgate::access",
            %method,
            path = %crate::http::response::truncate(&path, 200),
            route = metrics.route(),
            status = resp.status().as_u16(),
            micros = elapsed.as_micros() as u64,
            peer = %peer.ip(),
        )
    });
    if let Ok(v) = http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Serves `/metrics` (and health) on its own listener, until the process ends.
pub async fn serve_metrics(
    listener: TcpListener,
    app: Arc<App>,
    handle: metrics_exporter_prometheus::PrometheusHandle,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let app = app.clone();
        let handle = handle.clone();
        let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
            let resp = match req.uri().path() {
                "/metrics" => {
                    crate::metrics::ready(app.is_ready());
                    super::response::bytes(
                        http::StatusCode::OK,
                        "text/plain; version=0.0.4",
                        handle.render(),
                    )
                }
                "/healthz" => super::response::bytes(http::StatusCode::OK, "text/plain", "ok\n"),
                "/readyz" if app.is_ready() => {
                    super::response::bytes(http::StatusCode::OK, "text/plain", "ready\n")
                }
                "/readyz" => super::response::bytes(
                    http::StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "not ready\n",
                ),
                _ => super::response::not_found(),
            };
            async move { Ok::<_, std::convert::Infallible>(resp) }
        });
        let conn = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

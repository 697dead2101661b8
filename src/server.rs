//! Accepts connections and serves HTTP/1.1 and cleartext HTTP/2 (h2c, for
//! load balancers that speak it) on one port, with limits on what a slow
//! or hostile client can hold.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::app::App;
use crate::http::response;
use crate::metrics::RouteMetrics;
use crate::router;
use crate::settings::Limits;

/// The connection preface of HTTP/2 with prior knowledge (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The two ways to serve a connection, configured once.
///
/// Most connections are HTTP/1.1. hyper-util's `auto` builder reads the
/// first bytes to tell HTTP/1.1 from h2c and hands them back to hyper
/// through a `Rewind` wrapper; hyper's first read then returns only those
/// 24 bytes, its second read finds less than its 8 KiB read size free and
/// doubles the buffer, so every HTTP/1.1 connection kept a 16 KiB read
/// buffer. Peeking at the bytes instead (they stay in the socket) and
/// serving with the HTTP/1.1 or HTTP/2 builder directly keeps it at 8 KiB
/// and the connection task smaller.
struct Protocols {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
    /// How long a new connection may take to say which protocol it speaks
    /// (silent, or sending only the start of the h2c preface) before it is
    /// closed; and how long an HTTP/2 connection may carry no request.
    header_read_timeout: Duration,
}

/// Applies the settings to hyper's builder.
macro_rules! configure_http1 {
    ($b:expr, $limits:expr) => {
        $b
            // hyper's header timeout only fires with a timer set.
            .timer(TokioTimer::new())
            .header_read_timeout($limits.header_read_timeout)
            .max_buf_size($limits.max_header_bytes.max(8192))
            .keep_alive(true)
    };
}

macro_rules! configure_http2 {
    ($b:expr, $limits:expr) => {
        $b.timer(TokioTimer::new())
            .max_concurrent_streams($limits.max_h2_streams)
            .max_header_list_size($limits.max_header_bytes as u32)
            .max_pending_accept_reset_streams(Some(50))
            .max_local_error_reset_streams(Some(256))
            .keep_alive_interval(Some(Duration::from_secs(30)))
            .keep_alive_timeout(Duration::from_secs(20))
    };
}

impl Protocols {
    fn new(limits: &Limits) -> Protocols {
        let mut http1 = http1::Builder::new();
        configure_http1!(http1, limits);
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        configure_http2!(http2, limits);
        Protocols {
            http1,
            http2,
            header_read_timeout: limits.header_read_timeout,
        }
    }
}

/// What the first bytes of a connection say, without consuming them.
enum Preface {
    Http1,
    Http2,
    /// The client closed before sending anything.
    Closed,
}

impl Preface {
    /// `None` while `bytes` are only a prefix of the h2c preface: they
    /// could still turn out to be either protocol.
    fn of(bytes: &[u8]) -> Option<Preface> {
        Some(if bytes.is_empty() {
            Preface::Closed
        } else if bytes != &H2_PREFACE[..bytes.len()] {
            Preface::Http1
        } else if bytes.len() == H2_PREFACE.len() {
            Preface::Http2
        } else {
            return None;
        })
    }
}

/// Peeks until the first bytes tell the protocol. The caller bounds the
/// whole wait with one deadline: a client that sends `P` and stops must
/// not hold a connection slot.
async fn peek_preface(stream: &TcpStream) -> std::io::Result<Preface> {
    let mut buf = [0u8; H2_PREFACE.len()];
    let n = stream.peek(&mut buf).await?;
    match Preface::of(&buf[..n]) {
        Some(preface) => Ok(preface),
        // Rare (a preface split across packets, or a hostile client):
        // boxed so that every connection's task does not carry its state.
        None => Box::pin(peek_rest_of_preface(stream, n)).await,
    }
}

/// Waits for more of a preface whose first `seen` bytes are a prefix of
/// the h2c one.
///
/// Peeking again at once would spin: `peek` returns as soon as any byte
/// waits unread, and the bytes stay unread. So a closure that reports
/// `WouldBlock` while the count is unchanged tells tokio to clear the
/// socket's readiness, and `readable()` then sleeps until the next packet
/// arrives (tokio's readiness ticks keep a packet that lands in between
/// from being missed). The closure only counts (socket2's peek fills an
/// uninitialised buffer); tokio's `peek` reads the bytes.
async fn peek_rest_of_preface(stream: &TcpStream, mut seen: usize) -> std::io::Result<Preface> {
    use std::io::ErrorKind::WouldBlock;
    let mut buf = [0u8; H2_PREFACE.len()];
    loop {
        stream.readable().await?;
        let grown = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut scratch = [std::mem::MaybeUninit::uninit(); H2_PREFACE.len()];
            match socket2::SockRef::from(stream).peek(&mut scratch)? {
                n if n == seen => Err(WouldBlock.into()),
                n => Ok(n),
            }
        });
        match grown {
            Ok(_) => {}
            Err(e) if e.kind() == WouldBlock => continue,
            Err(e) => return Err(e),
        }
        let n = stream.peek(&mut buf).await?;
        if let Some(preface) = Preface::of(&buf[..n]) {
            return Ok(preface);
        }
        seen = n;
    }
}

/// Where shutdown is; every connection task holds a receiver of it.
///
/// The order of the variants is the order of the phases.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// From the shutdown signal for `drain_delay`: `/readyz` fails, the
    /// listener still accepts, and every connection is told to go away
    /// (`serve`).
    Draining,
    /// The listener is closed; connections finish what is in flight, for
    /// `shutdown_grace` at most.
    Stopping,
}

/// Serves until `drain` resolves (the shutdown signal), then drains:
/// `/readyz` fails at once, connections are told to go away while the
/// listener keeps accepting for `limits.drain_delay`, and then in-flight
/// requests get `limits.shutdown_grace` to finish.
///
/// Going away, per protocol, from the moment draining starts:
/// - HTTP/1.1: every response says `Connection: close` (RFC 9112 §9.6) and
///   its connection closes after it, so a client that keeps sending
///   learns from its next answer to connect again, and its balancer,
///   which by then sees `/readyz` fail, picks a ready replica. This
///   includes connections accepted while draining. Connections idle all
///   through `drain_delay` are closed when the listener closes (see
///   `serve_http1` for why not sooner).
/// - HTTP/2 gets GOAWAY (RFC 9113 §6.8) at once: hyper sends one with the
///   highest stream id and a PING, then the final one, so streams the
///   client opened before it saw the first still run; new streams go to a
///   new connection. GOAWAY is a message, not a close: no request races
///   it.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    drain: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let protocols = Arc::new(Protocols::new(&limits));
    // Its receivers are the connections: `closed()` resolves when the last
    // one has ended.
    let (phase, _) = watch::channel(Phase::Serving);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let accepting = async {
        drain.await;
        // `/readyz` fails and HTTP/1.1 responses say `Connection: close`
        // from here; HTTP/2 connections hear of it through `phase`.
        app.begin_shutdown();
        phase.send_replace(Phase::Draining);
        tracing::info!(drain = %crate::clock::duration_text(limits.drain_delay), "shutdown requested; draining");
        tokio::time::sleep(limits.drain_delay).await;
    };
    tokio::pin!(accepting);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = &mut accepting => break,
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
            _ = &mut accepting => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        // Taken here, before any phase change can be missed.
        let mut phase = phase.subscribe();
        let protocols = protocols.clone();
        tokio::spawn(async move {
            // One deadline for the whole decision, however many packets it
            // takes. A connection that has not said a byte when the
            // listener closes is closed.
            let preface = tokio::select! {
                p = tokio::time::timeout(protocols.header_read_timeout, peek_preface(&stream)) => p,
                _ = phase.wait_for(|p| *p == Phase::Stopping) => return,
            };
            // Undecided past the header timeout, closed, or an error: drop it.
            let Ok(Ok(preface)) = preface else { return };
            let io = TokioIo::new(stream);
            // Errors here are a client going away mid-request: nothing to
            // do. The rare kinds are boxed so that the task of every
            // HTTP/1.1 connection is only as large as that one needs.
            match preface {
                Preface::Http1 => serve_http1(&protocols, io, app, peer, phase).await,
                Preface::Http2 => {
                    Box::pin(serve_h2(&protocols, io, app, peer, phase)).await;
                }
                Preface::Closed => {}
            }
            drop(permit);
        });
    }
    drop(listener);
    tracing::info!("no longer accepting; finishing in-flight requests");
    phase.send_replace(Phase::Stopping);
    tokio::select! {
        _ = phase.closed() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("shutdown grace period over; closing remaining connections");
        }
    }
    Ok(())
}

/// The `Connection: close` of a response written while draining.
const CLOSE: http::HeaderValue = http::HeaderValue::from_static("close");

/// Serves an HTTP/1.1 connection; from the drain's start, each response
/// closes it.
///
/// Invariant: from the drain's start until the listener closes, a
/// request that reaches a connection is answered; the only request that
/// can be lost is one sent on a connection its client left unused for the
/// whole `drain_delay`, at the instant the listener closes.
///
/// - Every response written once `App::draining` is set carries
///   `Connection: close`, and hyper, seeing it, closes the connection
///   after writing it. The flag is read after the handler, as late as the
///   service can, so the response a busy connection is producing when the
///   drain starts carries it. (hyper 1.12's `graceful_shutdown` disables
///   keep-alive on a busy connection but does not say so in the response:
///   the client gets an answer, then a FIN it may not have read before
///   sending its next request on the connection.)
/// - An idle connection is not closed when the drain starts, though
///   `graceful_shutdown` would: HTTP/1.1 cannot tell an idle connection
///   to go away (§9.6), and a client may be writing its next request at
///   that instant; a request whose bytes were not yet read when the server
///   closes is lost, and a client must not retry it (§9.3.1). At the
///   drain's start every connection in use is one a client may be about
///   to use: closing them all then lost requests in `tests/restarts.rs`
///   (1-3 in about half the runs). Left open, its next request is
///   answered, with `Connection: close`.
/// - When the listener closes, `graceful_shutdown` closes the
///   connections still idle (unused for all of `drain_delay`: their
///   clients have moved away, or are idle) and lets one with a request in
///   flight finish it. The connection is polled first (`biased`), so a
///   request whose bytes have arrived is read (the connection is then
///   busy and answers it) before hyper decides it is idle: what remains is
///   a request not yet read, in flight or not yet reported readable, a
///   window of one poll of this task, once.
async fn serve_http1(
    protocols: &Protocols,
    io: TokioIo<TcpStream>,
    app: Arc<App>,
    peer: SocketAddr,
    mut phase: watch::Receiver<Phase>,
) {
    let service = service_fn(move |req| {
        let app = app.clone();
        // Boxed: hyper keeps a slot sized for this future in every
        // connection, idle or not; a pointer keeps idle ones small.
        Box::pin(async move {
            let mut resp = handle(&app, peer, req).await;
            if app.draining() {
                resp.headers_mut().insert(http::header::CONNECTION, CLOSE);
            }
            Ok::<_, std::convert::Infallible>(resp)
        })
    });
    let conn = protocols.http1.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        biased;
        _ = conn.as_mut() => return,
        _ = phase.wait_for(|p| *p == Phase::Stopping) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

// --- Idle HTTP/2 connections ---

/// Serves an h2c connection, and closes it once it has carried no request
/// for `header_read_timeout`.
///
/// HTTP/1.1 needs none of this: hyper's header timer also runs while a
/// keep-alive connection waits for its next request. hyper's HTTP/2 has
/// only keep-alive PINGs, which any client's stack answers, so without
/// this a client that sends the preface and SETTINGS and then nothing
/// holds a connection slot forever.
///
/// Idle means no request in flight and none finished during a whole
/// timer period, so a connection is closed between one and two periods
/// after its last request (after exactly one if it never sent any). It is
/// closed gracefully: GOAWAY (RFC 9113 §6.8) tells the client which
/// streams were processed, and any stream the client opened meanwhile
/// still runs to its end. A client that keeps the connection open after
/// that, idle for another whole period (it never answers the shutdown
/// PING, or leaves a stream half-open), is dropped.
async fn serve_h2(
    protocols: &Protocols,
    io: TokioIo<TcpStream>,
    app: Arc<App>,
    peer: SocketAddr,
    mut phase: watch::Receiver<Phase>,
) {
    let activity = Arc::new(Activity::default());
    let service = {
        let activity = activity.clone();
        service_fn(move |req| {
            let app = app.clone();
            let in_flight = activity.start();
            Box::pin(async move {
                let resp = handle(&app, peer, req).await;
                drop(in_flight);
                Ok::<_, std::convert::Infallible>(resp)
            })
        })
    };
    let conn = protocols.http2.serve_connection(io, service);
    tokio::pin!(conn);
    let period = protocols.header_read_timeout;
    let timer = tokio::time::sleep(period);
    tokio::pin!(timer);
    let mut check = IdleCheck::default();
    let mut going_away = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            // From the drain's start (for a connection accepted while
            // draining, at once: hyper sends the GOAWAY after the
            // handshake, and streams opened before the client saw it run).
            _ = phase.wait_for(|p| *p >= Phase::Draining), if !going_away => {
                going_away = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = &mut timer => {
                if check.quiet(&activity) {
                    if going_away {
                        return;
                    }
                    going_away = true;
                    conn.as_mut().graceful_shutdown();
                }
                timer.as_mut().reset(tokio::time::Instant::now() + period);
            }
        }
    }
}

/// What an HTTP/2 connection's idle timer needs from its requests.
///
/// Two counters, not a clock read per request: a busy connection pays two
/// uncontended atomic adds a request (and the `Arc` its handler holds).
#[derive(Default)]
struct Activity {
    /// Requests whose handler started (wrapping).
    started: AtomicUsize,
    /// Requests whose handler finished or was dropped (wrapping).
    finished: AtomicUsize,
}

impl Activity {
    fn start(self: &Arc<Self>) -> InFlight {
        self.started.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request being handled; counted finished when dropped, which also
/// covers hyper dropping the handler of a stream the client reset.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // Release: whoever sees this finish also sees its start.
        self.0.finished.fetch_add(1, Ordering::Release);
    }
}

/// The idle timer's memory: how many requests had finished when it last
/// looked.
#[derive(Default)]
struct IdleCheck {
    finished_seen: usize,
}

impl IdleCheck {
    /// Whether the connection carried no request since the last call (or
    /// since it opened): none in flight now, none finished meanwhile.
    fn quiet(&mut self, activity: &Activity) -> bool {
        // `finished` first: a request that starts and finishes between the
        // two loads then shows as in flight, never as nothing.
        let finished = activity.finished.load(Ordering::Acquire);
        let started = activity.started.load(Ordering::Relaxed);
        let quiet = started == finished && finished == self.finished_seen;
        self.finished_seen = finished;
        quiet
    }
}

/// A constant, not a string: a string name is parsed on every use.
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// A request id: the proxy's `X-Request-Id` when it sent a sane one, else
/// a fresh one. Every log line of the request carries it, and so does the
/// response.
fn request_id(req: &http::Request<hyper::body::Incoming>) -> http::HeaderValue {
    req.headers()
        .get(X_REQUEST_ID)
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= 64 && v.iter().all(|b| b.is_ascii_graphic())
        })
        // Shares the request's buffer: no copy.
        .cloned()
        .unwrap_or_else(next_request_id)
}

/// `<8 random characters per process><14 hex digits of a counter>`: unique
/// without a system call per request, and written without `format!`.
fn next_request_id() -> http::HeaderValue {
    use std::sync::atomic::AtomicU64;
    use std::sync::OnceLock;
    static PREFIX: OnceLock<[u8; 8]> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut p = [0u8; 8];
        p.copy_from_slice(&crate::random::random_id().as_bytes()[..8]);
        p
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut id = [0u8; 22];
    id[..8].copy_from_slice(prefix);
    for (i, digit) in id[8..].iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(n >> (4 * (13 - i)) & 0xf) as usize];
    }
    http::HeaderValue::from_bytes(&id).expect("base64url and hex digits are header-safe")
}

async fn handle(
    app: &App,
    peer: SocketAddr,
    req: http::Request<hyper::body::Incoming>,
) -> crate::http::response::Reply {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let method = req.method().clone();
    // For the route's metrics and the access log (the path only: queries
    // carry codes and state). A clone of the URI shares its bytes.
    let uri = req.uri().clone();
    let path = uri.path();
    static PREFLIGHT: RouteMetrics = RouteMetrics::new("preflight");
    let metrics = match method {
        http::Method::OPTIONS => &PREFLIGHT,
        _ => router::Endpoint::for_request(app, path).metrics(),
    };
    let id = request_id(&req);
    let log_access = app.settings.log_access;
    let span = tracing::info_span!("request", id = %id.to_str().unwrap_or_default());
    let mut resp = router::route(app, peer, &id, req)
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    metrics.record(resp.status().as_u16(), elapsed);
    if log_access {
        let _in = span.enter();
        tracing::info!(
            target: "mcpgate::access",
            %method,
            path = %crate::http::response::truncate(path, 200),
            route = metrics.route(),
            status = resp.status().as_u16(),
            micros = elapsed.as_micros() as u64,
            peer = %peer.ip(),
        );
    }
    resp.headers_mut().insert(X_REQUEST_ID, id);
    resp
}

/// Serves `/metrics` (and health) on its own listener, until the process ends.
pub(crate) async fn serve_metrics(
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
                    response::bytes(
                        http::StatusCode::OK,
                        "text/plain; version=0.0.4",
                        handle.render(),
                    )
                }
                "/healthz" => crate::health::healthz(),
                "/readyz" => crate::health::readyz(app.is_ready(), &app.store),
                _ => crate::http::error::HttpError::NotFound.respond(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_that_never_carried_a_request_is_quiet_at_the_first_look() {
        let activity = Arc::new(Activity::default());
        assert!(IdleCheck::default().quiet(&activity));
    }

    #[test]
    fn a_request_in_flight_keeps_the_connection_busy_however_long_it_runs() {
        let activity = Arc::new(Activity::default());
        let mut check = IdleCheck::default();
        let request = activity.start();
        assert!(!check.quiet(&activity));
        assert!(!check.quiet(&activity));
        drop(request);
        // It finished during this period: not quiet yet.
        assert!(!check.quiet(&activity));
        assert!(check.quiet(&activity));
    }

    #[test]
    fn a_request_that_came_and_went_between_looks_counts_as_activity() {
        let activity = Arc::new(Activity::default());
        let mut check = IdleCheck::default();
        assert!(check.quiet(&activity));
        drop(activity.start());
        assert!(!check.quiet(&activity));
        assert!(check.quiet(&activity));
    }
}

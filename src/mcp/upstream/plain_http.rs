//! HTTP/1.1 to a plain-http upstream, each connection driven by the
//! request that holds it.
//!
//! hyper-util's pooled client gives every connection a task of its own:
//! a call hands its request to that task and takes the answer back
//! through a channel, two wake-ups across threads per call. Here the
//! request's own task polls the connection (hyper's
//! `client::conn::http1`) while it waits for the answer's head, and the
//! answer's body ([`Driven`]) polls it while the client reads: no hand-off,
//! and the same backpressure (the connection reads only when the body is
//! asked for more). About a tenth of mcpgate's CPU per proxied call
//! (PERFORMANCE.md, twelfth round).
//!
//! Invariants: a connection is either idle in the pool, where nobody
//! polls it, or owned by exactly one request or answer, which polls it;
//! it goes back to the pool only after its answer was read to the end
//! (HTTP/1.1 keeps no state between exchanges). Dropped at any other
//! point it is closed, which is how the upstream learns of a client that
//! left.

use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

type Connection = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

/// Why a request got no answer.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// How often idle connections are looked at: the ones the upstream closed
/// (Node closes idle ones after 5 s) or that idled past the limit are
/// dropped, so that no closed socket waits here for the next request.
const SWEEP_EVERY: Duration = Duration::from_secs(2);

/// Boxed where it is passed around: hyper's connection state is large,
/// and a request moves it several times.
struct Conn {
    send: http1::SendRequest<Full<Bytes>>,
    io: Connection,
}

impl Conn {
    /// Whether an idle connection can take a request now: the upstream has
    /// not closed it and hyper is ready for the next exchange. Never
    /// waits (what it registers to be woken is a no-op).
    fn usable(&mut self) -> bool {
        let mut cx = Context::from_waker(noop_waker());
        Pin::new(&mut self.io).poll(&mut cx).is_pending() && self.send.is_ready()
    }
}

/// A waker that does nothing (`Waker::noop` needs Rust 1.85).
fn noop_waker() -> &'static Waker {
    struct Noop;
    impl std::task::Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static NOOP: OnceLock<Waker> = OnceLock::new();
    NOOP.get_or_init(|| Waker::from(Arc::new(Noop)))
}

struct Idle {
    conn: Box<Conn>,
    since: Instant,
}

impl Idle {
    /// Whether it may still be taken: idle less than `limit`, and usable.
    fn keep(&mut self, limit: Duration) -> bool {
        self.since.elapsed() < limit && self.conn.usable()
    }
}

/// The connections to one upstream.
pub(crate) struct Pool {
    /// `host:port`, to connect to (names are resolved on each connect).
    target: String,
    /// The request target, in origin form (RFC 9112 §3.2.1).
    origin: Uri,
    /// The `Host` header (RFC 9112 §3.2).
    host: HeaderValue,
    /// Most recently used at the back.
    idle: Mutex<VecDeque<Idle>>,
    max_idle: usize,
    idle_timeout: Duration,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool for the `http` upstream `uri`. Must be called within the
    /// runtime: it starts the pool's sweeper, which ends with the pool.
    pub(crate) fn new(
        uri: &Uri,
        max_idle: usize,
        idle_timeout: Duration,
        connect_timeout: Duration,
    ) -> Arc<Pool> {
        let authority = uri.authority().expect("an upstream URL has a host");
        let port = uri.port_u16().unwrap_or(80);
        let origin = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .expect("a path of a URI is a URI");
        let pool = Arc::new(Pool {
            target: format!("{}:{port}", authority.host()),
            origin,
            host: HeaderValue::from_str(authority.as_str()).expect("an authority is header text"),
            idle: Mutex::new(VecDeque::new()),
            max_idle,
            idle_timeout,
            connect_timeout,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweep(Arc::downgrade(&pool)));
        }
        pool
    }

    /// Sends `req` to the pool's upstream (whatever its URI says) and
    /// waits for the answer's head. A reused connection that turns out closed before
    /// the request left is replaced by a new one, once.
    pub(crate) async fn send(
        self: &Arc<Self>,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Driven>, Error> {
        let mut req = self.origin_form(req);
        loop {
            let (mut conn, reused) = match self.take() {
                Some(conn) => (conn, true),
                // Boxed: a connect is rare, and its future would
                // otherwise make every call's future larger to move.
                None => (Box::pin(self.connect()).await?, false),
            };
            let answer = conn.send.try_send_request(req);
            let mut answer = std::pin::pin!(answer);
            let mut conn = Some(conn);
            let result = poll_fn(|cx| {
                if let Some(c) = &mut conn {
                    // Errors reach the answer too: hyper fails it. Done
                    // without an error (the upstream closed the idle
                    // connection just before the request was taken up),
                    // hyper answers only once the connection is dropped:
                    // the request comes back unsent.
                    if Pin::new(&mut c.io).poll(cx).is_ready() {
                        conn = None;
                    }
                }
                answer.as_mut().poll(cx)
            })
            .await;
            match result {
                Ok(head) => {
                    return Ok(head.map(|body| Driven {
                        body,
                        conn,
                        pool: Arc::downgrade(self),
                    }));
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(e.into_error().into()),
                },
            }
        }
    }

    /// hyper sends the URI as given: HTTP/1.1 to a server wants the
    /// origin form and a `Host` (RFC 9112 §3.2.1, §3.2).
    fn origin_form(&self, mut req: Request<Full<Bytes>>) -> Request<Full<Bytes>> {
        *req.uri_mut() = self.origin.clone();
        req.headers_mut().insert(header::HOST, self.host.clone());
        req
    }

    fn take(&self) -> Option<Box<Conn>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(mut i) = idle.pop_back() {
            if i.keep(self.idle_timeout) {
                return Some(i.conn);
            }
        }
        None
    }

    fn put(&self, mut conn: Box<Conn>) {
        if !conn.usable() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.max_idle {
            idle.push_back(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }

    async fn connect(&self) -> Result<Box<Conn>, Error> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.target))
            .await
            .map_err(|_| format!("connecting to {} timed out", self.target))?
            .map_err(|e| format!("connecting to {}: {e}", self.target))?;
        // Requests and answers are small and each is written whole.
        stream.set_nodelay(true)?;
        let (send, io) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Box::new(Conn { send, io }))
    }
}

/// Drops the idle connections the upstream closed or that idled too
/// long; ends when the pool is gone.
async fn sweep(pool: Weak<Pool>) {
    let mut every = tokio::time::interval(SWEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        let mut idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.retain_mut(|i| i.keep(pool.idle_timeout));
    }
}

/// An answer's body, driving its connection while it is read.
pub(crate) struct Driven {
    body: Incoming,
    /// `None` once hyper is done with the connection (closed, or the
    /// upstream said `Connection: close`).
    conn: Option<Box<Conn>>,
    pool: Weak<Pool>,
}

impl Driven {
    fn give_back(&mut self) {
        if let (Some(conn), Some(pool)) = (self.conn.take(), self.pool.upgrade()) {
            pool.put(conn);
        }
    }
}

impl Body for Driven {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(conn) = &mut this.conn {
            // Reads what the body asked for; once it ends, its errors
            // and its end reach the body.
            if Pin::new(&mut conn.io).poll(cx).is_ready() {
                this.conn = None;
            }
        }
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(None) = frame {
            this.give_back();
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Driven {
    fn drop(&mut self) {
        // Read to the end: the connection is clean for the next request.
        // Anything else closes it (dropped with `conn`).
        if self.body.is_end_stream() {
            self.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_leave_in_origin_form_with_the_upstreams_host() {
        for (url, path, host) in [
            ("http://127.0.0.1:3001/mcp", "/mcp", "127.0.0.1:3001"),
            (
                "http://tools.internal/a/mcp?tenant=x",
                "/a/mcp?tenant=x",
                "tools.internal",
            ),
            ("http://[::1]:8080/", "/", "[::1]:8080"),
        ] {
            let uri: Uri = url.parse().unwrap();
            let pool = Pool::new(&uri, 1, Duration::from_secs(1), Duration::from_secs(1));
            let mut req = Request::new(Full::new(Bytes::new()));
            *req.uri_mut() = uri.clone();
            // A client's Host never crosses (the allowlist), but even so:
            req.headers_mut()
                .insert(header::HOST, HeaderValue::from_static("mcp.example.com"));
            let req = pool.origin_form(req);
            assert_eq!(req.uri(), path, "{url}");
            assert_eq!(req.headers()[header::HOST], host, "{url}");
            assert_eq!(req.headers().get_all(header::HOST).iter().count(), 1);
        }
        let pool = Pool::new(
            &"http://[::1]:8080/".parse().unwrap(),
            1,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(pool.target, "[::1]:8080");
        let pool = Pool::new(
            &"http://tools.internal/mcp".parse().unwrap(),
            1,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        assert_eq!(pool.target, "tools.internal:80");
    }

    /// A plain upstream that answers one request per connection and then
    /// closes it, a little later each time (up to 450 µs), without
    /// saying so.
    fn closing_after_one() -> std::net::SocketAddr {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for (i, conn) in listener.incoming().enumerate() {
                let Ok(mut conn) = conn else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                let until = Instant::now() + Duration::from_micros(75 * (i % 7) as u64);
                while Instant::now() < until {
                    std::hint::spin_loop();
                }
            }
        });
        addr
    }

    /// The upstream closes an idle connection just as a request takes it
    /// (hyper sees the close before it takes the request up): the request
    /// is sent again on a new connection, or fails, and never waits for an
    /// answer that cannot come. A race: thousands of tries.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_closed_as_it_is_taken_never_leaves_its_request_waiting() {
        use http_body_util::BodyExt as _;
        let uri: Uri = format!("http://{}/mcp", closing_after_one())
            .parse()
            .unwrap();
        let pool = Pool::new(&uri, 4, Duration::from_secs(60), Duration::from_secs(5));
        for i in 0..6000u64 {
            let mut req = Request::new(Full::new(Bytes::new()));
            *req.uri_mut() = uri.clone();
            let call = async {
                let answer = pool.send(req).await?;
                answer.into_body().collect().await?;
                Ok::<_, Error>(())
            };
            // Answered or failed (a request that met the close on the
            // way), but in time.
            let waited = tokio::time::timeout(Duration::from_secs(2), call).await;
            assert!(waited.is_ok(), "request {i} got no answer");
            // The next request a little earlier or later each time.
            let until = Instant::now() + Duration::from_micros(3 * (i % 13));
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }
}

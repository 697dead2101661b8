//! The outbound HTTP client of one upstream.
//!
//! - `https`: hyper-util's pooled client over rustls, HTTP/1.1 or h2 as
//!   ALPN settles. TLS is verified against the system's roots (Mozilla's
//!   when the system has none) plus the upstream's `ca_file`.
//! - `http`: HTTP/1.1 connections driven by the request that holds them
//!   (`plain_http`), the cheaper path for the usual upstream on the same
//!   network.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;

use super::plain_http::{self, Driven};

type Pooled = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

pub(crate) enum Client {
    Plain(Arc<plain_http::Pool>),
    /// Boxed: hyper-util's client is large, and one per mount.
    Tls(Box<Pooled>),
}

impl Client {
    /// Sends `req` (its URI absolute, the upstream's) and waits for the
    /// answer's head.
    pub(crate) async fn request(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<Answer>, plain_http::Error> {
        match self {
            Client::Plain(pool) => Ok(pool.send(req).await?.map(Either::Left)),
            Client::Tls(client) => Ok(client.request(req).await?.map(Either::Right)),
        }
    }
}

/// An upstream's answer body, as either transport reads it.
pub(crate) type Answer = Either<Driven, Incoming>;

/// How long an idle pooled connection is kept: less than the keep-alive
/// of the usual MCP servers (Node's http server and uvicorn close an idle
/// connection after 5 s). A request sent on a connection at the moment
/// its server closes it fails, and a `tools/call` is not sent twice; a
/// connection dropped here first costs only a new connect.
const POOL_IDLE: Duration = Duration::from_secs(4);
/// Idle connections kept per upstream host.
const POOL_MAX_IDLE: usize = 256;
/// A connection that does not open in this long counts as unreachable
/// (the request's own `timeout` bounds the rest).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The roots every upstream trusts: loaded once.
fn system_roots() -> &'static Vec<CertificateDer<'static>> {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        if !found.certs.is_empty() {
            return found.certs;
        }
        // No system store (a distroless image): Mozilla's, as browsers ship.
        Vec::new()
    })
}

/// The client of the upstream at `uri`; an `https` one trusts the usual
/// roots and `extra_roots`. Called within the runtime.
pub(crate) fn build(uri: &Uri, extra_roots: &[CertificateDer<'static>]) -> Client {
    if uri.scheme() == Some(&http::uri::Scheme::HTTP) {
        return Client::Plain(plain_http::Pool::new(
            uri,
            POOL_MAX_IDLE,
            POOL_IDLE,
            CONNECT_TIMEOUT,
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    let system = system_roots();
    if system.is_empty() {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    } else {
        // A malformed system certificate is skipped, not fatal.
        let _ = roots.add_parsable_certificates(system.iter().cloned());
    }
    let _ = roots.add_parsable_certificates(extra_roots.iter().cloned());
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::Tls(Box::new(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector),
    ))
}

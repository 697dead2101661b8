//! The outbound HTTP client of one upstream: hyper-util's pooled client
//! over rustls, HTTP/1.1 and h2 (chosen by ALPN on https; HTTP/1.1 on
//! plain http).
//!
//! TLS is verified against the system's roots (Mozilla's when the system
//! has none) plus the upstream's `ca_file`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::pki_types::CertificateDer;

pub(crate) type Client =
    hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// How long an idle pooled connection is kept.
const POOL_IDLE: Duration = Duration::from_secs(60);
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

/// A client trusting the usual roots and `extra_roots`.
pub(crate) fn build(extra_roots: &[CertificateDer<'static>]) -> Client {
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
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(POOL_MAX_IDLE)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .build(connector)
}

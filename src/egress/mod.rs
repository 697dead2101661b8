//! Outbound HTTPS to URLs that someone else chose (a client's metadata
//! document, its JWKS), guarded against server-side request forgery.
//!
//! One fetch is one GET on a fresh connection:
//!
//! 1. the name is resolved once, and every address it resolves to must be
//!    public ([`addr::check`], RFC 6890); one special-use answer refuses
//!    the whole name, so a name cannot mix an internal address in;
//! 2. the TCP connection goes to an address that was checked (never a
//!    second resolution, so DNS rebinding cannot swap it);
//! 3. TLS is verified against the Mozilla roots (webpki-roots) for the
//!    URL's name, plus an extra CA only under the test-only setting;
//! 4. redirects are never followed (a 3xx is an error), the body is read
//!    up to a byte limit, and the whole fetch has one deadline.
//!
//! Nothing here knows what is fetched: callers check status and body.

pub(crate) mod addr;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, ServerName};

/// What one fetch may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest body accepted; one byte more is [`EgressError::TooLarge`].
    pub max_bytes: usize,
    /// The whole fetch: resolution, connection, TLS, response and body.
    pub timeout: Duration,
}

/// A response with its whole body.
#[derive(Debug)]
pub(crate) struct Fetched {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a fetch failed. The text is safe to log and to show a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum EgressError {
    #[error("only https URLs with a host are fetched")]
    NotHttps,
    #[error("the name does not resolve")]
    Resolve,
    #[error("refused: {0}")]
    SpecialUse(#[from] addr::SpecialUse),
    #[error("cannot connect")]
    Connect,
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("HTTP failed: {0}")]
    Http(String),
    #[error("answered with a redirect ({0}), which is not followed")]
    Redirect(u16),
    #[error("the response is larger than {0} bytes")]
    TooLarge(usize),
    #[error("no complete response within {0:?}")]
    Timeout(Duration),
}

/// The outbound client: TLS trust and the address policy, built once.
pub(crate) struct Egress {
    tls: tokio_rustls::TlsConnector,
    /// Test-only: loopback addresses pass the guard.
    allow_loopback: bool,
}

impl Egress {
    /// `extra_roots` and `allow_loopback` come from the test-only settings;
    /// production passes none and `false`.
    pub(crate) fn new(extra_roots: Vec<CertificateDer<'static>>, allow_loopback: bool) -> Egress {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in extra_roots {
            // Checked when the settings read the file.
            let _ = roots.add(cert);
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Egress {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            allow_loopback,
        }
    }

    /// `GET url` with `Accept: accept`, under `limits`.
    pub(crate) async fn get(
        &self,
        url: &url::Url,
        accept: &'static str,
        limits: Limits,
    ) -> Result<Fetched, EgressError> {
        tokio::time::timeout(
            limits.timeout,
            self.get_inner(url, accept, limits.max_bytes),
        )
        .await
        .unwrap_or(Err(EgressError::Timeout(limits.timeout)))
    }

    async fn get_inner(
        &self,
        url: &url::Url,
        accept: &'static str,
        max_bytes: usize,
    ) -> Result<Fetched, EgressError> {
        if url.scheme() != "https" {
            return Err(EgressError::NotHttps);
        }
        let host = url.host().ok_or(EgressError::NotHttps)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let (addrs, server_name) = match host {
            url::Host::Ipv4(ip) => (vec![SocketAddr::new(ip.into(), port)], ip.to_string()),
            url::Host::Ipv6(ip) => (vec![SocketAddr::new(ip.into(), port)], ip.to_string()),
            url::Host::Domain(name) => {
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, port))
                    .await
                    .map_err(|_| EgressError::Resolve)?
                    .collect();
                (addrs, name.to_owned())
            }
        };
        if addrs.is_empty() {
            return Err(EgressError::Resolve);
        }
        for a in &addrs {
            addr::check(a.ip(), self.allow_loopback)?;
        }
        // Connect to the checked addresses only, in the resolver's order.
        let mut tcp = None;
        for a in &addrs {
            if let Ok(s) = tokio::net::TcpStream::connect(a).await {
                tcp = Some(s);
                break;
            }
        }
        let tcp = tcp.ok_or(EgressError::Connect)?;
        let name =
            ServerName::try_from(server_name).map_err(|e| EgressError::Tls(e.to_string()))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| EgressError::Tls(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| EgressError::Http(e.to_string()))?;
        // Ends with the connection: when the response is read, or when the
        // deadline drops this future and with it `sender`.
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let req = Request::get(path)
            .header(http::header::HOST, authority)
            .header(http::header::ACCEPT, accept)
            .header(
                http::header::USER_AGENT,
                concat!("mcpgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Empty::<Bytes>::new())
            .map_err(|e| EgressError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| EgressError::Http(e.to_string()))?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(EgressError::Redirect(status.as_u16()));
        }
        let (parts, mut body) = resp.into_parts();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > max_bytes as u64) {
            return Err(EgressError::TooLarge(max_bytes));
        }
        let mut out = Vec::with_capacity(declared.unwrap_or(0) as usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| EgressError::Http(e.to_string()))?;
            if let Ok(data) = frame.into_data() {
                if out.len() + data.len() > max_bytes {
                    return Err(EgressError::TooLarge(max_bytes));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(Fetched {
            status,
            headers: parts.headers,
            body: Bytes::from(out),
        })
    }
}

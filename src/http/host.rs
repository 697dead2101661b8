//! Which configured host a request is for.
//!
//! The request's authority picks the site: `Host`, or the target's own
//! authority when it has one (HTTP/1 absolute-form, HTTP/2 `:authority`),
//! as RFC 9112 §3.2 and RFC 9113 §8.3.1 say. A trusted proxy's
//! `X-Forwarded-Host` overrides it, since the proxy saw the client's.
//! A malformed request (no `Host` in HTTP/1.1, two of them, an invalid
//! one, an HTTP/2 `host` that contradicts `:authority`) is refused (400);
//! unknown names are refused (421) so that no document ever names a host
//! an attacker chose.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use http::header::{HeaderMap, HeaderValue};
use http::{Request, StatusCode, Version};

use crate::settings::{Settings, Site};
use crate::tokens::scope::DEFAULT_SCOPE;

/// Longer `Host` values name no site of ours (DNS names are at most 253).
const MAX_AUTHORITY: usize = 300;

/// A trusted proxy's record of the `Host` the client asked for.
const X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

/// A configured host, as a request resolves to it.
pub(crate) struct Host {
    pub site: Site,
    /// Its position in `[[hosts]]`: endpoints keep per-host documents
    /// in that order.
    pub index: usize,
    /// `WWW-Authenticate` for a request without a token (RFC 6750 §3,
    /// RFC 9728 §5.1).
    pub challenge: HeaderValue,
    /// The challenge's parameters, to add an `error` to.
    pub challenge_params: String,
}

pub(crate) struct Hosts {
    docs: Vec<Host>,
    /// Normalized `host[:port]` → index into `docs`.
    by_authority: HashMap<String, usize>,
    /// Every issuer, for the log line about a host we do not serve.
    issuers: String,
    /// When that line was last written (unix seconds), and how many were
    /// left out since: one line per interval, whatever the rate.
    unknown_logged_at: AtomicU64,
    unknown_since: AtomicU64,
}

/// At most one "unknown host" line per this many seconds.
const UNKNOWN_HOST_LOG_EVERY_SECS: u64 = 10;

impl Hosts {
    pub(crate) fn new(settings: &Settings) -> Hosts {
        let mut docs = Vec::new();
        let mut by_authority = HashMap::new();
        for (i, site) in settings.sites.iter().enumerate() {
            let params = format!(
                "resource_metadata=\"{}\", scope=\"{DEFAULT_SCOPE}\"",
                site.resource_metadata,
            );
            docs.push(Host {
                site: site.clone(),
                index: i,
                challenge: HeaderValue::from_str(&format!("Bearer {params}"))
                    .expect("issuers are valid header text"),
                challenge_params: params,
            });
            // `mcp.example.com` and `mcp.example.com:443` are the same host.
            let a = &site.authority;
            by_authority.insert(a.clone(), i);
            let port_suffix = format!(":{}", site.scheme.default_port());
            match a.strip_suffix(&port_suffix) {
                Some(bare) => by_authority.insert(bare.to_owned(), i),
                None if !a.ends_with(']') && a.contains(':') => None,
                None => by_authority.insert(format!("{a}{port_suffix}"), i),
            };
        }
        let issuers = settings
            .sites
            .iter()
            .map(|s| s.issuer.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Hosts {
            docs,
            by_authority,
            issuers,
            unknown_logged_at: AtomicU64::new(0),
            unknown_since: AtomicU64::new(0),
        }
    }

    pub(crate) fn all(&self) -> &[Host] {
        &self.docs
    }

    /// The site this request is for, or why it cannot be served.
    ///
    /// A malformed request (see [`request_authority`]) is refused before
    /// anything else, whoever sent it; then a trusted proxy's
    /// `X-Forwarded-Host` overrides the request's own authority, since the
    /// proxy's `Host` names the backend, not what the client asked for.
    pub(crate) fn resolve<B>(
        &self,
        settings: &Settings,
        peer: IpAddr,
        req: &Request<B>,
    ) -> Result<&Host, HostError> {
        let authority = request_authority(req)?;
        let forwarded = if settings.identity.is_trusted_proxy(peer) {
            forwarded_host(req.headers())?
        } else {
            None
        };
        let found = match forwarded.or(authority) {
            Some(name) => self.lookup(name),
            None => Err(HostError::NoHost),
        };
        if let Err(e @ (HostError::UnknownHost | HostError::NoHost)) = found {
            self.note_unknown(e, forwarded.or(authority), peer);
        }
        found
    }

    /// Logs a request for a host we do not serve, at most once per
    /// [`UNKNOWN_HOST_LOG_EVERY_SECS`]: a wrong port, a proxy that does
    /// not pass `Host`, or a DNS name that is not in `[[hosts]]` all look
    /// like this, and the operator needs to see which name arrived.
    fn note_unknown(&self, e: HostError, name: Option<&str>, peer: IpAddr) {
        let now = crate::clock::unix_now();
        let last = self.unknown_logged_at.load(Ordering::Relaxed);
        if now < last.saturating_add(UNKNOWN_HOST_LOG_EVERY_SECS)
            || self
                .unknown_logged_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unknown_since.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let left_out = self.unknown_since.swap(0, Ordering::Relaxed);
        // The name is the client's text: bounded, and quoted and escaped
        // by `{:?}` (an empty string: no name at all).
        let host = name.map_or("", |n| crate::http::response::truncate(n, 100));
        tracing::warn!(
            host = ?host,
            peer = %peer,
            issuers = %self.issuers,
            similar_requests_not_logged = left_out,
            reason = e.description(),
            "request for a host this server does not serve (421); set [[hosts]] issuer to the URL clients use, or have the proxy pass Host / X-Forwarded-Host",
        );
    }

    /// The site named `host[:port]` (any case; the scheme's default port
    /// or none). `name` is a checked authority.
    fn lookup(&self, name: &str) -> Result<&Host, HostError> {
        // Lowercased on the stack: this runs on every request.
        let mut lower = [0u8; MAX_AUTHORITY];
        let lower = lower.get_mut(..name.len()).ok_or(HostError::UnknownHost)?;
        lower.copy_from_slice(name.as_bytes());
        lower.make_ascii_lowercase();
        let name = std::str::from_utf8(lower).map_err(|_| HostError::InvalidHost)?;
        self.by_authority
            .get(name)
            .map(|i| &self.docs[*i])
            .ok_or(HostError::UnknownHost)
    }
}

/// Why a request names no site we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // each names the host field that is wrong
pub(crate) enum HostError {
    /// An HTTP/1.1 request without `Host` (RFC 9112 §3.2: 400).
    MissingHost,
    /// More than one `Host` field line (RFC 9112 §3.2: 400): two readers
    /// of the request could pick different ones.
    DuplicateHost,
    /// A `Host`, `:authority`, absolute-form authority or trusted
    /// `X-Forwarded-Host` that is not `host[:port]` (RFC 9112 §3.2: 400).
    InvalidHost,
    /// An HTTP/2 `host` naming another authority than `:authority`
    /// (RFC 9113 §8.3.1: malformed, 400).
    ConflictingHost,
    /// More than one `X-Forwarded-Host` field line from a trusted proxy
    /// (400): which one the proxy wrote is anyone's guess.
    DuplicateForwardedHost,
    /// No authority at all: HTTP/1.0 without `Host`, HTTP/2 without
    /// `:authority` or `host` (421). Well-formed for its version, but no
    /// site is the default.
    NoHost,
    /// A well-formed host that is not one of ours (421).
    UnknownHost,
}

impl HostError {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            HostError::NoHost | HostError::UnknownHost => StatusCode::MISDIRECTED_REQUEST,
            HostError::MissingHost
            | HostError::DuplicateHost
            | HostError::InvalidHost
            | HostError::ConflictingHost
            | HostError::DuplicateForwardedHost => StatusCode::BAD_REQUEST,
        }
    }

    /// The `error_description` of the refusal.
    pub(crate) fn description(self) -> &'static str {
        match self {
            HostError::MissingHost => "an HTTP/1.1 request needs a Host header",
            HostError::DuplicateHost => "the request has more than one Host header",
            HostError::InvalidHost => "the request's host is not a valid host[:port]",
            HostError::ConflictingHost => "the host header differs from :authority",
            HostError::DuplicateForwardedHost => {
                "the request has more than one X-Forwarded-Host header"
            }
            HostError::NoHost => "the request names no host",
            HostError::UnknownHost => "this server does not serve the requested host",
        }
    }
}

/// The authority a request is for, by the rules of its HTTP version, or
/// `None` when it names none (HTTP/1.0 without `Host`, HTTP/2 without
/// `:authority` or `host`).
///
/// hyper puts an HTTP/1 absolute-form target's authority, and an HTTP/2
/// `:authority`, in the URI; an origin-form target has none there.
/// - `Host` must not be repeated or invalid, in any version
///   (RFC 9112 §3.2), and HTTP/1.1 must send one (ibid.).
/// - HTTP/1 absolute-form: the target's authority; `Host` is ignored
///   (RFC 9112 §3.2.2).
/// - HTTP/2: `:authority`; a `host` that names another is malformed
///   (RFC 9113 §8.3.1). Without `:authority`, `host`.
///
/// Header lookups only: this runs on every request.
pub(crate) fn request_authority<B>(req: &Request<B>) -> Result<Option<&str>, HostError> {
    let host = super::single_header(req.headers(), http::header::HOST)
        .map_err(|_| HostError::DuplicateHost)?;
    let host = match host {
        Some(v) => match v.to_str() {
            Ok(h) if is_authority(h.as_bytes()) => Some(h),
            _ => return Err(HostError::InvalidHost),
        },
        None if req.version() == Version::HTTP_11 => return Err(HostError::MissingHost),
        None => None,
    };
    let Some(target) = req.uri().authority() else {
        return Ok(host);
    };
    let target = target.as_str();
    if !is_authority(target.as_bytes()) {
        // userinfo (`user@host`) is not allowed in either (RFC 9110 §4.2.4,
        // RFC 9113 §8.3.1).
        return Err(HostError::InvalidHost);
    }
    if req.version() >= Version::HTTP_2 {
        let scheme = req.uri().scheme_str().unwrap_or("http");
        if host.is_some_and(|h| !same_authority(h, target, scheme)) {
            return Err(HostError::ConflictingHost);
        }
    }
    Ok(Some(target))
}

/// A trusted proxy's `X-Forwarded-Host`: the first of a comma-separated
/// chain (what the client asked for), if any and not empty, checked like
/// `Host`.
fn forwarded_host(headers: &HeaderMap) -> Result<Option<&str>, HostError> {
    let Some(value) = super::single_header(headers, X_FORWARDED_HOST)
        .map_err(|_| HostError::DuplicateForwardedHost)?
    else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| HostError::InvalidHost)?;
    // A chain of proxies appends; the first is what the client asked for.
    match value.split(',').next().map(str::trim) {
        None | Some("") => Ok(None),
        Some(first) if is_authority(first.as_bytes()) => Ok(Some(first)),
        Some(_) => Err(HostError::InvalidHost),
    }
}

/// `host[:port]` as RFC 3986 §3.2.2 writes it, without userinfo: a
/// reg-name or IPv4 address, or an IPv6 literal in brackets, then an
/// optional port of digits. Not empty: an `http(s)` URI has a host
/// (RFC 9110 §4.2.1, §4.2.2).
fn is_authority(a: &[u8]) -> bool {
    // A `:` after the last `]` starts the port.
    let (host, port) = match memchr::memrchr(b':', a) {
        Some(i) if memchr::memchr(b']', &a[i..]).is_none() => (&a[..i], &a[i + 1..]),
        _ => (a, &[][..]),
    };
    if !port.iter().all(u8::is_ascii_digit) {
        return false;
    }
    match host {
        [] => false,
        [b'[', literal @ .., b']'] => {
            !literal.is_empty()
                && literal
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        }
        reg_name => reg_name.iter().all(|&b| REG_NAME[b as usize]),
    }
}

/// The bytes of a reg-name (RFC 3986 §3.2.2: unreserved, pct-encoded,
/// sub-delims), as a table: every request's host is checked against it,
/// one load per byte.
static REG_NAME: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~%!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        t[others[i] as usize] = true;
        i += 1;
    }
    t
};

/// Whether two authorities name the same host and port once normalized by
/// `scheme` (RFC 3986 §6.2.3, as RFC 9113 §8.3.1 asks): any case, and an
/// empty or default port is no port.
fn same_authority(a: &str, b: &str, scheme: &str) -> bool {
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        ":443"
    } else {
        ":80"
    };
    without_port(a, default_port).eq_ignore_ascii_case(without_port(b, default_port))
}

/// `authority` without an empty port or `default_port`.
fn without_port<'a>(authority: &'a str, default_port: &str) -> &'a str {
    authority
        .strip_suffix(':')
        .or_else(|| authority.strip_suffix(default_port))
        .unwrap_or(authority)
}

#[cfg(test)]
mod tests;

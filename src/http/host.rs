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

use http::header::{HeaderMap, HeaderValue};
use http::{Request, StatusCode, Version};

use crate::settings::{Settings, Site, DEFAULT_SCOPE};

/// Longer `Host` values name no site of ours (DNS names are at most 253).
const MAX_AUTHORITY: usize = 300;

/// A trusted proxy's record of the `Host` the client asked for.
const X_FORWARDED_HOST: http::HeaderName = http::HeaderName::from_static("x-forwarded-host");

/// A configured host, as a request resolves to it.
pub struct Host {
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

pub struct Hosts {
    docs: Vec<Host>,
    /// Normalized `host[:port]` → index into `docs`.
    by_authority: HashMap<String, usize>,
}

impl Hosts {
    pub fn new(settings: &Settings) -> Hosts {
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
        Hosts { docs, by_authority }
    }

    pub fn all(&self) -> &[Host] {
        &self.docs
    }

    /// The site this request is for, or why it cannot be served.
    ///
    /// A malformed request (see [`request_authority`]) is refused before
    /// anything else, whoever sent it; then a trusted proxy's
    /// `X-Forwarded-Host` overrides the request's own authority, since the
    /// proxy's `Host` names the backend, not what the client asked for.
    pub fn resolve<B>(
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
        match forwarded.or(authority) {
            Some(name) => self.lookup(name),
            None => Err(HostError::NoHost),
        }
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
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
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
    pub fn status(self) -> StatusCode {
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
    pub fn description(self) -> &'static str {
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
pub fn request_authority<B>(req: &Request<B>) -> Result<Option<&str>, HostError> {
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
/// and a table is a load per byte where the character tests were ~25
/// instructions.
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
mod tests {
    use super::*;
    use crate::config::{Config, HostConfig};

    const PUBLIC: &str = "mcp.example.com";
    const INTERNAL: &str = "mcp.internal.example";
    const PROXY: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const STRANGER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    fn settings() -> Settings {
        let mut c = Config::default();
        for issuer in [
            "https://mcp.example.com",
            "https://mcp.internal.example",
            "http://dev.example:8080",
        ] {
            c.hosts.push(HostConfig {
                issuer: issuer.into(),
                redirect_uris: vec!["loopback".into()],
            });
        }
        c.identity.allowed_domains = vec!["example.com".into()];
        Settings::from_config(&c).unwrap()
    }

    /// A request with this version, target and headers.
    fn req(version: Version, target: &str, headers: &[(&str, &[u8])]) -> Request<()> {
        let mut b = Request::builder().version(version).uri(target);
        for (name, value) in headers {
            b = b.header(*name, HeaderValue::from_bytes(value).unwrap());
        }
        b.body(()).unwrap()
    }

    fn h1(target: &str, headers: &[(&str, &[u8])]) -> Request<()> {
        req(Version::HTTP_11, target, headers)
    }

    fn h2(target: &str, headers: &[(&str, &[u8])]) -> Request<()> {
        req(Version::HTTP_2, target, headers)
    }

    /// The issuer `req` resolves to from `peer`, or the refusal.
    fn issuer(peer: IpAddr, req: &Request<()>) -> Result<String, HostError> {
        let settings = settings();
        let hosts = Hosts::new(&settings);
        hosts
            .resolve(&settings, peer, req)
            .map(|d| d.site.issuer.clone())
    }

    const PUBLIC_ISSUER: &str = "https://mcp.example.com";
    const INTERNAL_ISSUER: &str = "https://mcp.internal.example";

    #[test]
    fn one_host_header_picks_the_site() {
        let r = h1("/mcp", &[("host", PUBLIC.as_bytes())]);
        assert_eq!(request_authority(&r), Ok(Some(PUBLIC)));
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(PUBLIC_ISSUER));
        let r = h1("/mcp", &[("host", INTERNAL.as_bytes())]);
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(INTERNAL_ISSUER));
    }

    #[test]
    fn host_names_are_case_insensitive_and_default_ports_optional() {
        for (host, want) in [
            ("MCP.Example.COM", PUBLIC_ISSUER),
            ("mcp.example.com:443", PUBLIC_ISSUER),
            ("Mcp.Internal.Example:443", INTERNAL_ISSUER),
            ("dev.example:8080", "http://dev.example:8080"),
        ] {
            let r = h1("/", &[("host", host.as_bytes())]);
            assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(want), "{host}");
        }
        for host in [
            "mcp.example.com:80",
            "mcp.example.com:8443",
            "dev.example",
            "evil.example",
        ] {
            let r = h1("/", &[("host", host.as_bytes())]);
            assert_eq!(issuer(STRANGER, &r), Err(HostError::UnknownHost), "{host}");
        }
    }

    #[test]
    fn two_host_headers_are_refused_in_either_order() {
        for pair in [
            [INTERNAL, "evil.example"],
            ["evil.example", INTERNAL],
            [PUBLIC, PUBLIC],
        ] {
            let r = h1(
                "/",
                &[("host", pair[0].as_bytes()), ("host", pair[1].as_bytes())],
            );
            assert_eq!(
                request_authority(&r),
                Err(HostError::DuplicateHost),
                "{pair:?}"
            );
            assert_eq!(issuer(PROXY, &r), Err(HostError::DuplicateHost), "{pair:?}");
            // Also over HTTP/2, and with an absolute-form target.
            let r = h2(
                &format!("http://{}/", pair[0]),
                &[("host", pair[0].as_bytes()), ("host", pair[1].as_bytes())],
            );
            assert_eq!(
                request_authority(&r),
                Err(HostError::DuplicateHost),
                "{pair:?}"
            );
            let r = h1(
                &format!("http://{PUBLIC}/"),
                &[("host", pair[0].as_bytes()), ("host", pair[1].as_bytes())],
            );
            assert_eq!(
                request_authority(&r),
                Err(HostError::DuplicateHost),
                "{pair:?}"
            );
        }
        assert_eq!(HostError::DuplicateHost.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn http_1_1_without_host_is_a_bad_request_and_http_1_0_names_no_host() {
        let r = h1("/", &[]);
        assert_eq!(request_authority(&r), Err(HostError::MissingHost));
        assert_eq!(HostError::MissingHost.status(), StatusCode::BAD_REQUEST);
        // Even when a trusted proxy says which host: the request is malformed.
        let r = h1("/", &[("x-forwarded-host", PUBLIC.as_bytes())]);
        assert_eq!(issuer(PROXY, &r), Err(HostError::MissingHost));

        let r = req(Version::HTTP_10, "/", &[]);
        assert_eq!(request_authority(&r), Ok(None));
        assert_eq!(issuer(STRANGER, &r), Err(HostError::NoHost));
        assert_eq!(HostError::NoHost.status(), StatusCode::MISDIRECTED_REQUEST);
        // An HTTP/1.0 request with a Host is served by it.
        let r = req(Version::HTTP_10, "/", &[("host", PUBLIC.as_bytes())]);
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // A trusted proxy's forwarded host is an authority.
        let r = req(
            Version::HTTP_10,
            "/",
            &[("x-forwarded-host", PUBLIC.as_bytes())],
        );
        assert_eq!(issuer(PROXY, &r).as_deref(), Ok(PUBLIC_ISSUER));
    }

    #[test]
    fn an_absolute_form_target_names_the_host_and_host_is_ignored() {
        for (target, host, want) in [
            (PUBLIC, INTERNAL, PUBLIC_ISSUER),
            (INTERNAL, PUBLIC, INTERNAL_ISSUER),
            (INTERNAL, "evil.example", INTERNAL_ISSUER),
        ] {
            let r = h1(
                &format!("http://{target}/.well-known/oauth-authorization-server"),
                &[("host", host.as_bytes())],
            );
            assert_eq!(request_authority(&r), Ok(Some(target)), "{target}");
            assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(want), "{target}");
        }
        let r = h1("http://evil.example/", &[("host", PUBLIC.as_bytes())]);
        assert_eq!(issuer(STRANGER, &r), Err(HostError::UnknownHost));
        let r = h1(
            "https://MCP.example.com:443/",
            &[("host", INTERNAL.as_bytes())],
        );
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // HTTP/1.1 must still send a Host, and a valid one (RFC 9112 §3.2).
        let r = h1(&format!("http://{PUBLIC}/"), &[]);
        assert_eq!(request_authority(&r), Err(HostError::MissingHost));
        let r = h1(&format!("http://{PUBLIC}/"), &[("host", b"a b")]);
        assert_eq!(request_authority(&r), Err(HostError::InvalidHost));
        // userinfo names no host of ours, and is not allowed.
        let r = h1(
            &format!("http://user@{PUBLIC}/"),
            &[("host", PUBLIC.as_bytes())],
        );
        assert_eq!(request_authority(&r), Err(HostError::InvalidHost));
    }

    #[test]
    fn http2_authority_wins_and_a_conflicting_host_is_malformed() {
        let target = format!("http://{PUBLIC}/mcp");
        let r = h2(&target, &[]);
        assert_eq!(request_authority(&r), Ok(Some(PUBLIC)));
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // The same authority, normalized (RFC 9113 §8.3.1): no conflict.
        for host in [
            PUBLIC,
            "MCP.EXAMPLE.COM",
            "mcp.example.com:",
            "mcp.example.com:80",
        ] {
            let r = h2(&target, &[("host", host.as_bytes())]);
            assert_eq!(request_authority(&r), Ok(Some(PUBLIC)), "{host}");
        }
        let r = h2(
            "https://mcp.example.com:443/mcp",
            &[("host", PUBLIC.as_bytes())],
        );
        assert_eq!(request_authority(&r), Ok(Some("mcp.example.com:443")));
        // Another host, or another port, in either direction.
        for (authority, host) in [
            (PUBLIC, INTERNAL),
            (INTERNAL, PUBLIC),
            (INTERNAL, "evil.example"),
            ("evil.example", PUBLIC),
            (PUBLIC, "mcp.example.com:443"),
            (PUBLIC, "mcp.example.com:8080"),
        ] {
            let r = h2(
                &format!("http://{authority}/"),
                &[("host", host.as_bytes())],
            );
            assert_eq!(
                request_authority(&r),
                Err(HostError::ConflictingHost),
                "{authority} vs {host}"
            );
            assert_eq!(issuer(PROXY, &r), Err(HostError::ConflictingHost));
        }
        assert_eq!(HostError::ConflictingHost.status(), StatusCode::BAD_REQUEST);
        // Without :authority, host names it; without either, nothing does.
        let r = h2("/mcp", &[("host", INTERNAL.as_bytes())]);
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(INTERNAL_ISSUER));
        let r = h2("/mcp", &[]);
        assert_eq!(issuer(STRANGER, &r), Err(HostError::NoHost));
        // An unknown :authority is misdirected.
        let r = h2("http://evil.example/", &[]);
        assert_eq!(issuer(STRANGER, &r), Err(HostError::UnknownHost));
    }

    #[test]
    fn invalid_hosts_are_bad_requests() {
        for host in [
            &b""[..],
            b" ",
            b"mcp.example.com evil.example",
            b"mcp.example.com, evil.example",
            b"user@mcp.example.com",
            b"mcp.example.com/x",
            b"mcp.example.com:https",
            b"mcp.example.com:44:3",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"mcp.example.com\xff",
        ] {
            let r = h1("/", &[("host", host)]);
            assert_eq!(
                request_authority(&r),
                Err(HostError::InvalidHost),
                "{host:?}"
            );
        }
        for good in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:8080",
            "a-b_c~d.example:",
        ] {
            let r = h1("/", &[("host", good.as_bytes())]);
            assert_eq!(request_authority(&r), Ok(Some(good)), "{good}");
        }
    }

    #[test]
    fn a_trusted_proxys_forwarded_host_wins_once() {
        let r = h1(
            "/",
            &[
                ("host", PUBLIC.as_bytes()),
                ("x-forwarded-host", INTERNAL.as_bytes()),
            ],
        );
        assert_eq!(issuer(PROXY, &r).as_deref(), Ok(INTERNAL_ISSUER));
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // A chain: the first is the client's.
        let r = h1(
            "/",
            &[
                ("host", PUBLIC.as_bytes()),
                ("x-forwarded-host", b"Mcp.Internal.Example, evil.example"),
            ],
        );
        assert_eq!(issuer(PROXY, &r).as_deref(), Ok(INTERNAL_ISSUER));
        // Empty: the request's own host.
        let r = h1(
            "/",
            &[("host", PUBLIC.as_bytes()), ("x-forwarded-host", b"")],
        );
        assert_eq!(issuer(PROXY, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // Over HTTP/2 too (the proxy's :authority names the backend).
        let r = h2(
            "http://10.0.0.5:8080/",
            &[("x-forwarded-host", PUBLIC.as_bytes())],
        );
        assert_eq!(issuer(PROXY, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // Two field lines: refused from the proxy, ignored from anyone else.
        let r = h1(
            "/",
            &[
                ("host", PUBLIC.as_bytes()),
                ("x-forwarded-host", INTERNAL.as_bytes()),
                ("x-forwarded-host", b"evil.example"),
            ],
        );
        assert_eq!(issuer(PROXY, &r), Err(HostError::DuplicateForwardedHost));
        assert_eq!(issuer(STRANGER, &r).as_deref(), Ok(PUBLIC_ISSUER));
        // Forwarded garbage or an unknown host is refused, not ignored.
        let r = h1(
            "/",
            &[("host", PUBLIC.as_bytes()), ("x-forwarded-host", b"a b")],
        );
        assert_eq!(issuer(PROXY, &r), Err(HostError::InvalidHost));
        let r = h1(
            "/",
            &[
                ("host", PUBLIC.as_bytes()),
                ("x-forwarded-host", b"evil.example"),
            ],
        );
        assert_eq!(issuer(PROXY, &r), Err(HostError::UnknownHost));
    }

    #[test]
    fn over_long_hosts_are_unknown() {
        let long = format!("{}.example", "a".repeat(MAX_AUTHORITY));
        let r = h1("/", &[("host", long.as_bytes())]);
        assert_eq!(issuer(STRANGER, &r), Err(HostError::UnknownHost));
    }
}

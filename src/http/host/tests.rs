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
            client_id_hosts: None,
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

//! Refusals by host: unknown hosts are misdirected (421) on every
//! endpoint, a missing, invalid or repeated Host (or X-Forwarded-Host) is
//! a bad request, and over HTTP/1.1 absolute-form and HTTP/2 `:authority`
//! name the host. What every refusal asserts: tests/common/refusal.rs.

mod common;

use common::refusal::*;
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_hosts_are_misdirected_and_untrusted_forwarded_hosts_ignored() {
    let s = Server::start("");
    let (client_id, code) = client_and_code(&s).await;
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let at = access_token(&tokens).to_owned();
    for host in [
        "evil.example",
        "mcp.example.com.evil.example",
        "mcp.example.com:8443",
        "127.0.0.1",
    ] {
        let mut rows: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/jwks.json",
        ] {
            rows.push((format!("GET {path}"), s.get(host, path)));
        }
        rows.push((
            "register".into(),
            s.post(host, "/oauth/register")
                .json(&json!({"redirect_uris":[LOOPBACK_CB]})),
        ));
        rows.push((
            "authorize".into(),
            authorize_req(
                &s,
                host,
                &pkce_request(&client_id, LOOPBACK_CB),
                Some(ALICE),
            ),
        ));
        rows.push((
            "token".into(),
            token_req(&s, host, &redeem_form(&client_id, &code, LOOPBACK_CB)),
        ));
        rows.push((
            "mcp".into(),
            s.post(host, "/mcp")
                .bearer_auth(&at)
                .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})),
        ));
        for (case, req) in rows {
            send(req)
                .await
                .json_error(&format!("{case} on {host}"), 421, "invalid_request");
        }
    }

    // X-Forwarded-Host counts only from a trusted proxy.
    let untrusted = client_from("127.0.0.3".parse().unwrap());
    let metadata = |c: &reqwest::Client, host: &str, forwarded: &str| {
        c.get(s.url("/.well-known/oauth-authorization-server"))
            .header("host", host)
            .header("x-forwarded-host", forwarded)
            .header("x-forwarded-proto", "https")
    };
    let a = send(metadata(&untrusted, "evil.example", PUBLIC)).await;
    a.json_error(
        "unknown Host, forwarded host from an untrusted peer",
        421,
        "invalid_request",
    );
    let a = send(metadata(&untrusted, PUBLIC, "evil.example")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json["issuer"],
        format!("https://{PUBLIC}"),
        "an untrusted X-Forwarded-Host is ignored"
    );
    let a = send(metadata(&untrusted, PUBLIC, INTERNAL)).await;
    assert_eq!(a.json["issuer"], format!("https://{PUBLIC}"));
    // Control: from the trusted proxy it picks the host.
    let a = send(metadata(&s.http, PUBLIC, INTERNAL)).await;
    assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
    let a = send(metadata(&s.http, PUBLIC, "evil.example")).await;
    a.json_error(
        "trusted proxy forwarding an unknown host",
        421,
        "invalid_request",
    );

    // The code refused on the unknown hosts was not burned.
    redeem_ok(&s, INTERNAL, &redeem_form(&client_id, &code, LOOPBACK_CB)).await;
    assert_still_healthy(&s).await;
}

/// A raw HTTP request for the metadata document: `request_line`, then
/// `headers` (each a whole line), then `Connection: close`.
async fn raw_metadata(s: &Server, request_line: &str, headers: &[&str]) -> Answer {
    let mut head = format!("{request_line}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    raw_http(s.addr, head.as_bytes(), b"").await
}

const METADATA_H11: &str = "GET /.well-known/oauth-authorization-server HTTP/1.1";

#[tokio::test]
async fn two_host_headers_are_a_bad_request() {
    let s = Server::start("");
    // RFC 9112 §3.2: more than one Host field line is answered 400, not
    // served as whichever came first.
    for (first, second) in [
        (INTERNAL, "evil.example"),
        ("evil.example", INTERNAL),
        (PUBLIC, INTERNAL),
        (PUBLIC, PUBLIC),
    ] {
        let case = format!("Host: {first} then Host: {second}");
        let a = raw_metadata(
            &s,
            METADATA_H11,
            &[&format!("Host: {first}"), &format!("Host: {second}")],
        )
        .await;
        a.json_error(&case, 400, "invalid_request");
        assert!(a.json.get("issuer").is_none(), "{case}");
        // The same for a token request and /mcp.
        let a = raw_http(
            s.addr,
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
            b"",
        )
        .await;
        a.json_error(&format!("token, {case}"), 400, "invalid_request");
        let a = raw_http(
            s.addr,
            format!(
                "POST /mcp HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
            b"",
        )
        .await;
        a.json_error(&format!("mcp, {case}"), 400, "invalid_request");
    }
    // Even from the trusted proxy with an X-Forwarded-Host.
    let a = raw_metadata(
        &s,
        METADATA_H11,
        &[
            &format!("Host: {INTERNAL}"),
            "Host: evil.example",
            &format!("X-Forwarded-Host: {PUBLIC}"),
        ],
    )
    .await;
    a.json_error("two Hosts and X-Forwarded-Host", 400, "invalid_request");
    // Control: one Host is served.
    for host in [INTERNAL, PUBLIC, "MCP.Example.Com:443"] {
        let a = raw_metadata(&s, METADATA_H11, &[&format!("Host: {host}")]).await;
        assert_eq!(a.status, 200, "{host}: {}", a.text);
        let want = format!(
            "https://{}",
            host.to_ascii_lowercase().trim_end_matches(":443")
        );
        assert_eq!(a.json["issuer"], want);
    }
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn a_missing_or_invalid_host_is_a_bad_request_and_http_1_0_without_host_is_misdirected() {
    let s = Server::start("");
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400.
    let a = raw_metadata(&s, METADATA_H11, &[]).await;
    a.json_error("HTTP/1.1 without Host", 400, "invalid_request");
    // A trusted proxy's X-Forwarded-Host does not mend it.
    let a = raw_metadata(&s, METADATA_H11, &[&format!("X-Forwarded-Host: {PUBLIC}")]).await;
    a.json_error("HTTP/1.1 without Host, forwarded", 400, "invalid_request");
    // Invalid values: 400 too (an empty one included: an http URI has a host).
    for host in [
        "",
        "mcp.example.com evil.example",
        "user@mcp.example.com",
        "mcp.example.com:https",
    ] {
        let a = raw_metadata(&s, METADATA_H11, &[&format!("Host: {host}")]).await;
        a.json_error(&format!("Host: {host:?}"), 400, "invalid_request");
    }
    // HTTP/1.0 does not require Host, so the request is well-formed, but it
    // names no host and no site is the default: 421, as for an unknown one.
    let a = raw_metadata(
        &s,
        "GET /.well-known/oauth-authorization-server HTTP/1.0",
        &[],
    )
    .await;
    a.json_error("HTTP/1.0 without Host", 421, "invalid_request");
    assert_eq!(a.json["error_description"], "the request names no host");
    // Control: HTTP/1.0 with a Host is served.
    let a = raw_metadata(
        &s,
        "GET /.well-known/oauth-authorization-server HTTP/1.0",
        &[&format!("Host: {INTERNAL}")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
    // Health checks need no host.
    let a = raw_metadata(&s, "GET /healthz HTTP/1.0", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn an_absolute_form_target_names_the_host_and_host_is_ignored() {
    let s = Server::start("");
    // RFC 9112 §3.2.2: the target's authority, not Host, names the host.
    for (target, host) in [
        (PUBLIC, INTERNAL),
        (INTERNAL, PUBLIC),
        (INTERNAL, "evil.example"),
        (PUBLIC, PUBLIC),
    ] {
        let a = raw_metadata(
            &s,
            &format!("GET http://{target}/.well-known/oauth-authorization-server HTTP/1.1"),
            &[&format!("Host: {host}")],
        )
        .await;
        assert_eq!(a.status, 200, "{target} with Host {host}: {}", a.text);
        assert_eq!(
            a.json["issuer"],
            format!("https://{target}"),
            "Host: {host}"
        );
    }
    // An unknown target with a good Host is misdirected, in both directions.
    for host in [PUBLIC, INTERNAL] {
        let a = raw_metadata(
            &s,
            "GET http://evil.example/.well-known/oauth-authorization-server HTTP/1.1",
            &[&format!("Host: {host}")],
        )
        .await;
        a.json_error(&format!("evil target, Host {host}"), 421, "invalid_request");
    }
    // Host is still required, once (RFC 9112 §3.2).
    let absolute = format!("GET http://{PUBLIC}/.well-known/oauth-authorization-server HTTP/1.1");
    let a = raw_metadata(&s, &absolute, &[]).await;
    a.json_error("absolute-form without Host", 400, "invalid_request");
    let a = raw_metadata(
        &s,
        &absolute,
        &[&format!("Host: {PUBLIC}"), &format!("Host: {PUBLIC}")],
    )
    .await;
    a.json_error("absolute-form, two Hosts", 400, "invalid_request");
}

/// An h2c (prior knowledge) client that reaches the server under each of
/// `names`, so that `:authority` is that name.
fn h2c_client(s: &Server, names: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy();
    for name in names {
        b = b.resolve(name, s.addr);
    }
    b.build().unwrap()
}

#[tokio::test]
async fn http2_authority_names_the_host_and_a_conflicting_host_header_is_malformed() {
    let s = Server::start("");
    let h2 = h2c_client(&s, &[PUBLIC, INTERNAL, "evil.example"]);
    let metadata = |authority: &str| {
        h2.get(format!(
            "http://{authority}/.well-known/oauth-authorization-server"
        ))
    };
    // :authority only.
    for authority in [PUBLIC, INTERNAL] {
        let r = metadata(authority).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200, "{authority}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["issuer"], format!("https://{authority}"));
    }
    // A host header naming the same authority is fine.
    for host in ["MCP.EXAMPLE.COM", "mcp.example.com:80"] {
        let a = send(metadata(PUBLIC).header("host", host)).await;
        assert_eq!(a.status, 200, "host {host}: {}", a.text);
        assert_eq!(a.json["issuer"], format!("https://{PUBLIC}"));
    }
    // RFC 9113 §8.3.1: a host that differs from :authority is malformed.
    for (authority, host) in [
        (PUBLIC, INTERNAL),
        (INTERNAL, PUBLIC),
        (INTERNAL, "evil.example"),
        ("evil.example", PUBLIC),
    ] {
        let a = send(metadata(authority).header("host", host)).await;
        a.json_error(
            &format!(":authority {authority}, host {host}"),
            400,
            "invalid_request",
        );
        assert!(a.json.get("issuer").is_none());
    }
    // Two host headers, also over HTTP/2.
    let a = send(
        metadata(PUBLIC)
            .header("host", PUBLIC)
            .header("host", INTERNAL),
    )
    .await;
    a.json_error("h2, two host headers", 400, "invalid_request");
    // An unknown :authority is misdirected.
    let a = send(metadata("evil.example")).await;
    a.json_error(":authority evil.example", 421, "invalid_request");
    // A trusted proxy's X-Forwarded-Host still wins over :authority.
    let a = send(metadata(PUBLIC).header("x-forwarded-host", INTERNAL)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
}

#[tokio::test]
async fn a_duplicated_forwarded_host_from_the_trusted_proxy_is_a_bad_request() {
    let s = Server::start("");
    let metadata = |c: &reqwest::Client| {
        c.get(s.url("/.well-known/oauth-authorization-server"))
            .header("host", PUBLIC)
            .header("x-forwarded-host", INTERNAL)
            .header("x-forwarded-host", "evil.example")
    };
    let a = send(metadata(&s.http)).await;
    a.json_error(
        "two X-Forwarded-Host from the proxy",
        400,
        "invalid_request",
    );
    assert_eq!(
        a.json["error_description"],
        "the request has more than one X-Forwarded-Host header"
    );
    // From an untrusted peer both are ignored, as one would be.
    let untrusted = client_from("127.0.0.3".parse().unwrap());
    let a = send(metadata(&untrusted)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["issuer"], format!("https://{PUBLIC}"));
    // Control: one, from the proxy, picks the host (a chain: the first).
    for forwarded in [INTERNAL, "mcp.internal.example, mcp.example.com"] {
        let a = send(
            s.get(PUBLIC, "/.well-known/oauth-authorization-server")
                .header("x-forwarded-host", forwarded),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
    }
}

#[tokio::test]
async fn a_request_for_an_unknown_host_is_logged_once_with_the_name_and_the_issuers() {
    let s = Server::start("");
    // The wrong-port mistake: the issuers name no port, the client does.
    for _ in 0..5 {
        let a = send(s.get("mcp.internal.example:8082", "/.well-known/jwks.json")).await;
        assert_eq!(a.status, 421, "{}", a.text);
    }
    let log = s
        .log_containing("request for a host this server does not serve")
        .await;
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("request for a host this server does not serve"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line per interval, not per request: {log}"
    );
    assert!(
        lines[0].contains("mcp.internal.example:8082"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].contains("https://mcp.internal.example, https://mcp.example.com"),
        "the configured issuers: {}",
        lines[0]
    );
}

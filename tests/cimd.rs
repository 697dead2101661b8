//! Client ID Metadata Documents against the real binary over real HTTP:
//! documents served by a local https server (a test CA; loopback allowed
//! only through `cimd.insecure_test_only_*`), complete flows on both hosts
//! and across two replicas, the trust policy, the operator's documents
//! directory, and a hostile corpus: each refused with `invalid_client`
//! (or `temporarily_unavailable` for the rate limit), nothing minted, and
//! no fetch where none should happen.

mod common;
#[path = "cimd/docserver.rs"]
mod docserver;

use std::path::Path;
use std::time::Duration;

use common::*;
use docserver::{DocServer, Route};
use serde_json::{json, Value};

const CLAUDE_CODE_PATH: &str = "/oauth/claude-code-client-metadata";
const CLAUDE_PATH: &str = "/oauth/mcp-oauth-client-metadata";
/// Claude Code's document lists a portless loopback callback and listens
/// on a random port (RFC 8252 §7.3).
const LOOPBACK_CB: &str = "http://localhost:54321/callback";

/// The two hosts; the public one accepts client ids from 127.0.0.1 and
/// chatgpt.com only. `extra` goes into `[cimd]`.
fn cimd_config(keys: &Path, docs: &DocServer, extra: &str) -> String {
    format!(
        r#"listen = "127.0.0.1:0"

[[hosts]]
issuer = "https://{INTERNAL}"
redirect_uris = ["loopback"]

[[hosts]]
issuer = "https://{PUBLIC}"
redirect_uris = ["{CLAUDE_CALLBACK}", "prefix:https://chatgpt.com/connector/oauth/"]
client_id_hosts = ["127.0.0.1", "chatgpt.com"]

[identity]
source = "proxy"
allowed_domains = ["example.com"]
consent = "never"

[keys]
dir = "{keys}"

[cimd]
insecure_test_only_allow_loopback = true
insecure_test_only_ca_file = "{ca}"
fetch_timeout = "1s"
fetches_per_host_per_minute = 20
{extra}
"#,
        keys = keys.display(),
        ca = docs.ca_file.display(),
    )
}

fn claude_code_document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Claude Code",
        "client_uri": "https://claude.ai",
        "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none"
    })
}

fn claude_document(client_id: &str) -> Value {
    json!({
        "client_id": client_id,
        "client_name": "Claude",
        "redirect_uris": [CLAUDE_CALLBACK, "https://claude.com/api/mcp/auth_callback"],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none"
    })
}

/// authorize as oauth2-proxy forwards it: (status, Location or body JSON).
async fn authorize(
    s: &Server,
    host: &str,
    client_id: &str,
    redirect_uri: &str,
    email: Option<&str>,
) -> Answer {
    let c = challenge(VERIFIER);
    let mut req = s.get(host, "/oauth/authorize").query(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", &c),
        ("code_challenge_method", "S256"),
        ("scope", "mcp offline_access"),
        ("state", "s-1"),
        ("resource", &format!("https://{host}/mcp")),
    ]);
    if let Some(e) = email {
        req = req.header("x-forwarded-email", e);
    }
    send(req).await
}

/// A whole flow: authorize, token, `/mcp`; returns the token response.
async fn flow(s: &Server, token_server: &Server, host: &str, client_id: &str, cb: &str) -> Value {
    let a = authorize(s, host, client_id, cb, Some(ALICE)).await;
    assert_eq!(a.status, 302, "{}", a.text);
    let loc = a.header("location").unwrap();
    assert!(loc.starts_with(cb), "{loc}");
    let code = query_param(loc, "code").expect("a code");
    let tokens = token_server.exchange(host, client_id, &code, cb).await;
    let at = access_token(&tokens);
    assert_eq!(jwt_payload(at)["client_id"], client_id);
    let (status, who) = token_server.whoami(host, at).await;
    assert_eq!(status, 200, "{who}");
    tokens
}

/// The refusal every hostile case must get: a JSON `invalid_client` (the
/// client and redirect URI are not known good, so never a redirect), and
/// nothing minted.
fn refused(a: &Answer, case: &str, error: &str) {
    assert_eq!(
        a.json["error"].as_str(),
        Some(error),
        "{case}: {} {}",
        a.status,
        a.text
    );
    assert!(a.header("location").is_none(), "{case}: redirected");
    a.nothing_minted(case);
}

#[tokio::test]
async fn metadata_advertises_documents_unless_disabled() {
    let docs = DocServer::start().await;
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));
    for host in [INTERNAL, PUBLIC] {
        let m = s
            .get_json(host, "/.well-known/oauth-authorization-server")
            .await;
        assert_eq!(m["client_id_metadata_document_supported"], true, "{m}");
    }
    let off = Server::start_custom(|k| cimd_config(k, &docs, "enabled = false"));
    let m = off
        .get_json(INTERNAL, "/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(m["client_id_metadata_document_supported"], false);
    let a = authorize(
        &off,
        INTERNAL,
        &docs.url(CLAUDE_CODE_PATH),
        LOOPBACK_CB,
        Some(ALICE),
    )
    .await;
    refused(&a, "documents disabled", "invalid_client");
    assert_eq!(docs.total_hits(), 0);
}

#[tokio::test]
async fn a_claude_code_document_signs_in_on_the_internal_host_with_any_loopback_port() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_CODE_PATH);
    docs.set(CLAUDE_CODE_PATH, Route::json(&claude_code_document(&id)));
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));

    // Not signed in: refused, and nothing fetched.
    let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, None).await;
    assert_eq!(a.status, 401, "{}", a.text);
    assert_eq!(docs.hits(CLAUDE_CODE_PATH), 0, "fetched before sign-in");

    let tokens = flow(&s, &s, INTERNAL, &id, LOOPBACK_CB).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    assert!(tokens["scope"].as_str().unwrap().contains("offline_access"));
    // Another port, same document: cached, not fetched again.
    flow(&s, &s, INTERNAL, &id, "http://localhost:61000/callback").await;
    assert_eq!(docs.hits(CLAUDE_CODE_PATH), 1);

    // The refresh token works for the URL client.
    let (status, _, body) = s
        .token(
            INTERNAL,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
                ("client_id", &id),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A redirect URI the document does not list is refused.
    let a = authorize(&s, INTERNAL, &id, "http://localhost:5/other", Some(ALICE)).await;
    refused(&a, "unlisted redirect_uri", "invalid_request");
    // A code for this client is not redeemable by another URL client.
    s.log_containing("client metadata document fetched").await;
}

#[tokio::test]
async fn a_claude_document_signs_in_on_the_public_host_and_the_host_policy_still_decides() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_PATH);
    docs.set(CLAUDE_PATH, Route::json(&claude_document(&id)));
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));
    flow(&s, &s, PUBLIC, &id, CLAUDE_CALLBACK).await;

    // The internal host allows loopback callbacks only: the document's
    // https callback is refused there.
    let a = authorize(&s, INTERNAL, &id, CLAUDE_CALLBACK, Some(ALICE)).await;
    refused(&a, "callback outside the host policy", "invalid_client");

    // The public host's allowlist of client_id hosts: localhost is not
    // on it, and nothing is fetched for it.
    let by_name = docs.url_by_name(CLAUDE_PATH);
    let before = docs.total_hits();
    let a = authorize(&s, PUBLIC, &by_name, CLAUDE_CALLBACK, Some(ALICE)).await;
    refused(&a, "client_id host not on the allowlist", "invalid_client");
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", &by_name),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    assert_eq!(docs.total_hits(), before, "fetched for a refused host");
}

#[tokio::test]
async fn two_replicas_finish_each_others_flows() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_CODE_PATH);
    docs.set(CLAUDE_CODE_PATH, Route::json(&claude_code_document(&id)));
    let a = Server::start_custom(|k| cimd_config(k, &docs, ""));
    let b = Server::start_on_keys(&a.keys_dir(), |k| cimd_config(k, &docs, ""));
    flow(&a, &b, INTERNAL, &id, LOOPBACK_CB).await;
    flow(&b, &a, INTERNAL, &id, LOOPBACK_CB).await;
    let cid = docs.url(CLAUDE_PATH);
    docs.set(CLAUDE_PATH, Route::json(&claude_document(&cid)));
    flow(&a, &b, PUBLIC, &cid, CLAUDE_CALLBACK).await;
    // Each replica fetched each document once, for itself.
    assert_eq!(docs.hits(CLAUDE_CODE_PATH), 2);
    assert_eq!(docs.hits(CLAUDE_PATH), 2);
}

#[tokio::test]
async fn operator_documents_are_used_without_fetching() {
    let docs = DocServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A vendor whose document refuses datacenter fetchers: never fetched
    // (chatgpt.com is not reachable from here at all).
    let id = "https://chatgpt.com/oauth/mcp-client-metadata.json";
    let cb = "https://chatgpt.com/connector/oauth/abc123";
    std::fs::write(
        dir.path().join("chatgpt.json"),
        serde_json::to_vec(&json!({
            "client_id": id,
            "client_name": "ChatGPT",
            "redirect_uris": [cb],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "none"
        }))
        .unwrap(),
    )
    .unwrap();
    let extra = format!("documents_dir = \"{}\"", dir.path().display());
    let s = Server::start_custom(|k| cimd_config(k, &docs, &extra));
    flow(&s, &s, PUBLIC, id, cb).await;

    // A bad file stops the start, naming it.
    std::fs::write(dir.path().join("bad.json"), br#"{"client_id":"https://x.example/c","client_secret":"s","redirect_uris":["https://x.example/cb"]}"#).unwrap();
    let keys = tempfile::tempdir().unwrap();
    generate_keys(keys.path());
    let cfg = keys.path().join("mcpgate.toml");
    std::fs::write(&cfg, cimd_config(keys.path(), &docs, &extra)).unwrap();
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["serve", "--config"]).arg(&cfg);
    let r = common::Listening::spawn(cmd, &["mcpgate listening on "]);
    assert!(r.is_err(), "started with a document holding a secret");
}

#[tokio::test]
async fn the_consent_page_names_the_client_id_host_and_warns_when_the_answer_goes_to_loopback() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_CODE_PATH);
    docs.set(CLAUDE_CODE_PATH, Route::json(&claude_code_document(&id)));
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "").replace("consent = \"never\"", "consent = \"dynamic-clients\"")
    });
    let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.text
            .contains("<strong class=\"origin\">127.0.0.1</strong>"),
        "{}",
        a.text
    );
    assert!(a.text.contains("calls itself “Claude Code”"), "{}", a.text);
    assert!(a.text.contains("class=\"warning\""), "{}", a.text);

    let cid = docs.url(CLAUDE_PATH);
    docs.set(CLAUDE_PATH, Route::json(&claude_document(&cid)));
    let a = authorize(&s, PUBLIC, &cid, CLAUDE_CALLBACK, Some(ALICE)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("calls itself “Claude”"), "{}", a.text);
    assert!(!a.text.contains("class=\"warning\""), "{}", a.text);

    // The warning follows this request's redirect_uri: a document that
    // also lists an https callback does not silence it for a loopback one.
    let mixed = docs.url("/mixed");
    let mut d = claude_code_document(&mixed);
    d["redirect_uris"] = json!([CLAUDE_CALLBACK, "http://localhost/callback"]);
    // Its self-asserted name is escaped and stripped of direction
    // overrides; the host stays first.
    d["client_name"] = json!("<script>alert(1)</script>\u{202E}lanretni & \"Co\"");
    docs.set("/mixed", Route::json(&d));
    let a = authorize(&s, INTERNAL, &mixed, LOOPBACK_CB, Some(ALICE)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("class=\"warning\""), "{}", a.text);
    assert!(!a.text.contains("<script"), "{}", a.text);
    assert!(!a.text.contains('\u{202E}'), "{}", a.text);
    assert!(
        a.text.contains(
            "An app from <strong class=\"origin\">127.0.0.1</strong> that calls itself “&lt;script&gt;"
        ),
        "{}",
        a.text
    );
}

/// Every hostile document or target, on one server.
#[tokio::test]
async fn hostile_documents_and_targets_are_refused() {
    let docs = DocServer::start().await;
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "").replace(
            "fetches_per_host_per_minute = 20",
            "fetches_per_host_per_minute = 100",
        )
    });
    let ok_doc = |id: &str| claude_code_document(id);

    // URLs refused for their form alone: no fetch.
    for (case, id) in [
        ("http", format!("http://127.0.0.1:{}/doc", docs.addr.port())),
        ("no path", docs.url("")),
        ("root path", docs.url("/")),
        ("fragment", docs.url("/doc#x")),
        (
            "userinfo",
            format!("https://u:p@127.0.0.1:{}/doc", docs.addr.port()),
        ),
        ("dot segment", docs.url("/a/../doc")),
        ("encoded dot segment", docs.url("/a/%2e%2e/doc")),
        (
            "not canonical",
            format!("https://127.0.0.1:{}/a b", docs.addr.port()),
        ),
    ] {
        let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
        refused(&a, case, "invalid_client");
    }
    assert_eq!(docs.total_hits(), 0);

    // Special-use addresses, as literals: refused before any connection.
    for (case, id) in [
        ("private", "https://10.0.0.1/doc"),
        ("private 192.168", "https://192.168.1.10/doc"),
        (
            "link-local metadata",
            "https://169.254.169.254/latest/meta-data",
        ),
        ("cgnat", "https://100.64.0.1/doc"),
        ("unspecified", "https://0.0.0.0/doc"),
        ("ipv4-mapped loopback", "https://[::ffff:7f00:1]/doc"),
        ("ipv4-mapped metadata", "https://[::ffff:a9fe:a9fe]/doc"),
        ("ula", "https://[fd00::1]/doc"),
        ("ipv6 link-local", "https://[fe80::1]/doc"),
        ("documentation", "https://192.0.2.1/doc"),
        ("multicast", "https://224.0.0.1/doc"),
    ] {
        let a = authorize(&s, INTERNAL, id, LOOPBACK_CB, Some(ALICE)).await;
        refused(&a, case, "invalid_client");
        assert!(a.text.contains("special-use"), "{case}: {}", a.text);
    }

    // Documents that break a rule: each fetched once, refused, not cached.
    let big = {
        let mut d = ok_doc(&docs.url("/big"));
        d["padding"] = json!("x".repeat(6 * 1024));
        serde_json::to_vec(&d).unwrap()
    };
    docs.set("/big", Route::raw(200, "application/json", big));
    docs.set("/redirect", Route::redirect(&docs.url("/target")));
    docs.set("/target", Route::json(&ok_doc(&docs.url("/target"))));
    let mut slow = Route::json(&ok_doc(&docs.url("/slow")));
    slow.delay = Duration::from_secs(3);
    docs.set("/slow", slow);
    docs.set(
        "/html",
        Route::raw(200, "text/html", b"<html>hello</html>".to_vec()),
    );
    docs.set(
        "/array",
        Route::raw(200, "application/json", b"[]".to_vec()),
    );
    docs.set("/mismatch", Route::json(&ok_doc(&docs.url("/other"))));
    let mut secret = ok_doc(&docs.url("/secret"));
    secret["client_secret"] = json!("hunter2");
    docs.set("/secret", Route::json(&secret));
    let mut secret_method = ok_doc(&docs.url("/secret-method"));
    secret_method["token_endpoint_auth_method"] = json!("client_secret_basic");
    docs.set("/secret-method", Route::json(&secret_method));
    let mut no_redirects = ok_doc(&docs.url("/no-redirects"));
    no_redirects
        .as_object_mut()
        .unwrap()
        .remove("redirect_uris");
    docs.set("/no-redirects", Route::json(&no_redirects));
    docs.set(
        "/error",
        Route::raw(500, "application/json", b"{}".to_vec()),
    );
    let mut plain_http = ok_doc(&docs.url("/plain-http-callback"));
    plain_http["redirect_uris"] = json!(["http://evil.example/callback"]);
    docs.set("/plain-http-callback", Route::json(&plain_http));
    for (case, path, why) in [
        ("6 KB document", "/big", "larger than"),
        ("redirect", "/redirect", "redirect"),
        ("slow document", "/slow", "no complete response"),
        ("not JSON", "/html", "not a JSON object"),
        ("JSON, not an object", "/array", "not a JSON object"),
        ("client_id mismatch", "/mismatch", "client_id"),
        ("client_secret", "/secret", "client_secret"),
        (
            "client_secret_basic",
            "/secret-method",
            "client_secret_basic",
        ),
        ("no redirect_uris", "/no-redirects", "redirect_uris"),
        ("HTTP 500", "/error", "500"),
        ("404", "/missing", "404"),
        ("http callback", "/plain-http-callback", "redirect_uris[0]"),
    ] {
        let id = docs.url(path);
        for round in 0..2 {
            let a = authorize(
                &s,
                INTERNAL,
                &id,
                "http://localhost:5/callback",
                Some(ALICE),
            )
            .await;
            refused(&a, case, "invalid_client");
            assert!(a.text.contains(why), "{case}: {}", a.text);
            // Never cached: the second request fetches again.
            assert_eq!(docs.hits(path), round + 1, "{case}");
        }
    }
    assert_eq!(docs.hits("/target"), 0, "a redirect was followed");

    // The same at the token endpoint, with a code of this client: a
    // second replica, which never saw the good document, must fetch it.
    let later = docs.url("/secret-later");
    docs.set("/secret-later", Route::json(&ok_doc(&later)));
    let a = authorize(&s, INTERNAL, &later, LOOPBACK_CB, Some(ALICE)).await;
    let code = query_param(a.header("location").unwrap(), "code").unwrap();
    let mut bad = ok_doc(&later);
    bad["client_secret"] = json!("hunter2");
    docs.set("/secret-later", Route::json(&bad));
    let other = Server::start_on_keys(&s.keys_dir(), |k| cimd_config(k, &docs, ""));
    let (status, _, body) = other
        .token(
            INTERNAL,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", &later),
                ("redirect_uri", LOOPBACK_CB),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{body}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client_secret"),
        "{body}"
    );

    // A fixed document is taken at once (the error was not cached).
    docs.set("/secret", Route::json(&ok_doc(&docs.url("/secret"))));
    flow(
        &s,
        &s,
        INTERNAL,
        &docs.url("/secret"),
        "http://localhost:5/callback",
    )
    .await;
}

/// A corpus beyond the one above: spellings of hosts and paths that
/// another parser reads differently, every special-use block of RFC 6890
/// as a literal, every 3xx, compressed and chunked bodies, a document that
/// never ends, and keys that are not public. Each refused, nothing minted,
/// and no fetch where the form alone decides.
#[tokio::test]
async fn the_held_out_ssrf_and_abuse_corpus_is_refused() {
    let docs = DocServer::start().await;
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "").replace(
            "fetches_per_host_per_minute = 20",
            "fetches_per_host_per_minute = 100",
        )
    });
    let port = docs.addr.port();

    // Refused for their form alone: no fetch.
    let long = docs.url(&format!("/{}", "a".repeat(600)));
    for (case, id) in [
        ("tomcat dot segment", docs.url("/a/..;/doc")),
        ("encoded slash", docs.url("/a%2f..%2fdoc")),
        ("encoded uppercase slash", docs.url("/a%2F..%2Fdoc")),
        ("encoded backslash", docs.url("/a%5c..%5cdoc")),
        ("mixed-case encoded dots", docs.url("/a/%2E./doc")),
        ("backslash", docs.url("/a\\..\\doc")),
        (
            "trailing-dot name",
            format!("https://localhost.:{port}/doc"),
        ),
        ("uppercase scheme", format!("HTTPS://127.0.0.1:{port}/doc")),
        ("uppercase host", format!("https://LOCALHOST:{port}/doc")),
        ("hex host", format!("https://0x7f.1:{port}/doc")),
        ("decimal host", format!("https://2130706433:{port}/doc")),
        ("octal host", format!("https://0177.0.0.1:{port}/doc")),
        ("short host", format!("https://127.1:{port}/doc")),
        (
            "mapped loopback, dotted",
            format!("https://[::ffff:127.0.0.1]:{port}/doc"),
        ),
        (
            "long IPv6 loopback",
            format!("https://[0:0:0:0:0:0:0:1]:{port}/doc"),
        ),
        (
            "idna, not punycode",
            format!("https://bücher.localhost:{port}/doc"),
        ),
        ("encoded host", format!("https://127.0.0%2e1:{port}/doc")),
        (
            "userinfo by backslash",
            format!("https://127.0.0.1:{port}\\@evil.example/doc"),
        ),
        ("very long", long),
    ] {
        let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
        refused(&a, case, "invalid_client");
    }
    assert_eq!(docs.total_hits(), 0);

    // RFC 6890 and the IANA special-purpose registries, block by block.
    for id in [
        "https://0.1.2.3/doc",
        "https://100.127.255.254/doc",
        "https://192.0.0.9/doc",
        "https://192.0.2.7/doc",
        "https://198.19.255.1/doc",
        "https://198.51.100.1/doc",
        "https://203.0.113.1/doc",
        "https://240.0.0.1/doc",
        "https://255.255.255.255/doc",
        "https://172.16.0.1/doc",
        "https://[::]/doc",
        "https://[::ffff:a00:1]/doc",
        "https://[64:ff9b::7f00:1]/doc",
        "https://[100::1]/doc",
        "https://[2001::1]/doc",
        "https://[2001:db8::1]/doc",
        "https://[fc00::1]/doc",
        "https://[fe80::1]/doc",
        "https://[ff02::1]/doc",
    ] {
        let a = authorize(&s, INTERNAL, id, LOOPBACK_CB, Some(ALICE)).await;
        refused(&a, id, "invalid_client");
        assert!(a.text.contains("special-use"), "{id}: {}", a.text);
    }

    // Every 3xx: never followed.
    docs.set(
        "/target",
        Route::json(&claude_code_document(&docs.url("/target"))),
    );
    for code in [300, 301, 302, 303, 304, 305, 307, 308] {
        let path = format!("/redirect-{code}");
        let mut r = Route::redirect(&docs.url("/target"));
        r.status = code;
        docs.set(&path, r);
        let a = authorize(&s, INTERNAL, &docs.url(&path), LOOPBACK_CB, Some(ALICE)).await;
        refused(&a, &path, "invalid_client");
        assert!(a.text.contains("redirect"), "{code}: {}", a.text);
    }
    assert_eq!(docs.hits("/target"), 0, "a redirect was followed");

    // Bodies: gzip is not decoded (nothing asked for it), a chunked body
    // is cut at the cap whatever it declares, a body that never ends
    // meets the deadline.
    let gzip: Vec<u8> = vec![
        31, 139, 8, 0, 0, 0, 0, 0, 2, 3, 171, 86, 74, 206, 201, 76, 205, 43, 137, 207, 76, 81, 178,
        82, 170, 80, 170, 5, 0, 1, 91, 46, 220, 17, 0, 0, 0,
    ];
    let mut gz = Route::raw(200, "application/json", gzip);
    gz.headers.push(("content-encoding".into(), "gzip".into()));
    docs.set("/gzip", gz);
    docs.set(
        "/chunked-big",
        Route::chunked(&[b' '; 1024], 64, Duration::ZERO),
    );
    docs.set(
        "/never-ends",
        Route::chunked(b" ", usize::MAX, Duration::from_millis(50)),
    );
    let mut private_jwks = claude_code_document(&docs.url("/private-jwks"));
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    private_jwks["token_endpoint_auth_method"] = json!("private_key_jwt");
    private_jwks["jwks"] = json!({"keys": [
        serde_json::to_value(pair.to_jwk_private_key().as_ref()).unwrap()
    ]});
    docs.set("/private-jwks", Route::json(&private_jwks));
    let mut hmac_jwks = claude_code_document(&docs.url("/hmac-jwks"));
    hmac_jwks["token_endpoint_auth_method"] = json!("private_key_jwt");
    hmac_jwks["jwks"] = json!({"keys": [{"kty": "oct", "k": "c2hhcmVkIHNlY3JldA"}]});
    docs.set("/hmac-jwks", Route::json(&hmac_jwks));
    // A callback longer than a code can carry: the client could sign in
    // but never redeem its code.
    let long_cb = format!("http://localhost/{}", "c".repeat(1000));
    let mut long_callback = claude_code_document(&docs.url("/long-callback"));
    long_callback["redirect_uris"] = json!([long_cb]);
    docs.set("/long-callback", Route::json(&long_callback));
    for (case, path, why) in [
        ("gzip body", "/gzip", "not a JSON object"),
        ("chunked, over the cap", "/chunked-big", "larger than"),
        (
            "a document that never ends",
            "/never-ends",
            "no complete response",
        ),
        ("a private key in jwks", "/private-jwks", "public keys only"),
        ("a symmetric key in jwks", "/hmac-jwks", "public keys only"),
        (
            "a callback too long for a code",
            "/long-callback",
            "too long",
        ),
    ] {
        let cb = if path == "/long-callback" {
            format!("http://localhost:5/{}", "c".repeat(1000))
        } else {
            LOOPBACK_CB.to_owned()
        };
        let a = authorize(&s, INTERNAL, &docs.url(path), &cb, Some(ALICE)).await;
        refused(&a, case, "invalid_client");
        assert!(a.text.contains(why), "{case}: {}", a.text);
    }

    // Loopback any-port (RFC 8252 §7.3) is the same host name, never
    // another loopback spelling: `localhost` is not `127.0.0.1`.
    let only_localhost = docs.url("/only-localhost");
    let mut d = claude_code_document(&only_localhost);
    d["redirect_uris"] = json!(["http://localhost/callback"]);
    docs.set("/only-localhost", Route::json(&d));
    for cb in [
        "http://127.0.0.1:5/callback",
        "http://[::1]:5/callback",
        "http://localhost.:5/callback",
        "http://LOCALHOST:5/callback",
        "http://localhost:5/callback/",
        "http://localhost:5/callback/../callback",
        "http://localhost:5/Callback",
        "http://localhost:5/callback?x=1",
        "https://localhost:5/callback",
    ] {
        let a = authorize(&s, INTERNAL, &only_localhost, cb, Some(ALICE)).await;
        refused(&a, cb, "invalid_request");
        assert!(a.text.contains("redirect_uri"), "{cb}: {}", a.text);
    }
    flow(
        &s,
        &s,
        INTERNAL,
        &only_localhost,
        "http://localhost:61234/callback",
    )
    .await;
}

#[tokio::test]
async fn the_token_endpoint_fetches_nothing_without_a_grant_of_that_client() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_CODE_PATH);
    docs.set(CLAUDE_CODE_PATH, Route::json(&claude_code_document(&id)));
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));
    // A code of a dynamically registered client, presented for the URL.
    let registered = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let foreign = s.code_for(INTERNAL, &registered, LOOPBACK_CB).await;
    let private = "https://10.0.0.1/client".to_owned();
    for (case, client_id, grant_type, field, value) in [
        ("no code", &id, "authorization_code", "code", ""),
        (
            "a forged code",
            &id,
            "authorization_code",
            "code",
            "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..a.b.c",
        ),
        (
            "another client's code",
            &id,
            "authorization_code",
            "code",
            foreign.as_str(),
        ),
        (
            "a forged refresh token",
            &id,
            "refresh_token",
            "refresh_token",
            "nope",
        ),
        (
            "a private address",
            &private,
            "authorization_code",
            "code",
            "x",
        ),
    ] {
        let mut form = vec![
            ("grant_type", grant_type),
            ("client_id", client_id.as_str()),
        ];
        if !value.is_empty() {
            form.push((field, value));
        }
        let a = send(s.post(INTERNAL, "/oauth/token").form(&form)).await;
        refused(&a, case, "invalid_client");
    }
    assert_eq!(
        docs.total_hits(),
        0,
        "the token endpoint fetched for a stranger"
    );
}

#[tokio::test]
async fn a_name_resolving_to_a_special_use_address_is_refused_without_the_test_setting() {
    let docs = DocServer::start().await;
    let id = docs.url_by_name(CLAUDE_CODE_PATH);
    docs.set(CLAUDE_CODE_PATH, Route::json(&claude_code_document(&id)));
    // The test CA is still trusted: only the address decides.
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "").replace(
            "insecure_test_only_allow_loopback = true",
            "insecure_test_only_allow_loopback = false",
        )
    });
    let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
    refused(&a, "localhost", "invalid_client");
    assert!(a.text.contains("special-use"), "{}", a.text);
    assert_eq!(docs.total_hits(), 0, "connected to a loopback address");
}

#[tokio::test]
async fn a_certificate_no_trusted_root_signed_is_refused() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_CODE_PATH);
    docs.set(CLAUDE_CODE_PATH, Route::json(&claude_code_document(&id)));
    // Loopback allowed, but the test CA not trusted: only the public roots.
    let s = Server::start_custom(|k| {
        let c = cimd_config(k, &docs, "");
        let ca_line = format!(
            "insecure_test_only_ca_file = \"{}\"\n",
            docs.ca_file.display()
        );
        c.replace(&ca_line, "")
    });
    let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
    refused(&a, "untrusted certificate", "invalid_client");
    assert!(a.text.contains("TLS"), "{}", a.text);
    assert_eq!(
        docs.hits(CLAUDE_CODE_PATH),
        0,
        "a request went over unverified TLS"
    );
}

#[tokio::test]
async fn a_flood_of_distinct_urls_is_held_by_the_per_host_limit() {
    let docs = DocServer::start().await;
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "cache_entries = 4").replace(
            "fetches_per_host_per_minute = 20",
            "fetches_per_host_per_minute = 5",
        )
    });
    let mut limited = 0;
    for i in 0..30 {
        let path = format!("/flood/{i}");
        let id = docs.url(&path);
        docs.set(&path, Route::json(&claude_code_document(&id)));
        let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
        if a.status == 302 {
            continue;
        }
        refused(&a, "flood", "temporarily_unavailable");
        limited += 1;
    }
    assert_eq!(docs.total_hits(), 5, "the limit did not hold");
    assert_eq!(limited, 25);
}

/// A valid document is kept at least a few minutes whatever its
/// `Cache-Control` says (no-store, private, max-age=0, nonsense), so a
/// client cannot make this server fetch on every request; a `client_id`
/// that differs from the URL by a trailing slash or case is refused and
/// not kept.
#[tokio::test]
async fn documents_are_kept_minutes_whatever_cache_control_says() {
    let docs = DocServer::start().await;
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));
    for (i, cc) in [
        "no-store",
        "private, max-age=600",
        "max-age=0",
        "no-cache, must-revalidate",
        "max-age=-1",
        "max-age=\"abc\"",
    ]
    .into_iter()
    .enumerate()
    {
        let path = format!("/cc/{i}");
        let id = docs.url(&path);
        let mut r = Route::json(&claude_code_document(&id));
        r.headers.push(("cache-control".into(), cc.into()));
        docs.set(&path, r);
        for _ in 0..3 {
            let a = authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE)).await;
            assert_eq!(a.status, 302, "{cc}: {}", a.text);
        }
        assert_eq!(docs.hits(&path), 1, "{cc}: fetched again");
    }
    for (case, path, claimed) in [
        ("trailing slash", "/mis/slash", docs.url("/mis/slash/")),
        ("case", "/mis/case", docs.url("/mis/CASE")),
        ("by name", "/mis/name", docs.url_by_name("/mis/name")),
    ] {
        docs.set(path, Route::json(&claude_code_document(&claimed)));
        for round in 0..2 {
            let a = authorize(&s, INTERNAL, &docs.url(path), LOOPBACK_CB, Some(ALICE)).await;
            refused(&a, case, "invalid_client");
            assert!(a.text.contains("client_id"), "{case}: {}", a.text);
            assert_eq!(docs.hits(path), round + 1, "{case}: a refusal was kept");
        }
    }
}

/// `cimd.max_concurrent_fetches`: with every slot taken by a document
/// that does not answer, other fetches are refused at once with
/// `temporarily_unavailable`, fetch nothing, and do not use up their
/// host's window.
#[tokio::test]
async fn fetches_beyond_the_cap_in_flight_are_refused_without_using_the_host_window() {
    let docs = DocServer::start().await;
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "max_concurrent_fetches = 1")
            .replace("fetch_timeout = \"1s\"", "fetch_timeout = \"30s\"")
            .replace(
                "fetches_per_host_per_minute = 20",
                "fetches_per_host_per_minute = 3",
            )
    });
    let held = docs.url("/held");
    let mut r = Route::json(&claude_code_document(&held));
    r.delay = Duration::from_secs(120);
    docs.set("/held", r);
    let other = docs.url("/other");
    docs.set("/other", Route::json(&claude_code_document(&other)));

    let hold = authorize(&s, INTERNAL, &held, LOOPBACK_CB, Some(ALICE));
    let probe = async {
        // The held fetch has reached the document server: its slot is
        // taken until this test drops it.
        while docs.hits("/held") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for round in 0..5 {
            let a = authorize(&s, INTERNAL, &other, LOOPBACK_CB, Some(ALICE)).await;
            refused(&a, "busy", "temporarily_unavailable");
            assert!(a.text.contains("in flight"), "{round}: {}", a.text);
        }
    };
    tokio::select! {
        a = hold => panic!("the held fetch ended: {} {}", a.status, a.text),
        () = probe => {}
    }
    assert_eq!(docs.hits("/other"), 0);
}

// ---- private_key_jwt (RFC 7523) ----

struct ClientKey {
    signer: Box<dyn josekit::jws::JwsSigner>,
    public: Value,
}

fn client_key(kid: &str) -> ClientKey {
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    let mut private = pair.to_jwk_private_key();
    private.set_key_id(kid);
    let mut public = pair.to_jwk_public_key();
    public.set_key_id(kid);
    ClientKey {
        signer: Box::new(josekit::jws::ES256.signer_from_jwk(&private).unwrap()),
        public: serde_json::to_value(public.as_ref()).unwrap(),
    }
}

/// A client assertion by `key` for `client_id`, with `claims` changed.
fn assertion(key: &ClientKey, client_id: &str, aud: &str, change: impl Fn(&mut Value)) -> String {
    let now = unix_now();
    let mut claims = json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 300, "jti": format!("jti-{}", random_jti()),
    });
    change(&mut claims);
    let payload = josekit::jwt::JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    josekit::jwt::encode_with_signer(&payload, &header, key.signer.as_ref()).unwrap()
}

/// The claims of a good assertion, for the forged ones below.
fn good_claims(client_id: &str, aud: &str) -> josekit::jwt::JwtPayload {
    let now = unix_now();
    let claims = json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 300, "jti": format!("jti-{}", random_jti()),
    });
    josekit::jwt::JwtPayload::from_map(claims.as_object().unwrap().clone()).unwrap()
}

/// `alg: none`, no signature (RFC 7515 §A.5 shape).
fn unsigned(client_id: &str, aud: &str) -> String {
    use base64::Engine as _;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let payload = good_claims(client_id, aud).to_string();
    format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(payload.as_bytes())
    )
}

/// HS256 with the client's public key as the HMAC secret: the algorithm
/// confusion that works where a verifier lets the header pick the alg.
fn hmac_with_public_key(key: &ClientKey, client_id: &str, aud: &str) -> String {
    let secret = serde_json::to_vec(&key.public).unwrap();
    let signer = josekit::jws::HS256.signer_from_bytes(&secret).unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("JWT");
    header.set_key_id(key.public["kid"].as_str().unwrap());
    josekit::jwt::encode_with_signer(&good_claims(client_id, aud), &header, &signer).unwrap()
}

fn random_jti() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test]
async fn a_chatgpt_like_document_authenticates_with_private_key_jwt() {
    let docs = DocServer::start().await;
    let key = client_key("k1");
    let other = client_key("k1");
    let inline = docs.url("/chatgpt-inline");
    let by_uri = docs.url("/chatgpt-jwks-uri");
    let cb = "https://chatgpt.com/connector/oauth/c0nn3ct0r";
    let doc = |id: &str| {
        json!({
            "client_id": id,
            "client_name": "ChatGPT",
            "redirect_uris": [cb],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
        })
    };
    let mut d = doc(&inline);
    d["jwks"] = json!({"keys": [key.public]});
    docs.set("/chatgpt-inline", Route::json(&d));
    let mut d = doc(&by_uri);
    d["jwks_uri"] = json!(docs.url("/jwks.json"));
    docs.set("/chatgpt-jwks-uri", Route::json(&d));
    docs.set("/jwks.json", Route::json(&json!({"keys": [key.public]})));
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));
    let m = s
        .get_json(PUBLIC, "/.well-known/oauth-authorization-server")
        .await;
    assert!(m["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v == "private_key_jwt"));
    let token_endpoint = format!("https://{PUBLIC}/oauth/token");

    for id in [&inline, &by_uri] {
        let code_for = || async {
            let a = authorize(&s, PUBLIC, id, cb, Some(ALICE)).await;
            assert_eq!(a.status, 302, "{}", a.text);
            query_param(a.header("location").unwrap(), "code").unwrap()
        };
        let redeem = |code: String, assertion: Option<String>| {
            let s = &s;
            async move {
                let mut form = vec![
                    ("grant_type".to_owned(), "authorization_code".to_owned()),
                    ("code".to_owned(), code),
                    ("redirect_uri".to_owned(), cb.to_owned()),
                    ("code_verifier".to_owned(), VERIFIER.to_owned()),
                ];
                match assertion {
                    Some(a) => {
                        form.push(("client_assertion_type".into(), ASSERTION_TYPE.into()));
                        form.push(("client_assertion".into(), a));
                    }
                    None => form.push(("client_id".into(), id.to_string())),
                }
                send(s.post(PUBLIC, "/oauth/token").form(&form)).await
            }
        };
        // Refusals first: none of them burns the code.
        let code = code_for().await;
        let expired = assertion(&key, id, &token_endpoint, |c| {
            c["exp"] = json!(unix_now() - 120)
        });
        let too_long = assertion(&key, id, &token_endpoint, |c| {
            c["exp"] = json!(unix_now() + 7200)
        });
        let reused = assertion(&key, id, &token_endpoint, |_| {});
        for (case, a) in [
            ("no assertion", None),
            (
                "another key",
                Some(assertion(&other, id, &token_endpoint, |_| {})),
            ),
            (
                "another audience",
                Some(assertion(
                    &key,
                    id,
                    "https://elsewhere.example/token",
                    |_| {},
                )),
            ),
            (
                "another issuer",
                Some(assertion(&key, id, &token_endpoint, |c| {
                    c["iss"] = json!("https://evil.example/c")
                })),
            ),
            ("expired", Some(expired)),
            ("an hour too long", Some(too_long)),
            (
                "exp at the end of time",
                Some(assertion(&key, id, &token_endpoint, |c| {
                    c["exp"] = json!(u64::MAX)
                })),
            ),
            (
                "nbf in the future",
                Some(assertion(&key, id, &token_endpoint, |c| {
                    c["nbf"] = json!(unix_now() + 600)
                })),
            ),
            (
                "audience in a list of others",
                Some(assertion(&key, id, &token_endpoint, |c| {
                    c["aud"] = json!([
                        "https://elsewhere.example",
                        "https://elsewhere.example/token"
                    ])
                })),
            ),
            ("alg none", Some(unsigned(id, &token_endpoint))),
            (
                "HS256 keyed with the public key",
                Some(hmac_with_public_key(&key, id, &token_endpoint)),
            ),
            (
                "no jti",
                Some(assertion(&key, id, &token_endpoint, |c| {
                    c.as_object_mut().unwrap().remove("jti");
                })),
            ),
        ] {
            let a = redeem(code.clone(), a).await;
            refused(&a, case, "invalid_client");
        }
        // The issuer as audience is accepted too.
        let a = redeem(
            code,
            Some(assertion(&key, id, &format!("https://{PUBLIC}"), |_| {})),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(
            jwt_payload(a.json["access_token"].as_str().unwrap())["client_id"],
            id.as_str()
        );

        // Single use of a jti on this replica.
        let a = redeem(code_for().await, Some(reused.clone())).await;
        assert_eq!(a.status, 200, "{}", a.text);
        let a = redeem(code_for().await, Some(reused)).await;
        refused(&a, "a jti used twice", "invalid_client");
        assert!(a.text.contains("already used"), "{}", a.text);
    }

    // A jwks_uri that serves a private key: a published secret, refused
    // even for an assertion that key signed.
    let pair = josekit::jws::ES256.generate_key_pair().unwrap();
    let mut private = pair.to_jwk_private_key();
    private.set_key_id("leaked");
    let leaked = ClientKey {
        signer: Box::new(josekit::jws::ES256.signer_from_jwk(&private).unwrap()),
        public: Value::Null,
    };
    let leaky = docs.url("/chatgpt-leaky");
    let mut d = doc(&leaky);
    d["jwks_uri"] = json!(docs.url("/leaky-jwks.json"));
    docs.set("/chatgpt-leaky", Route::json(&d));
    docs.set(
        "/leaky-jwks.json",
        Route::json(&json!({"keys": [serde_json::to_value(private.as_ref()).unwrap()]})),
    );
    let a = authorize(&s, PUBLIC, &leaky, cb, Some(ALICE)).await;
    assert_eq!(a.status, 302, "{}", a.text);
    let code = query_param(a.header("location").unwrap(), "code").unwrap();
    let a = send(s.post(PUBLIC, "/oauth/token").form(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", cb),
        ("code_verifier", VERIFIER),
        ("client_assertion_type", ASSERTION_TYPE),
        (
            "client_assertion",
            &assertion(&leaked, &leaky, &token_endpoint, |_| {}),
        ),
    ]))
    .await;
    refused(&a, "a private key at jwks_uri", "invalid_client");
    assert!(a.text.contains("public keys only"), "{}", a.text);
}

/// The consent form's hidden fields (names and values are plain here).
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let unescape = |s: &str| {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
    };
    let mut out = Vec::new();
    let mut rest = html;
    let open = "<input type=\"hidden\" name=\"";
    while let Some(i) = rest.find(open) {
        rest = &rest[i + open.len()..];
        let (name, after) = rest.split_once("\" value=\"").unwrap();
        let (value, after) = after.split_once("\">").unwrap();
        out.push((unescape(name), unescape(value)));
        rest = after;
    }
    out
}

#[tokio::test]
async fn a_remembered_allow_is_keyed_on_the_client_id_url() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_PATH);
    docs.set(CLAUDE_PATH, Route::json(&claude_document(&id)));
    // Another URL on the same host, with the same callback and name.
    let twin = docs.url("/oauth/twin");
    docs.set("/oauth/twin", Route::json(&claude_document(&twin)));
    let s = Server::start_custom(|k| {
        cimd_config(k, &docs, "").replace("consent = \"never\"", "consent = \"dynamic-clients\"")
    });
    let page = authorize(&s, PUBLIC, &id, CLAUDE_CALLBACK, Some(ALICE)).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let mut form = hidden_fields(&page.text);
    form.push(("consent".into(), "allow".into()));
    let allowed = send(
        s.post(PUBLIC, "/oauth/authorize")
            .header("x-forwarded-email", ALICE)
            .form(&form),
    )
    .await;
    assert_eq!(allowed.status, 303, "{}", allowed.text);
    assert!(query_param(allowed.header("location").unwrap(), "code").is_some());
    let cookie = allowed
        .header("set-cookie")
        .expect("the Allow is remembered (https callback)")
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let again = |client_id: String| {
        let s = &s;
        let cookie = cookie.clone();
        async move {
            let c = challenge(VERIFIER);
            send(
                s.get(PUBLIC, "/oauth/authorize")
                    .query(&[
                        ("response_type", "code"),
                        ("client_id", client_id.as_str()),
                        ("redirect_uri", CLAUDE_CALLBACK),
                        ("code_challenge", &c),
                        ("code_challenge_method", "S256"),
                    ])
                    .header("x-forwarded-email", ALICE)
                    .header("cookie", cookie),
            )
            .await
        }
    };
    // The same URL: no page, a code.
    let a = again(id.clone()).await;
    assert_eq!(a.status, 302, "{}", a.text);
    assert!(query_param(a.header("location").unwrap(), "code").is_some());
    // Another URL, even on the same host with the same name: asked.
    let a = again(twin).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.header("location").is_none());
}

#[tokio::test]
async fn concurrent_requests_for_one_url_cause_one_fetch() {
    let docs = DocServer::start().await;
    let id = docs.url(CLAUDE_CODE_PATH);
    let mut slowish = Route::json(&claude_code_document(&id));
    // Long enough that the four requests below overlap the fetch.
    slowish.delay = Duration::from_millis(300);
    docs.set(CLAUDE_CODE_PATH, slowish);
    let s = Server::start_custom(|k| cimd_config(k, &docs, ""));
    let one = || authorize(&s, INTERNAL, &id, LOOPBACK_CB, Some(ALICE));
    let (a, b, c, d) = tokio::join!(one(), one(), one(), one());
    for r in [a, b, c, d] {
        assert_eq!(r.status, 302, "{}", r.text);
    }
    assert_eq!(docs.hits(CLAUDE_CODE_PATH), 1);
}

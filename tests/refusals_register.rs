//! Refusals at `/oauth/register`: redirect URIs that may not be
//! registered, bodies that are not client metadata, and redirect URIs too
//! long for a code. What every refusal asserts: tests/common/refusal.rs.

mod common;

use common::refusal::*;
use common::*;
use serde_json::json;

// ---------------------------------------------------------------------------
// /oauth/register
// ---------------------------------------------------------------------------

#[tokio::test]
async fn registration_refuses_disallowed_redirect_uris_and_bad_bodies() {
    let s = Server::start("");
    let rows: &[(&str, &str, &[&str])] = &[
        ("no redirect_uris", INTERNAL, &[]),
        (
            "cloud callback on the loopback-only host",
            INTERNAL,
            &[CLAUDE_CALLBACK],
        ),
        ("loopback on the cloud-only host", PUBLIC, &[LOOPBACK_CB]),
        (
            "unlisted https callback",
            PUBLIC,
            &["https://evil.example/cb"],
        ),
        ("javascript: (internal)", INTERNAL, &["javascript:alert(1)"]),
        ("javascript: (public)", PUBLIC, &["javascript:alert(1)"]),
        (
            "data: (internal)",
            INTERNAL,
            &["data:text/html,<script>alert(1)</script>"],
        ),
        (
            "data: (public)",
            PUBLIC,
            &["data:text/html,<script>alert(1)</script>"],
        ),
        (
            "fragment",
            PUBLIC,
            &["https://claude.ai/api/mcp/auth_callback#x"],
        ),
        (
            "userinfo",
            PUBLIC,
            &["https://claude.ai@evil.example/api/mcp/auth_callback"],
        ),
        (
            "non-loopback http (internal)",
            INTERNAL,
            &["http://evil.example/cb"],
        ),
        (
            "non-loopback http (public)",
            PUBLIC,
            &["http://evil.example/cb"],
        ),
        (
            "loopback look-alike host",
            INTERNAL,
            &["http://localhost.evil.example/cb"],
        ),
        (
            "loopback with a fragment",
            INTERNAL,
            &["http://127.0.0.1:9/cb#x"],
        ),
        ("relative URI", INTERNAL, &["/cb"]),
        (
            "prefix entry itself, nothing after it",
            PUBLIC,
            &["https://chatgpt.com/connector/oauth/"],
        ),
        (
            "prefix entry escaped with ..",
            PUBLIC,
            &["https://chatgpt.com/connector/oauth/../evil"],
        ),
        (
            "only disallowed ones, several",
            INTERNAL,
            &[
                "https://evil.example/cb",
                "javascript:alert(1)",
                "http://evil.example/cb",
            ],
        ),
    ];
    for (case, host, uris) in rows {
        let a = send(s.post(host, "/oauth/register").json(&json!({
            "redirect_uris": uris,
            "client_name": "attacker",
            "token_endpoint_auth_method": "none",
        })))
        .await;
        a.json_error(case, 400, "invalid_redirect_uri");
    }

    // A mixed set keeps only the allowed ones (RFC 7591 §3.2.1), and the
    // dropped ones are not usable at authorize.
    let (status, body) = s
        .register(
            INTERNAL,
            json!({"redirect_uris": ["https://evil.example/cb", LOOPBACK_CB, "javascript:alert(1)", "http://evil.example/cb"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["redirect_uris"], json!([LOOPBACK_CB]));
    let client_id = body["client_id"].as_str().unwrap();
    let a = send(authorize_req(
        &s,
        INTERNAL,
        &pkce_request(client_id, "https://evil.example/cb"),
        Some(ALICE),
    ))
    .await;
    a.json_error("a dropped URI at authorize", 400, "invalid_request");
    s.code_for(INTERNAL, client_id, LOOPBACK_CB).await;

    // Bodies.
    let big = json!({"redirect_uris": [LOOPBACK_CB], "client_name": "x".repeat(17 * 1024)});
    let a = send(s.post(INTERNAL, "/oauth/register").json(&big)).await;
    a.json_error("body over 16 KiB", 413, "invalid_request");
    for (case, body) in [
        ("invalid JSON", "{\"redirect_uris\": ["),
        ("not an object", "[\"http://127.0.0.1:9/cb\"]"),
        (
            "redirect_uris not an array",
            "{\"redirect_uris\": \"http://127.0.0.1:9/cb\"}",
        ),
        ("empty body", ""),
        // RFC 7591 §3.1: a JSON object, never an array read by position.
        (
            "an array that lines up with the metadata",
            "[[\"http://127.0.0.1:9/cb\"]]",
        ),
        (
            "an array with grant_types in place",
            "[[\"http://127.0.0.1:9/cb\"], null, [\"authorization_code\", \"refresh_token\"]]",
        ),
        ("null", "null"),
        ("a string", "\"http://127.0.0.1:9/cb\""),
    ] {
        let a = send(
            s.post(INTERNAL, "/oauth/register")
                .header("content-type", "application/json")
                .body(body),
        )
        .await;
        a.json_error(case, 400, "invalid_client_metadata");
        assert!(
            a.json["error_description"]
                .as_str()
                .is_some_and(|d| d.contains("must be a JSON object")),
            "{case}: {}",
            a.text
        );
    }
    let too_many: Vec<String> = (0..11)
        .map(|p| format!("http://127.0.0.1:{p}/cb"))
        .collect();
    let a = send(
        s.post(INTERNAL, "/oauth/register")
            .json(&json!({ "redirect_uris": too_many })),
    )
    .await;
    a.json_error("more than 10 redirect_uris", 400, "invalid_redirect_uri");

    // Metadata a public, code-only client cannot have.
    for (case, extra) in [
        (
            "client_credentials grant",
            json!({"grant_types": ["client_credentials"]}),
        ),
        (
            "implicit grant next to the code grant",
            json!({"grant_types": ["authorization_code", "implicit"]}),
        ),
        ("token response type", json!({"response_types": ["token"]})),
        (
            "code id_token response type",
            json!({"response_types": ["code id_token"]}),
        ),
        (
            "unknown application_type",
            json!({"application_type": "service"}),
        ),
    ] {
        let mut body = json!({ "redirect_uris": [LOOPBACK_CB] });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let a = send(s.post(INTERNAL, "/oauth/register").json(&body)).await;
        a.json_error(case, 400, "invalid_client_metadata");
    }
    // Asking for a secret gets a public client (RFC 7591 §3.2.1 lets the
    // server replace the method), never a secret.
    for method in [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ] {
        let (status, body) = s
            .register(
                INTERNAL,
                json!({"redirect_uris": [LOOPBACK_CB], "token_endpoint_auth_method": method}),
            )
            .await;
        assert_eq!(status, 201, "{method}: {body}");
        assert_eq!(body["token_endpoint_auth_method"], "none", "{method}");
        assert!(body.get("client_secret").is_none(), "{method}: {body}");
    }
    assert_still_healthy(&s).await;
}

/// A code seals its redirect URI (JSON-escaped) and must stay within what
/// the token endpoint opens: registration refuses a URI too long for that,
/// and a client registered before the rule gets a `server_error` at its
/// redirect URI, never a code that cannot be redeemed.
#[tokio::test]
async fn a_redirect_uri_too_long_for_a_code_is_refused_and_never_gets_a_dead_code() {
    let s = Server::start("");
    // The audit's repro: 1989 characters, 2789 once JSON-escaped.
    let long = format!(
        "http://127.0.0.1:1/{}{}",
        "\"".repeat(800),
        "a".repeat(1170)
    );
    let a = send(
        s.post(INTERNAL, "/oauth/register")
            .json(&json!({ "redirect_uris": [long] })),
    )
    .await;
    a.json_error(
        "a redirect URI too long for a code",
        400,
        "invalid_redirect_uri",
    );
    assert!(
        a.json["error_description"]
            .as_str()
            .is_some_and(|d| d.contains("too long for an authorization code")),
        "{}",
        a.text
    );
    // In a mixed set it is dropped like any URI that may not be registered.
    let (status, body) = s
        .register(INTERNAL, json!({ "redirect_uris": [long, LOOPBACK_CB] }))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["redirect_uris"], json!([LOOPBACK_CB]));

    // The longest URI that registers: its code redeems, on another port.
    let base = "http://localhost/";
    let longest = format!("{base}{}", "\"".repeat((960 - base.len()) / 2));
    let client_id = s.register_client(INTERNAL, &[&longest]).await;
    let used = longest.replacen("localhost/", "localhost:65535/", 1);
    let code = s.code_for(INTERNAL, &client_id, &used).await;
    let tokens = s.exchange(INTERNAL, &client_id, &code, &used).await;
    assert_eq!(s.whoami(INTERNAL, access_token(&tokens)).await.0, 200);

    // A client id sealed before the rule, naming the long URI.
    let now = unix_now();
    let (ring, _) = mcpgate::KeyRing::load(&s.keys_dir(), 1, now).unwrap();
    let old_client = mcpgate::sealed::seal(
        &ring,
        &mcpgate::grants::ClientRegistration {
            redirect_uris: vec![long.clone()],
            refresh: true,
            client_name: None,
            client_uri: None,
            scope: None,
            application_type: None,
            software_id: None,
            software_version: None,
            issued_at: now,
        },
        now,
    )
    .into_string();
    let a = send(authorize_req(
        &s,
        INTERNAL,
        &pkce_request(&old_client, &long),
        Some(ALICE),
    ))
    .await;
    a.redirect_error(
        "a code too long to redeem",
        &long,
        "server_error",
        &format!("https://{INTERNAL}"),
    );
    assert!(
        query_param(a.header("location").unwrap(), "error_description")
            .is_some_and(|d| d.contains("register a shorter redirect_uri")),
        "{:?}",
        a.header("location")
    );
    assert_still_healthy(&s).await;
}

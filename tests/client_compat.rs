//! What real MCP clients were found to need, each pinned against the real
//! binary over real HTTP:
//!
//! - `offline_access` is in the authorization server's `scopes_supported`
//!   (Claude asks for it only when it is advertised, and without it never
//!   gets a refresh token) but not in the protected resource's (MCP
//!   authorization spec: SHOULD NOT);
//! - `resource` with a trailing slash, or the host's root URL, names the
//!   same resource, and the token's `aud` is still the canonical one;
//! - authorization responses are 302 (to a GET) or 303 (to a form's POST),
//!   never 307, which would make the browser re-post the form to the
//!   client.

mod common;

use common::*;

#[tokio::test]
async fn offline_access_is_advertised_by_the_authorization_server_not_the_resource() {
    let s = Server::start("");
    for host in [INTERNAL, PUBLIC] {
        let m = s
            .get_json(host, "/.well-known/oauth-authorization-server")
            .await;
        let scopes = m["scopes_supported"].as_array().unwrap();
        assert!(scopes.iter().any(|s| s == "offline_access"), "{m}");
        let prm = s
            .get_json(host, "/.well-known/oauth-protected-resource/mcp")
            .await;
        let scopes = prm["scopes_supported"].as_array().unwrap();
        assert!(!scopes.iter().any(|s| s == "offline_access"), "{prm}");
    }
    // Asking for it gets a refresh token.
    let cb = "http://127.0.0.1:7777/cb";
    let client_id = s.register_client(INTERNAL, &[cb]).await;
    let c = challenge(VERIFIER);
    let r = s
        .authorize(
            INTERNAL,
            &[
                ("response_type", "code"),
                ("client_id", &client_id),
                ("redirect_uri", cb),
                ("code_challenge", &c),
                ("code_challenge_method", "S256"),
                ("scope", "mcp offline_access"),
            ],
            Some(ALICE),
        )
        .await;
    let code = query_param(&location(&r), "code").unwrap();
    let tokens = s.exchange(INTERNAL, &client_id, &code, cb).await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    assert!(
        tokens["scope"].as_str().unwrap().contains("offline_access"),
        "{tokens}"
    );
}

#[tokio::test]
async fn the_root_url_and_a_trailing_slash_name_the_same_resource() {
    let s = Server::start("");
    let cb = "http://127.0.0.1:7777/cb";
    let client_id = s.register_client(INTERNAL, &[cb]).await;
    let c = challenge(VERIFIER);
    for resource in [
        "https://mcp.internal.example/mcp",
        "https://mcp.internal.example/mcp/",
        "https://mcp.internal.example",
        "https://mcp.internal.example/",
    ] {
        let r = s
            .authorize(
                INTERNAL,
                &[
                    ("response_type", "code"),
                    ("client_id", &client_id),
                    ("redirect_uri", cb),
                    ("code_challenge", &c),
                    ("code_challenge_method", "S256"),
                    ("resource", resource),
                ],
                Some(ALICE),
            )
            .await;
        assert_eq!(r.status().as_u16(), 302, "{resource}");
        let code = query_param(&location(&r), "code").expect(resource);
        let (status, _, tokens) = s
            .token(
                INTERNAL,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("client_id", &client_id),
                    ("redirect_uri", cb),
                    ("code_verifier", VERIFIER),
                    ("resource", resource),
                ],
                None,
            )
            .await;
        assert_eq!(status, 200, "{resource}: {tokens}");
        assert_eq!(
            jwt_payload(access_token(&tokens))["aud"],
            "https://mcp.internal.example/mcp",
            "{resource}"
        );
    }
}

#[tokio::test]
async fn authorization_responses_are_302_or_303_never_307() {
    let s = Server::start("");
    let cb = "http://127.0.0.1:7777/cb";
    let client_id = s.register_client(INTERNAL, &[cb]).await;
    let c = challenge(VERIFIER);
    let base = [
        ("client_id", client_id.as_str()),
        ("redirect_uri", cb),
        ("code_challenge", c.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "s"),
    ];
    // A code, and an error sent back to the client: both 302.
    for response_type in ["code", "token"] {
        let mut params = base.to_vec();
        params.push(("response_type", response_type));
        let r = s.authorize(INTERNAL, &params, Some(ALICE)).await;
        assert_eq!(r.status().as_u16(), 302, "response_type={response_type}");
    }

    // The dev sign-in form's POST: 303.
    let dev = Server::start_custom(|keys| {
        config_with_identity(
            keys,
            "[identity]\nsource = \"dev\"\nallowed_domains = [\"example.com\"]\nconsent = \"never\"",
        )
    });
    let dev_client = dev.register_client(INTERNAL, &[cb]).await;
    let mut form: Vec<(&str, &str)> = base.to_vec();
    form[0] = ("client_id", dev_client.as_str());
    form.push(("response_type", "code"));
    form.push(("mcpgate_dev_email", ALICE));
    let a = send(dev.post(INTERNAL, "/oauth/authorize").form(&form)).await;
    assert_eq!(a.status, 303, "{}", a.text);
    assert!(query_param(a.header("location").unwrap(), "code").is_some());
}

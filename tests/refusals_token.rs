//! Refusals at `/oauth/token`: PKCE, what a code is bound to, single use,
//! client authentication, malformed requests, artifacts presented as
//! others, and refresh tokens. What every refusal asserts:
//! tests/common/refusal.rs.

mod common;

use common::refusal::*;
use common::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// /oauth/token: PKCE, binding, single use
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_failed_verifier_is_refused_and_does_not_burn_the_code() {
    let s = Server::start("");
    let (client_id, code) = client_and_code(&s).await;
    let good = || redeem_form(&client_id, &code, LOOPBACK_CB);
    let other_verifier = "a".repeat(43);
    let rows: Vec<(&str, Pairs)> = vec![
        (
            "wrong verifier",
            with(good(), "code_verifier", Some(&other_verifier)),
        ),
        (
            "the challenge sent as the verifier",
            with(good(), "code_verifier", Some(&challenge(VERIFIER))),
        ),
        (
            "verifier too short",
            with(good(), "code_verifier", Some(&VERIFIER[..42])),
        ),
        (
            "verifier too long",
            with(good(), "code_verifier", Some(&"a".repeat(129))),
        ),
        (
            "verifier with a forbidden character",
            with(
                good(),
                "code_verifier",
                Some(&format!("{}!", &VERIFIER[..42])),
            ),
        ),
        ("no verifier", with(good(), "code_verifier", None)),
    ];
    for (case, form) in rows {
        send(token_req(&s, INTERNAL, &form))
            .await
            .json_error(case, 400, "invalid_grant");
    }
    // The same code with the right verifier still works…
    let tokens = redeem_ok(&s, INTERNAL, &good()).await;
    assert_eq!(s.whoami(INTERNAL, access_token(&tokens)).await.0, 200);
    // …once.
    send(token_req(&s, INTERNAL, &good())).await.json_error(
        "the code used twice",
        400,
        "invalid_grant",
    );
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_resource() {
    let s = Server::start("");
    let (a_id, code) = client_and_code(&s).await;
    let b_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let good = || redeem_form(&a_id, &code, LOOPBACK_CB);
    let rows: Vec<(&str, Pairs, u16, &str)> = vec![
        (
            "client B presents A's code",
            with(good(), "client_id", Some(&b_id)),
            400,
            "invalid_grant",
        ),
        (
            "the confidential client presents A's code",
            with(
                with(good(), "client_id", Some(GEMINI_ID)),
                "client_secret",
                Some(GEMINI_SECRET),
            ),
            400,
            "invalid_grant",
        ),
        (
            "another redirect_uri (another loopback port)",
            with(good(), "redirect_uri", Some("http://127.0.0.1:10/cb")),
            400,
            "invalid_grant",
        ),
        (
            "another redirect_uri",
            with(good(), "redirect_uri", Some("https://evil.example/cb")),
            400,
            "invalid_grant",
        ),
        (
            "redirect_uri left out though the request named it",
            with(good(), "redirect_uri", None),
            400,
            "invalid_request",
        ),
        (
            "another resource of this server",
            with(good(), "resource", Some("https://mcp.example.com/mcp")),
            400,
            "invalid_target",
        ),
        (
            "a foreign resource",
            with(good(), "resource", Some("https://evil.example/mcp")),
            400,
            "invalid_target",
        ),
        (
            "its resource and another resource of this server",
            also(
                also(good(), "resource", "https://mcp.internal.example/mcp"),
                "resource",
                "https://mcp.example.com/mcp",
            ),
            400,
            "invalid_target",
        ),
        (
            "no client_id",
            with(good(), "client_id", None),
            401,
            "invalid_client",
        ),
    ];
    for (case, form, status, error) in rows {
        send(token_req(&s, INTERNAL, &form))
            .await
            .json_error(case, status, error);
    }
    // None of that burned A's code; its resource may be named twice.
    redeem_ok(
        &s,
        INTERNAL,
        &also(
            also(good(), "resource", "https://mcp.internal.example/mcp"),
            "resource",
            "https://mcp.internal.example/mcp/",
        ),
    )
    .await;
    send(token_req(&s, INTERNAL, &good())).await.json_error(
        "the code used twice",
        400,
        "invalid_grant",
    );
    send(token_req(
        &s,
        INTERNAL,
        &with(good(), "client_id", Some(&b_id)),
    ))
    .await
    .json_error("client B after A redeemed", 400, "invalid_grant");
    assert_still_healthy(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_redemptions_of_one_code_mint_exactly_once() {
    let s = Server::start("");
    let (client_id, code) = client_and_code(&s).await;
    let form = redeem_form(&client_id, &code, LOOPBACK_CB);
    let url = s.url("/oauth/token");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        // One connection per task: no request waits behind another.
        let http = client();
        let (url, form, barrier) = (url.clone(), form.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            let req = http.post(url).header("host", INTERNAL).form(&form);
            barrier.wait().await;
            send(req).await
        }));
    }
    let mut minted = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        if a.status == 200 {
            minted.push(a.json["access_token"].as_str().unwrap().to_owned());
        } else {
            a.json_error("a concurrent replay", 400, "invalid_grant");
        }
    }
    assert_eq!(minted.len(), 1, "exactly one redemption succeeds");
    assert_eq!(s.whoami(INTERNAL, &minted[0]).await.0, 200);
    assert_still_healthy(&s).await;
}

// ---------------------------------------------------------------------------
// /oauth/token: client authentication
// ---------------------------------------------------------------------------

async fn gemini_code(s: &Server) -> String {
    let a = send(authorize_req(
        s,
        PUBLIC,
        &vec![
            ("response_type", "code".into()),
            ("client_id", GEMINI_ID.into()),
            ("redirect_uri", GEMINI_CALLBACK.into()),
            ("state", STATE.into()),
        ],
        Some(ALICE),
    ))
    .await;
    a.code("the confidential client's authorize")
}

#[tokio::test]
async fn the_confidential_client_must_authenticate() {
    let s = Server::start("");
    let code = gemini_code(&s).await;
    let form: Pairs = vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", GEMINI_CALLBACK.into()),
    ];
    let basic = |id: &str, secret: &str| token_req(&s, PUBLIC, &form).basic_auth(id, Some(secret));
    let post = |extra: &[(&'static str, &str)]| {
        let mut f = form.clone();
        for (k, v) in extra {
            f = with(f, k, Some(v));
        }
        token_req(&s, PUBLIC, &f)
    };
    // (case, request, expects a Basic challenge)
    let rows = vec![
        (
            "basic, wrong secret",
            basic(GEMINI_ID, "wrong-secret"),
            true,
        ),
        ("basic, empty secret", basic(GEMINI_ID, ""), true),
        (
            "basic, the secret's SHA-256 instead of the secret",
            basic(GEMINI_ID, &sha256_hex(GEMINI_SECRET)),
            true,
        ),
        (
            "basic, unknown client",
            basic("mallory", GEMINI_SECRET),
            true,
        ),
        (
            "basic, client id in another case",
            basic("Gemini-Enterprise", GEMINI_SECRET),
            true,
        ),
        (
            "post, wrong secret",
            post(&[("client_id", GEMINI_ID), ("client_secret", "wrong-secret")]),
            false,
        ),
        (
            "post, secret with a trailing space",
            post(&[
                ("client_id", GEMINI_ID),
                ("client_secret", &format!("{GEMINI_SECRET} ")),
            ]),
            false,
        ),
        (
            "post, client_id without a secret",
            post(&[("client_id", GEMINI_ID)]),
            false,
        ),
        ("no client authentication at all", post(&[]), false),
        (
            "bearer scheme instead of basic",
            token_req(&s, PUBLIC, &form).bearer_auth(GEMINI_SECRET),
            false,
        ),
    ];
    for (case, req, basic_challenge) in rows {
        let a = send(req).await;
        a.json_error(case, 401, "invalid_client");
        let challenge = a.header("www-authenticate");
        if basic_challenge {
            assert!(
                challenge.is_some_and(|c| c.starts_with("Basic")),
                "{case}: {challenge:?}"
            );
        }
    }
    // Two authentication methods at once (RFC 6749 §2.3): invalid_request.
    let a =
        send(post(&[("client_secret", GEMINI_SECRET)]).basic_auth(GEMINI_ID, Some(GEMINI_SECRET)))
            .await;
    a.json_error("basic and post at once", 400, "invalid_request");
    // RFC 9700 §2.1.1: a verifier for a code issued without a challenge.
    let a =
        send(post(&[("code_verifier", VERIFIER)]).basic_auth(GEMINI_ID, Some(GEMINI_SECRET))).await;
    a.json_error(
        "PKCE downgrade: verifier without a challenge",
        400,
        "invalid_grant",
    );

    // None of that burned the code.
    let a = send(basic(GEMINI_ID, GEMINI_SECRET)).await;
    assert_eq!(a.status, 200, "{}", a.text);

    // A public client has no secret to send.
    let (client_id, code) = client_and_code(&s).await;
    let a = send(token_req(
        &s,
        INTERNAL,
        &with(
            redeem_form(&client_id, &code, LOOPBACK_CB),
            "client_secret",
            Some("guess"),
        ),
    ))
    .await;
    a.json_error("a secret for a public client", 401, "invalid_client");
    // A tampered client_id (one character of its ciphertext flipped).
    let a = send(token_req(
        &s,
        INTERNAL,
        &with(
            redeem_form(&client_id, &code, LOOPBACK_CB),
            "client_id",
            Some(&tamper_sealed(&client_id)),
        ),
    ))
    .await;
    a.json_error("tampered client_id", 401, "invalid_client");
    redeem_ok(&s, INTERNAL, &redeem_form(&client_id, &code, LOOPBACK_CB)).await;
    assert_still_healthy(&s).await;
}

// ---------------------------------------------------------------------------
// /oauth/token: the shape of the request
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_token_endpoint_refuses_malformed_requests() {
    let s = Server::start("");
    let (client_id, code) = client_and_code(&s).await;
    let good = || redeem_form(&client_id, &code, LOOPBACK_CB);
    let rows: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "client_credentials",
            token_req(
                &s,
                PUBLIC,
                &vec![("grant_type", "client_credentials".into())],
            )
            .basic_auth(GEMINI_ID, Some(GEMINI_SECRET)),
            400,
            "unsupported_grant_type",
        ),
        (
            "password",
            token_req(
                &s,
                INTERNAL,
                &vec![
                    ("grant_type", "password".into()),
                    ("username", ALICE.into()),
                    ("password", "hunter2".into()),
                    ("client_id", client_id.clone()),
                ],
            ),
            400,
            "unsupported_grant_type",
        ),
        (
            "implicit",
            token_req(&s, INTERNAL, &with(good(), "grant_type", Some("implicit"))),
            400,
            "unsupported_grant_type",
        ),
        (
            "jwt-bearer",
            token_req(
                &s,
                INTERNAL,
                &with(
                    good(),
                    "grant_type",
                    Some("urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ),
            ),
            400,
            "unsupported_grant_type",
        ),
        (
            "token exchange",
            token_req(
                &s,
                INTERNAL,
                &with(
                    good(),
                    "grant_type",
                    Some("urn:ietf:params:oauth:grant-type:token-exchange"),
                ),
            ),
            400,
            "unsupported_grant_type",
        ),
        (
            "grant_type in another case",
            token_req(
                &s,
                INTERNAL,
                &with(good(), "grant_type", Some("Authorization_Code")),
            ),
            400,
            "unsupported_grant_type",
        ),
        (
            "missing grant_type",
            token_req(&s, INTERNAL, &with(good(), "grant_type", None)),
            400,
            "invalid_request",
        ),
        (
            "missing code",
            token_req(&s, INTERNAL, &with(good(), "code", None)),
            400,
            "invalid_request",
        ),
        (
            "code twice",
            token_req(&s, INTERNAL, &{
                let mut f = good();
                f.push(("code", code.clone()));
                f
            }),
            400,
            "invalid_request",
        ),
        (
            "grant_type twice",
            token_req(&s, INTERNAL, &{
                let mut f = good();
                f.push(("grant_type", "refresh_token".into()));
                f
            }),
            400,
            "invalid_request",
        ),
        (
            "JSON body",
            s.post(INTERNAL, "/oauth/token").json(
                &good()
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v)))
                    .collect::<serde_json::Map<_, _>>(),
            ),
            400,
            "invalid_request",
        ),
        (
            "parameters in the query string",
            s.post(INTERNAL, "/oauth/token")
                .query(&good())
                .form(&vec![("grant_type", "authorization_code")]),
            400,
            "invalid_request",
        ),
        (
            "body over 16 KiB",
            token_req(
                &s,
                INTERNAL,
                &with(good(), "padding", Some(&"x".repeat(17 * 1024))),
            ),
            413,
            "invalid_request",
        ),
    ];
    for (case, req, status, error) in rows {
        send(req).await.json_error(case, status, error);
    }
    let a = send(s.get(INTERNAL, "/oauth/token").query(&good())).await;
    assert_eq!(a.status, 405, "GET /oauth/token: {}", a.text);
    a.nothing_minted("GET /oauth/token");
    // None of that burned the code.
    redeem_ok(&s, INTERNAL, &good()).await;
    assert_still_healthy(&s).await;
}

// ---------------------------------------------------------------------------
// Every artifact is only what it is
// ---------------------------------------------------------------------------

#[tokio::test]
async fn no_artifact_is_accepted_as_another() {
    let s = Server::start("");
    let (client_id, first_code) = client_and_code(&s).await;
    let tokens = redeem_ok(
        &s,
        INTERNAL,
        &redeem_form(&client_id, &first_code, LOOPBACK_CB),
    )
    .await;
    let at = access_token(&tokens).to_owned();
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    // A fresh, unredeemed code.
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK_CB).await;

    // As a bearer at /mcp.
    for (case, bearer) in [
        ("a code as a bearer", &code),
        ("a client_id as a bearer", &client_id),
        ("a refresh token as a bearer", &rt),
    ] {
        mcp_with(&s, INTERNAL, bearer)
            .await
            .bearer_error(case, 401, "invalid_token", INTERNAL);
    }

    // As a code or a refresh token at /oauth/token.
    let as_code = |c: &str| redeem_form(&client_id, c, LOOPBACK_CB);
    let as_refresh = |r: &str| -> Pairs {
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", r.into()),
            ("client_id", client_id.clone()),
        ]
    };
    let rows: Vec<(&str, Pairs)> = vec![
        ("an access token as a code", as_code(&at)),
        ("a refresh token as a code", as_code(&rt)),
        ("a client_id as a code", as_code(&client_id)),
        ("a tampered code", as_code(&tamper_sealed(&code))),
        ("an access token as a refresh token", as_refresh(&at)),
        ("a code as a refresh token", as_refresh(&code)),
        ("a client_id as a refresh token", as_refresh(&client_id)),
        ("a tampered refresh token", as_refresh(&tamper_sealed(&rt))),
    ];
    for (case, form) in rows {
        send(token_req(&s, INTERNAL, &form))
            .await
            .json_error(case, 400, "invalid_grant");
    }

    // As a client_id at /oauth/token and at /oauth/authorize.
    for (case, id) in [
        ("an access token as a client_id", &at),
        ("a code as a client_id", &code),
        ("a refresh token as a client_id", &rt),
    ] {
        send(token_req(
            &s,
            INTERNAL,
            &with(as_code(&code), "client_id", Some(id)),
        ))
        .await
        .json_error(&format!("{case} (token)"), 401, "invalid_client");
        send(authorize_req(
            &s,
            INTERNAL,
            &pkce_request(id, LOOPBACK_CB),
            Some(ALICE),
        ))
        .await
        .json_error(&format!("{case} (authorize)"), 400, "invalid_client");
    }

    // Nothing above burned the code or the refresh token.
    redeem_ok(&s, INTERNAL, &as_code(&code)).await;
    redeem_ok(&s, INTERNAL, &as_refresh(&rt)).await;
    assert_still_healthy(&s).await;
}

// ---------------------------------------------------------------------------
// /oauth/token: refresh tokens
// ---------------------------------------------------------------------------

fn refresh_form(client_id: &str, refresh_token: &str) -> Pairs {
    vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh_token.into()),
        ("client_id", client_id.into()),
    ]
}

#[tokio::test]
async fn refresh_tokens_cannot_be_widened_moved_or_redirected() {
    let s = Server::start("");
    let (client_id, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_owned();
    let other = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let good = || refresh_form(&client_id, &rt);
    let rows: Vec<(&str, Pairs, u16, &str)> = vec![
        (
            "another client's refresh token",
            with(good(), "client_id", Some(&other)),
            400,
            "invalid_grant",
        ),
        (
            "a wider scope",
            with(good(), "scope", Some("mcp offline_access")),
            400,
            "invalid_scope",
        ),
        (
            "an unknown scope",
            with(good(), "scope", Some("admin")),
            400,
            "invalid_scope",
        ),
        (
            "another resource",
            with(good(), "resource", Some("https://mcp.example.com/mcp")),
            400,
            "invalid_target",
        ),
        (
            "a foreign resource",
            with(good(), "resource", Some("https://evil.example/mcp")),
            400,
            "invalid_target",
        ),
        (
            "the confidential client's credentials",
            with(
                with(good(), "client_id", Some(GEMINI_ID)),
                "client_secret",
                Some(GEMINI_SECRET),
            ),
            400,
            "invalid_grant",
        ),
        (
            "no refresh_token",
            with(good(), "refresh_token", None),
            400,
            "invalid_request",
        ),
    ];
    for (case, form, status, error) in rows {
        send(token_req(&s, INTERNAL, &form))
            .await
            .json_error(case, status, error);
    }
    // None of that used the refresh token up.
    let next = redeem_ok(&s, INTERNAL, &good()).await;
    assert_ne!(next["refresh_token"], json!(rt));
    assert_still_healthy(&s).await;
}

/// RFC 9700 §4.14.2: a public client's refresh tokens are rotated, and a
/// rotated-out one presented again is reuse: refused, and the family is
/// dead (on this replica). The token just replaced stays usable for
/// `tokens.refresh_grace` (a client retrying after a lost response), so the
/// replay here is of an older generation.
#[tokio::test]
async fn an_old_refresh_token_replayed_is_refused_and_kills_the_family() {
    let s = Server::start("");
    let (client_id, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let t2 = redeem_ok(&s, INTERNAL, &refresh_form(&client_id, &rt1)).await;
    let rt2 = t2["refresh_token"].as_str().unwrap().to_owned();
    let t3 = redeem_ok(&s, INTERNAL, &refresh_form(&client_id, &rt2)).await;
    let rt3 = t3["refresh_token"].as_str().unwrap().to_owned();
    send(token_req(&s, INTERNAL, &refresh_form(&client_id, &rt1)))
        .await
        .json_error(
            "generation 1 replayed after generation 3",
            400,
            "invalid_grant",
        );
    // Reuse revoked the family: the newest token is dead too.
    send(token_req(&s, INTERNAL, &refresh_form(&client_id, &rt3)))
        .await
        .json_error("the newest token after reuse", 400, "invalid_grant");
    send(token_req(&s, INTERNAL, &refresh_form(&client_id, &rt2)))
        .await
        .json_error("the replaced token after reuse", 400, "invalid_grant");
    assert_still_healthy(&s).await;
}

/// With `tokens.refresh_grace = "0s"` there is no grace: the token a
/// rotation just replaced is reuse at once.
#[tokio::test]
async fn without_grace_the_replaced_refresh_token_is_refused_at_once() {
    let s = Server::start("\n[tokens]\nrefresh_grace = \"0s\"\n");
    let (client_id, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let rt1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    redeem_ok(&s, INTERNAL, &refresh_form(&client_id, &rt1)).await;
    send(token_req(&s, INTERNAL, &refresh_form(&client_id, &rt1)))
        .await
        .json_error("the replaced token replayed at once", 400, "invalid_grant");
    assert_still_healthy(&s).await;
}

/// RFC 7591 §2: a client that registers without `grant_types` is told it
/// has `["authorization_code"]`, and is held to it: asking for
/// `offline_access` gets it no refresh token (the scope is left out), and
/// `grant_type=refresh_token` is RFC 6749 §5.2 `unauthorized_client`, even
/// with a refresh token sealed for it (as releases before this rule issued).
#[tokio::test]
async fn a_client_without_the_refresh_token_grant_gets_no_refresh_token_and_may_not_refresh() {
    let s = Server::start("");
    let refresher = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let refresher_code = s.code_for(INTERNAL, &refresher, LOOPBACK_CB).await;
    let refresher_tokens = redeem_ok(
        &s,
        INTERNAL,
        &redeem_form(&refresher, &refresher_code, LOOPBACK_CB),
    )
    .await;
    let refresher_rt = refresher_tokens["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    for (case, metadata) in [
        (
            "default grant_types",
            json!({ "redirect_uris": [LOOPBACK_CB] }),
        ),
        (
            "grant_types [authorization_code]",
            json!({ "redirect_uris": [LOOPBACK_CB], "grant_types": ["authorization_code"] }),
        ),
    ] {
        let (status, body) = s.register(INTERNAL, metadata).await;
        assert_eq!(status, 201, "{case}: {body}");
        assert_eq!(body["grant_types"], json!(["authorization_code"]), "{case}");
        let client_id = body["client_id"].as_str().unwrap().to_owned();

        let a = send(authorize_req(
            &s,
            INTERNAL,
            &with(
                pkce_request(&client_id, LOOPBACK_CB),
                "scope",
                Some("mcp offline_access"),
            ),
            Some(ALICE),
        ))
        .await;
        let code = a.code(case);
        let tokens = redeem_ok(&s, INTERNAL, &redeem_form(&client_id, &code, LOOPBACK_CB)).await;
        assert!(tokens.get("refresh_token").is_none(), "{case}: {tokens}");
        assert_eq!(tokens["scope"], "mcp", "{case}");
        assert_eq!(jwt_payload(access_token(&tokens))["scope"], "mcp", "{case}");

        // A refresh token this client could only have from an older release.
        let now = unix_now();
        let (ring, _) = mcpgate::KeyRing::load(&s.keys_dir(), 1, now).unwrap();
        let sealed_for_it = mcpgate::sealed::seal(
            &ring,
            &mcpgate::grants::RefreshGrant {
                client: mcpgate::grants::ClientBinding::of(&client_id),
                sub: ALICE.into(),
                email: ALICE.into(),
                groups: vec![],
                scope: mcpgate::scope::Scope::granted(Some("mcp offline_access"), true).unwrap(),
                resource: format!("https://{INTERNAL}/mcp"),
                fam: "family-1".into(),
                gen: 1,
                iat: now,
                auth_time: now,
                exp: now + 3600,
            },
            now,
        )
        .into_string();
        for (what, rt) in [
            ("a refresh token sealed for it", sealed_for_it.as_str()),
            ("another client's refresh token", refresher_rt.as_str()),
            ("garbage", "not-a-token"),
        ] {
            let a = send(token_req(&s, INTERNAL, &refresh_form(&client_id, rt))).await;
            a.json_error(&format!("{case}: {what}"), 400, "unauthorized_client");
            assert!(
                a.json["error_description"]
                    .as_str()
                    .is_some_and(|d| d.contains("refresh_token")),
                "{case}: {what}: {}",
                a.text
            );
        }
    }
    // The refresh token presented by the wrong client was not used up.
    let next = redeem_ok(&s, INTERNAL, &refresh_form(&refresher, &refresher_rt)).await;
    assert!(next["refresh_token"].is_string());
    assert_still_healthy(&s).await;
}

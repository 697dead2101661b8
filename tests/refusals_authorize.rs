//! Refusals at `/oauth/authorize`: unknown clients and redirect URIs (error
//! pages, never redirects), who is signing in, errors redirected to a known
//! client without a code, and the exact path. What every refusal asserts:
//! tests/common/refusal.rs.

mod common;

use common::refusal::*;
use common::*;
use reqwest::header::HeaderValue;

// ---------------------------------------------------------------------------
// /oauth/authorize: client and redirect URI (errors are pages, never redirects)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authorize_refuses_unknown_clients_and_redirect_uris_without_redirecting() {
    let s = Server::start("");
    let internal = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let public = s.register_client(PUBLIC, &[CLAUDE_CALLBACK]).await;
    let tampered = tamper_sealed(&internal);

    struct Row {
        case: &'static str,
        host: &'static str,
        params: Pairs,
        status: u16,
        error: &'static str,
    }
    let good = || pkce_request(&internal, LOOPBACK_CB);
    let rows = vec![
        Row {
            case: "redirect_uri not registered",
            host: INTERNAL,
            params: with(good(), "redirect_uri", Some("https://evil.example/cb")),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "redirect_uri on another loopback host name",
            host: INTERNAL,
            params: with(good(), "redirect_uri", Some("http://localhost:9/cb")),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "redirect_uri with another path",
            host: INTERNAL,
            params: with(good(), "redirect_uri", Some("http://127.0.0.1:9/cb/x")),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "redirect_uri with userinfo in front of the loopback host",
            host: INTERNAL,
            params: with(
                good(),
                "redirect_uri",
                Some("http://127.0.0.1:9@evil.example/cb"),
            ),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "cloud redirect_uri with an added query",
            host: PUBLIC,
            params: pkce_request(
                &public,
                &format!("{CLAUDE_CALLBACK}?next=https://evil.example"),
            ),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "cloud redirect_uri with a fragment",
            host: PUBLIC,
            params: pkce_request(&public, &format!("{CLAUDE_CALLBACK}#x")),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "the confidential client's redirect_uri for a registered client",
            host: PUBLIC,
            params: pkce_request(&public, GEMINI_CALLBACK),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "tampered sealed client_id",
            host: INTERNAL,
            params: with(good(), "client_id", Some(&tampered)),
            status: 400,
            error: "invalid_client",
        },
        Row {
            case: "unknown configured client_id",
            host: INTERNAL,
            params: with(good(), "client_id", Some("mallory")),
            status: 400,
            error: "invalid_client",
        },
        Row {
            case: "missing client_id",
            host: INTERNAL,
            params: with(good(), "client_id", None),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "repeated redirect_uri",
            host: INTERNAL,
            params: {
                let mut p = good();
                p.push(("redirect_uri", "https://evil.example/cb".into()));
                p
            },
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "repeated redirect_uri, the same value twice",
            host: INTERNAL,
            params: also(good(), "redirect_uri", LOOPBACK_CB),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "repeated client_id",
            host: INTERNAL,
            params: also(good(), "client_id", &public),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "repeated client_id, the same value twice",
            host: INTERNAL,
            params: also(good(), "client_id", &internal),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "another repeat, then a repeated redirect_uri",
            host: INTERNAL,
            params: also(also(good(), "state", "st-2"), "redirect_uri", LOOPBACK_CB),
            status: 400,
            error: "invalid_request",
        },
        Row {
            case: "another repeat, but an unknown client",
            host: INTERNAL,
            params: also(with(good(), "client_id", Some("mallory")), "scope", "mcp"),
            status: 400,
            error: "invalid_client",
        },
    ];
    for row in rows {
        // A browser gets a page…
        let a = send(
            authorize_req(&s, row.host, &row.params, Some(ALICE))
                .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        )
        .await;
        a.page_error(&format!("{} (browser)", row.case), row.status, row.error);
        assert!(!a.text.contains("<script"), "{}: markup echoed", row.case);
        // …a script the same error as JSON.
        let a = send(authorize_req(&s, row.host, &row.params, Some(ALICE))).await;
        a.json_error(&format!("{} (script)", row.case), row.status, row.error);
    }
    assert_still_healthy(&s).await;
}

// ---------------------------------------------------------------------------
// /oauth/authorize: who is signing in
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authorize_refuses_missing_forged_and_foreign_identities() {
    let s = Server::start("");
    let client_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let params = pkce_request(&client_id, LOOPBACK_CB);

    let oversized = format!("{}@example.com", "a".repeat(400));
    // (case, X-Forwarded-Email values, one header each, status, error)
    let rows: Vec<(&str, Vec<&[u8]>, u16, &str)> = vec![
        ("no identity header", vec![], 401, "login_required"),
        ("empty identity header", vec![b""], 401, "login_required"),
        (
            "email in another domain",
            vec![b"alice@evil.com"],
            403,
            "access_denied",
        ),
        (
            "email in a subdomain",
            vec![b"alice@sub.example.com"],
            403,
            "access_denied",
        ),
        (
            "allowed domain as a prefix",
            vec![b"alice@example.com.evil.com"],
            403,
            "access_denied",
        ),
        (
            "allowed domain as the local part",
            vec![b"example.com@evil.com"],
            403,
            "access_denied",
        ),
        (
            "two @",
            vec![b"alice@example.com@evil.com"],
            403,
            "access_denied",
        ),
        ("not an email", vec![b"alice"], 403, "access_denied"),
        (
            "a list of emails",
            vec![b"mallory@evil.com, alice@example.com"],
            403,
            "access_denied",
        ),
        (
            "duplicated header",
            vec![b"mallory@example.com", b"alice@example.com"],
            401,
            "login_required",
        ),
        (
            "duplicated header, same value",
            vec![b"alice@example.com", b"alice@example.com"],
            401,
            "login_required",
        ),
        (
            "non-ASCII in the domain",
            vec!["alice@ex\u{e4}mple.com".as_bytes()],
            401,
            "login_required",
        ),
        (
            "non-ASCII look-alike letter",
            vec!["alice@examp\u{13de}e.com".as_bytes()],
            401,
            "login_required",
        ),
        (
            "oversized header",
            vec![oversized.as_bytes()],
            401,
            "login_required",
        ),
    ];
    for (case, values, status, error) in rows {
        let mut req = authorize_req(&s, INTERNAL, &params, None);
        for v in values {
            req = req.header("x-forwarded-email", HeaderValue::from_bytes(v).unwrap());
        }
        send(req).await.json_error(case, status, error);
    }

    // Other identity headers.
    let a =
        send(authorize_req(&s, INTERNAL, &params, None).header("x-forwarded-user", "1234567890"))
            .await;
    a.json_error("user header without an email", 401, "login_required");
    let a = send(
        authorize_req(&s, INTERNAL, &params, None).header("x-forwarded-user", "mallory@evil.com"),
    )
    .await;
    a.json_error("user header with a foreign email", 403, "access_denied");
    let a = send(
        authorize_req(&s, INTERNAL, &params, Some(ALICE))
            .header("x-forwarded-user", "a")
            .header("x-forwarded-user", "b"),
    )
    .await;
    a.json_error("duplicated user header", 401, "login_required");

    // A browser gets the same refusal as a page.
    let a = send(
        authorize_req(&s, INTERNAL, &params, Some("alice@evil.com")).header("accept", "text/html"),
    )
    .await;
    a.page_error("foreign email (browser)", 403, "access_denied");
    let a = send(authorize_req(&s, INTERNAL, &params, None).header("accept", "text/html")).await;
    a.page_error("no identity (browser)", 401, "login_required");

    // Identity headers from a peer that is not the proxy: 127.0.0.3 is not
    // in the default trusted list (127.0.0.1/32, ::1/128).
    let untrusted = client_from("127.0.0.3".parse().unwrap());
    let a = send(
        untrusted
            .get(s.url("/oauth/authorize"))
            .header("host", INTERNAL)
            .query(&params)
            .header("x-forwarded-email", ALICE),
    )
    .await;
    a.json_error("identity from an untrusted peer", 401, "login_required");
    let a = send(
        untrusted
            .get(s.url("/oauth/authorize"))
            .header("host", INTERNAL)
            .query(&params)
            .header("x-forwarded-email", ALICE)
            .header("x-forwarded-for", "127.0.0.1")
            .header("x-real-ip", "127.0.0.1")
            .header("forwarded", "for=127.0.0.1"),
    )
    .await;
    a.json_error(
        "identity from an untrusted peer claiming to forward for loopback",
        401,
        "login_required",
    );
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn identity_is_taken_only_from_the_configured_trusted_proxies() {
    let s = Server::start_custom(|keys| {
        config_with_identity(
            keys,
            r#"[identity]
source = "proxy"
allowed_domains = ["example.com"]
trusted_proxies = ["127.0.0.2/32"]
consent = "never""#,
        )
    });
    let client_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let params = pkce_request(&client_id, LOOPBACK_CB);
    // The default client connects from 127.0.0.1, not trusted here.
    let a = send(authorize_req(&s, INTERNAL, &params, Some(ALICE))).await;
    a.json_error("identity from 127.0.0.1", 401, "login_required");
    let a = send(
        client_from("127.0.0.3".parse().unwrap())
            .get(s.url("/oauth/authorize"))
            .header("host", INTERNAL)
            .query(&params)
            .header("x-forwarded-email", ALICE),
    )
    .await;
    a.json_error("identity from 127.0.0.3", 401, "login_required");
    // Control: the configured proxy is believed.
    let proxy = client_from("127.0.0.2".parse().unwrap());
    let a = send(
        proxy
            .get(s.url("/oauth/authorize"))
            .header("host", INTERNAL)
            .query(&params)
            .header("x-forwarded-email", ALICE),
    )
    .await;
    let code = a.code("identity from the trusted proxy");
    redeem_ok(&s, INTERNAL, &redeem_form(&client_id, &code, LOOPBACK_CB)).await;

    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------
// /oauth/authorize: the request, once client and redirect URI are good
// (errors go back to the client with state and iss)
// ---------------------------------------------------------------------------

#[tokio::test]
async fn authorize_errors_after_the_client_is_known_are_redirected_without_a_code() {
    let s = Server::start("");
    let client_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let good = || pkce_request(&client_id, LOOPBACK_CB);
    let issuer = format!("https://{INTERNAL}");
    let rows: Vec<(&str, Pairs, &str)> = vec![
        (
            "no PKCE for a public client",
            with(
                with(good(), "code_challenge", None),
                "code_challenge_method",
                None,
            ),
            "invalid_request",
        ),
        (
            "plain PKCE",
            with(
                with(good(), "code_challenge", Some(VERIFIER)),
                "code_challenge_method",
                Some("plain"),
            ),
            "invalid_request",
        ),
        (
            "PKCE without a method (plain by default)",
            with(good(), "code_challenge_method", None),
            "invalid_request",
        ),
        (
            "PKCE method in lower case",
            with(good(), "code_challenge_method", Some("s256")),
            "invalid_request",
        ),
        (
            "PKCE method without a challenge",
            with(good(), "code_challenge", None),
            "invalid_request",
        ),
        (
            "S256 challenge too short",
            with(good(), "code_challenge", Some("abc")),
            "invalid_request",
        ),
        (
            "S256 challenge too long",
            with(
                good(),
                "code_challenge",
                Some(&format!("{}A", challenge(VERIFIER))),
            ),
            "invalid_request",
        ),
        (
            "S256 challenge with padding",
            with(
                good(),
                "code_challenge",
                Some(&format!("{}=", &challenge(VERIFIER)[..42])),
            ),
            "invalid_request",
        ),
        (
            "S256 challenge in standard base64",
            with(
                good(),
                "code_challenge",
                Some(&format!("{}+", &challenge(VERIFIER)[..42])),
            ),
            "invalid_request",
        ),
        (
            "response_type=token",
            with(good(), "response_type", Some("token")),
            "unsupported_response_type",
        ),
        (
            "response_type=code token",
            with(good(), "response_type", Some("code token")),
            "unsupported_response_type",
        ),
        (
            "response_type=id_token",
            with(good(), "response_type", Some("id_token")),
            "unsupported_response_type",
        ),
        (
            "no response_type",
            with(good(), "response_type", None),
            "invalid_request",
        ),
        (
            "unknown scope",
            with(good(), "scope", Some("mcp admin")),
            "invalid_scope",
        ),
        (
            "openid scope",
            with(good(), "scope", Some("openid")),
            "invalid_scope",
        ),
        (
            "resource next to ours",
            with(
                good(),
                "resource",
                Some("https://mcp.example.com/mcp-other"),
            ),
            "invalid_target",
        ),
        (
            "resource elsewhere",
            with(good(), "resource", Some("https://evil.example/mcp")),
            "invalid_target",
        ),
        (
            "the issuer of another name as resource",
            with(
                good(),
                "resource",
                Some("https://mcp.example.com.evil.example"),
            ),
            "invalid_target",
        ),
        (
            "resource over http",
            with(good(), "resource", Some("http://mcp.example.com/mcp")),
            "invalid_target",
        ),
        (
            "two resources of this server",
            also(
                with(good(), "resource", Some("https://mcp.example.com/mcp")),
                "resource",
                "https://mcp.internal.example/mcp",
            ),
            "invalid_target",
        ),
        (
            "ours and a foreign resource",
            also(
                with(good(), "resource", Some("https://mcp.internal.example/mcp")),
                "resource",
                "https://evil.example/mcp",
            ),
            "invalid_target",
        ),
    ];
    for (case, params, error) in rows {
        let a = send(authorize_req(&s, INTERNAL, &params, Some(ALICE))).await;
        a.redirect_error(case, LOOPBACK_CB, error, &issuer);
    }

    // RFC 6749 §3.1: any other parameter sent twice is the request's
    // fault, answered at the client's checked redirect URI (§4.1.2.1),
    // naming the parameter.
    let rows: Vec<(&str, Pairs, &str)> = vec![
        (
            "repeated response_type",
            also(good(), "response_type", "code"),
            "response_type",
        ),
        (
            "repeated code_challenge",
            also(good(), "code_challenge", &challenge("another verifier")),
            "code_challenge",
        ),
        (
            "repeated scope",
            also(with(good(), "scope", Some("mcp")), "scope", "mcp"),
            "scope",
        ),
        (
            "repeated state (the first is echoed)",
            also(good(), "state", "st-2"),
            "state",
        ),
        (
            "repeated unknown parameter",
            also(also(good(), "prompt", "none"), "prompt", "login"),
            "prompt",
        ),
        (
            "markup in a repeated parameter's name",
            also(
                also(good(), "<script>\"x\"</script>", "a"),
                "<script>\"x\"</script>",
                "b",
            ),
            "<script>'x'</script>",
        ),
    ];
    for (case, params, name) in rows {
        for accept in ["text/html", "application/json"] {
            let a =
                send(authorize_req(&s, INTERNAL, &params, Some(ALICE)).header("accept", accept))
                    .await;
            a.redirect_error(case, LOOPBACK_CB, "invalid_request", &issuer);
            let loc = a.header("location").unwrap();
            assert_eq!(
                query_param(loc, "error_description"),
                Some(format!("parameter {name} is repeated")),
                "{case}"
            );
        }
    }

    // Accepted: `resource` repeated (RFC 8707 §2), every value naming the
    // same resource of this server.
    let a = send(authorize_req(
        &s,
        INTERNAL,
        &also(
            with(good(), "resource", Some("https://mcp.example.com/mcp")),
            "resource",
            "https://mcp.example.com/mcp/",
        ),
        Some(ALICE),
    ))
    .await;
    let code = a.code("resource repeated with the same value");
    let tokens = redeem_ok(
        &s,
        INTERNAL,
        &also(
            redeem_form(&client_id, &code, LOOPBACK_CB),
            "resource",
            "https://mcp.example.com/mcp",
        ),
    )
    .await;
    assert_eq!(
        jwt_payload(access_token(&tokens))["aud"],
        "https://mcp.example.com/mcp"
    );

    // The confidential client may skip PKCE, but not downgrade it to plain.
    let a = send(authorize_req(
        &s,
        PUBLIC,
        &vec![
            ("response_type", "code".into()),
            ("client_id", GEMINI_ID.into()),
            ("redirect_uri", GEMINI_CALLBACK.into()),
            ("code_challenge", VERIFIER.into()),
            ("code_challenge_method", "plain".into()),
            ("state", STATE.into()),
        ],
        Some(ALICE),
    ))
    .await;
    a.redirect_error(
        "plain PKCE from the confidential client",
        GEMINI_CALLBACK,
        "invalid_request",
        &format!("https://{PUBLIC}"),
    );

    // Accepted: the resource with a trailing slash is the same resource.
    let a = send(authorize_req(
        &s,
        INTERNAL,
        &with(good(), "resource", Some("https://mcp.example.com/mcp/")),
        Some(ALICE),
    ))
    .await;
    let code = a.code("resource with a trailing slash");
    let tokens = redeem_ok(&s, INTERNAL, &redeem_form(&client_id, &code, LOOPBACK_CB)).await;
    assert_eq!(
        jwt_payload(access_token(&tokens))["aud"],
        "https://mcp.example.com/mcp"
    );
    assert_still_healthy(&s).await;
}

/// oauth2-proxy signs people in on the exact path `/oauth/authorize` only
/// (`skip_auth_routes = ["!=^/oauth/authorize$"]`): no other spelling of
/// the path may reach the authorize handler.
#[tokio::test]
async fn authorize_answers_on_its_exact_path_only() {
    let s = Server::start("");
    let client_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let params = pkce_request(&client_id, LOOPBACK_CB);
    for path in [
        "/oauth/authorize/",
        "/oauth//authorize",
        "//oauth/authorize",
        "/oauth/authorize;x",
        "/oauth/authorize%2F",
        "/oauth/%61uthorize",
        "/OAUTH/authorize",
        "/oauth/Authorize",
    ] {
        let a = send(
            s.http
                .get(format!("http://{}{path}", s.addr))
                .header("host", INTERNAL)
                .query(&params)
                .header("x-forwarded-email", ALICE),
        )
        .await;
        a.json_error(path, 404, "not_found");
    }
    assert_still_healthy(&s).await;
}

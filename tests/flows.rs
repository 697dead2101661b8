//! Every client kind of the deployment, end to end over real HTTP against
//! the real binary: register (or provisioned), authorize behind the proxy,
//! exchange, `tools/call whoami`, and the token reused on the other host.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn claude_code_public_client_on_the_internal_host_with_loopback_redirect() {
    let s = Server::start("");
    let registered = "http://localhost:33418/callback";
    let client_id = s.register_client(INTERNAL, &[registered]).await;
    // RFC 8252 §7.3: the port at authorize time may differ.
    let used = "http://localhost:51234/callback";
    let code = s.code_for(INTERNAL, &client_id, used).await;
    let tokens = s.exchange(INTERNAL, &client_id, &code, used).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "mcp");
    assert!(tokens["expires_in"].as_u64().unwrap() > 0);
    assert!(
        tokens["refresh_token"].is_string(),
        "registered refresh_token grant"
    );
    let at = access_token(&tokens);
    let header = jwt_header(at);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let claims = jwt_payload(at);
    assert_eq!(claims["iss"], format!("https://{INTERNAL}"));
    assert_eq!(claims["aud"], format!("https://{INTERNAL}/mcp"));
    assert_eq!(claims["client_id"], client_id);
    assert!(claims["iat"].is_u64() && claims["exp"].is_u64() && claims["nbf"].is_u64());

    let (status, body) = s.whoami(INTERNAL, at).await;
    assert_eq!(status, 200, "{body}");
    let who = &body["result"]["structuredContent"];
    assert_eq!(who["email"], "alice@example.com");
    assert_eq!(who["client_id"], client_id);
    // Clients hit both hosts interchangeably.
    let (status, body) = s.whoami(PUBLIC, at).await;
    assert_eq!(status, 200, "{body}");
}

/// `mcp.one_resource = false`: each host is its own resource, and a token
/// for one is refused on the other with the RFC 6750 challenge.
#[tokio::test]
async fn hosts_configured_as_separate_resources_refuse_each_others_tokens() {
    let s = Server::start("[mcp]\none_resource = false\n");
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let at = access_token(&tokens);
    assert_eq!(s.whoami(INTERNAL, at).await.0, 200);
    let (status, headers, _) = s
        .mcp(
            PUBLIC,
            Some(at),
            json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
        )
        .await;
    assert_eq!(status, 401);
    let challenge = headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"https://{PUBLIC}/.well-known/oauth-protected-resource/mcp\""
        )),
        "{challenge}"
    );
    // Verified (and cached) on the internal host first: the cache does not
    // carry it across.
    assert_eq!(s.whoami(INTERNAL, at).await.0, 200);
    assert_eq!(s.whoami(PUBLIC, at).await.0, 401);
}

#[tokio::test]
async fn cursor_registers_several_uris_and_keeps_the_allowed_ones() {
    let s = Server::start("");
    let (status, body) = s
        .register(
            INTERNAL,
            json!({
                "redirect_uris": [
                    "cursor://anysphere.cursor-mcp/oauth/callback",
                    "https://www.cursor.com/agents/mcp/oauth/callback",
                    "http://localhost:40001/callback"
                ],
                "client_name": "Cursor",
                "application_type": "native",
                "scope": "",
                "software_id": "cursor",
                "unknown_member": {"ignored": true}
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["redirect_uris"],
        json!(["http://localhost:40001/callback"])
    );
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert_eq!(body["application_type"], "native");
    assert!(body.get("unknown_member").is_none());
    assert!(body.get("client_secret").is_none());
}

#[tokio::test]
async fn claude_desktop_public_client_on_the_public_host() {
    let s = Server::start("");
    let (client_id, tokens) = s.public_flow(PUBLIC, CLAUDE_CALLBACK).await;
    let at = access_token(&tokens);
    assert_eq!(jwt_payload(at)["aud"], format!("https://{PUBLIC}/mcp"));
    let (status, body) = s.whoami(PUBLIC, at).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["structuredContent"]["client_id"], client_id);
    let (status, _) = s.whoami(INTERNAL, at).await;
    assert_eq!(status, 200);
}

async fn gemini_code(s: &Server) -> String {
    let r = s
        .authorize(
            PUBLIC,
            &[
                ("response_type", "code"),
                ("client_id", GEMINI_ID),
                ("redirect_uri", GEMINI_CALLBACK),
                ("state", "g"),
                ("scope", "mcp"),
            ],
            Some("bob@example.com"),
        )
        .await;
    assert_eq!(r.status().as_u16(), 302);
    let loc = location(&r);
    assert!(loc.starts_with(GEMINI_CALLBACK), "{loc}");
    query_param(&loc, "code").unwrap()
}

#[tokio::test]
async fn gemini_enterprise_confidential_client_with_basic_and_with_post() {
    let s = Server::start("");
    let code = gemini_code(&s).await;
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", GEMINI_CALLBACK),
            ],
            Some((GEMINI_ID, GEMINI_SECRET)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap().to_owned();
    let (status, who) = s.whoami(PUBLIC, &at).await;
    assert_eq!(status, 200);
    assert_eq!(
        who["result"]["structuredContent"]["email"],
        "bob@example.com"
    );
    assert_eq!(who["result"]["structuredContent"]["client_id"], GEMINI_ID);
    assert_eq!(s.whoami(INTERNAL, &at).await.0, 200);

    let code = gemini_code(&s).await;
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", GEMINI_CALLBACK),
                ("client_id", GEMINI_ID),
                ("client_secret", GEMINI_SECRET),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        s.whoami(INTERNAL, body["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );

    // A `[[clients]]` entry declares no grant_types: it may refresh.
    let rt = body["refresh_token"]
        .as_str()
        .expect("the configured client gets a refresh token");
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[("grant_type", "refresh_token"), ("refresh_token", rt)],
            Some((GEMINI_ID, GEMINI_SECRET)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string(), "{body}");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_stay_bound_to_their_client() {
    let s = Server::start("");
    let (client_id, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rt),
                ("client_id", &client_id),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rotated = body["refresh_token"].as_str().unwrap();
    assert_ne!(rotated, rt);
    assert_eq!(
        s.whoami(INTERNAL, body["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
    let other = s
        .register_client(INTERNAL, &["http://127.0.0.1:9/cb"])
        .await;
    let (status, _, body) = s
        .token(
            INTERNAL,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", rotated),
                ("client_id", &other),
            ],
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
}

#[tokio::test]
async fn discovery_is_rendered_per_host() {
    let s = Server::start("");
    for host in [INTERNAL, PUBLIC] {
        let issuer = format!("https://{host}");
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
        ] {
            let m = s.get_json(host, path).await;
            assert_eq!(m["issuer"], issuer);
            assert_eq!(m["token_endpoint"], format!("{issuer}/oauth/token"));
            assert_eq!(
                m["registration_endpoint"],
                format!("{issuer}/oauth/register")
            );
            assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
            assert_eq!(m["authorization_response_iss_parameter_supported"], true);
            // private_key_jwt: for Client ID Metadata Document clients.
            assert_eq!(
                m["token_endpoint_auth_methods_supported"],
                json!([
                    "none",
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt"
                ])
            );
            assert_eq!(m["client_id_metadata_document_supported"], true);
        }
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let m = s.get_json(host, path).await;
            assert_eq!(m["resource"], format!("{issuer}/mcp"));
            assert_eq!(m["authorization_servers"], json!([issuer]));
            assert_eq!(m["bearer_methods_supported"], json!(["header"]));
        }
        let (status, headers, _) = s
            .mcp(host, None, json!({"jsonrpc":"2.0","id":1,"method":"ping"}))
            .await;
        assert_eq!(status, 401);
        assert_eq!(
            headers["www-authenticate"].to_str().unwrap(),
            format!("Bearer resource_metadata=\"{issuer}/.well-known/oauth-protected-resource/mcp\", scope=\"mcp\"")
        );
    }
    let jwks = s.get_json(PUBLIC, "/.well-known/jwks.json").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kty"], "OKP");
    assert!(keys[0].get("d").is_none());
}

#[tokio::test]
async fn mcp_serves_the_legacy_and_the_stateless_protocol_on_one_path() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let at = access_token(&tokens);
    let (status, _, body) = s
        .mcp(
            INTERNAL,
            Some(at),
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(body["result"]["serverInfo"]["name"], "mcpgate");
    let (status, _, _) = s
        .mcp(
            INTERNAL,
            Some(at),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        )
        .await;
    assert_eq!(status, 202);
    let (_, _, body) = s
        .mcp(
            INTERNAL,
            Some(at),
            json!({"jsonrpc":"2.0","id":"x","method":"tools/list"}),
        )
        .await;
    assert_eq!(body["result"]["tools"][0]["name"], "whoami");
    let (_, _, body) = s
        .mcp(
            INTERNAL,
            Some(at),
            json!({"jsonrpc":"2.0","id":2,"method":"nope"}),
        )
        .await;
    assert_eq!(body["error"]["code"], -32601);
    let r = s
        .post(INTERNAL, "/mcp")
        .bearer_auth(at)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], -32700);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = s
            .http
            .request(method, s.url("/mcp"))
            .header("host", INTERNAL)
            .bearer_auth(at)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405);
    }

    // 2026-07-28: stateless, headers must agree with the body.
    let meta = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}});
    let call = |name: &str, mcp_name: &str, method_header: &str| {
        s.post(INTERNAL, "/mcp")
            .bearer_auth(at)
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", method_header)
            .header("mcp-name", mcp_name)
            .json(&json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":name,"arguments":{},"_meta":meta}}))
            .send()
    };
    let r = call("whoami", "whoami", "tools/call").await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["resultType"], "complete");
    assert_eq!(
        body["result"]["structuredContent"]["email"],
        "alice@example.com"
    );
    let r = call("whoami", "other", "tools/call").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        -32020
    );
    let r = call("whoami", "whoami", "tools/list").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
        -32020
    );
    let r = s
        .post(INTERNAL, "/mcp")
        .bearer_auth(at)
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "server/discover")
        .json(&json!({"jsonrpc":"2.0","id":4,"method":"server/discover","params":{"_meta":meta}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["result"]["resultType"], "complete");
    assert!(body["result"]["supportedVersions"]
        .as_array()
        .unwrap()
        .contains(&json!("2026-07-28")));
}

/// MCP 2025-03-26 (Basic → Batching; Transports → Sending Messages to the
/// Server, item 3): a POST may carry a JSON-RPC batch.
#[tokio::test]
async fn mcp_serves_batches_to_a_2025_03_26_client() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let at = access_token(&tokens);
    let (status, _, body) = s
        .mcp(
            INTERNAL,
            Some(at),
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"]["protocolVersion"], "2025-03-26");
    let batch = |version: Option<&str>, body: Value| {
        let req = s.mcp_post(INTERNAL, at, version, &body);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let content_type = r.headers().get("content-type").cloned();
            let text = r.text().await.unwrap();
            (status, content_type, text)
        }
    };
    let by_id = |answers: &Value, id: Value| -> Value {
        answers
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .unwrap_or_else(|| panic!("no answer for {id}: {answers}"))
            .clone()
    };

    // Two requests: both answered, in one JSON array. A 2025-03-26 client
    // may send no version header, or name its version.
    for version in [None, Some("2025-03-26")] {
        let (status, content_type, text) = batch(
            version,
            json!([
                {"jsonrpc":"2.0","id":"list","method":"tools/list"},
                {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}},
            ]),
        )
        .await;
        assert_eq!(status, 200, "{version:?}: {text}");
        assert_eq!(content_type.unwrap(), "application/json");
        let answers: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answers.as_array().unwrap().len(), 2, "{answers}");
        assert_eq!(
            by_id(&answers, json!("list"))["result"]["tools"][0]["name"],
            "whoami"
        );
        assert_eq!(
            by_id(&answers, json!(2))["result"]["structuredContent"]["email"],
            "alice@example.com"
        );
    }

    // A notification and a request: only the request is answered.
    let (status, _, text) = batch(
        None,
        json!([
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","id":3,"method":"ping"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answers: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answers, json!([{"jsonrpc":"2.0","id":3,"result":{}}]));

    // Notifications and responses only: 202, no body.
    let (status, _, text) = batch(
        Some("2025-03-26"),
        json!([
            {"jsonrpc":"2.0","method":"notifications/initialized"},
            {"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}},
            {"jsonrpc":"2.0","id":"s1","result":{}},
        ]),
    )
    .await;
    assert_eq!((status, text.as_str()), (202, ""));

    // initialize must be sent alone: refused in its own entry, the rest
    // is served.
    let (status, _, text) = batch(
        None,
        json!([
            {"jsonrpc":"2.0","id":9,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"t","version":"1"}}},
            {"jsonrpc":"2.0","id":10,"method":"ping"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answers: Value = serde_json::from_str(&text).unwrap();
    let refused = by_id(&answers, json!(9));
    assert_eq!(refused["error"]["code"], -32600);
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("initialize must not be part of a batch"));
    assert!(refused.get("result").is_none());
    assert_eq!(by_id(&answers, json!(10))["result"], json!({}));

    // JSON-RPC 2.0 §6: each invalid element gets its own error.
    let (status, _, text) = batch(
        None,
        json!([
            1,
            {"jsonrpc":"1.0","id":5,"method":"ping"},
            {"jsonrpc":"2.0","id":6,"method":"nope"},
            {"jsonrpc":"2.0","id":7,"method":"ping"},
        ]),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let answers: Value = serde_json::from_str(&text).unwrap();
    let answers_list = answers.as_array().unwrap();
    assert_eq!(answers_list.len(), 4, "{answers}");
    assert_eq!(answers_list[0]["error"]["code"], -32600);
    assert!(answers_list[0].get("id").is_none());
    assert_eq!(by_id(&answers, json!(5))["error"]["code"], -32600);
    assert_eq!(by_id(&answers, json!(6))["error"]["code"], -32601);
    assert_eq!(by_id(&answers, json!(7))["result"], json!({}));
}

#[tokio::test]
async fn a_retried_refresh_is_honoured_within_grace_and_real_reuse_kills_the_family() {
    let s = Server::start("");
    let (client_id, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let refresh = |rt: String| {
        let s = &s;
        let client_id = client_id.clone();
        async move {
            s.token(
                INTERNAL,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &client_id),
                ],
                None,
            )
            .await
        }
    };
    let gen1 = tokens["refresh_token"].as_str().unwrap().to_owned();
    let (status, _, body) = refresh(gen1.clone()).await;
    assert_eq!(status, 200, "{body}");
    let gen2 = body["refresh_token"].as_str().unwrap().to_owned();
    // The response was "lost": the client retries with generation 1.
    let (status, _, body) = refresh(gen1.clone()).await;
    assert_eq!(status, 200, "a retry within the grace window: {body}");
    let gen2b = body["refresh_token"].as_str().unwrap().to_owned();
    // Generation 2 moves on to 3; now generation 1 is plain reuse.
    let (status, _, _) = refresh(gen2).await;
    assert_eq!(status, 200);
    let (status, _, body) = refresh(gen1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Reuse revokes the whole family on this replica.
    let (status, _, body) = refresh(gen2b).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_browser_at_the_root_sees_where_the_mcp_endpoint_is() {
    let s = Server::start("");
    let a = send(s.get(PUBLIC, "/").header("accept", "text/html")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(
        a.text.contains("<code>https://mcp.example.com/mcp</code>"),
        "{}",
        a.text
    );
    assert!(
        a.text.contains("https://mcp.internal.example/mcp"),
        "the other host: {}",
        a.text
    );
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    // A script asking for `/` gets what any unknown path gets.
    let a = send(s.get(PUBLIC, "/")).await;
    assert_eq!(a.status, 404, "{}", a.text);
    let a = send(s.post(PUBLIC, "/").header("accept", "text/html")).await;
    assert_eq!(a.status, 404, "{}", a.text);
}

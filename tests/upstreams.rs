//! Upstream MCP servers behind mcpgate (`[[upstreams]]`): each mount its
//! own protected resource, the identity an upstream receives (never the
//! client's token), the tool policy and its audit lines, and what a
//! client sees when an upstream fails. The upstream is a real HTTP server
//! on loopback (tests/common/upstream.rs); tests/node/upstreams.test.mjs
//! puts `@modelcontextprotocol/server-everything` behind mcpgate and
//! drives it with the official SDK.

mod common;
#[path = "common/upstream.rs"]
mod upstream;

use std::time::Duration;

use common::*;
use ring::signature::{UnparsedPublicKey, ED25519};
use serde_json::{json, Value};
use upstream::TestUpstream;

const ADMINS: &str = "admins@example.com";

/// mcpgate with `upstreams` (TOML `[[upstreams]]` entries) and `extra`.
fn start(upstreams: &str, extra: &str) -> Server {
    Server::start(&format!("{upstreams}\n{extra}"))
}

/// A token for `resource` on `host`, for Alice in `groups`: a real flow
/// (register, authorize through the proxy's headers, exchange).
async fn token_for(s: &Server, host: &str, resource: &str, groups: &str) -> Value {
    let redirect = if host == PUBLIC {
        CLAUDE_CALLBACK
    } else {
        "http://127.0.0.1:33418/callback"
    };
    let client_id = s.register_client(host, &[redirect]).await;
    let c = challenge(VERIFIER);
    let r = s
        .get(host, "/oauth/authorize")
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", c.as_str()),
            ("code_challenge_method", "S256"),
            ("state", "s"),
            ("resource", resource),
            ("scope", "mcp offline_access"),
        ])
        .header("x-forwarded-email", ALICE)
        .header("x-forwarded-groups", groups)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{:?}", r.text().await);
    let code = query_param(&location(&r), "code").unwrap();
    let mut tokens = s.exchange(host, &client_id, &code, redirect).await;
    tokens["client_id"] = json!(client_id);
    tokens
}

fn mcp_to(
    s: &Server,
    host: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    s.post(host, path)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(body)
}

fn list() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})
}

fn call(tool: &str) -> Value {
    json!({"jsonrpc":"2.0","id":"c-1","method":"tools/call","params":{"name":tool,"arguments":{"message":"hi"}}})
}

fn tool_names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tool list in {v}"))
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The JSON-RPC messages of an SSE body.
fn sse_messages(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
                .collect();
            (!data.is_empty()).then(|| serde_json::from_str(&data.join("\n")).unwrap())
        })
        .collect()
}

fn stanza(name: &str, url: &str, more: &str) -> String {
    format!("[[upstreams]]\nname = \"{name}\"\nurl = \"{url}\"\n{more}\n")
}

#[tokio::test]
async fn each_mount_is_its_own_protected_resource() {
    let up = TestUpstream::start().await;
    let s = start(
        &[
            stanza("jira", &up.url("/mcp"), ""),
            stanza("github", &up.url("/mcp"), ""),
        ]
        .concat(),
        "",
    );
    for host in [INTERNAL, PUBLIC] {
        let doc = s
            .get_json(host, "/.well-known/oauth-protected-resource/mcp/jira")
            .await;
        assert_eq!(doc["resource"], format!("https://{host}/mcp/jira"));
        assert_eq!(
            doc["authorization_servers"],
            json!([format!("https://{host}")])
        );
        let a = send(s.post(host, "/mcp/jira").json(&list())).await;
        assert_eq!(a.status, 401);
        assert!(a.header("www-authenticate").unwrap().contains(&format!(
            "resource_metadata=\"https://{host}/.well-known/oauth-protected-resource/mcp/jira\""
        )));
    }
    let jira = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/jira"), "").await;
    let jira = access_token(&jira);
    assert_eq!(
        jwt_payload(jira)["aud"],
        format!("https://{INTERNAL}/mcp/jira")
    );
    let ok = send(mcp_to(&s, INTERNAL, "/mcp/jira", jira, &list())).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // The hosts are one resource by default: the same mount on the other host.
    let other_host = send(mcp_to(&s, PUBLIC, "/mcp/jira", jira, &list())).await;
    assert_eq!(other_host.status, 200);
    // Each identity JWT is issued by the host the request came to.
    let issuers: Vec<Value> = up
        .seen("/mcp")
        .iter()
        .map(|r| {
            let auth = r.headers["authorization"].to_str().unwrap();
            jwt_payload(auth.strip_prefix("Bearer ").unwrap())["iss"].clone()
        })
        .collect();
    assert_eq!(
        issuers,
        [
            json!(format!("https://{INTERNAL}")),
            json!(format!("https://{PUBLIC}"))
        ]
    );
    // Another mount, or mcpgate's own /mcp, is another resource (RFC 8707).
    for path in ["/mcp/github", "/mcp"] {
        let a = send(mcp_to(&s, INTERNAL, path, jira, &list())).await;
        assert_eq!(a.status, 401, "{path}: {}", a.text);
        assert!(a
            .header("www-authenticate")
            .unwrap()
            .contains("invalid_token"));
    }
    let builtin = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await.1;
    let a = send(mcp_to(
        &s,
        INTERNAL,
        "/mcp/jira",
        access_token(&builtin),
        &list(),
    ))
    .await;
    assert_eq!(a.status, 401);
    assert_eq!(
        up.seen("/mcp").len(),
        2,
        "refused requests never reach the upstream"
    );
}

#[tokio::test]
async fn a_token_for_one_mount_is_refused_at_another_even_across_hosts_apart() {
    let up = TestUpstream::start().await;
    let s = start(
        &[
            stanza("jira", &up.url("/mcp"), ""),
            stanza("github", &up.url("/mcp"), ""),
        ]
        .concat(),
        "[mcp]\none_resource = false\n",
    );
    let jira = token_for(&s, PUBLIC, &format!("https://{PUBLIC}/mcp/jira"), "").await;
    let jira = access_token(&jira);
    assert_eq!(
        send(mcp_to(&s, PUBLIC, "/mcp/jira", jira, &list()))
            .await
            .status,
        200
    );
    for (host, path) in [(INTERNAL, "/mcp/jira"), (PUBLIC, "/mcp/github")] {
        assert_eq!(
            send(mcp_to(&s, host, path, jira, &list())).await.status,
            401,
            "{host}{path}"
        );
    }
}

/// Verifies `jwt` (EdDSA) against mcpgate's JWKS and returns its claims.
async fn verify_with_jwks(s: &Server, jwt: &str) -> Value {
    let jwks = s.get_json(INTERNAL, "/.well-known/jwks.json").await;
    let header = jwt_header(jwt);
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("the assertion's key is in the JWKS");
    assert_eq!(header["alg"], "EdDSA");
    let x = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        key["x"].as_str().unwrap(),
    )
    .unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
    UnparsedPublicKey::new(&ED25519, x)
        .verify(input.as_bytes(), &sig)
        .expect("the assertion verifies with the JWKS");
    jwt_payload(jwt)
}

#[tokio::test]
async fn the_upstream_gets_an_identity_jwt_never_the_clients_credentials() {
    let up = TestUpstream::start().await;
    let url = up.url("/mcp");
    let s = start(&stanza("echo", &url, "forward_identity = \"jwt\""), "");
    let tokens = token_for(
        &s,
        INTERNAL,
        &format!("https://{INTERNAL}/mcp/echo"),
        "eng@example.com, admins@example.com",
    )
    .await;
    let token = access_token(&tokens);
    let body = call("echo");
    for _ in 0..2 {
        let a = send(
            mcp_to(&s, INTERNAL, "/mcp/echo", token, &body)
                .header("cookie", "session=secret")
                .header("x-forwarded-email", "mallory@example.com")
                .header("x-mcp-email", "mallory@example.com")
                .header("x-mcp-groups", ADMINS)
                .header("x-forwarded-for", "192.0.2.1")
                .header("forwarded", "for=192.0.2.1")
                .header("proxy-authorization", "Basic eDp5")
                // RFC 9110 §7.6.1: for this hop only, an `Mcp-*` too.
                .header("connection", "keep-alive, mcp-hop")
                .header("mcp-hop", "1")
                .header("mcp-session-id", "sess-42")
                .header("last-event-id", "9"),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["result"]["content"][0]["text"], "called echo");
        assert_eq!(a.header("mcp-session-id"), Some("upstream-session-1"));
    }
    let seen = up.seen("/mcp");
    assert_eq!(seen.len(), 2);
    let h = &seen[0].headers;
    // Byte for byte.
    assert_eq!(seen[0].body, serde_json::to_vec(&body).unwrap());
    for gone in [
        "cookie",
        "x-forwarded-email",
        "x-mcp-email",
        "x-mcp-groups",
        "x-forwarded-for",
        "forwarded",
        "proxy-authorization",
        "mcp-hop",
    ] {
        assert!(h.get(gone).is_none(), "{gone} crossed the proxy");
    }
    assert_eq!(h["mcp-session-id"], "sess-42");
    assert_eq!(h["mcp-protocol-version"], "2025-11-25");
    assert_eq!(h["last-event-id"], "9");
    let auth = h["authorization"].to_str().unwrap();
    let jwt = auth.strip_prefix("Bearer ").unwrap();
    assert_ne!(jwt, token, "the client's token must never be passed on");
    let claims = verify_with_jwks(&s, jwt).await;
    assert_eq!(jwt_header(jwt)["typ"], "JWT");
    assert_eq!(claims["iss"], format!("https://{INTERNAL}"));
    assert_eq!(claims["aud"], url);
    assert_eq!(claims["sub"], ALICE);
    assert_eq!(claims["email"], ALICE);
    assert_eq!(claims["groups"], json!(["eng@example.com", ADMINS]));
    assert_eq!(claims["client_id"], tokens["client_id"]);
    assert_eq!(claims["scope"], "mcp offline_access");
    let (iat, exp) = (
        claims["iat"].as_u64().unwrap(),
        claims["exp"].as_u64().unwrap(),
    );
    assert!(exp - iat <= 300 && exp <= jwt_payload(token)["exp"].as_u64().unwrap());
    // Minted once for this token and upstream, then reused.
    assert_eq!(
        seen[1].headers["authorization"],
        seen[0].headers["authorization"]
    );
    // mcpgate refuses its own assertion as an access token.
    let a = send(mcp_to(&s, INTERNAL, "/mcp/echo", jwt, &list())).await;
    assert_eq!(a.status, 401);
}

#[tokio::test]
async fn identity_headers_or_nothing_when_configured_so() {
    let up = TestUpstream::start().await;
    let s = start(
        &[
            stanza("h", &up.url("/mcp"), "forward_identity = \"headers\""),
            stanza("n", &up.url("/sse"), "forward_identity = \"none\""),
        ]
        .concat(),
        "",
    );
    let t = token_for(
        &s,
        INTERNAL,
        &format!("https://{INTERNAL}/mcp/h"),
        "eng@example.com",
    )
    .await;
    let a = send(
        mcp_to(&s, INTERNAL, "/mcp/h", access_token(&t), &list()).header("x-mcp-subject", "forged"),
    )
    .await;
    assert_eq!(a.status, 200);
    let h = &up.seen("/mcp")[0].headers;
    assert_eq!(h["x-mcp-subject"], ALICE);
    assert_eq!(h["x-mcp-email"], ALICE);
    assert_eq!(h["x-mcp-groups"], "eng@example.com");
    assert_eq!(h["x-mcp-client-id"], t["client_id"].as_str().unwrap());
    assert!(h.get("authorization").is_none());
    let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/n"), "").await;
    assert_eq!(
        send(mcp_to(&s, INTERNAL, "/mcp/n", access_token(&t), &list()))
            .await
            .status,
        200
    );
    let h = &up.seen("/sse")[0].headers;
    assert!(h.get("authorization").is_none() && h.get("x-mcp-email").is_none());
}

const POLICY: &str = r#"deny_tools = ["danger_*"]
[[upstreams.tool_rules]]
tools = ["admin_*"]
allow = ["admins@example.com"]
"#;

#[tokio::test]
async fn the_tool_policy_filters_lists_refuses_calls_and_audits_each_call() {
    let up = TestUpstream::start().await;
    let s = start(
        &[
            stanza("j", &up.url("/mcp"), POLICY),
            stanza("s", &up.url("/sse"), POLICY),
        ]
        .concat(),
        "[log]\nformat = \"json\"\n",
    );
    for (path, sse) in [("/mcp/j", false), ("/mcp/s", true)] {
        let resource = format!("https://{INTERNAL}{path}");
        let plain = token_for(&s, INTERNAL, &resource, "eng@example.com").await;
        let admin = token_for(&s, INTERNAL, &resource, ADMINS).await;
        for (t, expected) in [
            (&plain, vec!["echo"]),
            (&admin, vec!["echo", "admin_reset"]),
        ] {
            let a = send(mcp_to(&s, INTERNAL, path, access_token(t), &list())).await;
            assert_eq!(a.status, 200);
            let answer = if sse {
                assert!(a
                    .header("content-type")
                    .unwrap()
                    .starts_with("text/event-stream"));
                let msgs = sse_messages(&a.text);
                assert_eq!(
                    msgs[0]["method"], "notifications/progress",
                    "other events pass"
                );
                msgs[1].clone()
            } else {
                a.json.clone()
            };
            assert_eq!(tool_names(&answer), expected, "{path}");
        }
        let before = up.record.seen.lock().unwrap().len();
        for (t, tool) in [
            (&plain, "admin_reset"),
            (&plain, "danger_drop"),
            (&admin, "danger_drop"),
        ] {
            let a = send(mcp_to(&s, INTERNAL, path, access_token(t), &call(tool))).await;
            assert_eq!(a.status, 200);
            assert_eq!(a.json["id"], "c-1");
            assert_eq!(a.json["error"]["code"], -32001);
            let m = a.json["error"]["message"].as_str().unwrap();
            assert!(m.contains(tool) && m.contains("not granted"), "{m}");
        }
        // A batch holding a refused call is refused whole.
        let batch = json!([call("echo"), {"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"admin_reset"}}]);
        let a = send(
            mcp_to(&s, INTERNAL, path, access_token(&plain), &batch)
                .header("mcp-protocol-version", "2025-03-26"),
        )
        .await;
        assert_eq!(a.json.as_array().unwrap().len(), 2, "{}", a.text);
        assert!(a
            .json
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["error"]["code"] == -32001));
        assert_eq!(
            up.record.seen.lock().unwrap().len(),
            before,
            "refused calls never reach the upstream"
        );
        let a = send(mcp_to(
            &s,
            INTERNAL,
            path,
            access_token(&admin),
            &call("admin_reset"),
        ))
        .await;
        assert_eq!(a.status, 200);
    }
    // One audit line per call, as JSON, never the arguments. A call's
    // line is written when its answer has gone out: waited for.
    let audits_in = |log: &str| -> Vec<Value> {
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "mcpgate::audit")
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (log, audits) = loop {
        let log = std::fs::read_to_string(s.log_path()).unwrap();
        let audits = audits_in(&log);
        if audits.len() >= 12 || std::time::Instant::now() > deadline {
            break (log, audits);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let denied = audits
        .iter()
        .filter(|a| a["fields"]["decision"] == "denied")
        .count();
    assert_eq!(
        denied,
        2 * (3 + 2),
        "three calls and a batch of two per mount: {audits:?}"
    );
    let allowed: Vec<&Value> = audits
        .iter()
        .filter(|a| a["fields"]["decision"] == "allowed")
        .collect();
    assert_eq!(allowed.len(), 2, "{audits:?}");
    for a in &allowed {
        let f = &a["fields"];
        assert_eq!(f["tool"], "admin_reset");
        assert_eq!(f["email"], ALICE);
        assert_eq!(f["sub"], ALICE);
        assert_eq!(f["upstream_status"], 200);
        assert_eq!(f["outcome"], "completed");
        assert!(f["client_id"].as_str().is_some() && f["request_id"].as_str().is_some());
        assert!(f["duration_ms"].as_f64().is_some() && a["timestamp"].as_str().is_some());
    }
    assert!(!log.contains("\"message\":\"hi\"") && !log.contains("called admin_reset"));
}

#[tokio::test]
async fn allow_refuses_everyone_else_at_the_door() {
    let up = TestUpstream::start().await;
    let s = start(
        &stanza(
            "hr",
            &up.url("/mcp"),
            "allow = [\"admins@example.com\", \"bob@example.com\"]",
        ),
        "",
    );
    let resource = format!("https://{INTERNAL}/mcp/hr");
    let outsider = token_for(&s, INTERNAL, &resource, "eng@example.com").await;
    let a = send(mcp_to(
        &s,
        INTERNAL,
        "/mcp/hr",
        access_token(&outsider),
        &list(),
    ))
    .await;
    assert_eq!(a.status, 403);
    assert_eq!(a.json["error"]["code"], -32003);
    assert_eq!(a.json["id"], 1, "the request's id: {}", a.text);
    assert!(a.json["error"]["message"].as_str().unwrap().contains("hr"));
    assert!(
        a.header("www-authenticate").is_none(),
        "a sign-in would not help"
    );
    assert!(up.seen("/mcp").is_empty());
    let member = token_for(&s, INTERNAL, &resource, ADMINS).await;
    assert_eq!(
        send(mcp_to(
            &s,
            INTERNAL,
            "/mcp/hr",
            access_token(&member),
            &list()
        ))
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn refresh_keeps_the_groups() {
    let up = TestUpstream::start().await;
    let s = start(&stanza("x", &up.url("/mcp"), ""), "");
    let t = token_for(
        &s,
        INTERNAL,
        &format!("https://{INTERNAL}/mcp/x"),
        "a@example.com,b@example.com",
    )
    .await;
    assert_eq!(
        jwt_payload(access_token(&t))["groups"],
        json!(["a@example.com", "b@example.com"])
    );
    let (status, _, refreshed) = s
        .token(
            INTERNAL,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", t["refresh_token"].as_str().unwrap()),
                ("client_id", t["client_id"].as_str().unwrap()),
            ],
            None,
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let p = jwt_payload(access_token(&refreshed));
    assert_eq!(p["groups"], json!(["a@example.com", "b@example.com"]));
    assert_eq!(p["aud"], format!("https://{INTERNAL}/mcp/x"));
}

#[tokio::test]
async fn upstream_failures_are_clear_json_rpc_errors() {
    let up = TestUpstream::start().await;
    // A port nothing listens on: bound, then released.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = start(
        &[
            stanza("down", &format!("http://{down}/mcp"), ""),
            stanza("slow", &up.url("/slow"), "timeout = \"1s\""),
            stanza("refuses", &up.url("/unauthorized"), ""),
            stanza("stalls", &up.url("/stall"), "timeout = \"1s\""),
        ]
        .concat(),
        "[server]\nmetrics_listen = \"127.0.0.1:0\"\n",
    );
    let cases = [
        ("down", 502, "could not be reached"),
        ("slow", 504, "did not answer in time"),
        ("refuses", 502, "refused the identity"),
        // The head in time, the rest of a small answer not.
        ("stalls", 504, "did not answer in time"),
    ];
    for (name, status, says) in cases {
        let path = format!("/mcp/{name}");
        let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}{path}"), "").await;
        let a = send(mcp_to(&s, INTERNAL, &path, access_token(&t), &call("echo"))).await;
        assert_eq!(a.status, status, "{name}: {}", a.text);
        assert_eq!(a.json["jsonrpc"], "2.0");
        assert_eq!(a.json["id"], "c-1", "{name}: the request's id");
        assert!(
            a.json["error"]["message"].as_str().unwrap().contains(says),
            "{name}: {}",
            a.text
        );
        assert!(
            a.header("www-authenticate").is_none(),
            "{name}: never a challenge"
        );
    }
    // Health does not depend on upstreams; metrics count them.
    assert_eq!(
        s.get(INTERNAL, "/readyz").send().await.unwrap().status(),
        200
    );
    let metrics = reqwest::get(format!("http://{}/metrics", s.metrics_addr.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "mcpgate_upstream_errors_total{upstream=\"down\",kind=\"unreachable\"} 1",
        "mcpgate_upstream_errors_total{upstream=\"slow\",kind=\"timeout\"} 1",
        "mcpgate_upstream_errors_total{upstream=\"stalls\",kind=\"timeout\"} 1",
        "mcpgate_upstream_errors_total{upstream=\"refuses\",kind=\"refused_identity\"} 1",
        "mcpgate_upstream_requests_total{upstream=\"refuses\",status=\"4xx\"} 1",
        "mcpgate_upstream_response_seconds_count{upstream=\"refuses\"} 1",
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }
}

/// Peak resident memory of a process, in KB.
fn peak_rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn streams_pass_through_as_they_come_and_end_as_the_upstream_ends_them() {
    let up = TestUpstream::start().await;
    let s = start(
        &[
            stanza("big", &up.url("/big"), POLICY),
            stanza("reset", &up.url("/reset"), ""),
            stanza("hang", &up.url("/hang"), ""),
        ]
        .concat(),
        "",
    );
    let token = |name: &'static str| {
        let s = &s;
        async move { token_for(s, INTERNAL, &format!("https://{INTERNAL}/mcp/{name}"), "").await }
    };
    // 50 MB through the filtering path (the mount has a tool policy):
    // memory stays flat.
    let t = token("big").await;
    let warm = send(
        s.get(INTERNAL, "/mcp/big")
            .bearer_auth(access_token(&t))
            .header("accept", "text/event-stream"),
    )
    .await;
    assert!(warm.text.len() >= upstream::BIG_BYTES);
    let before = peak_rss_kb(s.pid());
    let mut r = s
        .get(INTERNAL, "/mcp/big")
        .bearer_auth(access_token(&t))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut total = 0;
    while let Some(chunk) = r.chunk().await.unwrap() {
        total += chunk.len();
    }
    assert!(total >= upstream::BIG_BYTES);
    let grew = peak_rss_kb(s.pid()).saturating_sub(before);
    assert!(
        grew < 8 * 1024,
        "mcpgate's peak memory grew {grew} KB over a 50 MB stream"
    );

    // An upstream that breaks off: the client's stream breaks off too.
    let t = token("reset").await;
    let mut r = s
        .get(INTERNAL, "/mcp/reset")
        .bearer_auth(access_token(&t))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("notifications/progress"));
    let mut broke = false;
    loop {
        match r.chunk().await {
            Ok(Some(_)) => continue,
            Ok(None) => break,
            Err(_) => {
                broke = true;
                break;
            }
        }
    }
    assert!(broke, "a broken upstream stream must not end as if whole");

    // A client that leaves: the upstream's request is cancelled.
    let t = token("hang").await;
    let mut r = s
        .get(INTERNAL, "/mcp/hang")
        .bearer_auth(access_token(&t))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while up
        .record
        .cancelled
        .load(std::sync::atomic::Ordering::SeqCst)
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the upstream never saw the client leave"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn get_streams_and_delete_reach_the_upstream() {
    let up = TestUpstream::start().await;
    let s = start(&stanza("e", &up.url("/mcp"), POLICY), "");
    let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/e"), "").await;
    let t = access_token(&t);
    // A body on a GET or DELETE is no message: the policy reads none
    // there, so none is sent.
    let smuggled = serde_json::to_vec(&call("admin_reset")).unwrap();
    // The upstream offers no GET stream: its 405 is passed on.
    let a = send(
        s.get(INTERNAL, "/mcp/e")
            .bearer_auth(t)
            .header("accept", "text/event-stream")
            .header("content-type", "application/json")
            .body(smuggled.clone()),
    )
    .await;
    assert_eq!(a.status, 405);
    let a = send(
        s.http
            .delete(s.url("/mcp/e"))
            .header("host", INTERNAL)
            .bearer_auth(t)
            .header("mcp-session-id", "sess-1")
            .header("content-type", "application/json")
            .body(smuggled),
    )
    .await;
    assert_eq!(a.status, 200);
    let seen = up.seen("/mcp");
    assert_eq!(seen[0].method, http::Method::GET);
    assert_eq!(seen[1].method, http::Method::DELETE);
    assert_eq!(seen[1].headers["mcp-session-id"], "sess-1");
    assert!(seen[0].body.is_empty() && seen[1].body.is_empty());
    // A notification: the upstream's 202 comes back.
    let n = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(
        send(mcp_to(&s, INTERNAL, "/mcp/e", t, &n)).await.status,
        202
    );
    // Other methods: 405 from mcpgate, after authentication.
    let a = send(
        s.http
            .put(s.url("/mcp/e"))
            .header("host", INTERNAL)
            .bearer_auth(t),
    )
    .await;
    assert_eq!(a.status, 405);
}

#[tokio::test]
async fn an_upstream_at_mcp_replaces_the_built_in_server() {
    let up = TestUpstream::start().await;
    let s = start(&stanza("root", &up.url("/mcp"), "path = \"/mcp\""), "");
    let t = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await.1;
    let a = send(mcp_to(&s, INTERNAL, "/mcp", access_token(&t), &list())).await;
    assert_eq!(a.status, 200);
    assert_eq!(tool_names(&a.json), ["echo", "admin_reset", "danger_drop"]);
    assert_eq!(
        s.get_json(INTERNAL, "/.well-known/oauth-protected-resource/mcp")
            .await["resource_name"],
        "root"
    );
}

#[tokio::test]
async fn https_upstreams_are_verified_against_the_roots_and_their_ca_file() {
    let up = TestUpstream::start_tls().await;
    let ca = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/ca.pem");
    let s = start(
        &[
            stanza(
                "trusted",
                &up.https_url("/mcp"),
                &format!("ca_file = \"{ca}\""),
            ),
            stanza("untrusted", &up.https_url("/mcp"), ""),
        ]
        .concat(),
        "",
    );
    let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/trusted"), "").await;
    let a = send(mcp_to(
        &s,
        INTERNAL,
        "/mcp/trusted",
        access_token(&t),
        &call("echo"),
    ))
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["result"]["content"][0]["text"], "called echo");
    // ALPN chose h2.
    assert_eq!(up.seen("/mcp")[0].version, http::Version::HTTP_2);
    // A certificate from a CA nobody trusts: no connection, nothing sent.
    let t = token_for(
        &s,
        INTERNAL,
        &format!("https://{INTERNAL}/mcp/untrusted"),
        "",
    )
    .await;
    let a = send(mcp_to(
        &s,
        INTERNAL,
        "/mcp/untrusted",
        access_token(&t),
        &call("echo"),
    ))
    .await;
    assert_eq!(a.status, 502, "{}", a.text);
    assert_eq!(up.seen("/mcp").len(), 1);
}

#[tokio::test]
async fn the_2026_headers_pass_and_mcp_name_is_held_to_the_policy() {
    let up = TestUpstream::start().await;
    let s = start(&stanza("j", &up.url("/mcp"), POLICY), "");
    let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/j"), "").await;
    let t = access_token(&t);
    let stateless = |tool: &str, header_tool: &str| {
        s.post(INTERNAL, "/mcp/j")
            .bearer_auth(t)
            .header("accept", "application/json, text/event-stream")
            .json(&call(tool))
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", header_tool)
    };
    let a = send(stateless("echo", "echo")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let h = &up.seen("/mcp")[0].headers;
    assert_eq!(h["mcp-protocol-version"], "2026-07-28");
    assert_eq!(h["mcp-method"], "tools/call");
    assert_eq!(h["mcp-name"], "echo");
    // An upstream that routes by the header is held to the same policy.
    let a = send(stateless("echo", "admin_reset")).await;
    assert_eq!(a.json["error"]["code"], -32001, "{}", a.text);
    assert!(a.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("admin_reset"));
    assert_eq!(up.seen("/mcp").len(), 1);
}

#[tokio::test]
async fn a_refused_call_under_any_spelling_or_shape_never_reaches_the_upstream() {
    let up = TestUpstream::start().await;
    let s = start(
        &stanza("j", &up.url("/mcp"), POLICY),
        "[log]\nformat = \"json\"\n",
    );
    let resource = format!("https://{INTERNAL}/mcp/j");
    let plain = token_for(&s, INTERNAL, &resource, "eng@example.com").await;
    let raw = |body: &str| {
        s.post(INTERNAL, "/mcp/j")
            .bearer_auth(access_token(&plain))
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_owned())
    };
    let before = up.record.seen.lock().unwrap().len();
    for (body, code) in [
        // Other spellings of a refused tool's name.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"DANGER_drop"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":" admin_reset\t"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin\u200b_reset"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\u0061dmin_reset"}}"#,
            -32001,
        ),
        // Repeated members: whichever one the upstream keeps.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_reset"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"admin_reset"},"params":{"name":"echo"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list","params":{"name":"admin_reset"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"n\u0061me":"danger_drop"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"Tools/Call","params":{"name":"danger_drop"}}"#,
            -32001,
        ),
        // Member names in another case, as Go's `encoding/json` reads them.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","NAME":"admin_reset"}}"#,
            -32001,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"Method":"tools/call","PARAMS":{"Name":"admin_reset"}}"#,
            -32001,
        ),
        // A name the policy cannot read.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["admin_reset",{}]}"#,
            -32602,
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["admin_reset"]}}"#,
            -32602,
        ),
        (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#, -32602),
    ] {
        let a = send(raw(body)).await;
        assert_eq!(a.status, 200, "{body}: {}", a.text);
        assert_eq!(a.json["id"], 1, "{body}: {}", a.text);
        assert_eq!(a.json["error"]["code"], code, "{body}: {}", a.text);
    }
    // A batch holding one: refused whole, each request its error.
    let batch = r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","name":"Admin_Reset"}}]"#;
    let a = send(raw(batch).header("mcp-protocol-version", "2025-03-26")).await;
    let answers = a.json.as_array().unwrap_or_else(|| panic!("{}", a.text));
    assert_eq!(answers.len(), 2, "{}", a.text);
    assert!(
        answers.iter().all(|m| m["error"]["code"] == -32001),
        "{}",
        a.text
    );
    // Notifications get no answer (JSON-RPC 2.0 §4.1), not an error with
    // a null id nor an empty array (§6); and are not sent either.
    for body in [
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin_reset"}}"#,
        r#"[{"jsonrpc":"2.0","method":"tools/call","params":{"name":"admin_reset"}},{"jsonrpc":"2.0","method":"notifications/initialized"}]"#,
    ] {
        let a = send(raw(body).header("mcp-protocol-version", "2025-03-26")).await;
        assert_eq!(a.status, 202, "{body}: {}", a.text);
        assert_eq!(a.text, "", "{body}");
    }
    // `Mcp-Name`, every value of it.
    let a = send(
        raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}"#)
            .header("mcp-name", "echo")
            .header("mcp-name", "admin_reset"),
    )
    .await;
    assert_eq!(a.json["error"]["code"], -32001, "{}", a.text);
    // Headers that say `tools/call` of a refused tool, whatever the body.
    let a = send(
        raw(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "admin_reset"),
    )
    .await;
    assert_eq!(a.json["error"]["code"], -32001, "{}", a.text);
    assert_eq!(
        up.record.seen.lock().unwrap().len(),
        before,
        "no refused call reaches the upstream"
    );
    // `Mcp-Name` of another method names no tool.
    let a = send(
        raw(r#"{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"admin_reset"}}"#)
            .header("mcp-method", "prompts/get")
            .header("mcp-name", "admin_reset"),
    )
    .await;
    assert!(a.json.get("result").is_some(), "{}", a.text);
    // What the policy allows still goes through, as it was written.
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ech\u006f","arguments":{}}}"#;
    let a = send(raw(body)).await;
    assert_eq!(
        a.json["result"]["content"][0]["text"], "called echo",
        "{}",
        a.text
    );
    assert_eq!(up.seen("/mcp").last().unwrap().body, body.as_bytes());
    // Each refusal left its audit line, an unreadable name as `""`; the
    // allowed call's line is written when its answer has gone out.
    let audits = |log: &str| -> Vec<Value> {
        log.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "mcpgate::audit")
            .map(|v| v["fields"].clone())
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let audits = loop {
        let a = audits(&std::fs::read_to_string(s.log_path()).unwrap());
        if a.iter().any(|f| f["decision"] == "allowed") || std::time::Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let denied = |tool: &str| {
        audits
            .iter()
            .filter(|f| f["decision"] == "denied" && f["tool"] == tool)
            .count()
    };
    assert_eq!(denied(""), 3, "{audits:?}");
    assert!(denied("admin_reset") >= 3, "{audits:?}");
}

#[tokio::test]
async fn a_tool_list_is_cut_whatever_its_content_type_or_line_ends() {
    let up = TestUpstream::start().await;
    let s = start(
        &[
            stanza("plain", &up.url("/plain"), POLICY),
            stanza("cr", &up.url("/cr"), POLICY),
        ]
        .concat(),
        "",
    );
    for path in ["/mcp/plain", "/mcp/cr"] {
        let resource = format!("https://{INTERNAL}{path}");
        let plain = token_for(&s, INTERNAL, &resource, "eng@example.com").await;
        let a = send(mcp_to(&s, INTERNAL, path, access_token(&plain), &list())).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        assert!(a.text.contains("\"echo\""), "{path}: {}", a.text);
        assert!(
            !a.text.contains("admin_reset") && !a.text.contains("danger_drop"),
            "{path}: {}",
            a.text
        );
    }
}

#[tokio::test]
async fn audiences_stay_apart_between_mounts_and_mcp_with_one_resource_or_not() {
    let up = TestUpstream::start().await;
    let mounts = [
        stanza("jira", &up.url("/mcp"), ""),
        stanza("github", &up.url("/mcp"), ""),
    ]
    .concat();
    for one_resource in [true, false] {
        let s = start(&mounts, &format!("[mcp]\none_resource = {one_resource}\n"));
        let jira = token_for(&s, PUBLIC, &format!("https://{PUBLIC}/mcp/jira"), "").await;
        let own = token_for(&s, PUBLIC, &format!("https://{PUBLIC}/mcp"), "").await;
        let status = |token: String, host: &'static str, path: &'static str| {
            let req = mcp_to(&s, host, path, &token, &list());
            async move { send(req).await.status }
        };
        for host in [PUBLIC, INTERNAL] {
            // Another host takes a token only with `one_resource`.
            let here = host == PUBLIC || one_resource;
            let jira_t = access_token(&jira).to_owned();
            let own_t = access_token(&own).to_owned();
            let ok = |yes: bool| if yes { 200 } else { 401 };
            assert_eq!(
                status(jira_t.clone(), host, "/mcp/jira").await,
                ok(here),
                "{one_resource} {host}"
            );
            assert_eq!(
                status(jira_t.clone(), host, "/mcp/github").await,
                401,
                "{one_resource} {host}"
            );
            assert_eq!(
                status(jira_t, host, "/mcp").await,
                401,
                "{one_resource} {host}"
            );
            assert_eq!(
                status(own_t.clone(), host, "/mcp").await,
                ok(here),
                "{one_resource} {host}"
            );
            assert_eq!(
                status(own_t.clone(), host, "/mcp/jira").await,
                401,
                "{one_resource} {host}"
            );
            assert_eq!(
                status(own_t, host, "/mcp/github").await,
                401,
                "{one_resource} {host}"
            );
        }
        // The identity JWT the upstream received opens nothing here.
        let seen = up.seen("/mcp");
        let assertion = seen
            .last()
            .unwrap()
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned();
        for host in [PUBLIC, INTERNAL] {
            for path in ["/mcp", "/mcp/jira", "/mcp/github"] {
                assert_eq!(
                    status(assertion.clone(), host, path).await,
                    401,
                    "{host}{path}"
                );
            }
        }
    }
}

/// An HTTP/1.1 upstream written by hand, as a keep-alive server that
/// closes idle connections: it answers each request on a connection with
/// one JSON-RPC result, and closes a connection `idle` after its last
/// answer (Node's servers do so after 5 s). Counts the connections it
/// accepted.
async fn closing_upstream(
    idle: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: its head, then `Content-Length` bytes.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        let read = tokio::time::timeout(idle, conn.read(&mut chunk)).await;
                        match read {
                            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            // Idle too long, or the peer left: close.
                            _ => return,
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buf.len() < head_end + length {
                        let mut chunk = [0u8; 4096];
                        let n = conn.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    buf.drain(..head_end + length);
                    let body = r#"{"jsonrpc":"2.0","id":"c-1","result":{"content":[{"type":"text","text":"hi"}]}}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if conn.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn connections_to_an_upstream_are_reused_and_replaced_when_it_closes_them() {
    use std::sync::atomic::Ordering;
    let (addr, accepted) = closing_upstream(Duration::from_millis(300)).await;
    let s = start(&stanza("kept", &format!("http://{addr}/mcp"), ""), "");
    let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/kept"), "").await;
    let calls = |n| {
        let s = &s;
        let t = &t;
        async move {
            for _ in 0..n {
                let a = send(mcp_to(
                    s,
                    INTERNAL,
                    "/mcp/kept",
                    access_token(t),
                    &call("echo"),
                ))
                .await;
                assert_eq!(a.status, 200, "{}", a.text);
                assert_eq!(a.json["result"]["content"][0]["text"], "hi");
            }
        }
    };
    // One after another: one connection carries them all.
    calls(10).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one kept-alive connection"
    );
    // The upstream closes it while idle: the next call is not refused,
    // it goes on a new connection, which is kept again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    calls(5).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "a new connection, kept");
}

#[tokio::test]
async fn a_connection_idle_near_the_usual_keep_alive_is_not_reused() {
    use std::sync::atomic::Ordering;
    // An upstream that keeps connections a minute: mcpgate still drops one
    // idle for longer than 4 s, before a server with the usual 5 s
    // keep-alive (Node's, uvicorn's) would close it under a request.
    let (addr, accepted) = closing_upstream(Duration::from_secs(60)).await;
    let s = start(&stanza("kept", &format!("http://{addr}/mcp"), ""), "");
    let t = token_for(&s, INTERNAL, &format!("https://{INTERNAL}/mcp/kept"), "").await;
    let call_once = || async {
        let a = send(mcp_to(
            &s,
            INTERNAL,
            "/mcp/kept",
            access_token(&t),
            &call("echo"),
        ))
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
    };
    call_once().await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    call_once().await;
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "idle 2.5 s: reused");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    call_once().await;
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "idle 4.5 s: a new one");
}

/// Replicas share only the keys and the config: a token signed in on one
/// is served by every replica behind a balancer, the upstream gets the
/// same identity from each (verified with either replica's JWKS), the
/// policy holds on each, and each replica audits the calls it served.
#[tokio::test]
async fn replicas_behind_a_balancer_serve_one_mount_alike() {
    let up = TestUpstream::start().await;
    let keys = tempfile::tempdir().unwrap();
    generate_keys(keys.path());
    let url = up.url("/mcp");
    let extra = format!(
        "[log]\nformat = \"json\"\n\n{}",
        stanza(
            "echo",
            &url,
            &format!("forward_identity = \"jwt\"\n{POLICY}")
        )
    );
    let replicas: Vec<Server> = (0..2)
        .map(|_| Server::start_on_keys(keys.path(), |k| config(k, &extra)))
        .collect();
    let front = round_robin(replicas.iter().map(|r| r.addr).collect()).await;
    // A connection per request: requests alternate between the replicas.
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let tokens = token_for(
        &replicas[0],
        INTERNAL,
        &format!("https://{INTERNAL}/mcp/echo"),
        "eng@example.com",
    )
    .await;
    let token = access_token(&tokens);
    let post = |body: &Value| {
        http.post(format!("http://{}/mcp/echo", front.addr))
            .header("host", INTERNAL)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(body)
    };
    // Two of each in a row, twice: each replica serves one of each pair.
    for tool in ["echo", "echo", "admin_reset", "admin_reset"].repeat(2) {
        let a = send(post(&call(tool))).await;
        assert_eq!(a.status, 200, "{}", a.text);
        if tool == "echo" {
            assert_eq!(a.json["result"]["content"][0]["text"], "called echo");
        } else {
            assert_eq!(a.json["error"]["code"], -32001, "{}", a.text);
        }
    }
    let seen = up.seen("/mcp");
    assert_eq!(seen.len(), 4, "refused calls never reach the upstream");
    for s in &seen {
        let auth = s.headers["authorization"].to_str().unwrap();
        let jwt = auth.strip_prefix("Bearer ").unwrap();
        for r in &replicas {
            let claims = verify_with_jwks(r, jwt).await;
            assert_eq!(claims["iss"], format!("https://{INTERNAL}"));
            assert_eq!(claims["aud"], url);
            assert_eq!(claims["sub"], ALICE);
            assert_eq!(claims["client_id"], tokens["client_id"]);
        }
    }
    // Each replica's own audit lines: an allowed and a denied call each.
    let audits = |r: &Server| -> Vec<Value> {
        std::fs::read_to_string(r.log_path())
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "mcpgate::audit")
            .collect()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while replicas.iter().map(|r| audits(r).len()).sum::<usize>() < 8
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in &replicas {
        let lines = audits(r);
        let decided = |d: &str| {
            lines
                .iter()
                .filter(|a| a["fields"]["decision"] == d)
                .count()
        };
        assert_eq!(
            (decided("allowed"), decided("denied")),
            (2, 2),
            "each replica audits what it served: {lines:?}"
        );
    }
}

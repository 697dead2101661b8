//! An upstream written with FastMCP (tests/python/identity_upstream.py)
//! behind mcpgate: it verifies the identity JWT it receives against
//! mcpgate's JWKS with PyJWT, as the README shows, and answers the claims
//! it verified. Needs the Python environment `.ci/run` makes
//! (`target/py-venv`, tests/python/requirements.txt) or
//! `MCPGATE_TEST_PYTHON`; fails, never skips, without it.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

fn python() -> String {
    if let Ok(p) = std::env::var("MCPGATE_TEST_PYTHON") {
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/target/py-venv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "no Python environment for the FastMCP upstream at {venv}: run .ci/run (or \
         python3 -m venv target/py-venv && target/py-venv/bin/pip install -r tests/python/requirements.txt), \
         or set MCPGATE_TEST_PYTHON"
    );
    venv.to_owned()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The JSON-RPC message of an answer, JSON or SSE.
fn message(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str(text) {
        return v;
    }
    let data: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:").map(str::trim_start))
        .collect();
    serde_json::from_str(data.last().expect("an SSE data line")).unwrap()
}

#[tokio::test]
async fn a_fastmcp_upstream_verifies_the_identity_jwt_with_mcpgates_jwks() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let s = Server::start(&format!(
        "[[upstreams]]\nname = \"py\"\nurl = \"{url}\"\nforward_identity = \"jwt\"\n"
    ));
    let _upstream = Killed(
        Command::new(python())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/python/identity_upstream.py"
            ))
            .env("PORT", port.to_string())
            .env("UPSTREAM_URL", &url)
            .env("MCPGATE_JWKS", s.url("/.well-known/jwks.json"))
            .env("MCPGATE_HOST", INTERNAL)
            .env(
                "MCPGATE_ISSUERS",
                format!("https://{INTERNAL},https://{PUBLIC}"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the FastMCP upstream"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the FastMCP upstream did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sign in for the mount, in groups.
    let redirect = "http://127.0.0.1:33418/callback";
    let client_id = s.register_client(INTERNAL, &[redirect]).await;
    let c = challenge(VERIFIER);
    let r = s
        .get(INTERNAL, "/oauth/authorize")
        .query(&[
            ("response_type", "code"),
            ("client_id", client_id.as_str()),
            ("redirect_uri", redirect),
            ("code_challenge", c.as_str()),
            ("code_challenge_method", "S256"),
            ("resource", &format!("https://{INTERNAL}/mcp/py")),
        ])
        .header("x-forwarded-email", ALICE)
        .header("x-forwarded-groups", "eng@example.com")
        .send()
        .await
        .unwrap();
    let code = query_param(&location(&r), "code").unwrap();
    let tokens = s.exchange(INTERNAL, &client_id, &code, redirect).await;
    let token = access_token(&tokens);

    // A session with the upstream, through mcpgate (Mcp-Session-Id both ways).
    let post = |body: Value, session: Option<&str>| {
        let mut r = s
            .post(INTERNAL, "/mcp/py")
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("cookie", "sid=secret")
            .header("x-forwarded-email", "mallory@example.com")
            .json(&body);
        if let Some(id) = session {
            r = r
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-06-18");
        }
        r
    };
    let init = send(post(
        json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}),
        None,
    ))
    .await;
    assert_eq!(init.status, 200, "{}", init.text);
    let session = init
        .header("mcp-session-id")
        .expect("FastMCP's session id")
        .to_owned();
    let n = send(post(
        json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
        Some(&session),
    ))
    .await;
    assert_eq!(n.status, 202, "{}", n.text);
    let a = send(post(
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}),
        Some(&session),
    ))
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let m = message(&a.text);
    assert_ne!(
        m["result"]["isError"], true,
        "the upstream refused the JWT: {m}"
    );
    let answer = &m["result"]["structuredContent"];
    let claims = &answer["claims"];
    assert_eq!(claims["aud"], url);
    assert_eq!(claims["iss"], format!("https://{INTERNAL}"));
    assert_eq!(claims["email"], ALICE);
    assert_eq!(claims["sub"], ALICE);
    assert_eq!(claims["groups"], json!(["eng@example.com"]));
    assert_eq!(claims["client_id"], client_id);
    assert_eq!(answer["leaked_headers"], json!([]));
}

//! CORS: browser-based clients (MCP Inspector, web apps) can discover,
//! register and exchange codes; `/oauth/authorize` never answers a fetch;
//! `/mcp` only for allowlisted origins.

mod common;

use common::*;
use serde_json::json;

const INSPECTOR: &str = "http://localhost:6274";

#[tokio::test]
async fn discovery_registration_and_token_allow_any_origin_without_credentials() {
    let s = Server::start("");
    for path in [
        "/oauth/register",
        "/oauth/token",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
    ] {
        let r = s
            .http
            .request(reqwest::Method::OPTIONS, s.url(path))
            .header("host", INTERNAL)
            .header("origin", INSPECTOR)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "{path}");
        assert_eq!(r.headers()["access-control-allow-origin"], "*", "{path}");
        let allowed = r.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{path}: {allowed}"
        );
        assert!(r
            .headers()
            .get("access-control-allow-credentials")
            .is_none());
    }
    let r = s
        .post(INTERNAL, "/oauth/register")
        .header("origin", INSPECTOR)
        .json(&json!({"redirect_uris": ["http://localhost:6274/oauth/callback"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
}

#[tokio::test]
async fn authorize_never_answers_cross_origin_fetches() {
    let s = Server::start("");
    let r = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/oauth/authorize"))
        .header("host", INTERNAL)
        .header("origin", INSPECTOR)
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = s
        .get(INTERNAL, "/oauth/authorize")
        .header("origin", INSPECTOR)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn mcp_answers_allowlisted_origins_only() {
    let s = Server::start(&format!("\n[mcp]\nallowed_origins = [\"{INSPECTOR}\"]\n"));
    let (_, tokens) = s.public_flow(INTERNAL, "http://127.0.0.1:9/cb").await;
    let at = access_token(&tokens);
    let call = |origin: &'static str| {
        s.post(INTERNAL, "/mcp")
            .header("origin", origin)
            .bearer_auth(at)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}))
            .send()
    };
    let r = call(INSPECTOR).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], INSPECTOR);
    let r = call("https://evil.example").await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // The issuer's own origin is always allowed.
    let r = call("https://mcp.internal.example").await.unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .http
        .request(reqwest::Method::OPTIONS, s.url("/mcp"))
        .header("host", INTERNAL)
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

//! What a refusal must look like, and the requests the refusal tests
//! (tests/refusals_*.rs) build. Every row there asserts the exact HTTP
//! status and error code (OAuth `error`, `WWW-Authenticate` error or
//! JSON-RPC code), that nothing was minted (no `code` in a redirect, no
//! token or client id in a body, no sealed or signed blob anywhere in the
//! answer), and every test ends by checking the server is still healthy:
//! `GET /healthz` is 200 and a normal register → authorize → token → `/mcp`
//! flow still works.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{json, Value};

use super::*;

pub const LOOPBACK_CB: &str = "http://127.0.0.1:9/cb";
pub const STATE: &str = "st-1";

// ---------------------------------------------------------------------------
// Answers and what a refusal must look like
// ---------------------------------------------------------------------------

impl Answer {
    /// No credential of any kind in the answer.
    pub fn nothing_minted(&self, case: &str) {
        for k in [
            "access_token",
            "refresh_token",
            "id_token",
            "code",
            "client_id",
        ] {
            assert!(
                self.json.get(k).is_none(),
                "{case}: `{k}` in the body: {}",
                self.text
            );
        }
        // Every sealed blob and every JWS of this server starts with `eyJ`
        // (base64url of `{"`).
        assert!(
            !self.text.contains("eyJ"),
            "{case}: a JOSE object in the body: {}",
            self.text
        );
        if let Some(loc) = self.header("location") {
            assert!(
                query_param(loc, "code").is_none(),
                "{case}: a code in {loc}"
            );
        }
    }

    /// An RFC 6749 §5.2 JSON error, answered directly (no redirect).
    pub fn json_error(&self, case: &str, status: u16, error: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(error)),
            "{case}: {}",
            self.text
        );
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{case}: content-type {:?}",
            self.header("content-type")
        );
        assert!(
            self.header("location").is_none(),
            "{case}: redirected to {:?}",
            self.header("location")
        );
        self.nothing_minted(case);
    }

    /// An error page for a person in the browser: never a redirect.
    pub fn page_error(&self, case: &str, status: u16, error: &str) {
        assert_eq!(self.status, status, "{case}: {}", self.text);
        assert!(
            self.header("content-type")
                .is_some_and(|c| c.starts_with("text/html")),
            "{case}: content-type {:?}",
            self.header("content-type")
        );
        assert!(
            self.text.contains(&format!("<code>{error}</code>")),
            "{case}: {error} not on the page: {}",
            self.text
        );
        assert!(self.header("location").is_none(), "{case}: redirected");
        assert_eq!(self.header("x-frame-options"), Some("DENY"), "{case}");
        // The person can quote the request to whoever runs the service.
        let id = self
            .header("x-request-id")
            .expect("every answer has a request id");
        assert!(
            self.text
                .contains(&format!("Request <code>{id}</code> at 20")),
            "{case}: the page does not name request {id}: {}",
            self.text
        );
        self.nothing_minted(case);
    }

    /// RFC 6749 §4.1.2.1 error redirect with `state` and the RFC 9207 `iss`.
    pub fn redirect_error(&self, case: &str, redirect_uri: &str, error: &str, issuer: &str) {
        assert_eq!(self.status, 302, "{case}: {}", self.text);
        let loc = self.header("location").expect("a Location header");
        assert!(
            loc.starts_with(&format!("{redirect_uri}?")),
            "{case}: redirected to {loc}"
        );
        assert_eq!(query_param(loc, "error").as_deref(), Some(error), "{case}");
        assert_eq!(query_param(loc, "state").as_deref(), Some(STATE), "{case}");
        assert_eq!(query_param(loc, "iss").as_deref(), Some(issuer), "{case}");
        self.nothing_minted(case);
    }

    /// RFC 6750 §3: a refusal at `/mcp` with its `WWW-Authenticate` error.
    pub fn bearer_error(&self, case: &str, status: u16, error: &str, host: &str) {
        assert_eq!(self.status, status, "{case}: {}", self.text);
        let challenge = self.header("www-authenticate").unwrap_or_default();
        assert!(challenge.starts_with("Bearer "), "{case}: {challenge}");
        assert!(
            challenge.contains(&format!("error=\"{error}\"")),
            "{case}: {challenge}"
        );
        assert!(
            challenge.contains(&format!(
                "resource_metadata=\"https://{host}/.well-known/oauth-protected-resource/mcp\""
            )),
            "{case}: {challenge}"
        );
        assert_eq!(self.json["error"], error, "{case}: {}", self.text);
        assert!(self.json.get("result").is_none(), "{case}: served");
        self.nothing_minted(case);
    }

    /// A 302 that carries a code.
    pub fn code(&self, case: &str) -> String {
        assert_eq!(self.status, 302, "{case}: {}", self.text);
        let loc = self.header("location").expect("a Location header");
        query_param(loc, "code").unwrap_or_else(|| panic!("{case}: no code in {loc}"))
    }
}

/// The server answers its health check and a whole normal flow still works.
pub async fn assert_still_healthy(s: &Server) {
    let r = s.http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let (client_id, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let (status, body) = s.whoami(INTERNAL, access_token(&tokens)).await;
    assert_eq!(status, 200, "{body}");
    let who = &body["result"]["structuredContent"];
    assert_eq!(who["email"], ALICE);
    assert_eq!(who["client_id"], client_id);
}

// ---------------------------------------------------------------------------
// Request helpers
// ---------------------------------------------------------------------------

pub type Pairs = Vec<(&'static str, String)>;

/// A correct PKCE authorization request.
pub fn pkce_request(client_id: &str, redirect_uri: &str) -> Pairs {
    vec![
        ("response_type", "code".into()),
        ("client_id", client_id.into()),
        ("redirect_uri", redirect_uri.into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
        ("state", STATE.into()),
    ]
}

/// `pairs` with `name` replaced by `value` (removed for `None`; appended
/// when absent).
pub fn with(mut pairs: Pairs, name: &'static str, value: Option<&str>) -> Pairs {
    let at = pairs.iter().position(|(k, _)| *k == name);
    match (at, value) {
        (Some(i), Some(v)) => pairs[i].1 = v.into(),
        (Some(i), None) => {
            pairs.remove(i);
        }
        (None, Some(v)) => pairs.push((name, v.into())),
        (None, None) => {}
    }
    pairs
}

/// `pairs` with another `name=value` appended, so `name` repeats.
pub fn also(mut pairs: Pairs, name: &'static str, value: &str) -> Pairs {
    pairs.push((name, value.into()));
    pairs
}

/// `GET /oauth/authorize` as the proxy forwards it, `email` in
/// `X-Forwarded-Email`.
pub fn authorize_req(
    s: &Server,
    host: &str,
    params: &Pairs,
    email: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut req = s.get(host, "/oauth/authorize").query(params);
    if let Some(e) = email {
        req = req.header("x-forwarded-email", e);
    }
    req
}

/// The token request that redeems a PKCE code correctly.
pub fn redeem_form(client_id: &str, code: &str, redirect_uri: &str) -> Pairs {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("client_id", client_id.into()),
        ("redirect_uri", redirect_uri.into()),
        ("code_verifier", VERIFIER.into()),
    ]
}

pub fn token_req(s: &Server, host: &str, form: &Pairs) -> reqwest::RequestBuilder {
    s.post(host, "/oauth/token").form(form)
}

pub async fn redeem_ok(s: &Server, host: &str, form: &Pairs) -> Value {
    let a = send(token_req(s, host, form)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json["access_token"].is_string());
    a.json
}

pub async fn mcp_with(s: &Server, host: &str, token: &str) -> Answer {
    send(
        s.post(host, "/mcp")
            .header("accept", "application/json, text/event-stream")
            .bearer_auth(token)
            .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}})),
    )
    .await
}

/// Flips one character in the middle of the ciphertext of a sealed blob
/// (the 4th of its 5 parts), where every bit counts.
pub fn tamper_sealed(blob: &str) -> String {
    let mut parts: Vec<String> = blob.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 5, "a JWE compact serialization");
    let mut ct = parts[3].clone().into_bytes();
    let i = ct.len() / 2;
    ct[i] = if ct[i] == b'A' { b'B' } else { b'A' };
    parts[3] = String::from_utf8(ct).unwrap();
    parts.join(".")
}

/// A registered public client on the internal host and a fresh code for it.
pub async fn client_and_code(s: &Server) -> (String, String) {
    let client_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK_CB).await;
    (client_id, code)
}

/// Sends `head`, then as much of `body` as the server takes, then reads the
/// whole answer (`connection: close`).
pub async fn raw_http(addr: std::net::SocketAddr, head: &[u8], body: &[u8]) -> Answer {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(head).await.unwrap();
    // The server may answer and close before taking it all.
    let _ = tcp.write_all(body).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, text) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {raw:?}"));
    let mut headers = HeaderMap::new();
    for line in head.lines().skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()).unwrap(),
                HeaderValue::from_str(v.trim()).unwrap(),
            );
        }
    }
    Answer {
        status,
        headers,
        text: text.to_owned(),
        json: serde_json::from_str(text).unwrap_or(Value::Null),
    }
}

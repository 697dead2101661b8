//! Refusals: one table row per attack, against the real binary over real
//! HTTP. Every row asserts the exact HTTP status and error code (OAuth
//! `error`, `WWW-Authenticate` error or JSON-RPC code), that nothing was
//! minted (no `code` in a redirect, no token or client id in a body, no
//! sealed or signed blob anywhere in the answer), and every test ends by
//! checking the server is still healthy: `GET /healthz` is 200 and a normal
//! register → authorize → token → `/mcp` flow still works.

mod common;

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use reqwest::header::{HeaderMap, HeaderValue};
use ring::signature::KeyPair as _;
use serde_json::{json, Value};

const LOOPBACK_CB: &str = "http://127.0.0.1:9/cb";
const STATE: &str = "st-1";
const ALICE: &str = "alice@example.com";

// ---------------------------------------------------------------------------
// Answers and what a refusal must look like
// ---------------------------------------------------------------------------

/// Everything about one HTTP answer.
struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    json: Value,
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// No credential of any kind in the answer.
    fn nothing_minted(&self, case: &str) {
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
    fn json_error(&self, case: &str, status: u16, error: &str) {
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
    fn page_error(&self, case: &str, status: u16, error: &str) {
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
        self.nothing_minted(case);
    }

    /// RFC 6749 §4.1.2.1 error redirect with `state` and the RFC 9207 `iss`.
    fn redirect_error(&self, case: &str, redirect_uri: &str, error: &str, issuer: &str) {
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
    fn bearer_error(&self, case: &str, status: u16, error: &str, host: &str) {
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
    fn code(&self, case: &str) -> String {
        assert_eq!(self.status, 302, "{case}: {}", self.text);
        let loc = self.header("location").expect("a Location header");
        query_param(loc, "code").unwrap_or_else(|| panic!("{case}: no code in {loc}"))
    }
}

/// The server answers its health check and a whole normal flow still works.
async fn assert_still_healthy(s: &Server) {
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

type Pairs = Vec<(&'static str, String)>;

/// A correct PKCE authorization request.
fn pkce_request(client_id: &str, redirect_uri: &str) -> Pairs {
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
fn with(mut pairs: Pairs, name: &'static str, value: Option<&str>) -> Pairs {
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
fn also(mut pairs: Pairs, name: &'static str, value: &str) -> Pairs {
    pairs.push((name, value.into()));
    pairs
}

/// `GET /oauth/authorize` as the proxy forwards it, `email` in
/// `X-Forwarded-Email`.
fn authorize_req(
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
fn redeem_form(client_id: &str, code: &str, redirect_uri: &str) -> Pairs {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("client_id", client_id.into()),
        ("redirect_uri", redirect_uri.into()),
        ("code_verifier", VERIFIER.into()),
    ]
}

fn token_req(s: &Server, host: &str, form: &Pairs) -> reqwest::RequestBuilder {
    s.post(host, "/oauth/token").form(form)
}

async fn redeem_ok(s: &Server, host: &str, form: &Pairs) -> Value {
    let a = send(token_req(s, host, form)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.json["access_token"].is_string());
    a.json
}

async fn mcp_with(s: &Server, host: &str, token: &str) -> Answer {
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
fn tamper_sealed(blob: &str) -> String {
    let mut parts: Vec<String> = blob.split('.').map(str::to_owned).collect();
    assert_eq!(parts.len(), 5, "a JWE compact serialization");
    let mut ct = parts[3].clone().into_bytes();
    let i = ct.len() / 2;
    ct[i] = if ct[i] == b'A' { b'B' } else { b'A' };
    parts[3] = String::from_utf8(ct).unwrap();
    parts.join(".")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn b64json(v: &Value) -> String {
    b64(v.to_string().as_bytes())
}

/// A compact JWS of `header` and `claims`, signed by `sign` over the
/// signing input.
fn jws(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!("{}.{}", b64json(header), b64json(claims));
    let sig = sign(input.as_bytes());
    format!("{input}.{}", b64(&sig))
}

/// The server's own Ed25519 signing key, read from its keys directory: the
/// only way a test can make a token the server's signature check accepts,
/// so that the checks after the signature can be reached.
fn server_signing_key(keys: &Path) -> (String, ring::signature::Ed25519KeyPair) {
    for entry in std::fs::read_dir(keys).unwrap() {
        let path = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(jwk) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if jwk["kind"] != "signing" {
            continue;
        }
        let d = URL_SAFE_NO_PAD.decode(jwk["d"].as_str().unwrap()).unwrap();
        let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
        let pair = ring::signature::Ed25519KeyPair::from_seed_and_public_key(&d, &x).unwrap();
        return (jwk["kid"].as_str().unwrap().to_owned(), pair);
    }
    panic!("no signing key in {}", keys.display());
}

/// A key the attacker made.
fn attacker_key() -> ring::signature::Ed25519KeyPair {
    let doc =
        ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
    ring::signature::Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A registered public client on the internal host and a fresh code for it.
async fn client_and_code(s: &Server) -> (String, String) {
    let client_id = s.register_client(INTERNAL, &[LOOPBACK_CB]).await;
    let code = s.code_for(INTERNAL, &client_id, LOOPBACK_CB).await;
    (client_id, code)
}

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
            "the issuer as resource",
            with(good(), "resource", Some("https://mcp.example.com")),
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
// /mcp: forged and foreign bearer tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn forged_access_tokens_are_refused() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let genuine = access_token(&tokens).to_owned();
    let header = jwt_header(&genuine);
    let claims = jwt_payload(&genuine);
    let jwks: Value = s
        .get(INTERNAL, "/.well-known/jwks.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    assert_eq!(header["kid"], kid);
    let public_x = jwk["x"].as_str().unwrap();
    let public_bytes = URL_SAFE_NO_PAD.decode(public_x).unwrap();
    let genuine_sig = genuine.rsplit('.').next().unwrap().to_owned();
    let attacker = attacker_key();
    let attacker_jwk =
        json!({"kty":"OKP","crv":"Ed25519","x": b64(attacker.public_key().as_ref()),"kid":"evil"});
    let by_attacker = |h: Value| jws(&h, &claims, |m| attacker.sign(m).as_ref().to_vec());
    let hmac = |h: Value, key: &[u8]| {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
        jws(&h, &claims, |m| ring::hmac::sign(&key, m).as_ref().to_vec())
    };
    let unsigned = |alg: &str, sig: &str| {
        format!(
            "{}.{}.{sig}",
            b64json(&json!({"alg": alg, "typ": "at+jwt", "kid": kid})),
            b64json(&claims)
        )
    };
    let edited = |f: &dyn Fn(&mut Value)| -> String {
        let mut c = claims.clone();
        f(&mut c);
        format!("{}.{}.{genuine_sig}", b64json(&header), b64json(&c))
    };

    let rows: Vec<(&str, String)> = vec![
        ("alg none", unsigned("none", "")),
        ("alg None", unsigned("None", "")),
        ("alg NONE", unsigned("NONE", "")),
        ("alg nOnE", unsigned("nOnE", "")),
        (
            "alg none with the genuine signature",
            unsigned("none", &genuine_sig),
        ),
        ("alg missing", {
            format!(
                "{}.{}.{genuine_sig}",
                b64json(&json!({"typ": "at+jwt", "kid": kid})),
                b64json(&claims)
            )
        }),
        (
            "HS256 keyed with the public key bytes",
            hmac(
                json!({"alg":"HS256","typ":"at+jwt","kid":kid}),
                &public_bytes,
            ),
        ),
        (
            "HS256 keyed with the public key's base64url text",
            hmac(
                json!({"alg":"HS256","typ":"at+jwt","kid":kid}),
                public_x.as_bytes(),
            ),
        ),
        (
            "HS256 keyed with the JWKS document",
            hmac(
                json!({"alg":"HS256","typ":"at+jwt","kid":kid}),
                jwks.to_string().as_bytes(),
            ),
        ),
        ("HS512 keyed with the public key bytes", {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA512, &public_bytes);
            jws(
                &json!({"alg":"HS512","typ":"at+jwt","kid":kid}),
                &claims,
                |m| ring::hmac::sign(&key, m).as_ref().to_vec(),
            )
        }),
        (
            "kid path injection",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":"../../etc/passwd"})),
        ),
        (
            "kid pointing at a key file",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":format!("../keys/{kid}.json")})),
        ),
        (
            "kid /dev/null",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":"/dev/null"})),
        ),
        (
            "kid SQL-ish",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":"' OR '1'='1"})),
        ),
        (
            "empty kid",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":""})),
        ),
        ("no kid", by_attacker(json!({"alg":"EdDSA","typ":"at+jwt"}))),
        (
            "jku pointing elsewhere, attacker's kid",
            by_attacker(
                json!({"alg":"EdDSA","typ":"at+jwt","kid":"evil","jku":"https://evil.example/jwks.json"}),
            ),
        ),
        (
            "jku pointing elsewhere, the server's kid",
            by_attacker(
                json!({"alg":"EdDSA","typ":"at+jwt","kid":kid,"jku":"https://evil.example/jwks.json"}),
            ),
        ),
        (
            "embedded jwk, attacker's kid",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":"evil","jwk":attacker_jwk})),
        ),
        (
            "embedded jwk, the server's kid",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":kid,"jwk":attacker_jwk})),
        ),
        (
            "x5u pointing elsewhere",
            by_attacker(
                json!({"alg":"EdDSA","typ":"at+jwt","kid":kid,"x5u":"https://evil.example/cert.pem"}),
            ),
        ),
        (
            "crit header",
            by_attacker(json!({"alg":"EdDSA","typ":"at+jwt","kid":kid,"crit":["exp"],"exp":1})),
        ),
        (
            "payload edited: email",
            edited(&|c: &mut Value| c["email"] = json!("mallory@example.com")),
        ),
        (
            "payload edited: sub",
            edited(&|c: &mut Value| c["sub"] = json!("mallory")),
        ),
        (
            "payload edited: exp",
            edited(&|c: &mut Value| c["exp"] = json!(4_102_444_800u64)),
        ),
        (
            "payload edited: scope",
            edited(&|c: &mut Value| c["scope"] = json!("mcp admin")),
        ),
        ("signature removed", {
            let (signed, _) = genuine.rsplit_once('.').unwrap();
            format!("{signed}.")
        }),
        (
            "signature truncated",
            genuine[..genuine.len() - 4].to_owned(),
        ),
        ("header edited: typ JWT", {
            let mut h = header.clone();
            h["typ"] = json!("JWT");
            format!("{}.{}.{genuine_sig}", b64json(&h), b64json(&claims))
        }),
        ("four parts", format!("{genuine}.AAAA")),
        ("garbage", "not-a-token".to_owned()),
        ("oversized", format!("{genuine}{}", "A".repeat(10_000))),
    ];
    for (case, token) in rows {
        mcp_with(&s, INTERNAL, &token)
            .await
            .bearer_error(case, 401, "invalid_token", INTERNAL);
    }
    // Control: the genuine token still works.
    assert_eq!(mcp_with(&s, INTERNAL, &genuine).await.status, 200);
    assert_still_healthy(&s).await;
}

/// Tokens signed with the server's own key (read from its keys directory),
/// so the signature verifies and only the checks after it can refuse them.
#[tokio::test]
async fn validly_signed_tokens_with_wrong_claims_or_headers_are_refused() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let genuine = access_token(&tokens).to_owned();
    let header = jwt_header(&genuine);
    let claims = jwt_payload(&genuine);
    let (kid, key) = server_signing_key(&s.keys_dir());
    assert_eq!(header["kid"], kid.as_str());
    let sign = |h: &Value, c: &Value| jws(h, c, |m| key.sign(m).as_ref().to_vec());
    let claim = |name: &str, v: Value| {
        let mut c = claims.clone();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(name);
        } else {
            c[name] = v;
        }
        sign(&header, &c)
    };
    let head = |name: &str, v: Value| {
        let mut h = header.clone();
        if v.is_null() {
            h.as_object_mut().unwrap().remove(name);
        } else {
            h[name] = v;
        }
        sign(&h, &claims)
    };
    let now = unix_now();

    // Control: re-signing the genuine header and claims is accepted, so the
    // signing here is what the server does.
    assert_eq!(
        mcp_with(&s, INTERNAL, &sign(&header, &claims)).await.status,
        200
    );

    let rows: Vec<(&str, String)> = vec![
        ("typ JWT", head("typ", json!("JWT"))),
        ("no typ", head("typ", Value::Null)),
        ("crit not an array", head("crit", json!("exp"))),
        ("crit with a non-string member", head("crit", json!([1]))),
        (
            "crit with an unknown extension",
            head("crit", json!(["exp"])),
        ),
        ("crit b64", {
            let mut h = header.clone();
            h["crit"] = json!(["b64"]);
            h["b64"] = json!(false);
            sign(&h, &claims)
        }),
        (
            "aud of another server",
            claim("aud", json!("https://other.example/mcp")),
        ),
        (
            "aud next to ours",
            claim("aud", json!("https://mcp.example.com/mcp-other")),
        ),
        (
            "aud is the issuer",
            claim("aud", json!("https://mcp.example.com")),
        ),
        ("no aud", claim("aud", Value::Null)),
        (
            "iss of another server",
            claim("iss", json!("https://other.example")),
        ),
        (
            "iss with a trailing slash",
            claim("iss", json!(format!("https://{INTERNAL}/"))),
        ),
        ("no iss", claim("iss", Value::Null)),
        ("expired", claim("exp", json!(now - 3600))),
        ("no exp", claim("exp", Value::Null)),
        ("not valid yet", claim("nbf", json!(now + 3600))),
        (
            "exp as a string",
            claim("exp", json!((now + 3600).to_string())),
        ),
    ];
    for (case, token) in rows {
        mcp_with(&s, INTERNAL, &token)
            .await
            .bearer_error(case, 401, "invalid_token", INTERNAL);
    }
    // A valid token without the mcp scope (RFC 6750 §3.1).
    mcp_with(&s, INTERNAL, &claim("scope", json!("offline_access")))
        .await
        .bearer_error("no mcp scope", 403, "insufficient_scope", INTERNAL);
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn a_token_minted_for_another_server_on_the_same_keys_is_refused() {
    let s = Server::start("");
    // Another deployment sharing the keys directory but with another host:
    // its tokens say iss https://other.example, aud https://other.example/mcp.
    let other = Server::start_on_keys(&s.keys_dir(), |keys| {
        format!(
            r#"listen = "127.0.0.1:0"

[[hosts]]
issuer = "https://other.example"
redirect_uris = ["loopback"]

[identity]
source = "proxy"
allowed_domains = ["example.com"]
trusted_proxies = ["127.0.0.1/32", "::1/128"]
consent = "never"

[keys]
dir = "{}"
"#,
            keys.display()
        )
    });
    let (_, foreign) = other.public_flow("other.example", LOOPBACK_CB).await;
    let foreign = access_token(&foreign);
    let claims = jwt_payload(foreign);
    assert_eq!(claims["iss"], "https://other.example");
    assert_eq!(claims["aud"], "https://other.example/mcp");
    // Control: the other server accepts it, and the signature is one the
    // first server would verify (same key).
    assert_eq!(other.whoami("other.example", foreign).await.0, 200);
    assert_eq!(
        jwt_header(foreign)["kid"],
        jwt_header(access_token(&s.public_flow(INTERNAL, LOOPBACK_CB).await.1))["kid"]
    );
    for host in [INTERNAL, PUBLIC] {
        mcp_with(&s, host, foreign).await.bearer_error(
            &format!("another server's token on {host}"),
            401,
            "invalid_token",
            host,
        );
    }
    // And the other way round.
    let (_, ours) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    mcp_with(&other, "other.example", access_token(&ours))
        .await
        .bearer_error(
            "our token on the other server",
            401,
            "invalid_token",
            "other.example",
        );
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn bearer_tokens_are_accepted_in_the_authorization_header_only() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let at = access_token(&tokens).to_owned();
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}});
    let a = send(
        s.post(INTERNAL, "/mcp")
            .query(&[("access_token", &at)])
            .json(&call),
    )
    .await;
    a.bearer_error(
        "token in the query string",
        400,
        "invalid_request",
        INTERNAL,
    );
    let a = send(
        s.post(INTERNAL, "/mcp")
            .query(&[("access_token", &at)])
            .bearer_auth(&at)
            .json(&call),
    )
    .await;
    a.bearer_error(
        "token in the query string and the header",
        400,
        "invalid_request",
        INTERNAL,
    );
    let a = send(
        s.post(INTERNAL, "/mcp")
            .bearer_auth(&at)
            .header("authorization", format!("Bearer {at}"))
            .json(&call),
    )
    .await;
    a.bearer_error(
        "two Authorization headers",
        400,
        "invalid_request",
        INTERNAL,
    );
    // RFC 6750 §2.2 form body: not a supported method, so no credentials.
    let a = send(s.post(INTERNAL, "/mcp").form(&[("access_token", &at)])).await;
    assert_eq!(a.status, 401, "token in a form body: {}", a.text);
    assert!(a.json.get("result").is_none());
    a.nothing_minted("token in a form body");
    assert_still_healthy(&s).await;
}

// ---------------------------------------------------------------------------
// Hosts
// ---------------------------------------------------------------------------

#[tokio::test]
async fn unknown_hosts_are_misdirected_and_untrusted_forwarded_hosts_ignored() {
    let s = Server::start("");
    let (client_id, code) = client_and_code(&s).await;
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let at = access_token(&tokens).to_owned();
    for host in [
        "evil.example",
        "mcp.example.com.evil.example",
        "mcp.example.com:8443",
        "127.0.0.1",
    ] {
        let mut rows: Vec<(String, reqwest::RequestBuilder)> = Vec::new();
        for path in [
            "/.well-known/oauth-authorization-server",
            "/.well-known/openid-configuration",
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/jwks.json",
        ] {
            rows.push((format!("GET {path}"), s.get(host, path)));
        }
        rows.push((
            "register".into(),
            s.post(host, "/oauth/register")
                .json(&json!({"redirect_uris":[LOOPBACK_CB]})),
        ));
        rows.push((
            "authorize".into(),
            authorize_req(
                &s,
                host,
                &pkce_request(&client_id, LOOPBACK_CB),
                Some(ALICE),
            ),
        ));
        rows.push((
            "token".into(),
            token_req(&s, host, &redeem_form(&client_id, &code, LOOPBACK_CB)),
        ));
        rows.push((
            "mcp".into(),
            s.post(host, "/mcp")
                .bearer_auth(&at)
                .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/list"})),
        ));
        for (case, req) in rows {
            send(req)
                .await
                .json_error(&format!("{case} on {host}"), 421, "invalid_request");
        }
    }

    // X-Forwarded-Host counts only from a trusted proxy.
    let untrusted = client_from("127.0.0.3".parse().unwrap());
    let metadata = |c: &reqwest::Client, host: &str, forwarded: &str| {
        c.get(s.url("/.well-known/oauth-authorization-server"))
            .header("host", host)
            .header("x-forwarded-host", forwarded)
            .header("x-forwarded-proto", "https")
    };
    let a = send(metadata(&untrusted, "evil.example", PUBLIC)).await;
    a.json_error(
        "unknown Host, forwarded host from an untrusted peer",
        421,
        "invalid_request",
    );
    let a = send(metadata(&untrusted, PUBLIC, "evil.example")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.json["issuer"],
        format!("https://{PUBLIC}"),
        "an untrusted X-Forwarded-Host is ignored"
    );
    let a = send(metadata(&untrusted, PUBLIC, INTERNAL)).await;
    assert_eq!(a.json["issuer"], format!("https://{PUBLIC}"));
    // Control: from the trusted proxy it picks the host.
    let a = send(metadata(&s.http, PUBLIC, INTERNAL)).await;
    assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
    let a = send(metadata(&s.http, PUBLIC, "evil.example")).await;
    a.json_error(
        "trusted proxy forwarding an unknown host",
        421,
        "invalid_request",
    );

    // The code refused on the unknown hosts was not burned.
    redeem_ok(&s, INTERNAL, &redeem_form(&client_id, &code, LOOPBACK_CB)).await;
    assert_still_healthy(&s).await;
}

/// A raw HTTP request for the metadata document: `request_line`, then
/// `headers` (each a whole line), then `Connection: close`.
async fn raw_metadata(s: &Server, request_line: &str, headers: &[&str]) -> Answer {
    let mut head = format!("{request_line}\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    raw_http(s.addr, head.as_bytes(), b"").await
}

const METADATA_H11: &str = "GET /.well-known/oauth-authorization-server HTTP/1.1";

#[tokio::test]
async fn two_host_headers_are_a_bad_request() {
    let s = Server::start("");
    // RFC 9112 §3.2: more than one Host field line is answered 400, not
    // served as whichever came first.
    for (first, second) in [
        (INTERNAL, "evil.example"),
        ("evil.example", INTERNAL),
        (PUBLIC, INTERNAL),
        (PUBLIC, PUBLIC),
    ] {
        let case = format!("Host: {first} then Host: {second}");
        let a = raw_metadata(
            &s,
            METADATA_H11,
            &[&format!("Host: {first}"), &format!("Host: {second}")],
        )
        .await;
        a.json_error(&case, 400, "invalid_request");
        assert!(a.json.get("issuer").is_none(), "{case}");
        // The same for a token request and /mcp.
        let a = raw_http(
            s.addr,
            format!(
                "POST /oauth/token HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\n\
                 Connection: close\r\n\r\n"
            )
            .as_bytes(),
            b"",
        )
        .await;
        a.json_error(&format!("token, {case}"), 400, "invalid_request");
        let a = raw_http(
            s.addr,
            format!(
                "POST /mcp HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
            b"",
        )
        .await;
        a.json_error(&format!("mcp, {case}"), 400, "invalid_request");
    }
    // Even from the trusted proxy with an X-Forwarded-Host.
    let a = raw_metadata(
        &s,
        METADATA_H11,
        &[
            &format!("Host: {INTERNAL}"),
            "Host: evil.example",
            &format!("X-Forwarded-Host: {PUBLIC}"),
        ],
    )
    .await;
    a.json_error("two Hosts and X-Forwarded-Host", 400, "invalid_request");
    // Control: one Host is served.
    for host in [INTERNAL, PUBLIC, "MCP.Example.Com:443"] {
        let a = raw_metadata(&s, METADATA_H11, &[&format!("Host: {host}")]).await;
        assert_eq!(a.status, 200, "{host}: {}", a.text);
        let want = format!(
            "https://{}",
            host.to_ascii_lowercase().trim_end_matches(":443")
        );
        assert_eq!(a.json["issuer"], want);
    }
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn a_missing_or_invalid_host_is_a_bad_request_and_http_1_0_without_host_is_misdirected() {
    let s = Server::start("");
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400.
    let a = raw_metadata(&s, METADATA_H11, &[]).await;
    a.json_error("HTTP/1.1 without Host", 400, "invalid_request");
    // A trusted proxy's X-Forwarded-Host does not mend it.
    let a = raw_metadata(&s, METADATA_H11, &[&format!("X-Forwarded-Host: {PUBLIC}")]).await;
    a.json_error("HTTP/1.1 without Host, forwarded", 400, "invalid_request");
    // Invalid values: 400 too (an empty one included: an http URI has a host).
    for host in [
        "",
        "mcp.example.com evil.example",
        "user@mcp.example.com",
        "mcp.example.com:https",
    ] {
        let a = raw_metadata(&s, METADATA_H11, &[&format!("Host: {host}")]).await;
        a.json_error(&format!("Host: {host:?}"), 400, "invalid_request");
    }
    // HTTP/1.0 does not require Host, so the request is well-formed, but it
    // names no host and no site is the default: 421, as for an unknown one.
    let a = raw_metadata(
        &s,
        "GET /.well-known/oauth-authorization-server HTTP/1.0",
        &[],
    )
    .await;
    a.json_error("HTTP/1.0 without Host", 421, "invalid_request");
    assert_eq!(a.json["error_description"], "the request names no host");
    // Control: HTTP/1.0 with a Host is served.
    let a = raw_metadata(
        &s,
        "GET /.well-known/oauth-authorization-server HTTP/1.0",
        &[&format!("Host: {INTERNAL}")],
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
    // Health checks need no host.
    let a = raw_metadata(&s, "GET /healthz HTTP/1.0", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn an_absolute_form_target_names_the_host_and_host_is_ignored() {
    let s = Server::start("");
    // RFC 9112 §3.2.2: the target's authority, not Host, names the host.
    for (target, host) in [
        (PUBLIC, INTERNAL),
        (INTERNAL, PUBLIC),
        (INTERNAL, "evil.example"),
        (PUBLIC, PUBLIC),
    ] {
        let a = raw_metadata(
            &s,
            &format!("GET http://{target}/.well-known/oauth-authorization-server HTTP/1.1"),
            &[&format!("Host: {host}")],
        )
        .await;
        assert_eq!(a.status, 200, "{target} with Host {host}: {}", a.text);
        assert_eq!(
            a.json["issuer"],
            format!("https://{target}"),
            "Host: {host}"
        );
    }
    // An unknown target with a good Host is misdirected, in both directions.
    for host in [PUBLIC, INTERNAL] {
        let a = raw_metadata(
            &s,
            "GET http://evil.example/.well-known/oauth-authorization-server HTTP/1.1",
            &[&format!("Host: {host}")],
        )
        .await;
        a.json_error(&format!("evil target, Host {host}"), 421, "invalid_request");
    }
    // Host is still required, once (RFC 9112 §3.2).
    let absolute = format!("GET http://{PUBLIC}/.well-known/oauth-authorization-server HTTP/1.1");
    let a = raw_metadata(&s, &absolute, &[]).await;
    a.json_error("absolute-form without Host", 400, "invalid_request");
    let a = raw_metadata(
        &s,
        &absolute,
        &[&format!("Host: {PUBLIC}"), &format!("Host: {PUBLIC}")],
    )
    .await;
    a.json_error("absolute-form, two Hosts", 400, "invalid_request");
}

/// An h2c (prior knowledge) client that reaches the server under each of
/// `names`, so that `:authority` is that name.
fn h2c_client(s: &Server, names: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy();
    for name in names {
        b = b.resolve(name, s.addr);
    }
    b.build().unwrap()
}

#[tokio::test]
async fn http2_authority_names_the_host_and_a_conflicting_host_header_is_malformed() {
    let s = Server::start("");
    let h2 = h2c_client(&s, &[PUBLIC, INTERNAL, "evil.example"]);
    let metadata = |authority: &str| {
        h2.get(format!(
            "http://{authority}/.well-known/oauth-authorization-server"
        ))
    };
    // :authority only.
    for authority in [PUBLIC, INTERNAL] {
        let r = metadata(authority).send().await.unwrap();
        assert_eq!(r.version(), reqwest::Version::HTTP_2);
        assert_eq!(r.status(), 200, "{authority}");
        let m: Value = r.json().await.unwrap();
        assert_eq!(m["issuer"], format!("https://{authority}"));
    }
    // A host header naming the same authority is fine.
    for host in ["MCP.EXAMPLE.COM", "mcp.example.com:80"] {
        let a = send(metadata(PUBLIC).header("host", host)).await;
        assert_eq!(a.status, 200, "host {host}: {}", a.text);
        assert_eq!(a.json["issuer"], format!("https://{PUBLIC}"));
    }
    // RFC 9113 §8.3.1: a host that differs from :authority is malformed.
    for (authority, host) in [
        (PUBLIC, INTERNAL),
        (INTERNAL, PUBLIC),
        (INTERNAL, "evil.example"),
        ("evil.example", PUBLIC),
    ] {
        let a = send(metadata(authority).header("host", host)).await;
        a.json_error(
            &format!(":authority {authority}, host {host}"),
            400,
            "invalid_request",
        );
        assert!(a.json.get("issuer").is_none());
    }
    // Two host headers, also over HTTP/2.
    let a = send(
        metadata(PUBLIC)
            .header("host", PUBLIC)
            .header("host", INTERNAL),
    )
    .await;
    a.json_error("h2, two host headers", 400, "invalid_request");
    // An unknown :authority is misdirected.
    let a = send(metadata("evil.example")).await;
    a.json_error(":authority evil.example", 421, "invalid_request");
    // A trusted proxy's X-Forwarded-Host still wins over :authority.
    let a = send(metadata(PUBLIC).header("x-forwarded-host", INTERNAL)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
}

#[tokio::test]
async fn a_duplicated_forwarded_host_from_the_trusted_proxy_is_a_bad_request() {
    let s = Server::start("");
    let metadata = |c: &reqwest::Client| {
        c.get(s.url("/.well-known/oauth-authorization-server"))
            .header("host", PUBLIC)
            .header("x-forwarded-host", INTERNAL)
            .header("x-forwarded-host", "evil.example")
    };
    let a = send(metadata(&s.http)).await;
    a.json_error(
        "two X-Forwarded-Host from the proxy",
        400,
        "invalid_request",
    );
    assert_eq!(
        a.json["error_description"],
        "the request has more than one X-Forwarded-Host header"
    );
    // From an untrusted peer both are ignored, as one would be.
    let untrusted = client_from("127.0.0.3".parse().unwrap());
    let a = send(metadata(&untrusted)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.json["issuer"], format!("https://{PUBLIC}"));
    // Control: one, from the proxy, picks the host (a chain: the first).
    for forwarded in [INTERNAL, "mcp.internal.example, mcp.example.com"] {
        let a = send(
            s.get(PUBLIC, "/.well-known/oauth-authorization-server")
                .header("x-forwarded-host", forwarded),
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.json["issuer"], format!("https://{INTERNAL}"));
    }
}

// ---------------------------------------------------------------------------
// /mcp body size
// ---------------------------------------------------------------------------

impl Answer {
    fn mcp_too_large(&self, case: &str) {
        assert_eq!(self.status, 413, "{case}: {}", self.text);
        assert_eq!(self.json["error"]["code"], -32600, "{case}: {}", self.text);
        assert!(self.json.get("result").is_none(), "{case}");
        self.nothing_minted(case);
    }
}

/// Sends `head`, then as much of `body` as the server takes, then reads the
/// whole answer (`connection: close`).
async fn raw_http(addr: std::net::SocketAddr, head: &[u8], body: &[u8]) -> Answer {
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

#[tokio::test]
async fn mcp_bodies_over_one_mebibyte_are_refused() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let at = access_token(&tokens);
    let envelope = json!({"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":""}}).to_string();
    let pad = 1024 * 1024 + 1 - envelope.len();
    let body = envelope.replace("\"pad\":\"\"", &format!("\"pad\":\"{}\"", "a".repeat(pad)));
    assert_eq!(body.len(), 1024 * 1024 + 1);
    // Over raw TCP: the server answers before reading the body and closes
    // without draining it, so a client that is still writing (reqwest) can
    // see the connection reset instead of the answer.
    let head = |framing: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nhost: {INTERNAL}\r\nauthorization: Bearer {at}\r\n\
             content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
             {framing}\r\nconnection: close\r\n\r\n"
        )
    };
    // Declared too large: refused from Content-Length alone.
    let a = raw_http(
        s.addr,
        head(&format!("content-length: {}", body.len())).as_bytes(),
        &[],
    )
    .await;
    a.mcp_too_large("/mcp body over 1 MiB (Content-Length)");
    // Chunked, no length: refused while reading.
    let chunked = format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len());
    let a = raw_http(
        s.addr,
        head("transfer-encoding: chunked").as_bytes(),
        chunked.as_bytes(),
    )
    .await;
    a.mcp_too_large("/mcp body over 1 MiB (chunked)");
    // Exactly the limit is served.
    let envelope_len = envelope.len();
    let body = envelope.replace(
        "\"pad\":\"\"",
        &format!("\"pad\":\"{}\"", "a".repeat(1024 * 1024 - envelope_len)),
    );
    assert_eq!(body.len(), 1024 * 1024);
    let a = send(
        s.post(INTERNAL, "/mcp")
            .bearer_auth(at)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_still_healthy(&s).await;
}

#[tokio::test]
async fn mcp_refuses_batches_it_cannot_serve_and_unsupported_versions_on_every_post() {
    let s = Server::start("");
    let (_, tokens) = s.public_flow(INTERNAL, LOOPBACK_CB).await;
    let at = access_token(&tokens);
    let ping = json!({"jsonrpc":"2.0","id":1,"method":"ping"});
    let post = |version: Option<&str>, body: Value| send(s.mcp_post(INTERNAL, at, version, &body));
    let cases: Vec<(&str, Option<&str>, Value, &str)> = vec![
        // JSON-RPC 2.0 §6: one error object, not an array.
        ("empty batch", None, json!([]), "at least one message"),
        (
            "batch after 2025-03-26",
            Some("2025-06-18"),
            json!([ping, ping]),
            "batches are not supported",
        ),
        (
            "batch under 2025-11-25",
            Some("2025-11-25"),
            json!([ping]),
            "batches are not supported",
        ),
        (
            "batch under an unknown version",
            Some("2099-01-01"),
            json!([ping]),
            "unsupported MCP-Protocol-Version",
        ),
        (
            "batch over 100 messages",
            None,
            Value::Array(vec![ping.clone(); 101]),
            "at most 100",
        ),
        // 2025-06-18 Transports → Protocol Version Header: every POST, not
        // only those with a method.
        (
            "response under an unknown version",
            Some("2099-01-01"),
            json!({"jsonrpc":"2.0","id":1,"result":{}}),
            "unsupported MCP-Protocol-Version",
        ),
        (
            "notification under an unknown version",
            Some("2099-01-01"),
            json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            "unsupported MCP-Protocol-Version",
        ),
    ];
    for (case, version, body, says) in cases {
        let a = post(version, body).await;
        assert_eq!(a.status, 400, "{case}: {}", a.text);
        assert!(a.json.is_object(), "{case}: {}", a.text);
        assert_eq!(a.json["error"]["code"], -32600, "{case}: {}", a.text);
        assert!(
            a.json["error"]["message"].as_str().unwrap().contains(says),
            "{case}: {}",
            a.text
        );
        assert!(a.json.get("result").is_none(), "{case}: served");
        a.nothing_minted(case);
    }
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
        let (ring, _) = mcpgate::keys::KeyRing::load(&s.keys_dir(), 1, now).unwrap();
        let sealed_for_it = mcpgate::tokens::sealed::seal(
            &ring,
            &mcpgate::tokens::grants::RefreshGrant {
                client: mcpgate::tokens::grants::ClientBinding::of(&client_id),
                sub: ALICE.into(),
                email: ALICE.into(),
                scope: mcpgate::tokens::scope::Scope::granted(Some("mcp offline_access"), true)
                    .unwrap(),
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
    let (ring, _) = mcpgate::keys::KeyRing::load(&s.keys_dir(), 1, now).unwrap();
    let old_client = mcpgate::tokens::sealed::seal(
        &ring,
        &mcpgate::tokens::grants::ClientRegistration {
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

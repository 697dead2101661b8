//! Refusals at `/mcp`: forged and foreign bearer tokens, tokens outside
//! the Authorization header, oversized bodies, and batches and protocol
//! versions it cannot serve. What every refusal asserts:
//! tests/common/refusal.rs.

mod common;

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::refusal::*;
use common::*;
use ring::signature::KeyPair as _;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Tokens made outside the server
// ---------------------------------------------------------------------------

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
    let jwks = s.get_json(INTERNAL, "/.well-known/jwks.json").await;
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

use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};

use super::error::{RpcError, INVALID_REQUEST, PARSE_ERROR};
use super::transport::{batch_allowed, check_version_header};
use super::version::{Era, BATCH_VERSION, MCP_PROTOCOL_VERSION, SUPPORTED};
use super::{serve_message, MAX_BATCH};
use crate::keys::file::generate_set;
use crate::keys::KeyRing;
use crate::tokens::access::{self, AccessClaims, Expectations, VerifiedToken};

/// A real token, verified: `odd` is appended to its `sub`, `email` and
/// `client_id`.
pub(crate) fn claims_of(odd: &str, exp: u64) -> VerifiedToken {
    let now = 1_899_996_400;
    let ring = KeyRing::build(generate_set(0, "t"), 1, now).unwrap();
    let c = AccessClaims {
        iss: "https://a.example".into(),
        sub: format!("sub{odd}"),
        aud: "https://a.example/mcp".into(),
        exp,
        iat: now,
        nbf: now,
        jti: "j".into(),
        client_id: format!("client{odd}"),
        scope: "mcp".into(),
        email: format!("a{odd}@example.com"),
        groups: vec![],
    };
    let expect = Expectations {
        issuers: std::slice::from_ref(&c.iss),
        audiences: std::slice::from_ref(&c.aud),
    };
    access::verify(&ring, &access::issue(&ring, &c, now), &expect, now).unwrap()
}

fn version(v: Option<&str>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(v) = v {
        headers.insert(MCP_PROTOCOL_VERSION, HeaderValue::from_str(v).unwrap());
    }
    headers
}

/// Status and body (`Null` when empty) of `serve_message`.
fn serve(headers: &HeaderMap, body: &str) -> (StatusCode, Value) {
    let resp = serve_message(headers, body.as_bytes(), &claims_of("", 1_900_000_000));
    let status = resp.status();
    let Ok(collected) = ready(resp.into_body().collect());
    let bytes = collected.to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, v)
}

/// A `Full` body is ready at once: one poll collects it.
fn ready<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a Full body is never pending"),
    }
}

/// The status and error object an error renders as.
fn rendered(e: &RpcError) -> (StatusCode, Value) {
    let mut out = Vec::new();
    let status = e.write(&mut out, None);
    let v: Value = serde_json::from_slice(&out).unwrap();
    (status, v["error"].clone())
}

#[test]
fn the_version_list_splits_into_its_eras() {
    assert_eq!(Era::Stateless.versions(), ["2026-07-28"]);
    assert_eq!(
        Era::Legacy.versions(),
        ["2025-11-25", "2025-06-18", "2025-03-26"]
    );
    assert_eq!(
        [Era::Stateless.versions(), Era::Legacy.versions()].concat(),
        SUPPORTED
    );
    assert!(Era::Legacy.versions().contains(&BATCH_VERSION));
}

#[test]
fn batches_are_allowed_without_a_version_header_or_with_2025_03_26_only() {
    for ok in [None, Some("2025-03-26"), Some(" 2025-03-26 ")] {
        assert!(batch_allowed(&version(ok)).is_ok(), "{ok:?}");
    }
    for (v, says) in [
        ("2025-06-18", "batches are not supported"),
        ("2025-11-25", "batches are not supported"),
        ("2026-07-28", "batches are not supported"),
        ("2024-11-05", "unsupported MCP-Protocol-Version"),
        ("", "unsupported MCP-Protocol-Version"),
    ] {
        let (status, error) = rendered(&batch_allowed(&version(Some(v))).unwrap_err());
        assert_eq!(
            (status, &error["code"]),
            (StatusCode::BAD_REQUEST, &json!(INVALID_REQUEST))
        );
        let message = error["message"].as_str().unwrap();
        assert!(message.starts_with(says), "{v}: {message}");
    }
}

#[test]
fn only_known_version_headers_pass() {
    for v in SUPPORTED {
        assert!(check_version_header(&version(Some(v))).is_ok(), "{v}");
    }
    assert!(check_version_header(&version(None)).is_ok());
    for v in ["2099-01-01", "invalid", "2025-06-18,2025-03-26"] {
        assert!(check_version_header(&version(Some(v))).is_err(), "{v}");
    }
}

#[test]
fn a_batch_is_told_by_its_first_non_whitespace_byte() {
    let (status, v) = serve(
        &version(None),
        " \r\n\t[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
    );
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v, json!([{"jsonrpc":"2.0","id":1,"result":{}}]));
    // A string holding a bracket is a (non-object) message, not a batch.
    let (status, v) = serve(&version(None), "\"[\"");
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], INVALID_REQUEST);
}

#[test]
fn a_batch_over_max_batch_is_one_invalid_request() {
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let body = |n: usize| format!("[{}]", vec![ping; n].join(","));
    let (status, v) = serve(&version(None), &body(MAX_BATCH));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), MAX_BATCH);
    let (status, v) = serve(&version(None), &body(MAX_BATCH + 1));
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], INVALID_REQUEST);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("at most 100"));
}

#[test]
fn a_malformed_batch_is_one_parse_error() {
    for body in ["[", "[{\"jsonrpc\":\"2.0\"},", "[1] x"] {
        let (status, v) = serve(&version(None), body);
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(v["error"]["code"], PARSE_ERROR, "{body}");
    }
}

#[test]
fn a_response_under_an_unsupported_version_is_refused() {
    let response = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
    let (status, v) = serve(&version(Some("2099-01-01")), response);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], INVALID_REQUEST);
    for ok in [None, Some("2025-06-18")] {
        assert_eq!(
            serve(&version(ok), response),
            (StatusCode::ACCEPTED, Value::Null)
        );
    }
}

#[test]
fn a_stateless_result_is_the_legacy_one_with_result_type_and_meta() {
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let mut stateless = version(Some("2026-07-28"));
    stateless.insert("mcp-method", HeaderValue::from_static("tools/call"));
    stateless.insert("mcp-name", HeaderValue::from_static("whoami"));
    let call = |meta: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"whoami"{meta}}}}}"#
        )
    };
    let (status, legacy) = serve(&version(None), &call(""));
    assert_eq!(status, StatusCode::OK);
    let (status, mut modern) = serve(&stateless, &call(&format!(",{meta}")));
    assert_eq!(status, StatusCode::OK);
    let result = modern["result"].as_object_mut().unwrap();
    assert_eq!(result.remove("resultType"), Some(json!("complete")));
    let meta = result.remove("_meta").unwrap();
    assert_eq!(
        meta["io.modelcontextprotocol/serverInfo"]["name"],
        "mcpgate"
    );
    assert_eq!(modern, legacy);
}

#[test]
fn an_unknown_method_is_a_200_in_the_legacy_era_and_a_404_in_the_stateless_one() {
    for (era, status) in [
        (Era::Legacy, StatusCode::OK),
        (Era::Stateless, StatusCode::NOT_FOUND),
    ] {
        let (got, error) = rendered(&RpcError::method_not_found(&"é".repeat(100), era));
        assert_eq!(got, status);
        assert_eq!(
            error["message"],
            format!("method not found: {}", "é".repeat(80))
        );
    }
}

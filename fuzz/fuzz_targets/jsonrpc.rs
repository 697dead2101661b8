//! `/mcp` JSON-RPC: `mcp::serve_message` on arbitrary bodies with headers
//! chosen by the input, for a fixed authenticated caller.
//!
//! Input: `FLAGS HDR 0x00 BODY` (HDR: bytes for the headers the flags ask
//! to take from the input; without a 0x00 all of it is BODY).
//! - bit 0: `mcp-protocol-version: 2026-07-28`;
//! - bit 1: `mcp-protocol-version: 2025-06-18` (bit 0 wins);
//! - bit 2: `mcp-protocol-version: HDR` (raw, when a valid header value);
//! - bit 3: `mcp-method` = the body's `method`; bit 4: `mcp-method: HDR`;
//! - bit 5: `mcp-name` = the body's `params.name` (or `params.uri`);
//!   bit 6: `mcp-name: HDR`;
//! - bit 7: header values from the body go `=?base64?…?=`-encoded.
//!
//! Invariants, beyond "never panics": the status is 200, 202, 400 or 404;
//! 202 has an empty body; every other body is a JSON-RPC 2.0 object with
//! exactly one of `result` / `error`, or a 200 with a non-empty array of at
//! most `MAX_BATCH` of them (a batch's answer: only without a version header
//! or with 2025-03-26); a `result` is a 200 with a string/integer `id`.
#![no_main]

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::Body as _;
use libfuzzer_sys::fuzz_target;
use mcpgate::access::VerifiedToken;
use serde_json::Value;

fn claims() -> &'static VerifiedToken {
    static C: OnceLock<VerifiedToken> = OnceLock::new();
    C.get_or_init(mcpgate_fuzz::jsonrpc_claims)
}

fn body_bytes(mut body: mcpgate::Body) -> Vec<u8> {
    let mut out = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match Pin::new(&mut body).poll_frame(&mut cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data() {
                    out.extend_from_slice(&d);
                }
            }
            Poll::Ready(None) => return out,
            Poll::Ready(Some(Err(e))) => match e {},
            Poll::Pending => panic!("a Full body is never pending"),
        }
    }
}

fn add(headers: &mut HeaderMap, name: &'static str, value: &[u8]) {
    if let Ok(v) = HeaderValue::from_bytes(value) {
        headers.append(name, v);
    }
}

fn from_body(value: &str, encode: bool) -> Vec<u8> {
    if encode {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
        .into_bytes()
    } else {
        value.as_bytes().to_vec()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (hdr, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&[][..], rest),
    };
    let encode = flags & 0x80 != 0;
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let method = parsed
        .as_ref()
        .and_then(|v| v.get("method"))
        .and_then(Value::as_str);
    let name = parsed
        .as_ref()
        .and_then(|v| v.get("params"))
        .and_then(|p| p.get("name").or_else(|| p.get("uri")))
        .and_then(Value::as_str);

    let mut headers = HeaderMap::new();
    if flags & 1 != 0 {
        add(&mut headers, "mcp-protocol-version", b"2026-07-28");
    } else if flags & 2 != 0 {
        add(&mut headers, "mcp-protocol-version", b"2025-06-18");
    } else if flags & 4 != 0 {
        add(&mut headers, "mcp-protocol-version", hdr);
    }
    if flags & 8 != 0 {
        if let Some(m) = method {
            add(&mut headers, "mcp-method", &from_body(m, encode));
        }
    } else if flags & 0x10 != 0 {
        add(&mut headers, "mcp-method", hdr);
    }
    if flags & 0x20 != 0 {
        if let Some(n) = name {
            add(&mut headers, "mcp-name", &from_body(n, encode));
        }
    } else if flags & 0x40 != 0 {
        add(&mut headers, "mcp-name", hdr);
    }

    let batch_version = match headers.get("mcp-protocol-version") {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v.trim() == "2025-03-26"),
    };
    let resp = mcpgate::serve_message(&headers, body, claims());
    let status = resp.status();
    assert!(
        matches!(
            status,
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
        ),
        "unexpected status {status}"
    );
    let out = body_bytes(resp.into_body());
    if status == StatusCode::ACCEPTED {
        assert!(out.is_empty(), "202 with a body");
        return;
    }
    let v: Value = serde_json::from_slice(&out).expect("responses are JSON");
    if let Some(answers) = v.as_array() {
        assert!(batch_version, "a batch answered under another version");
        assert_eq!(status, StatusCode::OK);
        assert!(!answers.is_empty(), "an empty array answered");
        assert!(answers.len() <= mcpgate::MAX_BATCH, "too many answers");
        answers.iter().for_each(|a| check_response(a, status));
    } else {
        check_response(&v, status);
    }
});

fn check_response(v: &Value, status: StatusCode) {
    let obj = v.as_object().expect("responses are JSON objects");
    assert_eq!(obj.get("jsonrpc"), Some(&Value::from("2.0")));
    assert!(
        obj.contains_key("result") != obj.contains_key("error"),
        "exactly one of result/error: {v}"
    );
    if obj.contains_key("result") {
        assert_eq!(status, StatusCode::OK);
        let id = obj.get("id").expect("a result without an id");
        assert!(
            id.is_string() || id.is_i64() || id.is_u64(),
            "bad id in a result: {id}"
        );
    }
}

//! Response builders: the few shapes every handler needs.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

pub type Body = Full<Bytes>;
pub(crate) type Resp = Response<Body>;

/// RFC 6749 §5.1: token and registration responses are never cached.
pub(crate) const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

pub(crate) fn bytes(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Pre-rendered JSON (discovery documents, JWKS).
pub(crate) fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    bytes(status, "application/json", body)
}

pub(crate) fn json<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    json_bytes(
        status,
        serde_json::to_vec(value).expect("responses serialize"),
    )
}

/// JSON that carries or grants a credential: `Cache-Control: no-store`.
pub(crate) fn json_no_store<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    let mut r = json(status, value);
    r.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub(crate) fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A redirect (302, or 303 answering a form POST) to `location`, already
/// a valid URI we built. Never cached: it may carry a code.
pub(crate) fn redirect(status: StatusCode, location: &str) -> Resp {
    let mut r = empty(status);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    r
}

/// The first `max` characters of `s` (for logs and error descriptions
/// that echo client input).
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Appends `params` to `uri`'s query, keeping what is already there
/// (RFC 6749 §3.1.2: a redirect URI may carry a query to preserve).
pub(crate) fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    let sep = if uri.contains('?') {
        if uri.ends_with('?') || uri.ends_with('&') {
            ""
        } else {
            "&"
        }
    } else {
        "?"
    };
    format!("{uri}{sep}{q}")
}

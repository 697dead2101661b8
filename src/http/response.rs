//! Response builders and body reading: the few shapes every handler needs.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::{BodyExt as _, Full, Limited};

pub type Body = Full<Bytes>;
pub type Resp = Response<Body>;

/// RFC 6749 §5.1: token and registration responses are never cached.
pub const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Pre-rendered JSON (discovery documents, JWKS).
pub fn json_bytes(status: StatusCode, body: impl Into<Bytes>) -> Resp {
    bytes(status, "application/json", body)
}

pub fn json<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    json_bytes(
        status,
        serde_json::to_vec(value).expect("responses serialize"),
    )
}

/// JSON that carries or grants a credential: `Cache-Control: no-store`.
pub fn json_no_store<T: serde::Serialize + ?Sized>(status: StatusCode, value: &T) -> Resp {
    let mut r = json(status, value);
    r.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// An HTML page. Never framed (clickjacking on sign-in and consent), never
/// cached, no scripts.
pub fn html(status: StatusCode, body: String) -> Resp {
    let mut r = bytes(status, "text/html; charset=utf-8", body);
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, NO_STORE);
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

/// A 302 to `location` (already a valid URI we built).
pub fn found(location: &str) -> Resp {
    let mut r = empty(StatusCode::FOUND);
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut().insert(header::CACHE_CONTROL, NO_STORE);
    r
}

pub fn method_not_allowed(allow: &'static str) -> Resp {
    let mut r = json(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({"error": "method_not_allowed", "error_description": format!("use {allow}")}),
    );
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

pub fn not_found() -> Resp {
    json(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found", "error_description": "no such endpoint"}),
    )
}

/// `<input type="hidden">` for each pair: a form that re-posts a request.
pub fn hidden_inputs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape_html(k),
                escape_html(v)
            )
        })
        .collect()
}

/// Reads a request body of at most `limit` bytes within `timeout`,
/// checking the declared `Content-Length` first.
pub async fn read_request_body<B>(
    headers: &http::HeaderMap,
    body: B,
    limit: usize,
    timeout: std::time::Duration,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    tokio::time::timeout(timeout, read_body(body, length, limit))
        .await
        .unwrap_or(Err(BodyError::TimedOut(timeout)))
}

/// The first `max` characters of `s` (for logs and error descriptions
/// that echo client input).
pub fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body could not be read")]
    Broken,
    #[error("request body not received within {}s", .0.as_secs_f32())]
    TimedOut(std::time::Duration),
}

impl BodyError {
    /// RFC 9110 §15.5.14 (413) and §15.5.9 (408); otherwise a 400.
    pub fn status(self) -> http::StatusCode {
        match self {
            BodyError::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a whole body, refusing more than `limit` bytes (checked against
/// `Content-Length` first, then while reading).
pub async fn read_body<B>(
    body: B,
    content_length: Option<u64>,
    limit: usize,
) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    if content_length.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
        Err(_) => Err(BodyError::Broken),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_attribute_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x" onclick='y'>&"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;"
        );
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        let body = Full::new(Bytes::from(vec![b'a'; 100]));
        assert_eq!(
            read_body(body, None, 10).await,
            Err(BodyError::TooLarge(10))
        );
        let body = Full::new(Bytes::from_static(b"ok"));
        assert_eq!(
            read_body(body, Some(2), 10).await.unwrap(),
            Bytes::from_static(b"ok")
        );
        let body = Full::new(Bytes::from_static(b"ok"));
        assert_eq!(
            read_body(body, Some(11), 10).await,
            Err(BodyError::TooLarge(10))
        );
    }
}

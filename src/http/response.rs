//! Response builders: the few shapes every handler needs.

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;

pub type Body = Full<Bytes>;
pub(crate) type Resp = Response<Body>;

/// A body that arrives over time (an upstream's answer, passed on as it
/// comes). Its error is an `io::Error`, a concrete type: hyper's bound on
/// body errors, met by a boxed `dyn Error`, does not prove `Send` for
/// the server's connection futures.
pub(crate) type StreamBody = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// What the server writes: a whole body, or one that streams.
pub(crate) enum ReplyBody {
    Whole(Body),
    Stream(StreamBody),
}

pub(crate) type Reply = Response<ReplyBody>;

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            ReplyBody::Whole(b) => std::pin::Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|f| f.map_err(|e| match e {}))),
            ReplyBody::Stream(b) => std::pin::Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReplyBody::Whole(b) => b.is_end_stream(),
            ReplyBody::Stream(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match self {
            ReplyBody::Whole(b) => b.size_hint(),
            ReplyBody::Stream(b) => b.size_hint(),
        }
    }
}

/// A whole response as the server writes it.
pub(crate) fn whole(r: Resp) -> Reply {
    r.map(ReplyBody::Whole)
}

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

//! Which headers cross the proxy, each way. Both lists are allowlists:
//! the client's `Authorization`, cookies, identity headers (its own or a
//! proxy's), `X-Forwarded-*` and anything else not named here stay on
//! this side (MCP authorization, "Token Passthrough"), and so do an
//! upstream's `WWW-Authenticate`, cookies and hop-by-hop headers.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::tokens::access::VerifiedToken;

/// Request headers of the Streamable HTTP transport and content
/// negotiation; and every `Mcp-*` (`Mcp-Session-Id`,
/// `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`, and those to come).
const REQUEST: [HeaderName; 5] = [
    header::CONTENT_TYPE,
    header::ACCEPT,
    header::ACCEPT_LANGUAGE,
    header::USER_AGENT,
    HeaderName::from_static("last-event-id"),
];

/// Response headers passed back; and every `Mcp-*`.
const RESPONSE: [HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::RETRY_AFTER,
    header::ALLOW,
];

fn is_mcp(name: &HeaderName) -> bool {
    name.as_str().starts_with("mcp-")
}

fn copy(src: &HeaderMap, dst: &mut HeaderMap, keep: impl Fn(&HeaderName) -> bool) {
    for (name, value) in src {
        if keep(name) && !hop_by_hop(src, name) {
            dst.append(name.clone(), value.clone());
        }
    }
}

/// RFC 9110 §7.6.1: a header the sender named in `Connection` is for this
/// hop only, and a proxy removes it (an `Mcp-*` header included).
fn hop_by_hop(src: &HeaderMap, name: &HeaderName) -> bool {
    src.get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case(name.as_str()))
}

pub(crate) fn request_headers(src: &HeaderMap, dst: &mut HeaderMap) {
    copy(src, dst, |n| REQUEST.contains(n) || is_mcp(n));
}

pub(crate) fn response_headers(src: &HeaderMap, dst: &mut HeaderMap) {
    copy(src, dst, |n| RESPONSE.contains(n) || is_mcp(n));
}

/// An upstream's trailers held to the same allowlist as its headers;
/// `None` when nothing is left to send.
pub(crate) fn response_trailers(src: &HeaderMap) -> Option<HeaderMap> {
    let mut dst = HeaderMap::new();
    response_headers(src, &mut dst);
    (!dst.is_empty()).then_some(dst)
}

/// `forward_identity = "headers"`: for an upstream on a private network
/// that trusts whoever reaches it.
pub(crate) fn identity_headers(token: &VerifiedToken, dst: &mut HeaderMap) {
    let groups = token.groups().collect::<Vec<_>>().join(",");
    for (name, value) in [
        ("x-mcp-subject", token.sub()),
        ("x-mcp-email", token.email()),
        ("x-mcp-groups", groups.as_str()),
        ("x-mcp-client-id", token.client_id()),
    ] {
        // Claims are ours; one that is not header text is left out
        // rather than sent mangled.
        if let Ok(v) = HeaderValue::from_bytes(value.as_bytes()) {
            dst.insert(HeaderName::from_static(name), v);
        }
    }
}

/// The media types a filtering answer cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Media {
    Json,
    EventStream,
}

pub(crate) fn media_type(headers: &HeaderMap) -> Option<Media> {
    let v = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = v.split(';').next()?.trim();
    if essence.eq_ignore_ascii_case("text/event-stream") {
        Some(Media::EventStream)
    } else if essence.eq_ignore_ascii_case("application/json") {
        Some(Media::Json)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_identity_headers_never_cross() {
        let mut src = HeaderMap::new();
        for (n, v) in [
            ("authorization", "Bearer client-token"),
            ("cookie", "s=1"),
            ("x-forwarded-email", "mallory@example.com"),
            ("x-mcp-email", "mallory@example.com"),
            ("x-proxy-secret", "s"),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-session-id", "abc"),
            ("mcp-protocol-version", "2025-11-25"),
            ("last-event-id", "7"),
            ("connection", "keep-alive, Mcp-Method"),
            ("mcp-method", "tools/call"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("proxy-authorization", "Basic eDp5"),
            ("forwarded", "for=192.0.2.1"),
            ("x-real-ip", "192.0.2.1"),
        ] {
            src.append(n, v.parse().unwrap());
        }
        let mut dst = HeaderMap::new();
        request_headers(&src, &mut dst);
        let mut names: Vec<_> = dst.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "accept",
                "content-type",
                "last-event-id",
                "mcp-protocol-version",
                "mcp-session-id"
            ]
        );
        let mut src = HeaderMap::new();
        for (n, v) in [
            ("www-authenticate", "Bearer realm=\"upstream\""),
            ("set-cookie", "s=1"),
            ("connection", "close"),
            ("content-type", "text/event-stream"),
            ("mcp-session-id", "abc"),
            ("connection", "mcp-debug"),
            ("mcp-debug", "1"),
            ("transfer-encoding", "chunked"),
            ("keep-alive", "timeout=5"),
        ] {
            src.append(n, v.parse().unwrap());
        }
        let mut dst = HeaderMap::new();
        response_headers(&src, &mut dst);
        let mut names: Vec<_> = dst.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "mcp-session-id"]);
        assert_eq!(dst.get("mcp-session-id").unwrap(), "abc");
        assert_eq!(media_type(&dst), Some(Media::EventStream));
        // Trailers too.
        let mut trailers = HeaderMap::new();
        trailers.insert("set-cookie", "s=1".parse().unwrap());
        assert!(response_trailers(&trailers).is_none());
        trailers.insert("mcp-session-id", "abc".parse().unwrap());
        let kept = response_trailers(&trailers).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept["mcp-session-id"], "abc");
    }
}

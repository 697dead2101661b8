//! HTTP primitives, named after no endpoint: which host a request is for
//! ([`host`]), CORS policy ([`cors`]), reading bodies ([`body`]), building
//! responses ([`response`]) and pages ([`page`]), refusals below any
//! protocol ([`error`]), and what a handler is given ([`Ctx`]).

pub(crate) mod body;
pub(crate) mod cors;
pub(crate) mod error;
pub(crate) mod freshness;
pub(crate) mod host;
pub(crate) mod page;
pub(crate) mod response;

use std::net::SocketAddr;

use crate::keys::Keys;
use crate::settings::Settings;
use host::Host;

/// What every handler knows besides the request itself. State that only
/// some endpoints use (the single-use store, the verified-token cache, the
/// sign-in) is handed to those endpoints by the router, by name.
pub(crate) struct Ctx<'a> {
    pub settings: &'a Settings,
    pub keys: &'a Keys,
    /// The host the request is for.
    pub host: &'a Host,
    /// The TCP peer (the proxy, behind oauth2-proxy).
    pub peer: SocketAddr,
    /// This request's id (`X-Request-Id`): error pages show it, so that a
    /// person can quote it and an operator can find the log lines.
    /// As the header carries it: read as text only when a page shows it.
    pub request_id: &'a http::HeaderValue,
}

impl Ctx<'_> {
    /// The request body, at most `limit` bytes, within the configured
    /// `server.body_read_timeout`.
    pub(crate) async fn read_body(
        &self,
        headers: &http::HeaderMap,
        body: hyper::body::Incoming,
        limit: usize,
    ) -> Result<bytes::Bytes, body::BodyError> {
        let timeout = self.settings.limits.body_read_timeout;
        body::read_request_body(headers, body, limit, timeout).await
    }
}

/// A header field sent more than once where the protocol allows one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RepeatedHeader;

/// The one value of `name` in `headers`, if any. Two or more lines are
/// refused rather than one picked: two readers of the request (a proxy
/// and this server) could pick differently.
pub(crate) fn single_header<K: http::header::AsHeaderName>(
    headers: &http::HeaderMap,
    name: K,
) -> Result<Option<&http::HeaderValue>, RepeatedHeader> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first),
        _ => Err(RepeatedHeader),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_is_absent_single_or_repeated() {
        let mut h = http::HeaderMap::new();
        assert_eq!(single_header(&h, "x-a"), Ok(None));
        h.append("x-a", "1".parse().unwrap());
        assert_eq!(single_header(&h, "x-a").unwrap().unwrap(), "1");
        h.append("x-a", "1".parse().unwrap());
        assert_eq!(single_header(&h, "x-a"), Err(RepeatedHeader));
    }
}

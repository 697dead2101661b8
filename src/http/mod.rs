//! HTTP: the accept loop and connection limits ([`server`]), which host a
//! request is for ([`host`]), where it goes ([`router`]), CORS ([`cors`])
//! and the response shapes handlers share ([`response`]).

pub mod cors;
pub mod host;
pub mod response;
pub mod router;
pub mod server;

/// A header field sent more than once where the protocol allows one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The one value of `name` in `headers`, if any. Two or more lines are
/// refused rather than one picked: two readers of the request (a proxy
/// and this server) could pick differently.
pub fn single_header<K: http::header::AsHeaderName>(
    headers: &http::HeaderMap,
    name: K,
) -> Result<Option<&http::HeaderValue>, Repeated> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (first, None) => Ok(first),
        _ => Err(Repeated),
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
        assert_eq!(single_header(&h, "x-a"), Err(Repeated));
    }
}

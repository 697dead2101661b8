//! Reading request bodies: bounded in size and in time, so one slow or
//! oversized upload holds nothing for long.

use bytes::Bytes;
use http::header;
use http_body_util::{BodyExt as _, Limited};

/// Reads a request body of at most `limit` bytes within `timeout`,
/// checking the declared `Content-Length` first.
pub(crate) async fn read_request_body<B>(
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

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("request body could not be read")]
    Broken,
    #[error("request body not received within {}s", .0.as_secs_f32())]
    TimedOut(std::time::Duration),
}

impl BodyError {
    /// RFC 9110 §15.5.14 (413) and §15.5.9 (408); otherwise a 400.
    pub(crate) fn status(self) -> http::StatusCode {
        match self {
            BodyError::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut(_) => http::StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken => http::StatusCode::BAD_REQUEST,
        }
    }
}

/// Reads a whole body, refusing more than `limit` bytes (checked against
/// `Content-Length` first, then while reading).
pub(crate) async fn read_body<B>(
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
    use http_body_util::Full;

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

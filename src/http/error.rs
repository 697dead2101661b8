//! Refusals below any protocol: the request names no host of ours, no
//! endpoint, a method the endpoint does not serve, or a CORS preflight it
//! does not grant. [`HttpError::respond`] is the one place they become
//! responses; each protocol renders its own refusals (OAuth in
//! `oauth::error`, `/mcp` in `mcp`). None is logged: they carry nothing
//! about a person or a client, and the per-route request metrics count
//! them by status.

use http::header::{self, HeaderValue};
use http::StatusCode;
use serde_json::json;

use super::host::HostError;
use super::response::{self, Resp};

/// Why a request reached no handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HttpError {
    /// A malformed host (400) or one we do not serve (421).
    Host(HostError),
    /// No endpoint at this path (404).
    NotFound,
    /// The endpoint exists; `allow` lists its methods (405, RFC 9110 §15.5.6).
    MethodNotAllowed { allow: &'static str },
    /// A CORS preflight this route or origin does not get (403, no
    /// `Access-Control-*` headers: the browser then refuses the request).
    PreflightRefused,
}

impl HttpError {
    pub(crate) fn respond(self) -> Resp {
        match self {
            HttpError::Host(e) => response::json(
                e.status(),
                &json!({"error": "invalid_request", "error_description": e.description()}),
            ),
            HttpError::NotFound => response::json(
                StatusCode::NOT_FOUND,
                &json!({"error": "not_found", "error_description": "no such endpoint"}),
            ),
            HttpError::MethodNotAllowed { allow } => {
                let mut r = response::json(
                    StatusCode::METHOD_NOT_ALLOWED,
                    &json!({"error": "method_not_allowed", "error_description": format!("use {allow}")}),
                );
                r.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
                r
            }
            HttpError::PreflightRefused => response::empty(StatusCode::FORBIDDEN),
        }
    }
}

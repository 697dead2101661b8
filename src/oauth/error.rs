//! The one OAuth error type, and the one place it becomes a response: RFC
//! 6749 §5.2 JSON, an error redirect (§4.1.2.1 + RFC 9207 `iss`), or an
//! error page when there is no safe place to redirect to.

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use http::StatusCode;

use crate::http::response::{self, Resp};

/// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707
/// §2 and OpenID Connect Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    /// RFC 8707: the `resource` is not one of ours.
    InvalidTarget,
    AccessDenied,
    /// No signed-in person reached the authorize endpoint.
    LoginRequired,
    InvalidRedirectUri,
    InvalidClientMetadata,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }

    /// The HTTP status when the error is answered directly (not redirected).
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidClient | ErrorCode::LoginRequired => StatusCode::UNAUTHORIZED,
            ErrorCode::AccessDenied => StatusCode::FORBIDDEN,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub code: ErrorCode,
    /// `error_description`: for the developer of the client; never contains
    /// a secret the client sent, and only the characters RFC 6749 allows
    /// (see [`error_description`]), so it is also safe to log as is.
    description: Cow<'static, str>,
    /// The client tried `client_secret_basic`: a 401 must then carry
    /// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub basic_auth_used: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError {
            code,
            description: error_description(description.into()),
            basic_auth_used: false,
        }
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// Counts a refusal by `endpoint` (`mcpgate_oauth_errors_total`).
    pub fn count(&self, endpoint: &'static str) {
        crate::metrics::oauth_error(endpoint, self.code.as_str());
    }

    /// Counts and logs a refusal by `endpoint`: every refusal is logged at
    /// `info` (the README promises it), with the error code and the
    /// description, which hold no secret. For a refusal already logged
    /// with more context, [`OAuthError::count`] alone.
    pub fn refused(&self, endpoint: &'static str) {
        self.count(endpoint);
        tracing::info!(
            endpoint,
            error = self.code.as_str(),
            description = %self.description,
            "oauth request refused"
        );
    }

    pub fn invalid_request(d: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, d)
    }

    pub fn invalid_client(d: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, d)
    }

    pub fn invalid_grant(d: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, d)
    }

    pub fn with_basic(mut self, used: bool) -> OAuthError {
        self.basic_auth_used = used;
        self
    }

    fn body(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }

    /// RFC 6749 §5.2 JSON error (token, registration endpoints).
    pub fn into_json(self) -> Resp {
        let status = self.code.status();
        let mut r = response::json_no_store(status, &self.body());
        if status == StatusCode::UNAUTHORIZED && self.basic_auth_used {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcpgate\", charset=\"UTF-8\""),
            );
        }
        r
    }

    /// RFC 6749 §4.1.2.1: back to the client with `error`, `state` and the
    /// RFC 9207 `iss`. Only for a redirect URI already validated.
    pub fn into_redirect(self, redirect_uri: &str, state: Option<&str>, issuer: &str) -> Resp {
        let mut params = vec![
            ("error", self.code.as_str()),
            ("error_description", &*self.description),
        ];
        if let Some(s) = state {
            params.push(("state", s));
        }
        params.push(("iss", issuer));
        response::found(&append_query(redirect_uri, &params))
    }

    /// An error shown to the person in the browser: the client or redirect
    /// URI cannot be trusted, so no redirect (RFC 6749 §4.1.2.1). Scripts
    /// that do not ask for HTML get the same error as JSON.
    pub fn into_page(self, wants_html: bool) -> Resp {
        let status = self.code.status();
        if !wants_html {
            return response::json_no_store(status, &self.body());
        }
        let code = self.code.as_str();
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title>\
             <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}\
             code{{background:#f2f2f2;padding:.1rem .3rem}}</style></head><body>\
             <h1>This sign-in cannot continue</h1><p>{}</p><p>Error: <code>{}</code></p>\
             <p>Close this window and start again from your assistant. If it keeps happening, \
             show this page to whoever runs this service.</p></body></html>",
            response::escape_html(&self.description),
            code
        );
        response::html(status, page)
    }
}

impl OAuthError {
    /// A body that could not be read: 413 when too large, else 400, both
    /// as RFC 6749 JSON (`invalid_request`).
    pub fn body_response(endpoint: &'static str, e: response::BodyError) -> Resp {
        let refusal = OAuthError::invalid_request(e.to_string());
        refusal.refused(endpoint);
        let mut r = refusal.into_json();
        *r.status_mut() = e.status();
        r
    }
}

/// RFC 6749 §5.2 (and §4.1.2.1): `error_description` is made of
/// `%x20-21 / %x23-5B / %x5D-7E`. Descriptions that quote the client's
/// input (a redirect URI, a scope) are mapped onto that set: `"` becomes
/// `'`, anything else outside it `?`. This also keeps a line break the
/// client sent out of the logs.
fn error_description(d: Cow<'static, str>) -> Cow<'static, str> {
    fn allowed(c: char) -> bool {
        matches!(c, ' '..='~') && c != '"' && c != '\\'
    }
    if d.chars().all(allowed) {
        return d;
    }
    Cow::Owned(
        d.chars()
            .map(|c| match c {
                '"' => '\'',
                c if allowed(c) => c,
                _ => '?',
            })
            .collect(),
    )
}

/// Appends `params` to `uri`'s query, keeping what is already there
/// (RFC 6749 §3.1.2: the redirect URI may carry a query to preserve).
pub fn append_query(uri: &str, params: &[(&str, &str)]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_characters_rfc_6749_allows() {
        let plain = "redirect_uri `x` is not allowed; see RFC 6749 (5.2) ~!#$%&'*+,-./:=?@[]^_{|}";
        let e = OAuthError::invalid_request(plain);
        assert_eq!(e.description(), plain);
        assert!(
            matches!(e.description, Cow::Borrowed(_)),
            "no copy when clean"
        );
        let e = OAuthError::invalid_request("scope \"a\\b\"\r\nforged\tl\u{e9}");
        assert_eq!(e.description(), "scope 'a?b'??forged?l?");
        for c in e.description().chars() {
            assert!(
                matches!(c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E),
                "{c:?}"
            );
        }
    }

    #[test]
    fn redirect_keeps_the_registered_query_and_adds_iss() {
        let r = OAuthError::invalid_request("no PKCE").into_redirect(
            "https://app.example/cb?tenant=1",
            Some("xyz"),
            "https://mcp.example.com",
        );
        assert_eq!(r.status(), StatusCode::FOUND);
        assert_eq!(
            r.headers()[header::LOCATION],
            "https://app.example/cb?tenant=1&error=invalid_request&error_description=no+PKCE&state=xyz&iss=https%3A%2F%2Fmcp.example.com"
        );
    }

    #[test]
    fn basic_auth_failures_carry_a_basic_challenge() {
        let r = OAuthError::invalid_client("bad secret")
            .with_basic(true)
            .into_json();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        let r = OAuthError::invalid_client("unknown").into_json();
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }
}

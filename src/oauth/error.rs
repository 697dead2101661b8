//! The one OAuth error type, and the one place it becomes a response: RFC
//! 6749 §5.2 JSON, an error redirect (§4.1.2.1 + RFC 9207 `iss`), or an
//! error page when there is no safe place to redirect to.

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use http::StatusCode;

use super::redirect::ClientRedirect;
use crate::cimd::CimdError;
use crate::http::body::BodyError;
use crate::http::page;
use crate::http::response::{self, Resp};
use crate::store::StoreError;

/// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 7591 §3.2.2, RFC 8707
/// §2 and OpenID Connect Core §3.1.2.6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorCode {
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
    pub(crate) fn as_str(self) -> &'static str {
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
    pub(crate) fn status(self) -> StatusCode {
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
    pub(crate) code: ErrorCode,
    /// `error_description`: for the developer of the client; never contains
    /// a secret the client sent, and only the characters RFC 6749 allows
    /// (see [`error_description`]), so it is also safe to log as is.
    description: Cow<'static, str>,
    /// The client tried `client_secret_basic`: a 401 must then carry
    /// `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub(crate) basic_auth_used: bool,
    /// The request body could not be read: its status (413, 408, 400)
    /// is the answer's, whatever the delivery.
    body: Option<BodyError>,
    /// The caller logged this refusal with more context: count it only.
    logged: bool,
}

/// How a refusal reaches the client (RFC 6749 §4.1.2.1, §5.2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Delivery<'a> {
    /// §5.2 JSON: the token and registration endpoints.
    Json,
    /// To the person in the browser, when the client or its redirect URI
    /// cannot be trusted: no redirect. Scripts that do not ask for HTML
    /// get the same error as JSON.
    Page {
        wants_html: bool,
        /// Shown on the page with the time, for the person to quote.
        request_id: &'a str,
    },
    /// Back to the client's checked redirect URI with `error`, `state`
    /// and the RFC 9207 `iss` (§4.1.2.1).
    Redirect(ClientRedirect<'a>),
}

impl OAuthError {
    pub(crate) fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError {
            code,
            description: error_description(description.into()),
            basic_auth_used: false,
            body: None,
            logged: false,
        }
    }

    /// A request body that could not be read (`invalid_request`).
    pub(crate) fn body(e: BodyError) -> OAuthError {
        OAuthError {
            body: Some(e),
            ..OAuthError::invalid_request(e.to_string())
        }
    }

    /// The single-use store could not decide (503, RFC 6749 §5.2 and
    /// §4.1.2.1 `temporarily_unavailable`). Not logged per request: the
    /// store logs an outage once (`store::Health`).
    pub(crate) fn store(e: StoreError) -> OAuthError {
        let description = match e {
            StoreError::Full => "too many codes in flight; retry shortly",
            StoreError::Unavailable => {
                "the single-use store is unreachable; nothing was issued, retry shortly"
            }
        };
        OAuthError::new(ErrorCode::TemporarilyUnavailable, description).logged()
    }

    /// A client's metadata document or key set could not be had:
    /// `temporarily_unavailable` when asking again may work (this
    /// replica's fetch limits), else `invalid_client`, its description
    /// after `context`.
    pub(crate) fn client_document(e: CimdError, context: &str) -> OAuthError {
        if e.is_temporary() {
            OAuthError::new(ErrorCode::TemporarilyUnavailable, e.to_string())
        } else {
            OAuthError::invalid_client(format!("{context}{e}"))
        }
    }

    #[cfg(test)]
    pub(crate) fn description(&self) -> &str {
        &self.description
    }

    pub(crate) fn invalid_request(d: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidRequest, d)
    }

    pub(crate) fn invalid_client(d: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidClient, d)
    }

    pub(crate) fn invalid_grant(d: impl Into<Cow<'static, str>>) -> OAuthError {
        OAuthError::new(ErrorCode::InvalidGrant, d)
    }

    pub(crate) fn with_basic(mut self, used: bool) -> OAuthError {
        self.basic_auth_used = used;
        self
    }

    /// The caller has logged this refusal with more context than the
    /// generic line: [`OAuthError::respond`] only counts it.
    pub(crate) fn logged(mut self) -> OAuthError {
        self.logged = true;
        self
    }

    /// The one place an OAuth refusal becomes a response: counts it
    /// (`mcpgate_oauth_errors_total{endpoint,error}`), logs it at `info`
    /// unless the caller did (the code and description hold no secret),
    /// and renders it as `delivery` says with the status chosen here.
    pub(crate) fn respond(self, endpoint: &'static str, delivery: Delivery<'_>) -> Resp {
        crate::metrics::oauth_error(endpoint, self.code.as_str());
        if !self.logged {
            tracing::info!(
                endpoint,
                error = self.code.as_str(),
                description = %self.description,
                "oauth request refused"
            );
        }
        let (wants_html, request_id) = match delivery {
            // RFC 6749 §4.1.2.1: 302 (303 after a form), chosen there.
            Delivery::Redirect(to) => {
                return to.with(&[
                    ("error", self.code.as_str()),
                    ("error_description", &self.description),
                ])
            }
            Delivery::Json => {
                let status = self.body.map_or(self.code.status(), BodyError::status);
                return self.json(status);
            }
            Delivery::Page {
                wants_html,
                request_id,
            } => (wants_html, request_id),
        };
        let status = match self.body {
            // RFC 9110 §15.5.14 / §15.5.9: the body's own problem.
            Some(body) => body.status(),
            // A client the person's browser named is not authenticating:
            // the request is at fault (400); no `WWW-Authenticate` applies.
            None if self.code == ErrorCode::InvalidClient => StatusCode::BAD_REQUEST,
            None => self.code.status(),
        };
        if wants_html {
            self.page(status, request_id)
        } else {
            response::json_no_store(status, &self.body_json())
        }
    }

    fn body_json(&self) -> serde_json::Value {
        serde_json::json!({ "error": self.code.as_str(), "error_description": self.description })
    }

    /// RFC 6749 §5.2 JSON error (token, registration endpoints).
    fn json(&self, status: StatusCode) -> Resp {
        let mut r = response::json_no_store(status, &self.body_json());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // RFC 9110 §10.2.3: when to try again.
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if status == StatusCode::UNAUTHORIZED && self.basic_auth_used {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcpgate\", charset=\"UTF-8\""),
            );
        }
        r
    }

    /// The error page shown to the person: what went wrong, what to do,
    /// and the request id and time to quote to whoever runs the service.
    fn page(&self, status: StatusCode, request_id: &str) -> Resp {
        let body = format!(
            "<h1>This sign-in cannot continue</h1><p>{}</p><p>Error: <code>{}</code></p>\
             <p>Close this window and start again from your assistant. If it keeps happening, \
             send whoever runs this service the error above with this reference:</p>\
             <p class=\"note\">Request <code>{}</code> at {}</p>",
            page::escape_html(&self.description),
            self.code.as_str(),
            page::escape_html(request_id),
            crate::clock::rfc3339(crate::clock::unix_now()),
        );
        page::render(status, "Sign-in error", &body, None)
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
        let r = OAuthError::invalid_request("no PKCE").respond(
            "test",
            Delivery::Redirect(ClientRedirect {
                redirect_uri: "https://app.example/cb?tenant=1",
                state: Some("xyz"),
                issuer: "https://mcp.example.com",
                see_other: false,
            }),
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
            .respond("test", Delivery::Json);
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        let r = OAuthError::invalid_client("unknown").respond("test", Delivery::Json);
        assert!(r.headers().get(header::WWW_AUTHENTICATE).is_none());
    }

    #[test]
    fn each_delivery_chooses_its_status_once() {
        let page = Delivery::Page {
            wants_html: true,
            request_id: "r1",
        };
        let script = Delivery::Page {
            wants_html: false,
            request_id: "r1",
        };
        // A client the browser named is the request's fault on a page.
        let r = OAuthError::invalid_client("unknown client_id").respond("test", page);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let r = OAuthError::invalid_client("unknown client_id").respond("test", script);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        // Other codes keep their own status on a page.
        let r = OAuthError::new(ErrorCode::AccessDenied, "no").respond("test", page);
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        // A body problem keeps the body's status whatever the delivery.
        let too_large = || OAuthError::body(BodyError::TooLarge(10));
        assert_eq!(
            too_large().respond("test", Delivery::Json).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            too_large().respond("test", page).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        // The answer to a form POST is a 303.
        let back = Delivery::Redirect(ClientRedirect {
            redirect_uri: "https://app.example/cb",
            state: None,
            issuer: "https://mcp.example.com",
            see_other: true,
        });
        let r = OAuthError::new(ErrorCode::AccessDenied, "no").respond("test", back);
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }
}

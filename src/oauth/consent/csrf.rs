//! The consent form's CSRF token: a sealed [`ConsentRequest`] binding an
//! answer to the authorize request the page was shown for, on that host,
//! to that person.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::keys::KeyRing;
use crate::oauth::params::{is_own_form_field, Params};
use crate::random::random_id;
use crate::tokens::grants::{ClientBinding, ConsentRequest};
use crate::tokens::sealed::{self, OpenError};

/// How long a consent page may be left open before its answer is refused.
pub(super) const CSRF_TTL_SECS: u64 = 600;

/// Why a consent answer was refused. Logged, never shown in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(super) enum CsrfError {
    #[error("no csrf token")]
    Missing,
    #[error("csrf token does not open: {0}")]
    Open(OpenError),
    #[error("csrf token belongs to another {0}")]
    Mismatch(&'static str),
}

/// What a consent answer is bound to: one authorize request, on one host,
/// by one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct AnswerBinding<'a> {
    pub client: &'a ClientBinding,
    pub redirect_uri: &'a str,
    /// [`request_hash`] of the request.
    pub request: String,
    pub email: &'a str,
}

impl<'a> AnswerBinding<'a> {
    pub(super) fn new(
        issuer: &str,
        client: &'a ClientBinding,
        redirect_uri: &'a str,
        params: &Params<'_>,
        email: &'a str,
    ) -> AnswerBinding<'a> {
        AnswerBinding {
            client,
            redirect_uri,
            request: request_hash(issuer, params),
            email,
        }
    }

    /// The sealed CSRF token for the consent page.
    pub(super) fn csrf_token(&self, ring: &KeyRing, now: u64) -> String {
        let value = ConsentRequest {
            client: self.client.clone(),
            redirect_uri: self.redirect_uri.to_owned(),
            req: self.request.clone(),
            email: self.email.to_owned(),
            jti: random_id(),
            exp: now + CSRF_TTL_SECS,
        };
        sealed::seal(ring, &value, now).into_string()
    }

    /// The form `token` seals, if it was issued for exactly this request
    /// and person.
    pub(super) fn check(
        &self,
        ring: &KeyRing,
        token: Option<&str>,
        now: u64,
    ) -> Result<ConsentRequest, CsrfError> {
        let token = token.ok_or(CsrfError::Missing)?;
        let t = sealed::open::<ConsentRequest>(ring, token, now).map_err(CsrfError::Open)?;
        if t.client != *self.client {
            return Err(CsrfError::Mismatch("client"));
        }
        if t.redirect_uri != self.redirect_uri {
            return Err(CsrfError::Mismatch("redirect_uri"));
        }
        if t.req != self.request {
            return Err(CsrfError::Mismatch("authorize request"));
        }
        if t.email != self.email {
            return Err(CsrfError::Mismatch("person"));
        }
        Ok(t)
    }
}

/// SHA-256 (base64url) of the issuer and the authorize parameters, minus
/// mcpgate's own form fields, sorted by name and value (a name repeats only
/// for `resource`: other repeats never reach the consent page).
pub(super) fn request_hash(issuer: &str, params: &Params<'_>) -> String {
    let mut pairs: Vec<(&str, &str)> = params
        .pairs()
        .filter(|(k, _)| !is_own_form_field(k))
        .collect();
    pairs.sort_unstable();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    // An issuer is a URL without whitespace: the newline separates.
    let input = format!("{issuer}\n{}", ser.finish());
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        input.as_bytes(),
    ))
}

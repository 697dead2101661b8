//! Consent at `/oauth/authorize`: before a code goes to a client that
//! registered itself, the signed-in person sees who is asking (the name the
//! client gave itself, and the host the answer goes to) and answers Allow
//! or Deny. [`decide`] is the one question authorize asks.
//!
//! Stateless like everything else here:
//!
//! - The page posts the whole authorize request back to `/oauth/authorize`
//!   (the same path, so behind oauth2-proxy the POST carries the identity
//!   headers too) with `consent=allow|deny` and a sealed CSRF token
//!   ([`csrf`]) bound to the client, the redirect URI, a SHA-256 of the
//!   canonical authorize parameters, the host and the person. The POST is
//!   validated exactly like the GET; then it must come from the page
//!   itself (`Sec-Fetch-Site`/`Origin`, as the dev sign-in form), the token
//!   must match, and the token is used once (`store::Once::ConsentForm`):
//!   a form posted twice mints no second code.
//! - An Allow is remembered per client in a sealed, `HttpOnly` cookie
//!   ([`cookie`]) bound to the client and the person, for
//!   `identity.consent_ttl`, except when the answer goes to a loopback
//!   redirect URI ([`may_remember`]).
//!
//! The page ([`page`]) runs no script. Its CSP adds the redirect URI's
//! origin to `form-action`, because browsers apply `form-action` to the
//! redirect that answers the form too.

mod cookie;
mod csrf;
mod page;
#[cfg(test)]
mod tests;

use http::header::{HeaderMap, HeaderValue};

use super::client::{Client, ClientKind};
use super::params::{Params, CSRF_FIELD};
use crate::http::page::posted_from;
use crate::http::response::Resp;
use crate::keys::KeyRing;
use crate::settings::{ConsentPolicy, IdentitySettings, Site};
use crate::store::{Once, Store, StoreError};
use crate::tokens::grants::ClientBinding;

/// What consent is asked about.
pub(super) struct Question<'a> {
    pub client: &'a Client<'a>,
    pub binding: &'a ClientBinding,
    pub redirect_uri: &'a str,
    /// The host the request arrived on.
    pub site: &'a Site,
    /// The signed-in person's email.
    pub email: &'a str,
    /// The authorize request, including any of mcpgate's form fields.
    pub params: &'a Params<'a>,
    /// The request's headers (the remember-cookies).
    pub headers: &'a HeaderMap,
    /// The form's answer; `None` unless the request is the consent form's
    /// POST (on a GET a `consent` parameter is the client's, not an answer).
    pub answer: Option<&'a str>,
    /// The client will get a refresh token: the page says it can stay
    /// connected.
    pub stays_connected: bool,
}

/// What authorize does next.
#[derive(Debug)]
pub(super) enum Decision {
    /// Issue the code, setting these cookies on the redirect (a remembered
    /// Allow, and the oldest remember-cookies expired).
    Proceed { set_cookies: Vec<HeaderValue> },
    /// Ask: this is the consent page.
    Ask(Resp),
    /// The person answered Deny.
    Denied,
    /// The answer cannot be taken (logged here).
    Refused(Refusal),
    /// The store could not say whether the form was answered before.
    Unavailable(StoreError),
}

/// Why a consent answer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// The form's CSRF token is missing, expired, or for another request,
    /// host or person.
    NotThisRequest,
    /// The answer is neither `allow` nor `deny`.
    NotAnAnswer,
    /// The form was posted from another site (a forged Allow).
    CrossSite,
    /// This form was answered already.
    AlreadyAnswered,
}

/// Whether `kind` of client must be asked under `policy`.
fn required(policy: ConsentPolicy, kind: ClientKind) -> bool {
    match policy {
        ConsentPolicy::Never => false,
        ConsentPolicy::Always => true,
        // A metadata document is as self-asserted as a registration.
        ConsentPolicy::DynamicClients => {
            matches!(kind, ClientKind::Registered | ClientKind::Document)
        }
    }
}

/// Whether an Allow for an answer sent to `redirect_uri` may be
/// remembered. RFC 8252 §8.6: unless the client's identity can be assured,
/// a request is handled as if nothing had been approved before. A loopback
/// redirect URI (any port, RFC 8252 §7.3) proves nothing: any program on
/// the machine can listen there with the same public client_id and drive
/// the browser, where a remembered Allow would hand it a code with no one
/// looking. An `https` redirect URI is the client's own.
fn may_remember(redirect_uri: &str) -> bool {
    !crate::settings::redirect::is_loopback(redirect_uri)
}

/// Decides whether the code may be issued now, must wait for the person's
/// answer, or must not be issued.
pub(super) async fn decide(
    settings: &IdentitySettings,
    ring: &KeyRing,
    store: &Store,
    q: &Question<'_>,
    now: u64,
) -> Decision {
    let client = q.client.name().unwrap_or("-");
    let bound =
        csrf::AnswerBinding::new(&q.site.issuer, q.binding, q.redirect_uri, q.params, q.email);
    let Some(answer) = q.answer else {
        let remembered = || {
            may_remember(q.redirect_uri)
                && cookie::remembered(ring, q.headers, q.binding, q.email, now)
        };
        if required(settings.consent, q.client.kind()) && !remembered() {
            let token = bound.csrf_token(ring, now);
            tracing::info!(client, email = %q.email, "consent page shown");
            return Decision::Ask(page::render(q, &token));
        }
        return Decision::Proceed {
            set_cookies: Vec::new(),
        };
    };
    // RFC 6749 §10.12: only the page itself may answer. The CSRF token
    // alone is not enough: a page of another site could embed a token it
    // obtained by showing the person's own consent page in a frame.
    if !posted_from(q.headers, &q.site.issuer) {
        tracing::warn!(client, email = %q.email, "consent answer refused: posted from another site");
        return Decision::Refused(Refusal::CrossSite);
    }
    let form = match bound.check(ring, q.params.get(CSRF_FIELD), now) {
        Ok(form) => form,
        Err(e) => {
            tracing::warn!(reason = %e, client, email = %q.email, "consent answer refused");
            return Decision::Refused(Refusal::NotThisRequest);
        }
    };
    let allowed = match answer {
        "allow" => true,
        "deny" => false,
        _ => return Decision::Refused(Refusal::NotAnAnswer),
    };
    match store
        .first_use(Once::ConsentForm, &form.jti, form.exp, now)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(client, email = %q.email, "consent answer refused: form already answered");
            return Decision::Refused(Refusal::AlreadyAnswered);
        }
        Err(e) => return Decision::Unavailable(e),
    }
    if allowed {
        tracing::info!(client, email = %q.email, "consent allowed");
        let remember = may_remember(q.redirect_uri)
            .then(|| {
                cookie::remember(
                    ring,
                    q.binding,
                    q.email,
                    settings.consent_ttl,
                    q.site.scheme,
                    now,
                )
            })
            .flatten();
        let set_cookies = match remember {
            Some(cookie) => {
                let name = cookie::name(q.binding);
                let mut all = vec![cookie];
                all.extend(cookie::expire_oldest(
                    ring,
                    q.headers,
                    &name,
                    q.site.scheme,
                    now,
                ));
                all
            }
            None => Vec::new(),
        };
        Decision::Proceed { set_cookies }
    } else {
        tracing::info!(client, email = %q.email, "consent denied");
        Decision::Denied
    }
}

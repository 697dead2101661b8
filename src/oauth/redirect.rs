//! The authorization response (RFC 6749 §4.1.2): a redirect back to the
//! client's checked redirect URI, carrying a code or an error, then
//! `state` and the RFC 9207 `iss`.

use http::StatusCode;

use crate::http::response::{self, append_query, Resp};

/// Where and how authorize answers the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientRedirect<'a> {
    /// A redirect URI already checked against the client's registration.
    pub(crate) redirect_uri: &'a str,
    /// The request's `state`, echoed as sent.
    pub(crate) state: Option<&'a str>,
    /// The host's issuer: exactly the metadata's `issuer` (RFC 9207 §2).
    pub(crate) issuer: &'a str,
    /// The request was a form's POST: answer 303 so that the browser
    /// follows with a GET; otherwise 302.
    pub(crate) see_other: bool,
}

impl ClientRedirect<'_> {
    /// The redirect carrying `params` (the code, or the error), then
    /// `state` and `iss`.
    pub(crate) fn with(self, params: &[(&str, &str)]) -> Resp {
        let mut q = params.to_vec();
        if let Some(s) = self.state {
            q.push(("state", s));
        }
        q.push(("iss", self.issuer));
        let status = if self.see_other {
            StatusCode::SEE_OTHER
        } else {
            StatusCode::FOUND
        };
        response::redirect(status, &append_query(self.redirect_uri, &q))
    }
}

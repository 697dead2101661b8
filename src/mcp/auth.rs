//! Bearer tokens on `/mcp` (RFC 6750, MCP authorization): verified offline
//! against the key ring; every refusal is a 401/403 with a
//! `WWW-Authenticate` challenge that points at the resource metadata.

use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use crate::clock::unix_now;
use crate::http::response::{self, Resp};
use crate::http::Ctx;
use crate::keys::deny::Subject;
use crate::tokens::access::{Expectations, TokenError, VerifiedToken};
use crate::tokens::scope;
use crate::tokens::scope::DEFAULT_SCOPE;
use crate::tokens::verified::VerifiedTokens;

/// Why a request to `/mcp` is not authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No credentials at all: the challenge carries no error (RFC 6750 §3.1).
    Missing,
    /// A malformed request: two Authorization headers, a token in the URL.
    InvalidRequest(&'static str),
    /// The token was refused.
    InvalidToken(TokenError),
    /// A valid token without the `mcp` scope.
    InsufficientScope,
}

impl AuthFailure {
    /// A label for metrics.
    fn label(&self) -> &'static str {
        match self {
            AuthFailure::Missing => "missing",
            AuthFailure::InvalidRequest(_) => "invalid_request",
            AuthFailure::InvalidToken(e) => e.label(),
            AuthFailure::InsufficientScope => "insufficient_scope",
        }
    }

    /// The one mapping from an auth failure to a response: status, body,
    /// challenge, metric and log line. A request without credentials is
    /// how a client learns where to get a token: counted, not logged.
    pub(crate) fn into_response(self, ctx: &Ctx<'_>) -> Resp {
        self.respond(ctx, &ctx.host.challenge, &ctx.host.challenge_params)
    }

    /// [`AuthFailure::into_response`] for the resource whose challenge
    /// (and its parameters, to add an `error` to) is given: an upstream
    /// mount's points at its own metadata (RFC 9728 §5.1).
    pub(crate) fn respond(self, ctx: &Ctx<'_>, bare: &HeaderValue, params: &str) -> Resp {
        crate::metrics::validation_failure(self.label());
        if !matches!(self, AuthFailure::Missing) {
            tracing::info!(
                // The one target of `/mcp`'s lines, whichever file writes them.
                target: "mcpgate::mcp",
                reason = ?self,
                peer = %ctx.peer.ip(),
                "mcp request refused"
            );
        }
        let (status, challenge, error, description) = match &self {
            AuthFailure::Missing => (StatusCode::UNAUTHORIZED, bare.clone(), None, None),
            AuthFailure::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                challenge(params, "invalid_request", d),
                Some("invalid_request"),
                Some(d.to_string()),
            ),
            AuthFailure::InvalidToken(e) => {
                let d = format!("the access token is not valid: {e}");
                (
                    StatusCode::UNAUTHORIZED,
                    challenge(params, "invalid_token", &d),
                    Some("invalid_token"),
                    Some(d),
                )
            }
            AuthFailure::InsufficientScope => {
                let d = format!("the access token lacks the {DEFAULT_SCOPE} scope");
                (
                    StatusCode::FORBIDDEN,
                    challenge(params, "insufficient_scope", &d),
                    Some("insufficient_scope"),
                    Some(d),
                )
            }
        };
        let body = match error {
            Some(e) => serde_json::json!({ "error": e, "error_description": description }),
            None => serde_json::json!({
                "error": "unauthorized",
                "error_description": "an access token is required; see the WWW-Authenticate header",
            }),
        };
        let mut r = response::json(status, &body);
        r.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        r
    }
}

fn challenge(params: &str, error: &str, description: &str) -> HeaderValue {
    // Descriptions are ours and plain ASCII; quotes cannot appear.
    HeaderValue::from_str(&format!(
        "Bearer {params}, error=\"{error}\", error_description=\"{description}\""
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

/// The bearer token of a request, if it sent exactly one the right way.
fn bearer<'h>(headers: &'h HeaderMap, query: Option<&str>) -> Result<&'h str, AuthFailure> {
    // RFC 6750 §2.3 (token in the URL) leaks into logs and history: refused.
    if query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"))
    {
        return Err(AuthFailure::InvalidRequest(
            "access tokens are accepted in the Authorization header only",
        ));
    }
    let value = match crate::http::single_header(headers, header::AUTHORIZATION) {
        Ok(Some(v)) => v,
        Ok(None) => return Err(AuthFailure::Missing),
        Err(_) => {
            return Err(AuthFailure::InvalidRequest(
                "more than one Authorization header",
            ))
        }
    };
    // Checked as UTF-8 only, not by `to_str`'s slower visible-ASCII test:
    // the token parser refuses anything but base64url and dots anyway.
    let value = std::str::from_utf8(value.as_bytes())
        .map_err(|_| AuthFailure::InvalidToken(TokenError::Malformed))?;
    let (scheme, token) = value.split_once(' ').ok_or(AuthFailure::Missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthFailure::Missing);
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthFailure::InvalidToken(TokenError::Malformed));
    }
    Ok(token)
}

/// Authenticates a request to `/mcp`.
pub(crate) fn authenticate(
    ctx: &Ctx<'_>,
    verified_tokens: &VerifiedTokens,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<VerifiedToken, AuthFailure> {
    let settings = &ctx.settings;
    let audiences = if settings.one_resource {
        &settings.resources
    } else {
        std::slice::from_ref(&ctx.host.site.resource)
    };
    authenticate_for(ctx, verified_tokens, headers, query, audiences)
}

/// Authenticates a request for a resource whose `aud` is one of
/// `audiences` (RFC 8707: a token is good only where it was asked for).
pub(crate) fn authenticate_for(
    ctx: &Ctx<'_>,
    verified_tokens: &VerifiedTokens,
    headers: &HeaderMap,
    query: Option<&str>,
    audiences: &[String],
) -> Result<VerifiedToken, AuthFailure> {
    let token = bearer(headers, query)?;
    let expect = Expectations {
        // Any issuer either way: a flow may finish on the other host.
        issuers: &ctx.settings.issuers,
        audiences,
    };
    let ring = ctx.keys.load();
    let verified = verified_tokens
        .verify(&ring, token, &expect, unix_now())
        .map_err(AuthFailure::InvalidToken)?;
    if ring.deny.denies(&Subject {
        sub: verified.sub(),
        email: verified.email(),
        client_id: verified.client_id(),
        jti: Some(verified.jti()),
        family: None,
        issued_at: verified.iat,
    }) {
        return Err(AuthFailure::InvalidToken(TokenError::Revoked));
    }
    if !scope::contains(verified.scope(), DEFAULT_SCOPE) {
        return Err(AuthFailure::InsufficientScope);
    }
    Ok(verified)
}

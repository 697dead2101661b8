//! Who may call `/mcp`, decided before the body is looked at: a page from
//! an allowed origin (or no page), with a bearer token for this resource
//! carrying the `mcp` scope, by POST.

use http::request::Parts;
use http::{header, Method};

use super::auth::{self, AuthFailure};
use super::error::RpcError;
use crate::http::cors;
use crate::http::error::HttpError;
use crate::http::response::Resp;
use crate::http::Ctx;
use crate::tokens::access::VerifiedToken;
use crate::tokens::verified::VerifiedTokens;

/// Why a request to `/mcp` is refused before its body is looked at: a
/// refusal of one of the protocols `/mcp` speaks, each rendered by that
/// protocol's one function.
pub(crate) enum Refusal {
    /// JSON-RPC: a browser page from a foreign origin.
    Rpc(RpcError),
    /// RFC 6750: no usable bearer token.
    Bearer(AuthFailure),
    /// HTTP: no SSE stream and no sessions to delete (transport §2.2,
    /// §2.5), so nothing but POST.
    Method,
}

impl Refusal {
    pub(crate) fn into_response(self, ctx: &Ctx<'_>) -> Resp {
        match self {
            Refusal::Rpc(e) => e.into_response(None),
            Refusal::Bearer(f) => f.into_response(ctx),
            Refusal::Method => HttpError::MethodNotAllowed { allow: "POST" }.respond(),
        }
    }
}

/// The caller of a request to `/mcp`: origin first, then the token, then
/// the method (a 405 only for a caller who may call).
pub(crate) fn admit(
    ctx: &Ctx<'_>,
    verified_tokens: &VerifiedTokens,
    parts: &Parts,
) -> Result<VerifiedToken, Refusal> {
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        if !cors::mcp_origin_allowed(ctx, origin) {
            return Err(Refusal::Rpc(RpcError::Origin));
        }
    }
    let claims = auth::authenticate(ctx, verified_tokens, &parts.headers, parts.uri.query())
        .map_err(Refusal::Bearer)?;
    if parts.method != Method::POST {
        return Err(Refusal::Method);
    }
    Ok(claims)
}

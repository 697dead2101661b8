//! CORS (Fetch standard): browser-based clients (MCP Inspector, web apps)
//! must be able to discover, register and exchange codes from their own
//! origin. Never on `/oauth/authorize` (a top-level navigation, not a
//! fetch); on `/mcp` only for allowlisted origins.

use http::header::{self, HeaderValue};
use http::StatusCode;

use super::error::HttpError;
use super::response::{self, Resp};
use super::Ctx;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Discovery, JWKS, registration, token: any origin, no credentials.
    Open,
    /// `/mcp`: allowlisted origins only.
    Mcp,
    /// Everything else: no CORS.
    Closed,
}

const OPEN_ALLOW_HEADERS: &str = "authorization, content-type, mcp-protocol-version";
const MCP_ALLOW_HEADERS: &str =
    "authorization, content-type, accept, mcp-protocol-version, mcp-method, mcp-name, mcp-session-id, last-event-id";
const MCP_EXPOSE_HEADERS: &str = "www-authenticate, mcp-session-id, mcp-protocol-version";

/// Whether `origin` may call `/mcp` from a browser.
pub(crate) fn mcp_origin_allowed(ctx: &Ctx<'_>, origin: &HeaderValue) -> bool {
    origin
        .to_str()
        .map(|o| ctx.settings.mcp_allowed_origins.iter().any(|a| a == o))
        .unwrap_or(false)
}

/// Adds the CORS response headers a route gets for `origin`.
pub(crate) fn decorate<B>(
    ctx: &Ctx<'_>,
    route: Route,
    origin: Option<&HeaderValue>,
    resp: &mut http::Response<B>,
) {
    let Some(origin) = origin else { return };
    let h = resp.headers_mut();
    match route {
        Route::Open => {
            h.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static("www-authenticate"),
            );
        }
        Route::Mcp if mcp_origin_allowed(ctx, origin) => {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(MCP_EXPOSE_HEADERS),
            );
            h.append(header::VARY, HeaderValue::from_static("origin"));
        }
        Route::Mcp | Route::Closed => {}
    }
}

/// Answers an `OPTIONS` preflight: 204 with the grant, or 403 without
/// one (a route without CORS, or an origin `/mcp` does not allow).
pub(crate) fn preflight(ctx: &Ctx<'_>, route: Route, origin: Option<&HeaderValue>) -> Resp {
    let allowed = match (route, origin) {
        (Route::Open, Some(_)) => Some((
            HeaderValue::from_static("*"),
            OPEN_ALLOW_HEADERS,
            "GET, POST, OPTIONS",
        )),
        (Route::Mcp, Some(o)) if mcp_origin_allowed(ctx, o) => {
            Some((o.clone(), MCP_ALLOW_HEADERS, "GET, POST, DELETE, OPTIONS"))
        }
        _ => None,
    };
    let Some((origin, headers, methods)) = allowed else {
        return HttpError::PreflightRefused.respond();
    };
    let mut r = response::empty(StatusCode::NO_CONTENT);
    let h = r.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(methods),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(headers),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    if route == Route::Mcp {
        h.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    r
}

//! Where each request goes: health checks first (any host), then the host
//! is resolved, then a match on method and path.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::cors;
use super::host::HostDocs;
use super::response::{self, Resp};
use crate::app::App;
use crate::{mcp, oauth};

/// What a handler knows about the request besides the request itself.
pub struct Ctx<'a> {
    pub app: &'a App,
    /// The host the request is for.
    pub host: &'a HostDocs,
    /// The TCP peer (the proxy, behind oauth2-proxy).
    pub peer: SocketAddr,
}

/// A low-cardinality name for metrics and logs.
pub fn route_name(method: &Method, path: &str) -> &'static str {
    match (method, path) {
        (_, "/healthz") => "healthz",
        (_, "/readyz") => "readyz",
        (_, "/.well-known/oauth-authorization-server")
        | (_, "/.well-known/openid-configuration") => "authorization_server_metadata",
        (_, "/.well-known/oauth-protected-resource")
        | (_, "/.well-known/oauth-protected-resource/mcp") => "protected_resource_metadata",
        (_, "/.well-known/jwks.json") => "jwks",
        (&Method::OPTIONS, _) => "preflight",
        (_, "/oauth/register") => "register",
        (_, "/oauth/authorize") => "authorize",
        (_, "/oauth/token") => "token",
        (_, "/mcp") | (_, "/mcp/") => "mcp",
        _ => "other",
    }
}

pub async fn route(app: Arc<App>, peer: SocketAddr, req: Request<Incoming>) -> Resp {
    let method = req.method().clone();
    // Load balancers probe by IP: health needs no known host.
    match (&method, req.uri().path()) {
        (&Method::GET, "/healthz") => return response::bytes(StatusCode::OK, "text/plain", "ok\n"),
        (&Method::GET, "/readyz") => {
            return if app.is_ready() {
                response::bytes(StatusCode::OK, "text/plain", "ready\n")
            } else {
                response::bytes(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "not ready\n")
            };
        }
        _ => {}
    }
    let Some(host) = app.hosts.resolve(&app.settings, peer.ip(), &req) else {
        return response::json(
            StatusCode::MISDIRECTED_REQUEST,
            &serde_json::json!({
                "error": "invalid_request",
                "error_description": "this server does not serve the requested host",
            }),
        );
    };
    let ctx = Ctx {
        app: &app,
        host,
        peer,
    };
    let path = req.uri().path().to_owned();
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    let cors_route = cors::Route::for_path(&path);
    if method == Method::OPTIONS {
        return cors::preflight(&ctx, cors_route, origin.as_ref(), req.headers());
    }
    let mut resp = match (&method, path.as_str()) {
        (&Method::GET, "/.well-known/oauth-authorization-server")
        | (&Method::GET, "/.well-known/openid-configuration") => {
            response::json_bytes(StatusCode::OK, host.authorization_server_metadata.clone())
        }
        (&Method::GET, "/.well-known/oauth-protected-resource")
        | (&Method::GET, "/.well-known/oauth-protected-resource/mcp") => {
            response::json_bytes(StatusCode::OK, host.protected_resource_metadata.clone())
        }
        (&Method::GET, "/.well-known/jwks.json") => {
            response::json_bytes(StatusCode::OK, app.keys.load().jwks().clone())
        }
        (&Method::POST, "/oauth/register") => oauth::register::handle(&ctx, req).await,
        (&Method::GET, "/oauth/authorize") | (&Method::POST, "/oauth/authorize") => {
            oauth::authorize::handle(&ctx, req).await
        }
        (&Method::POST, "/oauth/token") => oauth::token::handle(&ctx, req).await,
        (_, "/mcp") | (_, "/mcp/") => mcp::handle(&ctx, req).await,
        (_, "/oauth/register") | (_, "/oauth/token") => response::method_not_allowed("POST"),
        (_, "/oauth/authorize") => response::method_not_allowed("GET, POST"),
        _ => response::not_found(),
    };
    cors::decorate(&ctx, cors_route, origin.as_ref(), &mut resp);
    resp
}

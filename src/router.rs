//! Where each request goes: health checks first (any host), then the host
//! is resolved, then a match on method and path.

use std::net::SocketAddr;

use http::{HeaderValue, Method, Request};
use hyper::body::Incoming;

use crate::app::App;
use crate::http::error::HttpError;
use crate::http::response::{whole, Reply};
use crate::http::{cors, Ctx};
use crate::metrics::RouteMetrics;
use crate::{discovery, health, mcp, oauth};

/// The endpoints, by path. The one place a path is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Healthz,
    Readyz,
    /// RFC 8414 (also served as `openid-configuration`).
    AuthorizationServerMetadata,
    /// RFC 9728, with and without the resource path.
    ProtectedResourceMetadata,
    Jwks,
    Register,
    Authorize,
    Token,
    Mcp,
    /// An upstream mount (`[[upstreams]]`), by index.
    Upstream(usize),
    /// A mount's RFC 9728 document, by index.
    UpstreamMetadata(usize),
    /// `/`: a page for a person who opened the service in a browser.
    Home,
    NotFound,
}

impl Endpoint {
    /// The endpoint of `path`: a mount's, then one of mcpgate's own (an
    /// upstream mounted at `/mcp` replaces the built-in server).
    pub(crate) fn for_request(app: &App, path: &str) -> Endpoint {
        if let Some(i) = app.mounts.at(path) {
            return Endpoint::Upstream(i);
        }
        if let Some(i) = app.mounts.metadata_at(path) {
            return Endpoint::UpstreamMetadata(i);
        }
        Endpoint::for_path(path)
    }

    pub(crate) fn for_path(path: &str) -> Endpoint {
        match path {
            "/healthz" => Endpoint::Healthz,
            "/readyz" => Endpoint::Readyz,
            "/.well-known/oauth-authorization-server" | "/.well-known/openid-configuration" => {
                Endpoint::AuthorizationServerMetadata
            }
            "/.well-known/oauth-protected-resource"
            | "/.well-known/oauth-protected-resource/mcp" => Endpoint::ProtectedResourceMetadata,
            "/.well-known/jwks.json" => Endpoint::Jwks,
            "/oauth/register" => Endpoint::Register,
            "/oauth/authorize" => Endpoint::Authorize,
            "/oauth/token" => Endpoint::Token,
            "/mcp" | "/mcp/" => Endpoint::Mcp,
            "/" => Endpoint::Home,
            _ => Endpoint::NotFound,
        }
    }

    /// A low-cardinality name for metrics and logs.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Endpoint::Healthz => "healthz",
            Endpoint::Readyz => "readyz",
            Endpoint::AuthorizationServerMetadata => "authorization_server_metadata",
            Endpoint::ProtectedResourceMetadata => "protected_resource_metadata",
            Endpoint::Jwks => "jwks",
            Endpoint::Register => "register",
            Endpoint::Authorize => "authorize",
            Endpoint::Token => "token",
            Endpoint::Mcp => "mcp",
            Endpoint::Upstream(_) => "upstream",
            Endpoint::UpstreamMetadata(_) => "protected_resource_metadata",
            Endpoint::Home => "home",
            Endpoint::NotFound => "other",
        }
    }

    /// This endpoint's request metrics.
    pub(crate) fn metrics(self) -> &'static RouteMetrics {
        static METRICS: [RouteMetrics; 12] = [
            RouteMetrics::new(Endpoint::Healthz.name()),
            RouteMetrics::new(Endpoint::Readyz.name()),
            RouteMetrics::new(Endpoint::AuthorizationServerMetadata.name()),
            RouteMetrics::new(Endpoint::ProtectedResourceMetadata.name()),
            RouteMetrics::new(Endpoint::Jwks.name()),
            RouteMetrics::new(Endpoint::Register.name()),
            RouteMetrics::new(Endpoint::Authorize.name()),
            RouteMetrics::new(Endpoint::Token.name()),
            RouteMetrics::new(Endpoint::Mcp.name()),
            RouteMetrics::new(Endpoint::Home.name()),
            RouteMetrics::new(Endpoint::NotFound.name()),
            RouteMetrics::new(Endpoint::Upstream(0).name()),
        ];
        use Endpoint as E;
        let i = match self {
            E::Healthz => 0,
            E::Readyz => 1,
            E::AuthorizationServerMetadata | E::UpstreamMetadata(_) => 2,
            E::ProtectedResourceMetadata => 3,
            E::Jwks => 4,
            E::Register => 5,
            E::Authorize => 6,
            E::Token => 7,
            E::Mcp => 8,
            E::Home => 9,
            E::NotFound => 10,
            E::Upstream(_) => 11,
        };
        &METRICS[i]
    }

    fn cors(self) -> cors::Route {
        match self {
            Endpoint::AuthorizationServerMetadata
            | Endpoint::ProtectedResourceMetadata
            | Endpoint::UpstreamMetadata(_)
            | Endpoint::Jwks
            | Endpoint::Register
            | Endpoint::Token => cors::Route::Open,
            Endpoint::Mcp | Endpoint::Upstream(_) => cors::Route::Mcp,
            _ => cors::Route::Closed,
        }
    }
}

pub(crate) async fn route(
    app: &App,
    peer: SocketAddr,
    request_id: &HeaderValue,
    req: Request<Incoming>,
) -> Reply {
    use Endpoint as E;
    let endpoint = E::for_request(app, req.uri().path());
    let method = req.method().clone();
    // Load balancers probe by IP: health needs no known host.
    match (endpoint, &method) {
        (E::Healthz, &Method::GET) => return whole(health::healthz()),
        (E::Readyz, &Method::GET) => return whole(health::readyz(app.is_ready(), &app.store)),
        _ => {}
    }
    // A malformed host is 400, an unknown or missing one 421.
    let host = match app.hosts.resolve(&app.settings, peer.ip(), &req) {
        Ok(host) => host,
        Err(e) => return whole(HttpError::Host(e).respond()),
    };
    let ctx = Ctx {
        settings: &app.settings,
        keys: &app.keys,
        host,
        peer,
        request_id,
    };
    let origin = req.headers().get(http::header::ORIGIN).cloned();
    if method == Method::OPTIONS {
        return whole(cors::preflight(&ctx, endpoint.cors(), origin.as_ref()));
    }
    // A mount answers every method itself, as `/mcp` does; its answer
    // may stream.
    if let E::Upstream(i) = endpoint {
        let mut reply =
            mcp::upstream::handle(&ctx, &app.mounts, i, &app.verified_tokens, req).await;
        cors::decorate(&ctx, endpoint.cors(), origin.as_ref(), &mut reply);
        return reply;
    }
    let mut resp = match (endpoint, &method) {
        (E::UpstreamMetadata(i), &Method::GET) => app.mounts.metadata(i, host),
        (E::AuthorizationServerMetadata, &Method::GET) => app.discovery.authorization_server(host),
        (E::ProtectedResourceMetadata, &Method::GET) => app.discovery.protected_resource(host),
        (E::Jwks, &Method::GET) => discovery::jwks(&app.keys),
        (E::Register, &Method::POST) => oauth::register::handle(&ctx, req).await,
        (E::Authorize, &Method::GET | &Method::POST) => {
            oauth::authorize::handle(&ctx, &app.sign_in, &app.store, &app.cimd, req).await
        }
        (E::Token, &Method::POST) => oauth::token::handle(&ctx, &app.store, &app.cimd, req).await,
        // `/mcp` answers every method itself (405 after authentication).
        (E::Mcp, _) => mcp::handle(&ctx, &app.verified_tokens, req).await,
        (E::Register | E::Token, _) => HttpError::MethodNotAllowed { allow: "POST" }.respond(),
        (E::Authorize, _) => HttpError::MethodNotAllowed { allow: "GET, POST" }.respond(),
        // A browser gets a page saying where the MCP endpoint is; a script
        // asking for `/` gets what any unknown path gets.
        (E::Home, &Method::GET) if wants_html(&req) => discovery::home(&app.settings, host),
        (E::Home | E::NotFound, _) => HttpError::NotFound.respond(),
        _ => HttpError::MethodNotAllowed { allow: "GET" }.respond(),
    };
    cors::decorate(&ctx, endpoint.cors(), origin.as_ref(), &mut resp);
    whole(resp)
}

/// Whether the client prefers a page (a browser's navigation).
fn wants_html<B>(req: &Request<B>) -> bool {
    req.headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_its_own_metrics() {
        use Endpoint as E;
        for e in [
            E::Healthz,
            E::Readyz,
            E::AuthorizationServerMetadata,
            E::ProtectedResourceMetadata,
            E::Jwks,
            E::Register,
            E::Authorize,
            E::Token,
            E::Mcp,
            E::Home,
            E::NotFound,
        ] {
            assert_eq!(e.metrics().route(), e.name());
        }
    }
}

//! Discovery documents (RFC 8414, RFC 9728), rendered once per host when
//! the server starts: a request for one is a pointer copy.

use serde_json::{json, Value};

use crate::settings::{Site, DEFAULT_SCOPE, SCOPES_SUPPORTED};

/// RFC 8414 §2 authorization server metadata, also served as
/// `/.well-known/openid-configuration` for clients that only look there.
pub fn authorization_server(site: &Site) -> Value {
    let i = &site.issuer;
    json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/oauth/authorize"),
        "token_endpoint": format!("{i}/oauth/token"),
        "registration_endpoint": format!("{i}/oauth/register"),
        "jwks_uri": format!("{i}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": SCOPES_SUPPORTED,
        // RFC 9207: authorization responses carry `iss`.
        "authorization_response_iss_parameter_supported": true,
    })
}

/// RFC 9728 §2 protected resource metadata for `/mcp`. `offline_access` is
/// the authorization server's business, not the resource's.
pub fn protected_resource(site: &Site) -> Value {
    json!({
        "resource": site.resource,
        "authorization_servers": [site.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [DEFAULT_SCOPE],
        "resource_name": "mcpgate",
    })
}

/// RFC 9728 §3.1: where the resource's metadata lives, for the 401 challenge.
pub fn resource_metadata_url(site: &Site) -> String {
    format!("{}/.well-known/oauth-protected-resource/mcp", site.issuer)
}

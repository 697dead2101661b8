//! Discovery: the authorization server's metadata (RFC 8414), the
//! protected resource's (RFC 9728) and the JWKS. The documents are rendered
//! once per host when the server starts: a request for one is a pointer
//! copy. The JWKS is rendered by the key ring whenever it changes.

use bytes::Bytes;
use http::StatusCode;
use serde_json::{json, Value};

use crate::http::host::Host;
use crate::http::page::{self, escape_html};
use crate::http::response::{self, Resp};
use crate::keys::Keys;
use crate::settings::{Settings, Site};
use crate::tokens::scope::{DEFAULT_SCOPE, SCOPES_SUPPORTED};

/// Every host's documents, in the order of `[[hosts]]`.
pub(crate) struct Documents {
    hosts: Vec<HostDocuments>,
}

struct HostDocuments {
    authorization_server: Bytes,
    protected_resource: Bytes,
}

impl Documents {
    pub(crate) fn new(settings: &Settings) -> Documents {
        let render = |v: Value| Bytes::from(serde_json::to_vec(&v).expect("JSON"));
        Documents {
            hosts: settings
                .sites
                .iter()
                .map(|site| HostDocuments {
                    authorization_server: render(authorization_server(site, settings.cimd.enabled)),
                    protected_resource: render(protected_resource(site)),
                })
                .collect(),
        }
    }

    /// `GET /.well-known/oauth-authorization-server` (and
    /// `openid-configuration`) on `host`.
    pub(crate) fn authorization_server(&self, host: &Host) -> Resp {
        let doc = &self.hosts[host.index].authorization_server;
        response::json_bytes(StatusCode::OK, doc.clone())
    }

    /// `GET /.well-known/oauth-protected-resource[/mcp]` on `host`.
    pub(crate) fn protected_resource(&self, host: &Host) -> Resp {
        let doc = &self.hosts[host.index].protected_resource;
        response::json_bytes(StatusCode::OK, doc.clone())
    }
}

/// `GET /` from a browser: what this service is and where its MCP
/// endpoint is, for a person who opened the URL an admin gave them.
pub(crate) fn home(settings: &Settings, host: &Host) -> Resp {
    let site = &host.site;
    let others: String = settings
        .sites
        .iter()
        .filter(|s| s.issuer != site.issuer)
        .map(|s| format!("<li><code>{}</code></li>", escape_html(&s.resource)))
        .collect();
    let others = if others.is_empty() {
        String::new()
    } else {
        format!("<p>The same tools are also served at:</p><ul>{others}</ul>")
    };
    let body = format!(
        "<h1>mcpgate</h1>\
         <p>This is the MCP server of your organization. Add it to your AI assistant \
         (Claude, Cursor, VS Code, ChatGPT, Gemini…) as a remote MCP server with this URL:</p>\
         <p class=\"who\"><code>{resource}</code></p>\
         <p>The assistant will open a sign-in page; sign in with your organization account.</p>\
         {others}\
         <p class=\"note\">For developers: <code>{issuer}/.well-known/oauth-authorization-server</code> \
         (RFC 8414) and <code>{issuer}/.well-known/oauth-protected-resource/mcp</code> (RFC 9728).</p>",
        resource = escape_html(&site.resource),
        issuer = escape_html(&site.issuer),
    );
    page::render(StatusCode::OK, "mcpgate", &body, None)
}

/// `GET /.well-known/jwks.json`: every key a replica may sign with, pending
/// ones included (RFC 7517).
pub(crate) fn jwks(keys: &Keys) -> Resp {
    response::json_bytes(StatusCode::OK, keys.load().jwks().clone())
}

/// RFC 8414 §2 authorization server metadata, also served as
/// `/.well-known/openid-configuration` for clients that only look there.
/// `cimd`: URL client ids are accepted (draft-ietf-oauth-client-id-
/// metadata-document §5; clients send one only when this says so).
fn authorization_server(site: &Site, cimd: bool) -> Value {
    let i = &site.issuer;
    let mut m = json!({
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
        "client_id_metadata_document_supported": cimd,
    });
    if cimd {
        // RFC 7523 client assertions, for metadata document clients only
        // (oauth::client_assertion).
        m["token_endpoint_auth_methods_supported"] = json!([
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ]);
        m["token_endpoint_auth_signing_alg_values_supported"] = json!([
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"
        ]);
    }
    m
}

/// RFC 9728 §2 protected resource metadata for `/mcp`. `offline_access` is
/// the authorization server's business, not the resource's.
fn protected_resource(site: &Site) -> Value {
    json!({
        "resource": site.resource,
        "authorization_servers": [site.issuer],
        "bearer_methods_supported": ["header"],
        "scopes_supported": [DEFAULT_SCOPE],
        "resource_name": "mcpgate",
    })
}

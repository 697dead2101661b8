//! `/mcp`: JSON-RPC over Streamable HTTP, both protocol eras on one path.
//!
//! - Legacy (2025-03-26, 2025-06-18, 2025-11-25): `initialize` handshake,
//!   `MCP-Protocol-Version` header after it. No sessions are minted, so
//!   every request stands alone.
//! - Stateless 2026-07-28: no handshake; each request carries
//!   `_meta["io.modelcontextprotocol/protocolVersion"]` and client
//!   capabilities, and the `MCP-Protocol-Version`, `Mcp-Method` and
//!   `Mcp-Name` headers must agree with the body (-32020 otherwise).
//!
//! A request is routed to an era by its body: `initialize`, or no `_meta`
//! protocol version, is legacy.
//!
//! Every request is authenticated first ([`auth`]); the built-in tools are
//! in [`tools`].

pub mod auth;
pub mod tools;

use base64::Engine as _;
use http::header;
use http::{HeaderMap, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use crate::http::cors;
use crate::http::response::{self, Resp};
use crate::http::router::Ctx;
use crate::tokens::access::AccessClaims;

/// `/mcp` bodies: JSON-RPC messages, generous but bounded.
pub const MAX_BODY: usize = 1024 * 1024;

/// Legacy versions, newest first: `initialize` answers with the client's
/// version when it is here, else the first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Stateless versions.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

// JSON-RPC 2.0 and MCP error codes.
pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
/// 2026-07-28: a standard header is missing or disagrees with the body.
pub const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A JSON-RPC error and the HTTP status it travels with.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn new(status: StatusCode, code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            status,
            code,
            message: message.into(),
            data: None,
        }
    }

    fn into_response(self, id: Option<&Value>) -> Resp {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(d) = self.data {
            error["data"] = d;
        }
        let mut body = json!({ "jsonrpc": "2.0", "error": error });
        if let Some(id) = id {
            body["id"] = id.clone();
        }
        response::json(self.status, &body)
    }
}

fn server_info() -> Value {
    json!({ "name": "mcpgate", "title": "mcpgate", "version": env!("CARGO_PKG_VERSION") })
}

pub async fn handle(ctx: &Ctx<'_>, req: Request<Incoming>) -> Resp {
    // DNS rebinding: a browser page from a foreign origin gets nothing
    // (MCP 2025-11-25 transport §security: 403).
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        if !cors::mcp_origin_allowed(ctx, origin) {
            return RpcError::new(StatusCode::FORBIDDEN, INVALID_REQUEST, "origin not allowed")
                .into_response(None);
        }
    }
    let claims = match auth::authenticate(ctx, req.headers(), req.uri().query()) {
        Ok(c) => c,
        Err(f) => {
            crate::metrics::validation_failure(f.label());
            if !matches!(f, auth::AuthFailure::Missing) {
                tracing::info!(reason = ?f, peer = %ctx.peer.ip(), "mcp request refused");
            }
            return f.into_response(ctx);
        }
    };
    if req.method() != Method::POST {
        // No SSE stream and no sessions to delete (transport §2.2, §2.5).
        return response::method_not_allowed("POST");
    }
    let (parts, body) = req.into_parts();
    let body = match response::read_request_body(&parts.headers, body, MAX_BODY).await {
        Ok(b) => b,
        Err(e @ response::BodyError::TooLarge(_)) => {
            return RpcError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                INVALID_REQUEST,
                e.to_string(),
            )
            .into_response(None)
        }
        Err(e) => {
            return RpcError::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, e.to_string())
                .into_response(None)
        }
    };
    serve_message(&parts.headers, &body, &claims)
}

/// One authenticated JSON-RPC POST body to its response. Pure: no I/O, so
/// it is what the fuzzer drives.
pub fn serve_message(headers: &HeaderMap, body: &[u8], claims: &AccessClaims) -> Resp {
    let message: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return RpcError::new(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                format!("parse error: {e}"),
            )
            .into_response(None)
        }
    };
    dispatch(headers, message, claims)
}

/// One JSON-RPC message to one response.
fn dispatch(headers: &HeaderMap, message: Value, claims: &AccessClaims) -> Resp {
    let Value::Object(msg) = message else {
        let what = if message.is_array() {
            "batches are not supported; send one JSON-RPC message per request"
        } else {
            "a JSON-RPC message must be an object"
        };
        return RpcError::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, what).into_response(None);
    };
    // Only a string or integer id is echoed (JSON-RPC 2.0 §4).
    let id = msg
        .get("id")
        .filter(|v| v.is_string() || v.is_i64() || v.is_u64());
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "jsonrpc must be \"2.0\"",
        )
        .into_response(id);
    }
    let Some(method) = msg.get("method").and_then(Value::as_str) else {
        // A response to a request we never send, or garbage: accept
        // responses (transport §2.1.4), refuse the rest.
        if id.is_some() && (msg.contains_key("result") || msg.contains_key("error")) {
            return response::empty(StatusCode::ACCEPTED);
        }
        return RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "method is required",
        )
        .into_response(id);
    };
    if msg.contains_key("id") && id.is_none() {
        return RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "id must be a string or an integer",
        )
        .into_response(None);
    }
    // Borrowed, not cloned: an empty map does not allocate.
    let no_params = Map::new();
    let params = match msg.get("params") {
        None | Some(Value::Null) => &no_params,
        Some(Value::Object(p)) => p,
        Some(_) => {
            return RpcError::new(
                StatusCode::BAD_REQUEST,
                INVALID_PARAMS,
                "params must be an object",
            )
            .into_response(id)
        }
    };
    let modern_version = params
        .get("_meta")
        .and_then(|m| m.get(META_PROTOCOL_VERSION));
    // A request that says (by header or method) it is 2026-07-28 but lacks
    // the `_meta` version is a malformed modern request, not a legacy one.
    let modern_header = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| MODERN_VERSIONS.contains(&v.trim()));
    let result = match modern_version {
        Some(v) => modern(headers, method, id, params, v, claims),
        None if modern_header || method == "server/discover" => Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMS,
            format!("_meta[\"{META_PROTOCOL_VERSION}\"] is required"),
        )),
        None => legacy(headers, method, id, params, claims),
    };
    match (result, id) {
        (Ok(Some(result)), Some(id)) => response::json(
            StatusCode::OK,
            &Envelope {
                jsonrpc: "2.0",
                id,
                result: &result,
            },
        ),
        // Notifications (no id) are accepted without a body.
        (Ok(_), None) => response::empty(StatusCode::ACCEPTED),
        (Ok(None), Some(_)) => response::empty(StatusCode::ACCEPTED),
        (Err(e), id) => e.into_response(id),
    }
}

/// A JSON-RPC result, serialized once, copied verbatim into the envelope.
pub type Reply = Box<RawValue>;

fn reply<T: Serialize + ?Sized>(value: &T) -> Reply {
    serde_json::value::to_raw_value(value).expect("results serialize")
}

/// A successful JSON-RPC response.
#[derive(Serialize)]
struct Envelope<'a> {
    jsonrpc: &'static str,
    id: &'a Value,
    result: &'a RawValue,
}

/// Which protocol era a request is served in: 2026-07-28 results carry
/// `resultType` and `_meta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    Legacy,
    Stateless,
}

/// `_meta` of every 2026-07-28 result, rendered once.
pub fn modern_meta() -> &'static Value {
    static META: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    META.get_or_init(|| json!({ META_SERVER_INFO: server_info() }))
}

fn legacy(
    headers: &HeaderMap,
    method: &str,
    id: Option<&Value>,
    params: &Map<String, Value>,
    claims: &AccessClaims,
) -> Result<Option<Reply>, RpcError> {
    // Transport §2.7: an unsupported version header is a 400; its absence
    // means an older client (or the initialize request itself).
    if let Some(v) = headers.get("mcp-protocol-version") {
        let v = v.to_str().unwrap_or("").trim();
        if !LEGACY_VERSIONS.contains(&v) && !MODERN_VERSIONS.contains(&v) {
            return Err(RpcError::new(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                format!(
                    "unsupported MCP-Protocol-Version {}",
                    v.chars().take(40).collect::<String>()
                ),
            ));
        }
    }
    if id.is_none() {
        // notifications/initialized, notifications/cancelled, …
        return Ok(None);
    }
    match method {
        "initialize" => {
            let asked = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            let version = if LEGACY_VERSIONS.contains(&asked) {
                asked
            } else {
                LEGACY_VERSIONS[0]
            };
            Ok(Some(reply(&json!({
                "protocolVersion": version,
                "capabilities": { "tools": { "listChanged": false } },
                "serverInfo": server_info(),
                "instructions": "mcpgate: tools of this organization, for the person who signed in.",
            }))))
        }
        "ping" => Ok(Some(reply(&json!({})))),
        "tools/list" => Ok(Some(reply(&json!({ "tools": tools::list() })))),
        "tools/call" => tools::call(params, claims, Era::Legacy).map(Some),
        other => Err(RpcError::new(
            StatusCode::OK,
            METHOD_NOT_FOUND,
            format!(
                "method not found: {}",
                other.chars().take(80).collect::<String>()
            ),
        )),
    }
}

/// `=?base64?…?=` values (2026-07-28 transport: non-ASCII names) decoded.
fn header_text(headers: &HeaderMap, name: &str) -> Option<Result<String, ()>> {
    let v = headers.get(name)?;
    let v = match v.to_str() {
        Ok(v) => v.trim(),
        Err(_) => return Some(Err(())),
    };
    if let Some(inner) = v
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    {
        return Some(
            base64::engine::general_purpose::STANDARD
                .decode(inner)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(()),
        );
    }
    Some(Ok(v.to_owned()))
}

/// 2026-07-28 transport: a standard header must be present and equal its
/// body value, else 400 with -32020 (HeaderMismatch).
fn expect_header(headers: &HeaderMap, name: &str, label: &str, body: &str) -> Result<(), RpcError> {
    let clip = |s: &str| s.chars().take(80).collect::<String>();
    let message = match header_text(headers, name) {
        Some(Ok(h)) if h == body => return Ok(()),
        Some(Ok(h)) => format!(
            "Header mismatch: {label} header value '{}' does not match body value '{}'",
            clip(&h),
            clip(body)
        ),
        _ => format!("Header mismatch: {label} header is required"),
    };
    Err(RpcError::new(
        StatusCode::BAD_REQUEST,
        HEADER_MISMATCH,
        message,
    ))
}

fn modern(
    headers: &HeaderMap,
    method: &str,
    id: Option<&Value>,
    params: &Map<String, Value>,
    version: &Value,
    claims: &AccessClaims,
) -> Result<Option<Reply>, RpcError> {
    let version = version.as_str().unwrap_or("");
    expect_header(
        headers,
        "mcp-protocol-version",
        "MCP-Protocol-Version",
        version,
    )?;
    if !MODERN_VERSIONS.contains(&version) {
        let mut supported: Vec<&str> = MODERN_VERSIONS.to_vec();
        supported.extend_from_slice(LEGACY_VERSIONS);
        let mut e = RpcError::new(
            StatusCode::BAD_REQUEST,
            UNSUPPORTED_PROTOCOL_VERSION,
            "Unsupported protocol version",
        );
        e.data = Some(json!({ "supported": supported, "requested": version }));
        return Err(e);
    }
    if id.is_none() {
        // This revision defines no client notifications over HTTP; accept.
        return Ok(None);
    }
    expect_header(headers, "mcp-method", "Mcp-Method", method)?;
    let meta = params.get("_meta").and_then(Value::as_object);
    if !meta.is_some_and(|m| {
        m.get(META_CLIENT_CAPABILITIES)
            .is_some_and(Value::is_object)
    }) {
        return Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMS,
            format!("_meta[\"{META_CLIENT_CAPABILITIES}\"] is required"),
        ));
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.get("name"),
        "resources/read" => params.get("uri"),
        _ => None,
    };
    if let Some(body_name) = named {
        expect_header(
            headers,
            "mcp-name",
            "Mcp-Name",
            body_name.as_str().unwrap_or(""),
        )?;
    }
    let mut result = match method {
        "server/discover" => {
            let mut supported: Vec<&str> = MODERN_VERSIONS.to_vec();
            supported.extend_from_slice(LEGACY_VERSIONS);
            json!({
                "supportedVersions": supported,
                "capabilities": { "tools": { "listChanged": false } },
                "instructions": "mcpgate: tools of this organization, for the person who signed in.",
                "ttlMs": 3_600_000,
                "cacheScope": "public",
            })
        }
        "tools/list" => {
            json!({ "tools": tools::list(), "ttlMs": 3_600_000, "cacheScope": "public" })
        }
        "tools/call" => return tools::call(params, claims, Era::Stateless).map(Some),
        other => {
            return Err(RpcError::new(
                StatusCode::NOT_FOUND,
                METHOD_NOT_FOUND,
                format!(
                    "method not found: {}",
                    other.chars().take(80).collect::<String>()
                ),
            ))
        }
    };
    result["resultType"] = "complete".into();
    result["_meta"] = modern_meta().clone();
    Ok(Some(reply(&result)))
}

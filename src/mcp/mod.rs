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
//! A POST body is one message, or, for a 2025-03-26 client only, a JSON
//! array of them (a batch), each served as if it came alone.
//!
//! Every request is authenticated first ([`auth`]); the built-in tools are
//! in [`tools`].

pub mod auth;
pub mod jsonrpc;
pub mod tools;

use std::borrow::Cow;

use base64::Engine as _;
use http::header;
use http::{HeaderMap, HeaderName, Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::http::cors;
use crate::http::response::{self, Resp};
use crate::http::Ctx;
use crate::tokens::access::VerifiedToken;
use crate::tokens::verified::VerifiedTokens;

/// `/mcp` bodies: JSON-RPC messages, generous but bounded.
pub const MAX_BODY: usize = 1024 * 1024;

/// The most messages one batch may hold: a batch is served in one go, so
/// this bounds what one request can make the server do.
pub const MAX_BATCH: usize = 100;
/// The only version with batches: 2025-06-18 removed them.
const BATCH_VERSION: &str = "2025-03-26";

/// Legacy versions, newest first: `initialize` answers with the client's
/// version when it is here, else the first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26"];
/// Stateless versions.
pub const MODERN_VERSIONS: &[&str] = &["2026-07-28"];

// Transport headers, as constants: a header looked up by a string has its
// name parsed and validated on every request.
const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

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

    fn into_response(self, id: Option<&RawValue>) -> Resp {
        // What `serde_json::to_vec` starts with.
        let mut body = Vec::with_capacity(128);
        self.write(&mut body, id);
        response::json_bytes(self.status, body)
    }

    /// The error response object, appended to `out`.
    fn write(&self, out: &mut Vec<u8>, id: Option<&RawValue>) {
        #[derive(Serialize)]
        struct ErrorResponse<'a> {
            jsonrpc: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<&'a RawValue>,
            error: ErrorObject<'a>,
        }
        #[derive(Serialize)]
        struct ErrorObject<'a> {
            code: i64,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<&'a Value>,
        }
        let response = ErrorResponse {
            jsonrpc: "2.0",
            id,
            error: ErrorObject {
                code: self.code,
                message: &self.message,
                data: self.data.as_ref(),
            },
        };
        serde_json::to_writer(out, &response).expect("errors serialize");
    }
}

fn server_info() -> Value {
    json!({ "name": "mcpgate", "title": "mcpgate", "version": env!("CARGO_PKG_VERSION") })
}

pub async fn handle(
    ctx: &Ctx<'_>,
    verified_tokens: &VerifiedTokens,
    req: Request<Incoming>,
) -> Resp {
    let (parts, body) = req.into_parts();
    let read = ctx.read_body(&parts.headers, body, MAX_BODY);
    let claims = match admit(ctx, verified_tokens, &parts) {
        Ok(claims) if parts.method == Method::POST => claims,
        refused => {
            // Take in what the client is sending before answering: hyper
            // keeps a connection only once its request body is consumed,
            // and closing on unread bytes makes the kernel send a reset
            // that can destroy this answer before the client reads it
            // (RFC 9112 §9.6). A body over the limit is not waited for.
            let _ = read.await;
            return match refused {
                Err(refusal) => refusal.into_response(ctx),
                // No SSE stream and no sessions to delete (transport
                // §2.2, §2.5).
                Ok(_) => {
                    crate::http::error::HttpError::MethodNotAllowed { allow: "POST" }.respond()
                }
            };
        }
    };
    let body = match read.await {
        Ok(b) => b,
        Err(e) => {
            return RpcError::new(e.status(), INVALID_REQUEST, e.to_string()).into_response(None)
        }
    };
    serve_message(&parts.headers, &body, &claims)
}

/// Why a request to `/mcp` is refused before its body is looked at.
enum Refusal {
    /// DNS rebinding: a browser page from a foreign origin gets nothing
    /// (MCP 2025-11-25 transport §security: 403).
    Origin,
    Auth(auth::AuthFailure),
}

impl Refusal {
    fn into_response(self, ctx: &Ctx<'_>) -> Resp {
        match self {
            Refusal::Origin => {
                RpcError::new(StatusCode::FORBIDDEN, INVALID_REQUEST, "origin not allowed")
                    .into_response(None)
            }
            Refusal::Auth(f) => f.into_response(ctx),
        }
    }
}

/// The caller of a request to `/mcp`.
fn admit(
    ctx: &Ctx<'_>,
    verified_tokens: &VerifiedTokens,
    parts: &http::request::Parts,
) -> Result<VerifiedToken, Refusal> {
    if let Some(origin) = parts.headers.get(header::ORIGIN) {
        if !cors::mcp_origin_allowed(ctx, origin) {
            return Err(Refusal::Origin);
        }
    }
    auth::authenticate(ctx, verified_tokens, &parts.headers, parts.uri.query()).map_err(|f| {
        crate::metrics::validation_failure(f.label());
        if !matches!(f, auth::AuthFailure::Missing) {
            tracing::info!(reason = ?f, peer = %ctx.peer.ip(), "mcp request refused");
        }
        Refusal::Auth(f)
    })
}

/// One authenticated JSON-RPC POST body (a message or a batch) to its
/// response. Pure: no I/O, so it is what the fuzzer drives.
pub fn serve_message(headers: &HeaderMap, body: &[u8], claims: &VerifiedToken) -> Resp {
    // One byte tells a batch from a message (RFC 8259 §2: these four are
    // all the whitespace JSON has), so a message is not parsed twice.
    if body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(&b'[')
    {
        return serve_batch(headers, body, claims);
    }
    serve_one(headers, body, claims, false).into_response()
}

/// One message, alone or from a batch, to what it comes to.
fn serve_one<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    claims: &VerifiedToken,
    in_batch: bool,
) -> Outcome<'a> {
    match read_message(body) {
        Ok(msg) => dispatch(headers, &msg, claims, in_batch),
        Err(e) => Outcome::Error(e, None),
    }
}

/// A JSON-RPC batch to one response: 202 when nothing in it asks for an
/// answer, else a JSON array of the answers (MCP 2025-03-26 Transports →
/// Streamable HTTP → Sending Messages to the Server, item 3:
/// <https://modelcontextprotocol.io/specification/2025-03-26/basic/transports#sending-messages-to-the-server>).
fn serve_batch(headers: &HeaderMap, body: &[u8], claims: &VerifiedToken) -> Resp {
    let invalid = |message: String| {
        RpcError::new(StatusCode::BAD_REQUEST, INVALID_REQUEST, message).into_response(None)
    };
    if let Err(e) = batch_allowed(headers) {
        return e.into_response(None);
    }
    let (elements, count) = match jsonrpc::elements(body, MAX_BATCH) {
        Ok(found) => found,
        Err(e) => {
            return RpcError::new(
                StatusCode::BAD_REQUEST,
                PARSE_ERROR,
                format!("parse error: {e}"),
            )
            .into_response(None)
        }
    };
    // JSON-RPC 2.0 §6: an empty batch is one Invalid Request, not an array.
    if count == 0 {
        return invalid("a batch must hold at least one message".into());
    }
    if count > MAX_BATCH {
        return invalid(format!(
            "a batch holds at most {MAX_BATCH} messages; this one holds {count}"
        ));
    }
    let mut out = Vec::with_capacity(1024);
    out.push(b'[');
    for element in elements {
        let outcome = serve_one(headers, element.get().as_bytes(), claims, true);
        // JSON-RPC 2.0 §6: notifications (and responses) get no entry.
        if matches!(outcome, Outcome::Accepted) {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        outcome.write(&mut out);
    }
    if out.len() == 1 {
        return response::empty(StatusCode::ACCEPTED);
    }
    out.push(b']');
    response::json_bytes(StatusCode::OK, out)
}

/// A batch is served only to a 2025-03-26 client: one that names that
/// version, or none (a 2025-03-26 client sends no header, and a server
/// without one "SHOULD assume" 2025-03-26: 2025-06-18 Transports →
/// Protocol Version Header). Batching was removed in 2025-06-18
/// (<https://modelcontextprotocol.io/specification/2025-06-18/changelog>).
fn batch_allowed(headers: &HeaderMap) -> Result<(), RpcError> {
    check_version_header(headers)?;
    match version_header(headers) {
        None | Some(BATCH_VERSION) => Ok(()),
        Some(_) => Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "batches are not supported after protocol version 2025-03-26; send one JSON-RPC message per request",
        )),
    }
}

/// An `MCP-Protocol-Version` this server does not speak is a 400
/// (2025-06-18 Transports → Protocol Version Header:
/// <https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#protocol-version-header>);
/// its absence means a 2025-03-26 client or the initialize request itself.
fn check_version_header(headers: &HeaderMap) -> Result<(), RpcError> {
    let Some(v) = version_header(headers) else {
        return Ok(());
    };
    if LEGACY_VERSIONS.contains(&v) || MODERN_VERSIONS.contains(&v) {
        return Ok(());
    }
    Err(RpcError::new(
        StatusCode::BAD_REQUEST,
        INVALID_REQUEST,
        format!(
            "unsupported MCP-Protocol-Version {}",
            v.chars().take(40).collect::<String>()
        ),
    ))
}

/// The `MCP-Protocol-Version` header, trimmed; a value that is not text
/// reads as empty, which no version is.
fn version_header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(MCP_PROTOCOL_VERSION)
        .map(|v| v.to_str().unwrap_or("").trim())
}

/// The members of a JSON-RPC message this server reads, as raw JSON.
struct Message<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    /// A `result` or `error` member: a response (to a request we never send).
    is_response: bool,
}

fn read_message(body: &[u8]) -> Result<Message<'_>, RpcError> {
    let read = std::str::from_utf8(body).ok().and_then(|text| {
        jsonrpc::members(
            text,
            &["jsonrpc", "id", "method", "params", "result", "error"],
        )
        .ok()
    });
    if let Some([jsonrpc, id, method, params, result, error]) = read {
        return Ok(Message {
            jsonrpc,
            id,
            method,
            params,
            is_response: result.is_some() || error.is_some(),
        });
    }
    // Not a message: parsed again, whole, to say why.
    Err(match serde_json::from_slice::<Value>(body) {
        Err(e) => RpcError::new(
            StatusCode::BAD_REQUEST,
            PARSE_ERROR,
            format!("parse error: {e}"),
        ),
        Ok(_) => RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "a JSON-RPC message must be an object",
        ),
    })
}

/// The `params` members the built-in methods read.
pub struct Params<'a> {
    pub name: Option<&'a RawValue>,
    pub uri: Option<&'a RawValue>,
    pub arguments: Option<&'a RawValue>,
    /// `initialize`.
    pub protocol_version: Option<&'a RawValue>,
    /// 2026-07-28: `_meta[META_PROTOCOL_VERSION]`, when `_meta` is an object.
    pub meta_protocol_version: Option<&'a RawValue>,
    /// 2026-07-28: `_meta[META_CLIENT_CAPABILITIES]`.
    pub meta_client_capabilities: Option<&'a RawValue>,
}

impl<'a> Params<'a> {
    const NONE: Params<'static> = Params {
        name: None,
        uri: None,
        arguments: None,
        protocol_version: None,
        meta_protocol_version: None,
        meta_client_capabilities: None,
    };

    /// `None` when `params` is there but not an object.
    fn read(params: Option<&'a RawValue>) -> Option<Params<'a>> {
        let Some(raw) = params.filter(|p| !jsonrpc::is_null(p)) else {
            return Some(Params::NONE);
        };
        let [name, uri, arguments, protocol_version, meta] = jsonrpc::object_members(
            Some(raw),
            &["name", "uri", "arguments", "protocolVersion", "_meta"],
        )?;
        let [meta_protocol_version, meta_client_capabilities] =
            jsonrpc::object_members(meta, &[META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES])
                .unwrap_or([None, None]);
        Some(Params {
            name,
            uri,
            arguments,
            protocol_version,
            meta_protocol_version,
            meta_client_capabilities,
        })
    }
}

/// A string member's text, or "" when it is absent or not a string.
fn text<'a>(raw: Option<&'a RawValue>) -> Cow<'a, str> {
    raw.and_then(jsonrpc::as_str).unwrap_or(Cow::Borrowed(""))
}

/// What one JSON-RPC message comes to.
enum Outcome<'a> {
    /// A notification or a response: nothing to answer.
    Accepted,
    /// The result of the request with this id.
    Result(&'a RawValue, Reply),
    /// An error, for the request with this id when it had a usable one.
    Error(RpcError, Option<&'a RawValue>),
}

impl Outcome<'_> {
    /// The answer to a POST of this one message.
    fn into_response(self) -> Resp {
        match self {
            Outcome::Accepted => response::empty(StatusCode::ACCEPTED),
            Outcome::Result(id, result) => result_response(id, &result),
            Outcome::Error(e, id) => e.into_response(id),
        }
    }

    /// This message's entry in a batch's answer, appended to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Outcome::Accepted => {}
            Outcome::Result(id, result) => write_result(out, id, result),
            Outcome::Error(e, id) => e.write(out, *id),
        }
    }
}

/// One JSON-RPC message to what it comes to.
fn dispatch<'a>(
    headers: &HeaderMap,
    msg: &Message<'a>,
    claims: &VerifiedToken,
    in_batch: bool,
) -> Outcome<'a> {
    // Only a string or integer id is echoed (JSON-RPC 2.0 §4).
    let id = msg.id.filter(|v| jsonrpc::is_string_or_integer(v));
    let error = |code, message: &str| RpcError::new(StatusCode::BAD_REQUEST, code, message);
    if msg.jsonrpc.and_then(jsonrpc::as_str).as_deref() != Some("2.0") {
        return Outcome::Error(error(INVALID_REQUEST, "jsonrpc must be \"2.0\""), id);
    }
    let Some(method) = msg.method.and_then(jsonrpc::as_str) else {
        // A response to a request we never send, or garbage: accept
        // responses (transport §2.1.4), refuse the rest. The version header
        // rule covers every POST, a response too; a request meets it in
        // `legacy`, or in `modern` as -32022, which names the supported
        // versions for a 2026-07-28 client to pick from.
        if id.is_some() && msg.is_response {
            return match check_version_header(headers) {
                Ok(()) => Outcome::Accepted,
                Err(e) => Outcome::Error(e, None),
            };
        }
        return Outcome::Error(error(INVALID_REQUEST, "method is required"), id);
    };
    if msg.id.is_some() && id.is_none() {
        return Outcome::Error(
            error(INVALID_REQUEST, "id must be a string or an integer"),
            None,
        );
    }
    // "The initialization request MUST NOT be part of a JSON-RPC batch":
    // the client is to send nothing but pings before it is answered (MCP
    // 2025-03-26 Lifecycle → Initialization,
    // <https://modelcontextprotocol.io/specification/2025-03-26/basic/lifecycle#initialization>).
    if in_batch && method == "initialize" {
        return Outcome::Error(
            error(
                INVALID_REQUEST,
                "initialize must not be part of a batch; send it alone",
            ),
            id,
        );
    }
    let Some(params) = Params::read(msg.params) else {
        return Outcome::Error(error(INVALID_PARAMS, "params must be an object"), id);
    };
    // A request that says (by header or method) it is 2026-07-28 but lacks
    // the `_meta` version is a malformed modern request, not a legacy one.
    let modern_header = version_header(headers).is_some_and(|v| MODERN_VERSIONS.contains(&v));
    let result = match params.meta_protocol_version {
        Some(v) => modern(headers, &method, id, &params, v, claims),
        None if modern_header || method == "server/discover" => Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMS,
            format!("_meta[\"{META_PROTOCOL_VERSION}\"] is required"),
        )),
        None => legacy(headers, &method, id, &params, claims),
    };
    match (result, id) {
        (Ok(Some(result)), Some(id)) => Outcome::Result(id, result),
        // Notifications (no id) are accepted without a body.
        (Ok(_), None) | (Ok(None), Some(_)) => Outcome::Accepted,
        (Err(e), id) => Outcome::Error(e, id),
    }
}

/// A JSON-RPC result, serialized once by this server, copied verbatim
/// into the envelope.
pub struct Reply(Vec<u8>);

fn reply<T: Serialize + ?Sized>(value: &T) -> Reply {
    // Sized for the common results (a whoami is ~900 bytes) so that
    // serializing does not grow the buffer step by step.
    let mut out = Vec::with_capacity(1024);
    serde_json::to_writer(&mut out, value).expect("results serialize");
    Reply(out)
}

const RESULT_HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
const RESULT_MIDDLE: &[u8] = b",\"result\":";

/// `{"jsonrpc":"2.0","id":…,"result":…}`, the id echoed as the client
/// wrote it.
fn result_response(id: &RawValue, result: &Reply) -> Resp {
    let len = RESULT_HEAD.len() + id.get().len() + RESULT_MIDDLE.len() + result.0.len() + 1;
    let mut body = Vec::with_capacity(len);
    write_result(&mut body, id, result);
    response::json_bytes(StatusCode::OK, body)
}

fn write_result(out: &mut Vec<u8>, id: &RawValue, result: &Reply) {
    out.extend_from_slice(RESULT_HEAD);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(RESULT_MIDDLE);
    out.extend_from_slice(&result.0);
    out.push(b'}');
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
    id: Option<&RawValue>,
    params: &Params<'_>,
    claims: &VerifiedToken,
) -> Result<Option<Reply>, RpcError> {
    check_version_header(headers)?;
    if id.is_none() {
        // notifications/initialized, notifications/cancelled, …
        return Ok(None);
    }
    match method {
        "initialize" => {
            let asked = text(params.protocol_version);
            let version = if LEGACY_VERSIONS.contains(&&*asked) {
                &*asked
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
fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<Result<String, ()>> {
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
fn expect_header(
    headers: &HeaderMap,
    name: &HeaderName,
    label: &str,
    body: &str,
) -> Result<(), RpcError> {
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
    id: Option<&RawValue>,
    params: &Params<'_>,
    version: &RawValue,
    claims: &VerifiedToken,
) -> Result<Option<Reply>, RpcError> {
    let version = text(Some(version));
    let version = &*version;
    expect_header(
        headers,
        &MCP_PROTOCOL_VERSION,
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
    expect_header(headers, &MCP_METHOD, "Mcp-Method", method)?;
    if !params
        .meta_client_capabilities
        .is_some_and(jsonrpc::is_object)
    {
        return Err(RpcError::new(
            StatusCode::BAD_REQUEST,
            INVALID_PARAMS,
            format!("_meta[\"{META_CLIENT_CAPABILITIES}\"] is required"),
        ));
    }
    let named = match method {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" => params.uri,
        _ => None,
    };
    if named.is_some() {
        expect_header(headers, &MCP_NAME, "Mcp-Name", &text(named))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use crate::keys::KeyRing;
    use crate::tokens::access::{self, AccessClaims, Expectations};
    use http::HeaderValue;
    use http_body_util::BodyExt as _;

    fn claims() -> VerifiedToken {
        let now = 1_899_996_400;
        let ring = KeyRing::build(generate_set(0, "t"), 1, now).unwrap();
        let c = AccessClaims {
            iss: "https://a.example".into(),
            sub: "sub".into(),
            aud: "https://a.example/mcp".into(),
            exp: now + 3600,
            iat: now,
            nbf: now,
            jti: "j".into(),
            client_id: "client".into(),
            scope: "mcp".into(),
            email: "a@example.com".into(),
        };
        let expect = Expectations {
            issuers: std::slice::from_ref(&c.iss),
            audiences: std::slice::from_ref(&c.aud),
        };
        access::verify(&ring, &access::issue(&ring, &c, now), &expect, now).unwrap()
    }

    fn version(v: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(v) = v {
            headers.insert(MCP_PROTOCOL_VERSION, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    /// Status and body (`Null` when empty) of `serve_message`.
    fn serve(headers: &HeaderMap, body: &str) -> (StatusCode, Value) {
        let resp = serve_message(headers, body.as_bytes(), &claims());
        let status = resp.status();
        let Ok(collected) = ready(resp.into_body().collect());
        let bytes = collected.to_bytes();
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, v)
    }

    /// A `Full` body is ready at once: one poll collects it.
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a Full body is never pending"),
        }
    }

    #[test]
    fn batches_are_allowed_without_a_version_header_or_with_2025_03_26_only() {
        for ok in [None, Some("2025-03-26"), Some(" 2025-03-26 ")] {
            assert!(batch_allowed(&version(ok)).is_ok(), "{ok:?}");
        }
        for (v, says) in [
            ("2025-06-18", "batches are not supported"),
            ("2025-11-25", "batches are not supported"),
            ("2026-07-28", "batches are not supported"),
            ("2024-11-05", "unsupported MCP-Protocol-Version"),
            ("", "unsupported MCP-Protocol-Version"),
        ] {
            let e = batch_allowed(&version(Some(v))).unwrap_err();
            assert_eq!(
                (e.status, e.code),
                (StatusCode::BAD_REQUEST, INVALID_REQUEST)
            );
            assert!(e.message.starts_with(says), "{v}: {}", e.message);
        }
    }

    #[test]
    fn only_known_version_headers_pass() {
        for v in LEGACY_VERSIONS.iter().chain(MODERN_VERSIONS) {
            assert!(check_version_header(&version(Some(v))).is_ok(), "{v}");
        }
        assert!(check_version_header(&version(None)).is_ok());
        for v in ["2099-01-01", "invalid", "2025-06-18,2025-03-26"] {
            assert!(check_version_header(&version(Some(v))).is_err(), "{v}");
        }
    }

    #[test]
    fn a_batch_is_told_by_its_first_non_whitespace_byte() {
        let (status, v) = serve(
            &version(None),
            " \r\n\t[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
        );
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v, json!([{"jsonrpc":"2.0","id":1,"result":{}}]));
        // A string holding a bracket is a (non-object) message, not a batch.
        let (status, v) = serve(&version(None), "\"[\"");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"]["code"], INVALID_REQUEST);
    }

    #[test]
    fn a_batch_over_max_batch_is_one_invalid_request() {
        let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
        let body = |n: usize| format!("[{}]", vec![ping; n].join(","));
        let (status, v) = serve(&version(None), &body(MAX_BATCH));
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v.as_array().unwrap().len(), MAX_BATCH);
        let (status, v) = serve(&version(None), &body(MAX_BATCH + 1));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"]["code"], INVALID_REQUEST);
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 100"));
    }

    #[test]
    fn a_malformed_batch_is_one_parse_error() {
        for body in ["[", "[{\"jsonrpc\":\"2.0\"},", "[1] x"] {
            let (status, v) = serve(&version(None), body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(v["error"]["code"], PARSE_ERROR, "{body}");
        }
    }

    #[test]
    fn a_response_under_an_unsupported_version_is_refused() {
        let response = r#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        let (status, v) = serve(&version(Some("2099-01-01")), response);
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"]["code"], INVALID_REQUEST);
        for ok in [None, Some("2025-06-18")] {
            assert_eq!(
                serve(&version(ok), response),
                (StatusCode::ACCEPTED, Value::Null)
            );
        }
    }
}

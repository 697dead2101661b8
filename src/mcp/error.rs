//! JSON-RPC errors: every way `/mcp` refuses a message in JSON-RPC, and the
//! one function that turns a refusal into its HTTP status and error object.

use std::borrow::Cow;

use http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::version::{Era, BATCH_VERSION, SUPPORTED};
use crate::http::body::BodyError;
use crate::http::response::{self, Resp};

// JSON-RPC 2.0 and MCP error codes.
pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
pub(crate) const INVALID_PARAMS: i64 = -32602;
/// 2026-07-28: a standard header is missing or disagrees with the body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;
/// 2026-07-28: the requested protocol version is not supported.
pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// A tool call refused by the upstream's tool policy (an implementation-
/// defined server error, JSON-RPC 2.0 §5.1).
pub(crate) const TOOL_NOT_GRANTED: i64 = -32001;
/// An upstream could not answer: unreachable, too slow, or it refused
/// mcpgate's identity.
pub(crate) const UPSTREAM_FAILED: i64 = -32002;
/// The person may not use this upstream at all.
pub(crate) const UPSTREAM_NOT_GRANTED: i64 = -32003;

/// Client text echoed in a message is cut to this many characters.
const ECHO: usize = 80;
/// ... and an unknown version header to this many.
const ECHO_VERSION: usize = 40;

/// Why a request or message gets a JSON-RPC error. What the client sent is
/// kept only as far as the message echoes it.
#[derive(Debug)]
pub(crate) enum RpcError {
    /// The body could not be read: too large, too slow, broken.
    Body(BodyError),
    /// DNS rebinding: a browser page from a foreign origin gets nothing
    /// (MCP 2025-11-25 transport §security: 403).
    Origin,
    /// The body, or a batch, is not JSON.
    Parse(serde_json::Error),
    /// JSON, but not an object.
    NotAnObject,
    /// JSON-RPC 2.0 §6: an empty batch is one Invalid Request.
    EmptyBatch,
    BatchTooLarge {
        count: usize,
        max: usize,
    },
    /// A batch from a client of a version after the batch version.
    BatchAfterItsVersion,
    /// An `MCP-Protocol-Version` this server does not speak.
    UnsupportedVersionHeader(String),
    JsonrpcNot2,
    MethodRequired,
    /// An id that is neither a string nor an integer.
    BadId,
    InitializeInBatch,
    ParamsNotAnObject,
    /// 2026-07-28: this `_meta` member is required.
    MetaRequired(&'static str),
    /// 2026-07-28: this standard header is missing (or not readable).
    HeaderMissing(&'static str),
    /// 2026-07-28: this standard header says `sent`, the body `body`.
    HeaderMismatch {
        header: &'static str,
        sent: String,
        body: String,
    },
    /// 2026-07-28: `_meta` names a version this server does not speak.
    UnsupportedProtocolVersion(String),
    MethodNotFound(String, Era),
    /// `tools/call` without a string `params.name`.
    ToolNameMissing,
    UnknownTool(String),
    /// A tool's arguments, refused for this reason.
    InvalidArguments(Cow<'static, str>),
    /// An upstream's tool policy hides this tool from the caller.
    ToolNotGranted(String),
    /// A batch holding a call that [`RpcError::ToolNotGranted`] refuses:
    /// refused whole, since its other messages cannot be sent without it.
    BatchWithToolNotGranted(String),
    /// The caller is not in the upstream's `allow` (403 at the door).
    UpstreamNotGranted(String),
    /// The upstream could not be reached (no connection, a broken one).
    UpstreamUnreachable(String),
    /// The upstream did not start answering within its `timeout`.
    UpstreamTimeout(String),
    /// The upstream answered 401 or 403: it refused the identity mcpgate
    /// forwards. Never the upstream's challenge: the client would start
    /// a sign-in against a server that is not its authorization server.
    UpstreamRefusedIdentity {
        upstream: String,
        status: u16,
    },
}

impl RpcError {
    pub(crate) fn unsupported_version_header(v: &str) -> RpcError {
        RpcError::UnsupportedVersionHeader(clip(v, ECHO_VERSION))
    }

    pub(crate) fn header_mismatch(header: &'static str, sent: &str, body: &str) -> RpcError {
        RpcError::HeaderMismatch {
            header,
            sent: clip(sent, ECHO),
            body: clip(body, ECHO),
        }
    }

    pub(crate) fn method_not_found(method: &str, era: Era) -> RpcError {
        RpcError::MethodNotFound(clip(method, ECHO), era)
    }

    pub(crate) fn unknown_tool(name: &str) -> RpcError {
        RpcError::UnknownTool(clip(name, ECHO))
    }

    pub(crate) fn tool_not_granted(name: &str) -> RpcError {
        RpcError::ToolNotGranted(clip(name, ECHO))
    }

    pub(crate) fn batch_with_tool_not_granted(name: &str) -> RpcError {
        RpcError::BatchWithToolNotGranted(clip(name, ECHO))
    }

    /// This error as the whole answer to a POST.
    pub(crate) fn into_response(self, id: Option<&RawValue>) -> Resp {
        // What `serde_json::to_vec` starts with.
        let mut body = Vec::with_capacity(128);
        let status = self.write(&mut body, id);
        response::json_bytes(status, body)
    }

    /// The one mapping from a refusal to JSON-RPC: its HTTP status, code,
    /// message and data. Appends the error response object to `out` and
    /// returns the status it travels with when it is the whole answer (in
    /// a batch, the batch's status stands). No log line and no metric of
    /// its own: the server counts and logs every response by status.
    pub(crate) fn write(&self, out: &mut Vec<u8>, id: Option<&RawValue>) -> StatusCode {
        use RpcError as E;
        let bad = StatusCode::BAD_REQUEST;
        let (status, code, message): (StatusCode, i64, Cow<'_, str>) = match self {
            E::Body(e) => (e.status(), INVALID_REQUEST, e.to_string().into()),
            E::Origin => (
                StatusCode::FORBIDDEN,
                INVALID_REQUEST,
                "origin not allowed".into(),
            ),
            E::Parse(e) => (bad, PARSE_ERROR, format!("parse error: {e}").into()),
            E::NotAnObject => (
                bad,
                INVALID_REQUEST,
                "a JSON-RPC message must be an object".into(),
            ),
            E::EmptyBatch => (
                bad,
                INVALID_REQUEST,
                "a batch must hold at least one message".into(),
            ),
            E::BatchTooLarge { count, max } => (
                bad,
                INVALID_REQUEST,
                format!("a batch holds at most {max} messages; this one holds {count}").into(),
            ),
            E::BatchAfterItsVersion => (
                bad,
                INVALID_REQUEST,
                format!("batches are not supported after protocol version {BATCH_VERSION}; send one JSON-RPC message per request").into(),
            ),
            E::UnsupportedVersionHeader(v) => (
                bad,
                INVALID_REQUEST,
                format!("unsupported MCP-Protocol-Version {v}").into(),
            ),
            E::JsonrpcNot2 => (bad, INVALID_REQUEST, "jsonrpc must be \"2.0\"".into()),
            E::MethodRequired => (bad, INVALID_REQUEST, "method is required".into()),
            E::BadId => (
                bad,
                INVALID_REQUEST,
                "id must be a string or an integer".into(),
            ),
            E::InitializeInBatch => (
                bad,
                INVALID_REQUEST,
                "initialize must not be part of a batch; send it alone".into(),
            ),
            E::ParamsNotAnObject => (bad, INVALID_PARAMS, "params must be an object".into()),
            E::MetaRequired(member) => (
                bad,
                INVALID_PARAMS,
                format!("_meta[\"{member}\"] is required").into(),
            ),
            E::HeaderMissing(header) => (
                bad,
                HEADER_MISMATCH,
                format!("Header mismatch: {header} header is required").into(),
            ),
            E::HeaderMismatch { header, sent, body } => (
                bad,
                HEADER_MISMATCH,
                format!(
                    "Header mismatch: {header} header value '{sent}' does not match body value '{body}'"
                )
                .into(),
            ),
            E::UnsupportedProtocolVersion(_) => (
                bad,
                UNSUPPORTED_PROTOCOL_VERSION,
                "Unsupported protocol version".into(),
            ),
            // The one error whose status depends on the era.
            E::MethodNotFound(method, era) => (
                match era {
                    Era::Legacy => StatusCode::OK,
                    Era::Stateless => StatusCode::NOT_FOUND,
                },
                METHOD_NOT_FOUND,
                format!("method not found: {method}").into(),
            ),
            E::ToolNameMissing => (
                StatusCode::OK,
                INVALID_PARAMS,
                "tools/call needs params.name".into(),
            ),
            E::UnknownTool(name) => (
                StatusCode::OK,
                INVALID_PARAMS,
                format!("Unknown tool: {name}").into(),
            ),
            E::InvalidArguments(why) => (StatusCode::OK, INVALID_PARAMS, Cow::Borrowed(&**why)),
            E::ToolNotGranted(name) => (
                StatusCode::OK,
                TOOL_NOT_GRANTED,
                format!("access to tool {name} is not granted").into(),
            ),
            E::BatchWithToolNotGranted(name) => (
                StatusCode::OK,
                TOOL_NOT_GRANTED,
                format!("access to tool {name} is not granted; the batch holding its call was not sent").into(),
            ),
            E::UpstreamNotGranted(upstream) => (
                StatusCode::FORBIDDEN,
                UPSTREAM_NOT_GRANTED,
                format!("access to the MCP server {upstream} is not granted to you; ask its administrators to add you or a group of yours").into(),
            ),
            E::UpstreamUnreachable(upstream) => (
                StatusCode::BAD_GATEWAY,
                UPSTREAM_FAILED,
                format!("the MCP server {upstream} could not be reached").into(),
            ),
            E::UpstreamTimeout(upstream) => (
                StatusCode::GATEWAY_TIMEOUT,
                UPSTREAM_FAILED,
                format!("the MCP server {upstream} did not answer in time").into(),
            ),
            E::UpstreamRefusedIdentity { upstream, status } => (
                StatusCode::BAD_GATEWAY,
                UPSTREAM_FAILED,
                format!("the MCP server {upstream} refused the identity mcpgate forwarded (HTTP {status}); this is a configuration problem between mcpgate and that server, not your sign-in").into(),
            ),
        };
        let data = match self {
            E::UnsupportedProtocolVersion(requested) => {
                Some(json!({ "supported": SUPPORTED, "requested": requested }))
            }
            _ => None,
        };

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
                code,
                message: &message,
                data: data.as_ref(),
            },
        };
        serde_json::to_writer(out, &response).expect("errors serialize");
        status
    }
}

/// The first `max` characters of client text.
fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

//! The built-in tools. `whoami` shows what the server knows about the
//! caller: the claims of the access token it presented.
//!
//! Results are typed and serialized once, straight into the response: this
//! is the hot path of every assistant's tool call.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};

use super::{jsonrpc, modern_meta, reply, Era, Params, Reply, RpcError, INVALID_PARAMS};
use crate::tokens::access::AccessClaims;

/// The tool list, rendered once.
pub fn list() -> &'static Value {
    static TOOLS: OnceLock<Value> = OnceLock::new();
    TOOLS.get_or_init(|| {
        json!([{
            "name": "whoami",
            "title": "Who am I",
            "description": "Shows who you are signed in as: subject, email, client, scope and when your access token expires.",
            "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "sub": { "type": "string" },
                    "email": { "type": "string" },
                    "client_id": { "type": "string" },
                    "scope": { "type": "string" },
                    "exp": { "type": "integer" },
                    "expires_at": { "type": "string" }
                },
                "required": ["sub", "email", "client_id", "scope", "exp", "expires_at"]
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false }
        }])
    })
}

pub fn call(params: &Params<'_>, claims: &AccessClaims, era: Era) -> Result<Reply, RpcError> {
    let name = params.name.and_then(jsonrpc::as_str).ok_or_else(|| {
        RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            "tools/call needs params.name",
        )
    })?;
    if params
        .arguments
        .is_some_and(|a| !jsonrpc::is_null(a) && !jsonrpc::is_object(a))
    {
        return Err(RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            "arguments must be an object",
        ));
    }
    match &*name {
        "whoami" => Ok(whoami(claims, era)),
        other => Err(RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            format!(
                "Unknown tool: {}",
                other.chars().take(80).collect::<String>()
            ),
        )),
    }
}

/// A value written as its `Display` text, without an intermediate String.
fn serialize_display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// `whoami`'s structured output (its `outputSchema`).
#[derive(Serialize)]
struct Whoami<'a> {
    sub: &'a str,
    email: &'a str,
    client_id: &'a str,
    scope: &'a str,
    exp: u64,
    #[serde(serialize_with = "serialize_display")]
    expires_at: humantime::Rfc3339Timestamp,
}

#[derive(Serialize)]
struct TextContent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
}

/// A `CallToolResult`, with the 2026-07-28 members when that era asked.
#[derive(Serialize)]
struct CallToolResult<'a> {
    content: [TextContent<'a>; 1],
    #[serde(rename = "structuredContent")]
    structured_content: &'a serde_json::value::RawValue,
    #[serde(rename = "isError")]
    is_error: bool,
    #[serde(rename = "resultType", skip_serializing_if = "Option::is_none")]
    result_type: Option<&'static str>,
    #[serde(rename = "_meta", skip_serializing_if = "Option::is_none")]
    meta: Option<&'static Value>,
}

fn whoami(claims: &AccessClaims, era: Era) -> Reply {
    let structured = Whoami {
        sub: &claims.sub,
        email: &claims.email,
        client_id: &claims.client_id,
        scope: &claims.scope,
        exp: claims.exp,
        expires_at: humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(claims.exp)),
    };
    // MCP: a tool with structured output also returns it as text; the
    // same serialization serves as both.
    let structured = serde_json::value::to_raw_value(&structured).expect("serializes");
    let stateless = era == Era::Stateless;
    reply(&CallToolResult {
        content: [TextContent {
            kind: "text",
            text: structured.get(),
        }],
        structured_content: &structured,
        is_error: false,
        result_type: stateless.then_some("complete"),
        meta: stateless.then(modern_meta),
    })
}

//! The built-in tools. `whoami` shows what the server knows about the
//! caller: the claims of the access token it presented.

use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use serde_json::{json, Map, Value};

use super::{RpcError, INVALID_PARAMS};
use crate::tokens::access::AccessClaims;

pub fn list() -> Value {
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
}

pub fn call(params: &Map<String, Value>, claims: &AccessClaims) -> Result<Value, RpcError> {
    let name = params.get("name").and_then(Value::as_str).ok_or_else(|| {
        RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            "tools/call needs params.name",
        )
    })?;
    match params.get("arguments") {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => {
            return Err(RpcError::new(
                StatusCode::OK,
                INVALID_PARAMS,
                "arguments must be an object",
            ))
        }
    }
    match name {
        "whoami" => Ok(whoami(claims)),
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

fn whoami(claims: &AccessClaims) -> Value {
    let expires_at =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(claims.exp)).to_string();
    let structured = json!({
        "sub": claims.sub,
        "email": claims.email,
        "client_id": claims.client_id,
        "scope": claims.scope,
        "exp": claims.exp,
        "expires_at": expires_at,
    });
    json!({
        "content": [{ "type": "text", "text": structured.to_string() }],
        "structuredContent": structured,
        "isError": false,
    })
}

//! `whoami`: what the server knows about the caller, the claims of the
//! access token it presented.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::output::Twice;
use super::Tool;
use crate::mcp::envelope::Reply;
use crate::mcp::error::RpcError;
use crate::tokens::access::VerifiedToken;

pub(super) const TOOL: Tool = Tool {
    name: "whoami",
    definition,
    call,
};

fn definition() -> Value {
    json!({
        "name": TOOL.name,
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
    })
}

fn call(_arguments: Option<&RawValue>, claims: &VerifiedToken) -> Result<Reply, RpcError> {
    Ok(whoami(claims))
}

/// The structured output (the `outputSchema` above): `sub`, `email`,
/// `client_id`, `scope`, `exp` and `expires_at`.
pub(super) fn whoami(claims: &VerifiedToken) -> Reply {
    use std::io::Write as _;
    let mut w = Twice::with_capacity(512);
    w.member('{', "sub");
    w.string(claims.sub());
    w.member(',', "email");
    w.string(claims.email());
    w.member(',', "client_id");
    w.string(claims.client_id());
    w.member(',', "scope");
    w.string(claims.scope());
    w.member(',', "exp");
    w.integer(claims.exp);
    w.member(',', "expires_at");
    // humantime writes years up to 9999; an `exp` past that (no TTL we
    // accept gives one) shows as that year's last second.
    const LAST_RFC3339_SECOND: u64 = 253_402_300_799;
    let at = UNIX_EPOCH + Duration::from_secs(claims.exp.min(LAST_RFC3339_SECOND));
    let mut date = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut date[..]);
    write!(cursor, "{}", humantime::format_rfc3339_seconds(at)).expect("YYYY-MM-DDTHH:MM:SSZ fits");
    let len = cursor.position() as usize;
    w.string(std::str::from_utf8(&date[..len]).expect("ASCII"));
    w.both(b"}");
    w.into_result()
}

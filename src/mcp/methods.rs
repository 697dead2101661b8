//! The methods `/mcp` answers, for both eras, in one table; and what every
//! stateless result carries.

use std::sync::OnceLock;

use serde_json::{json, Value};

use super::envelope::{text, Call, Reply};
use super::error::RpcError;
use super::tools;
use super::version::{self, Era};
use crate::tokens::access::VerifiedToken;

/// What `initialize` and `server/discover` tell a client about this server.
const INSTRUCTIONS: &str = "mcpgate: tools of this organization, for the person who signed in.";
/// 2026-07-28: how long a client may keep a `server/discover` or
/// `tools/list` answer, in milliseconds.
const TTL_MS: u64 = 3_600_000;

/// The result of a request (not a notification) in `era`, whose transport
/// rules already hold.
pub(crate) fn call(era: Era, call: &Call<'_>, claims: &VerifiedToken) -> Result<Reply, RpcError> {
    let mut result = match (&*call.method, era) {
        ("initialize", Era::Legacy) => Reply::new(&json!({
            "protocolVersion": version::negotiate(&text(call.params.protocol_version)),
            "capabilities": { "tools": { "listChanged": false } },
            "serverInfo": server_info(),
            "instructions": INSTRUCTIONS,
        })),
        ("ping", Era::Legacy) => Reply::new(&json!({})),
        ("server/discover", Era::Stateless) => Reply::new(&json!({
            "supportedVersions": version::SUPPORTED,
            "capabilities": { "tools": { "listChanged": false } },
            "instructions": INSTRUCTIONS,
            "ttlMs": TTL_MS,
            "cacheScope": "public",
        })),
        ("tools/list", Era::Legacy) => Reply::new(&json!({ "tools": tools::list() })),
        ("tools/list", Era::Stateless) => Reply::new(&json!({
            "tools": tools::list(),
            "ttlMs": TTL_MS,
            "cacheScope": "public",
        })),
        ("tools/call", _) => tools::call(&call.params, claims)?,
        (other, era) => return Err(RpcError::method_not_found(other, era)),
    };
    if era == Era::Stateless {
        result.append_members(stateless_members());
    }
    Ok(result)
}

fn server_info() -> Value {
    json!({ "name": "mcpgate", "title": "mcpgate", "version": env!("CARGO_PKG_VERSION") })
}

/// The members every 2026-07-28 result ends with, rendered once.
fn stateless_members() -> &'static [u8] {
    static MEMBERS: OnceLock<Vec<u8>> = OnceLock::new();
    MEMBERS.get_or_init(|| {
        let mut out = br#""resultType":"complete","_meta":"#.to_vec();
        let meta = json!({ "io.modelcontextprotocol/serverInfo": server_info() });
        serde_json::to_writer(&mut out, &meta).expect("serializes");
        out
    })
}

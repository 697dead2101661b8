//! The built-in tools: one table, `tools/list` and `tools/call`.
//!
//! A tool is a file here that defines a [`Tool`] named `TOOL`, and a line
//! in [`TOOLS`]. Its result is era-free: the method table adds what a
//! 2026-07-28 result carries.

mod output;
mod whoami;

#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use serde_json::value::RawValue;
use serde_json::Value;

use super::envelope::{Params, Reply};
use super::error::RpcError;
use super::jsonrpc;
use crate::tokens::access::VerifiedToken;

/// A built-in tool.
struct Tool {
    name: &'static str,
    /// Its `tools/list` entry, `name` included.
    definition: fn() -> Value,
    /// Its result for the caller, from `arguments` (absent, `null` or an
    /// object).
    call: fn(arguments: Option<&RawValue>, claims: &VerifiedToken) -> Result<Reply, RpcError>,
}

/// The built-in tools, in `tools/list` order.
const TOOLS: &[Tool] = &[whoami::TOOL];

/// The tool list, rendered once.
pub(crate) fn list() -> &'static Value {
    static LIST: OnceLock<Value> = OnceLock::new();
    LIST.get_or_init(|| Value::Array(TOOLS.iter().map(|t| (t.definition)()).collect()))
}

pub(crate) fn call(params: &Params<'_>, claims: &VerifiedToken) -> Result<Reply, RpcError> {
    let name = params
        .name
        .and_then(jsonrpc::as_str)
        .ok_or(RpcError::ToolNameMissing)?;
    if params
        .arguments
        .is_some_and(|a| !jsonrpc::is_null(a) && !jsonrpc::is_object(a))
    {
        return Err(RpcError::InvalidArguments(
            "arguments must be an object".into(),
        ));
    }
    let tool = TOOLS
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| RpcError::unknown_tool(&name))?;
    (tool.call)(params.arguments, claims)
}

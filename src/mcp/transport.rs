//! What the Streamable HTTP transport asks of a request's headers and
//! `_meta`, era by era: the rules checked before a method runs.

use base64::Engine as _;
use http::{HeaderMap, HeaderName};

use super::envelope::{text, Call, META_CLIENT_CAPABILITIES, META_PROTOCOL_VERSION};
use super::error::RpcError;
use super::jsonrpc;
use super::version::{self, Era, BATCH_VERSION, MCP_PROTOCOL_VERSION};

const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");

/// The era `call` is served in, once that era's rules hold for it. A
/// request is routed by its body: no `_meta` protocol version is legacy.
///
/// - Legacy: the `MCP-Protocol-Version` header, when sent, is a version
///   this server speaks.
/// - Stateless: the `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`
///   headers must agree with the body (-32020 otherwise) and `_meta`
///   carries the client's capabilities. A notification is held to the
///   version rules only.
pub(crate) fn era(headers: &HeaderMap, call: &Call<'_>) -> Result<Era, RpcError> {
    let params = &call.params;
    let Some(version) = params.meta_protocol_version else {
        // A request that says (by header or method) it is 2026-07-28 but
        // lacks the `_meta` version is a malformed stateless request, not
        // a legacy one.
        let stateless_header =
            version::header(headers).is_some_and(|v| Era::Stateless.versions().contains(&v));
        if stateless_header || call.method == "server/discover" {
            return Err(RpcError::MetaRequired(META_PROTOCOL_VERSION));
        }
        check_version_header(headers)?;
        return Ok(Era::Legacy);
    };
    let version = text(Some(version));
    let version = &*version;
    expect_header(
        headers,
        &MCP_PROTOCOL_VERSION,
        "MCP-Protocol-Version",
        version,
    )?;
    if !Era::Stateless.versions().contains(&version) {
        return Err(RpcError::UnsupportedProtocolVersion(version.to_owned()));
    }
    if call.id.is_none() {
        // This revision defines no client notifications over HTTP; accept.
        return Ok(Era::Stateless);
    }
    expect_header(headers, &MCP_METHOD, "Mcp-Method", &call.method)?;
    if !params
        .meta_client_capabilities
        .is_some_and(jsonrpc::is_object)
    {
        return Err(RpcError::MetaRequired(META_CLIENT_CAPABILITIES));
    }
    let named = match &*call.method {
        "tools/call" | "prompts/get" => params.name,
        "resources/read" => params.uri,
        _ => None,
    };
    if named.is_some() {
        expect_header(headers, &MCP_NAME, "Mcp-Name", &text(named))?;
    }
    Ok(Era::Stateless)
}

/// An `MCP-Protocol-Version` this server does not speak is a 400
/// (2025-06-18 Transports → Protocol Version Header:
/// <https://modelcontextprotocol.io/specification/2025-06-18/basic/transports#protocol-version-header>);
/// its absence means a 2025-03-26 client or the initialize request itself.
/// The rule covers every POST: a response and a batch too.
pub(crate) fn check_version_header(headers: &HeaderMap) -> Result<(), RpcError> {
    match version::header(headers) {
        Some(v) if !version::SUPPORTED.contains(&v) => Err(RpcError::unsupported_version_header(v)),
        _ => Ok(()),
    }
}

/// A batch is served only to a 2025-03-26 client: one that names that
/// version, or none (a 2025-03-26 client sends no header, and a server
/// without one "SHOULD assume" 2025-03-26: 2025-06-18 Transports →
/// Protocol Version Header). Batching was removed in 2025-06-18
/// (<https://modelcontextprotocol.io/specification/2025-06-18/changelog>).
pub(crate) fn batch_allowed(headers: &HeaderMap) -> Result<(), RpcError> {
    check_version_header(headers)?;
    match version::header(headers) {
        None | Some(BATCH_VERSION) => Ok(()),
        Some(_) => Err(RpcError::BatchAfterItsVersion),
    }
}

/// 2026-07-28 transport: a standard header must be present and equal its
/// body value, else 400 with -32020 (HeaderMismatch).
fn expect_header(
    headers: &HeaderMap,
    name: &HeaderName,
    label: &'static str,
    body: &str,
) -> Result<(), RpcError> {
    match header_text(headers, name) {
        Some(Ok(h)) if h == body => Ok(()),
        Some(Ok(h)) => Err(RpcError::header_mismatch(label, &h, body)),
        _ => Err(RpcError::HeaderMissing(label)),
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

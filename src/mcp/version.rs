//! The protocol versions `/mcp` speaks: one list, split by era, and the
//! `MCP-Protocol-Version` header that names one.

use http::{HeaderMap, HeaderName};

/// Every supported version, newest first: the stateless era's, then the
/// legacy era's. `server/discover` and a -32022 error list them in this
/// order.
pub(crate) const SUPPORTED: &[&str] = &["2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26"];
/// How many of [`SUPPORTED`], from the front, are stateless.
const STATELESS_COUNT: usize = 1;

/// The only version with batches: 2025-06-18 removed them.
pub(crate) const BATCH_VERSION: &str = "2025-03-26";

/// A transport header, as a constant: a header looked up by a string has
/// its name parsed and validated on every request.
pub(crate) const MCP_PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");

/// Which protocol era a request is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// `initialize` handshake, then the `MCP-Protocol-Version` header.
    Legacy,
    /// 2026-07-28: no handshake; every request names its version, and its
    /// results carry `resultType` and `_meta`.
    Stateless,
}

impl Era {
    /// This era's versions, newest first.
    pub(crate) const fn versions(self) -> &'static [&'static str] {
        let (stateless, legacy) = SUPPORTED.split_at(STATELESS_COUNT);
        match self {
            Era::Legacy => legacy,
            Era::Stateless => stateless,
        }
    }
}

/// The version `initialize` answers with: the client's when it is a legacy
/// one, else the newest legacy one.
pub(crate) fn negotiate(asked: &str) -> &'static str {
    let legacy = Era::Legacy.versions();
    legacy
        .iter()
        .find(|v| **v == asked)
        .copied()
        .unwrap_or(legacy[0])
}

/// The `MCP-Protocol-Version` header, trimmed; a value that is not text
/// reads as empty, which no version is.
pub(crate) fn header(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(MCP_PROTOCOL_VERSION)
        .map(|v| v.to_str().unwrap_or("").trim())
}

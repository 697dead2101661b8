//! Everything mcpgate mints: signed access tokens and sealed blobs.
//!
//! - [`access`]: RFC 9068 JWT access tokens (JWS, signed by the key ring).
//! - [`sealed`]: the JWE envelope and its per-kind `typ`.
//! - [`grants`]: what travels inside each sealed kind: a registered client,
//!   an authorization code, a refresh token.
//! - [`pkce`]: RFC 7636 S256.
//! - [`scope`]: RFC 6749 §3.3 scopes, granted and narrowed.
//! - [`verified`]: the cache that lets a hot token skip the signature check.
//! - [`identity`]: the JWT an upstream MCP server gets instead of the
//!   client's token.

pub mod access;
pub mod grants;
pub(crate) mod identity;
pub mod pkce;
pub mod scope;
pub mod sealed;
pub mod verified;

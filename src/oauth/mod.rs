//! The OAuth 2.1 authorization server.
//!
//! - [`metadata`]: RFC 8414 / RFC 9728 discovery documents.
//! - [`register`]: RFC 7591 dynamic registration.
//! - [`authorize`]: the authorization endpoint (behind oauth2-proxy).
//! - [`consent`]: the consent page for self-registered clients.
//! - [`token`]: the token endpoint (codes and refresh tokens).
//! - [`client`]: resolving and authenticating clients.
//! - [`params`]: form and query parameters.
//! - [`resource`]: RFC 8707 `resource` parameters.
//! - [`replay`]: single use of codes.
//! - [`refresh_ledger`]: refresh-token rotation and reuse detection.
//! - [`error`]: the one OAuth error type and its responses.

pub mod authorize;
pub mod client;
pub mod consent;
pub mod error;
pub mod metadata;
pub mod params;
pub mod refresh_ledger;
pub mod register;
pub mod replay;
pub mod resource;
pub mod token;

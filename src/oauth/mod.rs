//! The OAuth 2.1 authorization server.
//!
//! - [`register`]: RFC 7591 dynamic registration.
//! - [`authorize`]: the authorization endpoint (behind oauth2-proxy).
//! - [`consent`]: the consent page for self-registered clients.
//! - [`token`]: the token endpoint (codes and refresh tokens).
//! - [`client`]: resolving and authenticating clients.
//! - `client_assertion`: `private_key_jwt` (RFC 7523) for metadata
//!   document clients.
//! - [`params`]: form and query parameters.
//! - [`resource`]: RFC 8707 `resource` parameters.
//! - `redirect`: the authorization response back to the client.
//! - [`error`]: the one OAuth error type and its responses.

pub(crate) mod authorize;
pub(crate) mod client;
mod client_assertion;
mod consent;
pub(crate) mod error;
pub(crate) mod params;
mod redirect;
pub(crate) mod register;
pub(crate) mod resource;
pub(crate) mod token;

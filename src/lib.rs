//! mcpgate: one organization's OAuth 2.1 authorization server and MCP
//! endpoint, in one stateless binary.
//!
//! # Layout
//!
//! - [`config`]: the TOML/env configuration as written by operators.
//! - [`settings`]: that configuration validated into the types the server
//!   runs on (hosts, redirect policies, clients, identity rules).
//! - [`keys`]: key files → an immutable key ring, swapped in whole.
//! - [`tokens`]: access tokens (JWS), sealed blobs (JWE), PKCE.
//! - [`oauth`]: discovery, registration, authorize, token; OAuth errors.
//! - [`identity`]: the signed-in person, from oauth2-proxy's headers.
//! - [`mcp`]: JSON-RPC over Streamable HTTP and the built-in tools.
//! - [`metrics`]: Prometheus counters and histograms.
//! - [`http`]: accept loop, limits, host resolution, the router.
//! - [`app`]: the state every request shares.
//! - [`cli`]: the `mcpgate` command line.
//!
//! A request's path: [`http::server`] accepts → [`http::router`] resolves
//! the host and matches method and path → a handler in [`oauth`] or
//! [`mcp`] → one response.

pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod discovery;
pub mod health;
pub mod http;
pub mod identity;
pub mod keys;
pub mod mcp;
pub mod metrics;
pub mod oauth;
pub mod random;
pub mod router;
pub mod server;
pub mod settings;
pub mod store;
pub mod tokens;

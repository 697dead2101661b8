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

#![warn(unreachable_pub)]

mod app;
mod cli;
mod clock;
mod config;
mod discovery;
mod health;
mod http;
mod identity;
mod keys;
mod mcp;
mod metrics;
mod oauth;
mod random;
mod router;
mod server;
mod settings;
mod store;
mod tokens;

// The binary's entry point.
pub use cli::main as run;

// What the fuzz targets, the benchmarks and the integration tests drive
// directly: the parsers and checks that see untrusted input, and the
// minting they check against. Nothing else is reachable from outside.
pub use clock::unix_now;
pub use config::{Config, HostConfig};
pub use http::response::Body;
pub use keys::{file::generate_set, KeyFile, KeyKind, KeyMaterial, KeyRing};
pub use mcp::{serve_message, MAX_BATCH};
pub use oauth::client::Credentials;
pub use oauth::params::Params;
pub use oauth::register::validate as validate_registration;
pub use random::random_id;
pub use settings::{redirect, Settings, Site, SCOPES_SUPPORTED};
pub use tokens::{access, grants, pkce, scope, sealed, verified};

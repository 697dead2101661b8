//! mcpgate: one organization's OAuth 2.1 authorization server and MCP
//! endpoint, in one stateless binary.
//!
//! # Layout
//!
//! Layers, each using only those below it (`module-cycles` keeps it so):
//!
//! ```text
//! cli, main        the command line; `serve` builds the App and runs the server
//! app              App: the state every request shares, built once
//! router           the one table of endpoints: path + method → handler
//! server           accept loop, connection limits, timeouts, shutdown, access log
//! ─────────────────────────────────────────────────────────────────────────────
//! discovery        RFC 8414 / RFC 9728 documents per host, the JWKS
//! health           /healthz, /readyz
//! oauth            register, authorize (+ consent), token; clients, params, errors
//! mcp              /mcp: admission, JSON-RPC envelope, eras, methods, tools
//! ─────────────────────────────────────────────────────────────────────────────
//! identity         who is signing in: SignIn::person (proxy headers, ID token)
//! http             primitives: host resolution, bodies, responses, pages, CORS,
//!                  refusals below any protocol, the handler context Ctx
//! ─────────────────────────────────────────────────────────────────────────────
//! keys             key files → an immutable key ring, watched and swapped whole
//! tokens           access tokens (JWS), sealed kinds (JWE), grants, scope, PKCE
//! store            single use of codes and refresh-token rotation
//! metrics          Prometheus counters and histograms
//! ─────────────────────────────────────────────────────────────────────────────
//! settings         the configuration validated into plain data
//! config           the TOML / `MCPGATE_*` configuration as operators write it
//! clock, random    the one clock and the one source of random ids
//! ```
//!
//! # Where a request goes
//!
//! `server` accepts a connection and times the request; `router::route`
//! answers `/healthz` and `/readyz` on any host, resolves the host
//! (`http::host`), then matches path and method in one `match` and hands
//! each endpoint the state it uses: `oauth::token::handle` gets the store,
//! `oauth::authorize::handle` the sign-in, `mcp::handle` the
//! verified-token cache, `discovery` its pre-rendered documents.
//!
//! # Where a refusal becomes a status code
//!
//! Once per protocol, in one function that also logs and counts it:
//! - OAuth: `oauth::error::OAuthError::respond`, as JSON (RFC 6749 §5.2),
//!   a page, or a redirect with `state` and `iss`, as the endpoint says;
//! - bearer tokens at `/mcp`: `mcp::auth::AuthFailure::into_response`
//!   (`WWW-Authenticate`, RFC 6750 §3);
//! - JSON-RPC: `mcp::error::RpcError::write`;
//! - below any protocol (host, 404, 405): `http::error::HttpError::respond`.
//!
//! # Adding
//!
//! - An OAuth refusal: return `OAuthError::new(ErrorCode::…, "…")` where
//!   the endpoint decides it; a new error code is one variant in
//!   `oauth/error.rs` (its name and status). Two files at most.
//! - A built-in tool: `mcp/tools/<name>.rs` with its `Tool`, and one line
//!   in the `TOOLS` table of `mcp/tools/mod.rs`. Two files.

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

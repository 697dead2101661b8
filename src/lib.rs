//! mcpgate: one organization's OAuth 2.1 authorization server and MCP
//! endpoint, in one stateless binary.
//!
//! # Layout
//!
//! Layers, each using only those below it (`module-cycles` keeps it so):
//!
//! ```text
//! cli, main        the command line; `serve` builds the App and runs the server
//! server           accept loop, connection limits, timeouts, shutdown, access
//!                  log; the metrics listener
//! router           the one table of endpoints: path + method → handler
//! app              App: the state every request shares, built once
//! ─────────────────────────────────────────────────────────────────────────────
//! discovery        RFC 8414 / RFC 9728 documents per host, the JWKS
//! health           /healthz, /readyz
//! oauth            register, authorize (asking consent), token; clients, params,
//!                  the OAuth refusal
//! mcp              /mcp: admission, bearer auth, JSON-RPC envelope, eras,
//!                  methods, tools; `mcp::upstream`: the `[[upstreams]]`
//!                  mounts, a streaming proxy with a tool policy
//! ─────────────────────────────────────────────────────────────────────────────
//! identity         who is signing in: SignIn::person (proxy headers, ID token)
//! cimd             Client ID Metadata Documents: URL client ids, their
//!                  documents (operator-provided, cached, or fetched)
//! http             primitives: host resolution, bodies, responses, pages, CORS
//!                  policy, refusals below any protocol, the handler context Ctx
//! ─────────────────────────────────────────────────────────────────────────────
//! tokens           access tokens (JWS), sealed kinds (JWE), grants, scope, PKCE,
//!                  the verified-token cache
//! store            single use of codes, consent forms and refresh-token
//!                  rotation: per-replica memory or a shared Redis/Valkey
//! egress           outbound HTTPS to URLs others chose: the SSRF guard
//!                  (RFC 6890), connect to the checked address, TLS, limits
//! keys             key files → an immutable key ring, watched and swapped whole
//! metrics          Prometheus counters and histograms
//! ─────────────────────────────────────────────────────────────────────────────
//! settings         the configuration validated into plain data
//! config           the TOML / `MCPGATE_*` configuration as operators write it
//! clock, random    the one clock and the one source of randomness
//! ```
//!
//! # Where a request goes
//!
//! `server` accepts a connection and times the request; `router::route`
//! answers `/healthz` and `/readyz` on any host, resolves the host
//! (`http::host`), then matches path and method in one `match` and hands
//! each endpoint the state it uses: `oauth::token::handle` gets the store,
//! `oauth::authorize::handle` the sign-in and the store (consent forms), `mcp::handle` the
//! verified-token cache, `discovery` its pre-rendered documents. Two
//! endpoints refine the method themselves, since the answer depends on
//! more than the path: `/oauth/authorize` takes a POST only from its own
//! forms, and `/mcp` answers 405 only to a caller who may call. A path an
//! upstream is mounted at (`mcp::upstream::Mounts`, looked up before the
//! fixed paths, so a mount at `/mcp` replaces the built-in server) goes to
//! `mcp::upstream::handle`, whose answer may stream (`ReplyBody`). The
//! metrics listener (`server.metrics_listen`) serves `/metrics` and the
//! health checks only.
//!
//! # Where a refusal becomes a status code
//!
//! Once per protocol, in one function:
//! - OAuth: `oauth::error::OAuthError::respond`, as JSON (RFC 6749 §5.2),
//!   a page, or a redirect with `state` and `iss`, as the endpoint says;
//!   it counts every refusal and logs it at `info`, unless the deciding
//!   code logged a richer line (who, which client) and said so;
//! - bearer tokens at `/mcp`: `mcp::auth::AuthFailure::into_response`
//!   (`WWW-Authenticate`, RFC 6750 §3), which logs and counts;
//! - JSON-RPC: `mcp::error::RpcError` (`into_response`, or `write` inside
//!   a batch): the client's protocol mistakes, not logged; and, at an
//!   upstream mount, a tool the policy refuses, a caller not in `allow`
//!   (403) and an upstream that failed (502, 504), logged where decided;
//! - below any protocol (host, 404, 405, a refused CORS preflight):
//!   `http::error::HttpError::respond`, counted by the route metrics.
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
mod cimd;
mod cli;
mod clock;
mod config;
mod discovery;
mod egress;
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
pub use settings::{redirect, Settings, Site};
pub use tokens::scope::SCOPES_SUPPORTED;
pub use tokens::{access, grants, pkce, scope, sealed, verified};

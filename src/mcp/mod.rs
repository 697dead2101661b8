//! `/mcp`: JSON-RPC over Streamable HTTP, both protocol eras on one path.
//!
//! - Legacy (the 2025 revisions): `initialize` handshake, the
//!   `MCP-Protocol-Version` header after it. No sessions are minted, so
//!   every request stands alone.
//! - Stateless (2026-07-28): no handshake; each request carries
//!   `_meta["io.modelcontextprotocol/protocolVersion"]` and client
//!   capabilities, and the `MCP-Protocol-Version`, `Mcp-Method` and
//!   `Mcp-Name` headers must agree with the body (-32020 otherwise).
//!
//! A request is routed to an era by its body: `initialize`, or no `_meta`
//! protocol version, is legacy. A POST body is one message, or, for a
//! 2025-03-26 client only, a JSON array of them (a batch), each served as
//! if it came alone.
//!
//! # Parse → decide → render
//!
//! `handle` starts reading the body and `admission` decides who may call
//! (origin, bearer token, method). An admitted body goes to
//! `serve_message`, which takes each message through `envelope` (read
//! into a call), `transport` (the era's header and `_meta` rules, which
//! name the era) and `methods` (the answer). What a message comes to, an
//! `envelope::Outcome`, is rendered last.
//!
//! # Refusals
//!
//! Each protocol has one refusal type and one function that renders it,
//! choosing status, body, headers, log line and metric; nothing changes a
//! status once chosen:
//! - JSON-RPC: `error::RpcError`, by `RpcError::write` (which
//!   `RpcError::into_response` wraps for a single answer);
//! - RFC 6750 bearer: `auth::AuthFailure`, by `AuthFailure::into_response`;
//! - HTTP: the 405, by `http::error::HttpError::respond`.
//!
//! `admission::Refusal` says which of them refused a request before its
//! body was read.
//!
//! # Files
//!
//! Each uses only those below it in this list.
//! - `upstream`: the mounted upstream MCP servers (a proxy; it uses
//!   `auth`, `error` and `jsonrpc`).
//! - `admission`: who may call.
//! - `auth`: bearer tokens, and their challenge.
//! - `serve`: a body (one message or a batch) to its answer.
//! - `methods`: the one method table, for both eras.
//! - `tools`: the built-in tools.
//! - `transport`: each era's header and `_meta` rules.
//! - `envelope`: JSON-RPC messages in; results, errors or nothing out.
//! - `error`: every JSON-RPC refusal, and its rendering.
//! - `jsonrpc`: reading JSON without building a tree.
//! - `version`: the one list of supported versions, by era.
//!
//! # Adding a tool
//!
//! Two files: a new `tools/<name>.rs` that defines `TOOL`, a `Tool` (its
//! name, its `tools/list` entry, and a function from the arguments and
//! the caller's claims to a result, which `tools::output::Twice` can
//! write), and `tools/mod.rs`, which gains `mod <name>;` and
//! `<name>::TOOL` in `TOOLS`. A tool's result is the
//! same in both eras (`methods` adds what a 2026-07-28 result carries); a
//! tool refuses bad arguments with `RpcError::InvalidArguments`.

mod admission;
mod auth;
mod envelope;
mod error;
mod jsonrpc;
mod methods;
mod serve;
mod tools;
mod transport;
pub(crate) mod upstream;
mod version;

use http::Request;
use hyper::body::Incoming;

use crate::http::response::Resp;
use crate::http::Ctx;
use crate::tokens::verified::VerifiedTokens;
use error::RpcError;

pub use serve::{serve_message, MAX_BATCH};

/// `/mcp` bodies: JSON-RPC messages, generous but bounded.
const MAX_BODY: usize = 1024 * 1024;

pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    verified_tokens: &VerifiedTokens,
    req: Request<Incoming>,
) -> Resp {
    let (parts, body) = req.into_parts();
    let read = ctx.read_body(&parts.headers, body, MAX_BODY);
    let claims = match admission::admit(ctx, verified_tokens, &parts) {
        Ok(claims) => claims,
        Err(refusal) => {
            // Rendered, logged and counted now: the head alone decided it.
            let answer = refusal.into_response(ctx);
            // Take in what the client is sending before answering: hyper
            // keeps a connection only once its request body is consumed,
            // and closing on unread bytes makes the kernel send a reset
            // that can destroy this answer before the client reads it
            // (RFC 9112 §9.6). A body over the limit is not waited for.
            let _ = read.await;
            return answer;
        }
    };
    match read.await {
        Ok(body) => serve_message(&parts.headers, &body, &claims),
        Err(e) => RpcError::Body(e).into_response(None),
    }
}

#[cfg(test)]
mod tests;

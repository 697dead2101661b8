//! An admitted POST body to its answer: one JSON-RPC message, or a batch of
//! them, each taken through envelope → transport rules → method.

use http::{HeaderMap, StatusCode};

use super::envelope::{self, Message, Outcome};
use super::error::RpcError;
use super::jsonrpc;
use super::methods;
use super::transport;
use crate::http::response::{self, Resp};
use crate::tokens::access::VerifiedToken;

/// The most messages one batch may hold: a batch is served in one go, so
/// this bounds what one request can make the server do.
pub const MAX_BATCH: usize = 100;

/// One authenticated JSON-RPC POST body (a message or a batch) to its
/// response. Pure: no I/O, so it is what the fuzzer drives.
pub fn serve_message(headers: &HeaderMap, body: &[u8], claims: &VerifiedToken) -> Resp {
    // One byte tells a batch from a message (RFC 8259 §2: these four are
    // all the whitespace JSON has), so a message is not parsed twice.
    if body
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        == Some(&b'[')
    {
        return serve_batch(headers, body, claims);
    }
    serve_one(headers, body, claims, false).into_response()
}

/// One message, alone or from a batch, to what it comes to.
fn serve_one<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    claims: &VerifiedToken,
    in_batch: bool,
) -> Outcome<'a> {
    let call = match envelope::read(body, in_batch) {
        Ok(Message::Call(call)) => call,
        // Responses are accepted (transport §2.1.4), under a version
        // header this server speaks: that rule covers every POST. A
        // request meets it in `transport::era`, or as -32022, which names
        // the supported versions for a 2026-07-28 client to pick from.
        Ok(Message::Response) => {
            return match transport::check_version_header(headers) {
                Ok(()) => Outcome::Accepted,
                Err(e) => Outcome::Error(e, None),
            }
        }
        Err((e, id)) => return Outcome::Error(e, id),
    };
    let era = match transport::era(headers, &call) {
        Ok(era) => era,
        Err(e) => return Outcome::Error(e, call.id),
    };
    // Notifications (no id) are accepted without a body.
    let Some(id) = call.id else {
        return Outcome::Accepted;
    };
    match methods::call(era, &call, claims) {
        Ok(result) => Outcome::Result(id, result),
        Err(e) => Outcome::Error(e, Some(id)),
    }
}

/// A JSON-RPC batch to one response: 202 when nothing in it asks for an
/// answer, else a JSON array of the answers (MCP 2025-03-26 Transports →
/// Streamable HTTP → Sending Messages to the Server, item 3:
/// <https://modelcontextprotocol.io/specification/2025-03-26/basic/transports#sending-messages-to-the-server>).
fn serve_batch(headers: &HeaderMap, body: &[u8], claims: &VerifiedToken) -> Resp {
    if let Err(e) = transport::batch_allowed(headers) {
        return e.into_response(None);
    }
    let (elements, count) = match jsonrpc::elements(body, MAX_BATCH) {
        Ok(found) => found,
        Err(e) => return RpcError::Parse(e).into_response(None),
    };
    if count == 0 {
        return RpcError::EmptyBatch.into_response(None);
    }
    if count > MAX_BATCH {
        return RpcError::BatchTooLarge {
            count,
            max: MAX_BATCH,
        }
        .into_response(None);
    }
    let mut out = Vec::with_capacity(1024);
    out.push(b'[');
    for element in elements {
        let outcome = serve_one(headers, element.get().as_bytes(), claims, true);
        // JSON-RPC 2.0 §6: notifications (and responses) get no entry.
        if matches!(outcome, Outcome::Accepted) {
            continue;
        }
        if out.len() > 1 {
            out.push(b',');
        }
        outcome.write(&mut out);
    }
    if out.len() == 1 {
        return response::empty(StatusCode::ACCEPTED);
    }
    out.push(b']');
    response::json_bytes(StatusCode::OK, out)
}

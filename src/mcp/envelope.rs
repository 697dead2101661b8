//! The JSON-RPC 2.0 envelope: a message read from the body and checked
//! into a call, and what it comes to written back (a result, an error, or
//! nothing).

use std::borrow::Cow;

use http::StatusCode;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::error::RpcError;
use super::jsonrpc;
use crate::http::response::{self, Resp};

/// 2026-07-28: the `_meta` member that names a request's version.
pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// 2026-07-28: the `_meta` member that holds the client's capabilities.
pub(crate) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// A message whose envelope holds.
pub(crate) enum Message<'a> {
    /// A request (with an id) or a notification.
    Call(Call<'a>),
    /// A response, to a request this server never sends.
    Response,
}

/// A request or a notification.
pub(crate) struct Call<'a> {
    /// The id to echo: `None` for a notification.
    pub(crate) id: Option<&'a RawValue>,
    pub(crate) method: Cow<'a, str>,
    pub(crate) params: Params<'a>,
}

/// One message, its envelope checked: a call or a response, or why it is
/// refused (with the id to answer, when it had a usable one).
pub(crate) fn read(
    body: &[u8],
    in_batch: bool,
) -> Result<Message<'_>, (RpcError, Option<&RawValue>)> {
    let msg = Members::read(body).map_err(|e| (e, None))?;
    // Only a string or integer id is echoed (JSON-RPC 2.0 §4).
    let id = msg.id.filter(|v| jsonrpc::is_string_or_integer(v));
    if msg.jsonrpc.and_then(jsonrpc::as_str).as_deref() != Some("2.0") {
        return Err((RpcError::JsonrpcNot2, id));
    }
    let Some(method) = msg.method.and_then(jsonrpc::as_str) else {
        // A response to a request we never send, or garbage.
        if id.is_some() && msg.is_response {
            return Ok(Message::Response);
        }
        return Err((RpcError::MethodRequired, id));
    };
    if msg.id.is_some() && id.is_none() {
        return Err((RpcError::BadId, None));
    }
    // "The initialization request MUST NOT be part of a JSON-RPC batch":
    // the client is to send nothing but pings before it is answered (MCP
    // 2025-03-26 Lifecycle → Initialization,
    // <https://modelcontextprotocol.io/specification/2025-03-26/basic/lifecycle#initialization>).
    if in_batch && method == "initialize" {
        return Err((RpcError::InitializeInBatch, id));
    }
    let Some(params) = Params::read(msg.params) else {
        return Err((RpcError::ParamsNotAnObject, id));
    };
    Ok(Message::Call(Call { id, method, params }))
}

/// The members of a JSON-RPC message this server reads, as raw JSON.
struct Members<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    /// A `result` or `error` member: a response (to a request we never send).
    is_response: bool,
}

impl Members<'_> {
    fn read(body: &[u8]) -> Result<Members<'_>, RpcError> {
        let read = std::str::from_utf8(body).ok().and_then(|text| {
            jsonrpc::members(
                text,
                &["jsonrpc", "id", "method", "params", "result", "error"],
            )
            .ok()
        });
        if let Some([jsonrpc, id, method, params, result, error]) = read {
            return Ok(Members {
                jsonrpc,
                id,
                method,
                params,
                is_response: result.is_some() || error.is_some(),
            });
        }
        // Not a message: parsed again, whole, to say why.
        Err(match serde_json::from_slice::<Value>(body) {
            Err(e) => RpcError::Parse(e),
            Ok(_) => RpcError::NotAnObject,
        })
    }
}

/// The `params` members the built-in methods read.
pub(crate) struct Params<'a> {
    pub(crate) name: Option<&'a RawValue>,
    pub(crate) uri: Option<&'a RawValue>,
    pub(crate) arguments: Option<&'a RawValue>,
    /// `initialize`.
    pub(crate) protocol_version: Option<&'a RawValue>,
    /// 2026-07-28: `_meta[META_PROTOCOL_VERSION]`, when `_meta` is an object.
    pub(crate) meta_protocol_version: Option<&'a RawValue>,
    /// 2026-07-28: `_meta[META_CLIENT_CAPABILITIES]`.
    pub(crate) meta_client_capabilities: Option<&'a RawValue>,
}

impl<'a> Params<'a> {
    const NONE: Params<'static> = Params {
        name: None,
        uri: None,
        arguments: None,
        protocol_version: None,
        meta_protocol_version: None,
        meta_client_capabilities: None,
    };

    /// `None` when `params` is there but not an object.
    fn read(params: Option<&'a RawValue>) -> Option<Params<'a>> {
        let Some(raw) = params.filter(|p| !jsonrpc::is_null(p)) else {
            return Some(Params::NONE);
        };
        let [name, uri, arguments, protocol_version, meta] = jsonrpc::object_members(
            Some(raw),
            &["name", "uri", "arguments", "protocolVersion", "_meta"],
        )?;
        let [meta_protocol_version, meta_client_capabilities] =
            jsonrpc::object_members(meta, &[META_PROTOCOL_VERSION, META_CLIENT_CAPABILITIES])
                .unwrap_or([None, None]);
        Some(Params {
            name,
            uri,
            arguments,
            protocol_version,
            meta_protocol_version,
            meta_client_capabilities,
        })
    }
}

/// A string member's text, or "" when it is absent or not a string.
pub(crate) fn text<'a>(raw: Option<&'a RawValue>) -> Cow<'a, str> {
    raw.and_then(jsonrpc::as_str).unwrap_or(Cow::Borrowed(""))
}

/// A JSON-RPC result: a JSON object, serialized once by this server and
/// copied verbatim into the envelope.
pub(crate) struct Reply(Vec<u8>);

impl Reply {
    pub(crate) fn new<T: Serialize + ?Sized>(value: &T) -> Reply {
        // Sized for the common results, so that serializing does not grow
        // the buffer step by step.
        let mut out = Vec::with_capacity(1024);
        serde_json::to_writer(&mut out, value).expect("results serialize");
        Reply(out)
    }

    /// A JSON object written by hand.
    pub(crate) fn from_object(json: Vec<u8>) -> Reply {
        debug_assert!(json.starts_with(b"{") && json.ends_with(b"}"));
        Reply(json)
    }

    /// Appends `members`, rendered object members (`"a":1,"b":2`), to the
    /// object.
    pub(crate) fn append_members(&mut self, members: &[u8]) {
        let out = &mut self.0;
        let close = out.pop();
        debug_assert_eq!(close, Some(b'}'));
        if out.len() > 1 {
            out.push(b',');
        }
        out.extend_from_slice(members);
        out.push(b'}');
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What one JSON-RPC message comes to.
pub(crate) enum Outcome<'a> {
    /// A notification or a response: nothing to answer.
    Accepted,
    /// The result of the request with this id.
    Result(&'a RawValue, Reply),
    /// An error, for the request with this id when it had a usable one.
    Error(RpcError, Option<&'a RawValue>),
}

const RESULT_HEAD: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":";
const RESULT_MIDDLE: &[u8] = b",\"result\":";

impl Outcome<'_> {
    /// The answer to a POST of this one message.
    pub(crate) fn into_response(self) -> Resp {
        match self {
            Outcome::Accepted => response::empty(StatusCode::ACCEPTED),
            Outcome::Result(id, result) => {
                let len =
                    RESULT_HEAD.len() + id.get().len() + RESULT_MIDDLE.len() + result.0.len() + 1;
                let mut body = Vec::with_capacity(len);
                write_result(&mut body, id, &result);
                response::json_bytes(StatusCode::OK, body)
            }
            Outcome::Error(e, id) => e.into_response(id),
        }
    }

    /// This message's entry in a batch's answer, appended to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            Outcome::Accepted => {}
            Outcome::Result(id, result) => write_result(out, id, result),
            Outcome::Error(e, id) => {
                e.write(out, *id);
            }
        }
    }
}

/// `{"jsonrpc":"2.0","id":…,"result":…}`, the id echoed as the client
/// wrote it.
fn write_result(out: &mut Vec<u8>, id: &RawValue, result: &Reply) {
    out.extend_from_slice(RESULT_HEAD);
    out.extend_from_slice(id.get().as_bytes());
    out.extend_from_slice(RESULT_MIDDLE);
    out.extend_from_slice(&result.0);
    out.push(b'}');
}

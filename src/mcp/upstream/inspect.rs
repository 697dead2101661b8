//! What a POST to an upstream asks for, read without changing a byte of
//! it: each message's method, id and, for `tools/call`, the tool. The
//! body is forwarded as it came; this is only what the policy and the
//! audit look at.

use std::borrow::Cow;

use serde_json::value::RawValue;

use super::super::error::RpcError;
use super::super::jsonrpc;
use super::super::MAX_BATCH;

/// One JSON-RPC message of the body.
pub(crate) struct Message<'a> {
    pub method: Option<Cow<'a, str>>,
    pub id: Option<&'a RawValue>,
    /// `params.name` of a `tools/call`.
    pub tool: Option<Cow<'a, str>>,
}

impl Message<'_> {
    pub(crate) fn is(&self, method: &str) -> bool {
        self.method.as_deref() == Some(method)
    }
}

/// The messages of a body: one, or a batch (JSON-RPC 2.0 §6).
pub(crate) struct Inspected<'a> {
    pub messages: Vec<Message<'a>>,
    pub batch: bool,
}

impl Inspected<'_> {
    /// The id a refusal of the whole request carries: the one message's.
    pub(crate) fn id(&self) -> Option<&RawValue> {
        match (self.batch, self.messages.first()) {
            (false, Some(m)) => m.id,
            _ => None,
        }
    }

    pub(crate) fn asks(&self, method: &str) -> bool {
        self.messages.iter().any(|m| m.is(method))
    }
}

/// Reads `body`. JSON that is not UTF-8 JSON is refused here, as the
/// upstream would refuse it: what the policy cannot read is never sent.
pub(crate) fn inspect(body: &[u8]) -> Result<Inspected<'_>, RpcError> {
    let text = match std::str::from_utf8(body) {
        Ok(t) => t,
        Err(_) => {
            let e = serde_json::from_slice::<serde::de::IgnoredAny>(body)
                .err()
                .unwrap_or_else(|| serde::de::Error::custom("the body is not UTF-8"));
            return Err(RpcError::Parse(e));
        }
    };
    if text.trim_start().starts_with('[') {
        let (elements, count) = jsonrpc::elements(body, MAX_BATCH).map_err(RpcError::Parse)?;
        if count > MAX_BATCH {
            return Err(RpcError::BatchTooLarge {
                count,
                max: MAX_BATCH,
            });
        }
        let messages = elements
            .into_iter()
            .filter_map(|e| message(e.get()).ok())
            .collect();
        return Ok(Inspected {
            messages,
            batch: true,
        });
    }
    let one = message(text).map_err(RpcError::Parse)?;
    Ok(Inspected {
        messages: vec![one],
        batch: false,
    })
}

fn message(json: &str) -> Result<Message<'_>, serde_json::Error> {
    let [method, id, params] = jsonrpc::members(json, &["method", "id", "params"])?;
    let method = method.and_then(jsonrpc::as_str);
    let tool = if method.as_deref() == Some("tools/call") {
        jsonrpc::object_members(params, &["name"])
            .and_then(|[name]| name)
            .and_then(jsonrpc::as_str)
    } else {
        None
    };
    Ok(Message { method, id, tool })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_read_from_one_message_or_a_batch() {
        let one = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"ad\u006din_x","arguments":{}}}"#;
        let i = inspect(one).unwrap();
        assert!(!i.batch);
        assert_eq!(i.id().unwrap().get(), "7");
        assert_eq!(i.messages[0].tool.as_deref(), Some("admin_x"));
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo"}}]"#;
        let i = inspect(batch).unwrap();
        assert!(i.batch && i.asks("tools/list") && i.id().is_none());
        assert_eq!(i.messages[1].tool.as_deref(), Some("echo"));
        assert!(matches!(inspect(b"{nope"), Err(RpcError::Parse(_))));
        assert!(matches!(inspect(b"\xff{}"), Err(RpcError::Parse(_))));
    }
}

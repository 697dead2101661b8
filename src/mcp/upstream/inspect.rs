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
    /// Every `method` a lenient server could read (see `every_member`).
    pub methods: Vec<Cow<'a, str>>,
    pub id: Option<&'a RawValue>,
    /// Every `params.name` of a `tools/call`: one, unless the message
    /// repeats `params` or `name` (each is held to the policy).
    pub tools: Vec<Cow<'a, str>>,
    /// A `tools/call` with a `params.name` the policy cannot read: none,
    /// not a string, or `params` not an object (a positional call).
    pub unnamed: bool,
}

impl Message<'_> {
    /// Whether a server could take this message for `method`: any of its
    /// `method`s, in any case, padded or not.
    pub(crate) fn is(&self, method: &str) -> bool {
        self.methods
            .iter()
            .any(|m| m.trim().eq_ignore_ascii_case(method))
    }

    /// A `tools/call`, however its method is written.
    pub(crate) fn is_call(&self) -> bool {
        !self.tools.is_empty() || self.unnamed
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
    let [id] = jsonrpc::members(json, &["id"])?;
    let methods: Vec<_> = jsonrpc::every_member(json, "method")?
        .into_iter()
        .filter_map(jsonrpc::as_str)
        .collect();
    let mut tools = Vec::new();
    let mut unnamed = false;
    // Any `method` that a lenient server could take for `tools/call`
    // makes this a call the policy decides on.
    let is_call = methods
        .iter()
        .any(|m| m.trim().eq_ignore_ascii_case("tools/call"));
    if is_call {
        let params = jsonrpc::every_member(json, "params")?;
        unnamed = params.is_empty();
        for p in params {
            let names = if jsonrpc::is_object(p) {
                jsonrpc::every_member(p.get(), "name")?
            } else {
                Vec::new()
            };
            unnamed |= names.is_empty();
            for n in names {
                match jsonrpc::as_str(n) {
                    Some(t) => tools.push(t),
                    None => unnamed = true,
                }
            }
        }
    }
    Ok(Message {
        methods,
        id,
        tools,
        unnamed,
    })
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
        assert_eq!(i.messages[0].tools, ["admin_x"]);
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"echo"}}]"#;
        let i = inspect(batch).unwrap();
        assert!(i.batch && i.asks("tools/list") && i.id().is_none());
        assert_eq!(i.messages[1].tools, ["echo"]);
        assert!(matches!(inspect(b"{nope"), Err(RpcError::Parse(_))));
        assert!(matches!(inspect(b"\xff{}"), Err(RpcError::Parse(_))));
    }

    #[test]
    fn every_name_a_server_could_call_is_read() {
        let tools = |body: &str| {
            let i = inspect(body.as_bytes()).unwrap();
            let m = &i.messages[0];
            (
                m.tools.iter().map(|t| t.to_string()).collect::<Vec<_>>(),
                m.unnamed,
            )
        };
        // Repeated members: whichever a server keeps, both are held to
        // the policy.
        let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"admin_x"}}"#;
        assert_eq!(tools(dup), (vec!["echo".into(), "admin_x".into()], false));
        let dup = r#"{"method":"tools/call","params":{"name":"admin_x"},"params":{"name":"echo"}}"#;
        assert_eq!(tools(dup), (vec!["admin_x".into(), "echo".into()], false));
        let dup = r#"{"method":"tools/call","method":"ping","params":{"name":"admin_x"}}"#;
        assert_eq!(tools(dup).0, ["admin_x"]);
        // Member names in another case, as Go's `encoding/json` reads them.
        let go = r#"{"method":"tools/call","params":{"name":"echo","NAME":"admin_x"}}"#;
        assert_eq!(tools(go).0, ["echo", "admin_x"]);
        let go = r#"{"METHOD":"tools/call","param\u017f":{"Name":"admin_x"}}"#;
        assert_eq!(tools(go), (vec!["admin_x".into()], false));
        let i = inspect(br#"{"Method":"TOOLS/LIST"}"#).unwrap();
        assert!(i.asks("tools/list"));
        // Escapes, casing and padding of the method.
        let odd = r#"{"method":"Tools\/CALL ","params":{"n\u0061me":"admin_x"}}"#;
        assert_eq!(tools(odd).0, ["admin_x"]);
        // A name the policy cannot read.
        for unreadable in [
            r#"{"method":"tools/call"}"#,
            r#"{"method":"tools/call","params":["admin_x",{}]}"#,
            r#"{"method":"tools/call","params":{"name":["admin_x"]}}"#,
            r#"{"method":"tools/call","params":{"name":"echo"},"params":{"arguments":{}}}"#,
        ] {
            assert!(tools(unreadable).1, "{unreadable}");
        }
        assert_eq!(tools(r#"{"method":"tools/list"}"#), (vec![], false));
    }
}

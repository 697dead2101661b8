//! `tools/list` results, cut to the tools a person may call: in a JSON
//! answer (one message or a batch's array) or in each event of an SSE
//! stream (an event is held until it is whole, never the stream).
//!
//! A tool without a string `name` is left out: what the policy cannot
//! name, it cannot allow.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};
use serde_json::Value;

/// Largest JSON answer or SSE event held for filtering. A tool list is a
/// few KB; anything near this is not one.
pub(crate) const MAX_HELD: usize = 16 * 1024 * 1024;

/// What the policy allows, asked once per tool.
pub(crate) type Keep<'a> = &'a dyn Fn(&str) -> bool;

/// `json` with every `result.tools` cut to what `keep` allows; `None`
/// when nothing changes (not JSON, or no tool list, or all allowed).
pub(crate) fn filter_json(json: &[u8], keep: Keep<'_>) -> Option<Vec<u8>> {
    // Most messages are no tool list: not parsed at all.
    if !may_hold_tools(json) {
        return None;
    }
    let mut v: Value = serde_json::from_slice(json).ok()?;
    let changed = match &mut v {
        Value::Array(messages) => messages
            .iter_mut()
            .fold(false, |changed, m| filter_message(m, keep) | changed),
        m => filter_message(m, keep),
    };
    changed.then(|| serde_json::to_vec(&v).expect("a parsed value serializes"))
}

/// Whether `bytes` may name a `tools` member: written plainly, or with
/// an escape (`"tool\u0073"` is the same key to a JSON parser).
fn may_hold_tools(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"\"tools\"").is_some()
        || memchr::memmem::find(bytes, b"\\u").is_some()
}

fn filter_message(m: &mut Value, keep: Keep<'_>) -> bool {
    let Some(tools) = m
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return false;
    };
    let before = tools.len();
    tools.retain(|t| t.get("name").and_then(Value::as_str).is_some_and(keep));
    tools.len() != before
}

/// An SSE stream (WHATWG HTML §9.2), passed on event by event.
#[derive(Default)]
pub(crate) struct SseFilter {
    /// The start of an event not yet whole.
    held: BytesMut,
    /// Where in `held` the search for its end goes on: the start of its
    /// first unfinished line (the lines before it are read), so an event
    /// that comes in many chunks is read once, not once per chunk.
    scanned: usize,
}

/// An event held past [`MAX_HELD`] without ending.
#[derive(Debug)]
pub(crate) struct EventTooLarge;

impl std::fmt::Display for EventTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an SSE event from the upstream exceeds {MAX_HELD} bytes")
    }
}

impl std::error::Error for EventTooLarge {}

impl SseFilter {
    /// Takes in `chunk`; appends to `out` every event it completes,
    /// filtered.
    pub(crate) fn push(
        &mut self,
        chunk: &[u8],
        keep: Keep<'_>,
        out: &mut VecDeque<Bytes>,
    ) -> Result<(), EventTooLarge> {
        self.held.extend_from_slice(chunk);
        loop {
            match event_end(&self.held, self.scanned) {
                Ok(end) => {
                    let event = self.held.split_to(end).freeze();
                    out.push_back(filter_event(event, keep));
                    self.scanned = 0;
                }
                Err(resume) => {
                    self.scanned = resume;
                    break;
                }
            }
        }
        if self.held.len() > MAX_HELD {
            return Err(EventTooLarge);
        }
        Ok(())
    }

    /// What is left when the stream ends: an unfinished event, filtered
    /// all the same (a client may still read it).
    pub(crate) fn finish(&mut self, keep: Keep<'_>) -> Option<Bytes> {
        self.scanned = 0;
        (!self.held.is_empty()).then(|| filter_event(self.held.split().freeze(), keep))
    }
}

/// Where the first whole event ends (after its blank line), reading from
/// `from`, the start of a line; else where the next read starts. A line
/// ends with CRLF, LF or a lone CR (WHATWG HTML §9.2.5), mixed as the
/// server likes; a CR last in `buf` may be the start of a CRLF: not yet
/// decided.
fn event_end(buf: &[u8], from: usize) -> Result<usize, usize> {
    let mut line_start = from;
    while let Some(at) = memchr::memchr2(b'\r', b'\n', &buf[line_start..]) {
        let at = line_start + at;
        let end = match buf[at] {
            b'\n' => at + 1,
            _ if at + 1 == buf.len() => break,
            _ if buf[at + 1] == b'\n' => at + 2,
            _ => at + 1,
        };
        if at == line_start {
            return Ok(end);
        }
        line_start = end;
    }
    Err(line_start)
}

/// The lines of an event, without their ends (CRLF, LF or CR).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n')
        .flat_map(|l| l.split('\r'))
        .filter(|l| !l.is_empty())
}

/// One whole event, with its `data` filtered when it holds a tool list.
fn filter_event(event: Bytes, keep: Keep<'_>) -> Bytes {
    if !may_hold_tools(&event) {
        return event;
    }
    let Ok(text) = std::str::from_utf8(&event) else {
        return event;
    };
    let mut fields = String::new();
    let mut data = String::new();
    for line in lines(text) {
        // A `data` line without a colon is an empty one (§9.2.6).
        let d = if line == "data" {
            Some("")
        } else {
            line.strip_prefix("data:")
        };
        if let Some(d) = d {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(d.strip_prefix(' ').unwrap_or(d));
        } else {
            fields.push_str(line);
            fields.push('\n');
        }
    }
    match filter_json(data.as_bytes(), keep) {
        Some(json) => {
            let mut out = Vec::with_capacity(fields.len() + json.len() + 8);
            out.extend_from_slice(fields.as_bytes());
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&json);
            out.extend_from_slice(b"\n\n");
            Bytes::from(out)
        }
        None => event,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(name: &str) -> bool {
        !name.starts_with("admin_")
    }

    const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"echo"},{"name":"admin_x"},{"title":"nameless"}]}}"#;

    #[test]
    fn a_json_tool_list_keeps_only_allowed_tools() {
        let out = filter_json(LIST.as_bytes(), &keep).unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["result"]["tools"], serde_json::json!([{"name":"echo"}]));
        let batch = format!("[{LIST},{{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{{}}}}]");
        let v: Value =
            serde_json::from_slice(&filter_json(batch.as_bytes(), &keep).unwrap()).unwrap();
        assert_eq!(v[0]["result"]["tools"].as_array().unwrap().len(), 1);
        assert!(filter_json(br#"{"result":{"content":[]}}"#, &keep).is_none());
        assert!(filter_json(br#"{"result":{"tools":[{"name":"echo"}]}}"#, &keep).is_none());
    }

    #[test]
    fn sse_events_are_filtered_whole_however_they_are_cut() {
        let stream = format!(
            "id: 1\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}}\n\n\
             id: 2\r\ndata: {LIST}\r\n\r\n: comment\n\n"
        );
        for cut in [1, 7, 50, stream.len()] {
            let mut f = SseFilter::default();
            let mut out = VecDeque::new();
            for piece in stream.as_bytes().chunks(cut) {
                f.push(piece, &keep, &mut out).unwrap();
            }
            assert!(f.finish(&keep).is_none());
            let all: Vec<u8> = out.iter().flat_map(|b| b.to_vec()).collect();
            let all = String::from_utf8(all).unwrap();
            assert!(all.starts_with("id: 1\nevent: message\ndata: {"), "{all}");
            assert!(all.contains("id: 2\ndata: {"), "{all}");
            assert!(!all.contains("admin_x") && all.contains("echo"), "{all}");
            assert!(all.ends_with(": comment\n\n"));
        }
    }

    #[test]
    fn any_line_end_and_escaped_keys_still_filter() {
        let escaped = LIST.replace("\"tools\"", "\"tool\\u0073\"");
        // Lone CRs, LF then CRLF, an escaped key, and an event cut off by
        // the end of the stream.
        for stream in [
            format!("data: {{}}\r\rdata: {LIST}\r\r"),
            format!("data: {{}}\n\r\ndata: {LIST}\n\n"),
            format!("data: {escaped}\n\n"),
            format!("data: {{}}\n\ndata: {LIST}\r"),
            format!("data: {LIST}"),
        ] {
            for cut in [1, 2, 5, stream.len()] {
                let mut f = SseFilter::default();
                let mut out = VecDeque::new();
                for piece in stream.as_bytes().chunks(cut) {
                    f.push(piece, &keep, &mut out).unwrap();
                }
                out.extend(f.finish(&keep));
                let all: Vec<u8> = out.iter().flat_map(|b| b.to_vec()).collect();
                let all = String::from_utf8(all).unwrap();
                assert!(
                    !all.contains("admin_x") && all.contains("echo"),
                    "{stream:?} {cut}: {all:?}"
                );
            }
        }
        assert!(filter_json(escaped.as_bytes(), &keep).is_some());
    }
}

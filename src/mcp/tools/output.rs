//! A tool's structured output, written by hand as JSON and as the text of
//! a JSON string at once, and the `CallToolResult` that carries both.
//!
//! Results are typed and serialized once, straight into the response: this
//! is the hot path of every assistant's tool call.

use crate::mcp::envelope::Reply;

/// One JSON object written twice as it goes: as JSON, and as the contents
/// of a JSON string holding that JSON. Each piece is copied twice rather
/// than the finished JSON escaped afterwards, which would stop at every
/// quote in it.
pub(super) struct Twice {
    json: Vec<u8>,
    /// Without the string's own quotes.
    text: Vec<u8>,
}

impl Twice {
    pub(super) fn with_capacity(n: usize) -> Twice {
        Twice {
            json: Vec::with_capacity(n),
            text: Vec::with_capacity(n + n / 4),
        }
    }

    /// Bytes that need no escaping in a JSON string.
    pub(super) fn both(&mut self, bytes: &[u8]) {
        debug_assert!(!bytes.iter().any(|b| matches!(b, b'"' | b'\\' | 0..=0x1f)));
        self.json.extend_from_slice(bytes);
        self.text.extend_from_slice(bytes);
    }

    /// `{"name":` or `,"name":`. Names are ours: plain ASCII.
    pub(super) fn member(&mut self, lead: char, name: &str) {
        self.json.push(lead as u8);
        self.json.push(b'"');
        self.json.extend_from_slice(name.as_bytes());
        self.json.extend_from_slice(b"\":");
        self.text.push(lead as u8);
        self.text.extend_from_slice(b"\\\"");
        self.text.extend_from_slice(name.as_bytes());
        self.text.extend_from_slice(b"\\\":");
    }

    /// A JSON string, as serde_json writes it. Client text rarely holds
    /// anything to escape, so a string is checked once and then copied
    /// whole; one that needs escaping goes through serde_json.
    pub(super) fn string(&mut self, s: &str) {
        if is_plain(s) {
            self.json.push(b'"');
            self.json.extend_from_slice(s.as_bytes());
            self.json.push(b'"');
            self.text.extend_from_slice(b"\\\"");
            self.text.extend_from_slice(s.as_bytes());
            self.text.extend_from_slice(b"\\\"");
        } else {
            let start = self.json.len();
            serde_json::to_writer(&mut self.json, s).expect("a string serializes");
            push_escaped(&mut self.text, &self.json[start..]);
        }
    }

    pub(super) fn integer(&mut self, n: u64) {
        self.both(itoa::Buffer::new().format(n).as_bytes());
    }

    /// The `CallToolResult` of a finished object. MCP: a tool with
    /// structured output also returns it as text: the same JSON, as a
    /// JSON string.
    pub(super) fn into_result(self) -> Reply {
        let Twice { json, text } = self;
        let mut out = Vec::with_capacity(json.len() + text.len() + 160);
        out.extend_from_slice(br#"{"content":[{"type":"text","text":""#);
        out.extend_from_slice(&text);
        out.extend_from_slice(br#""}],"structuredContent":"#);
        out.extend_from_slice(&json);
        out.extend_from_slice(br#","isError":false}"#);
        Reply::from_object(out)
    }

    #[cfg(test)]
    pub(super) fn parts(&self) -> (&[u8], &[u8]) {
        (&self.json, &self.text)
    }
}

/// Whether `s` is the same inside a JSON string: no `"`, `\\` or control
/// character.
fn is_plain(s: &str) -> bool {
    // No short circuit, so that it compiles to a vector loop.
    s.bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'))
}

/// Appends `json`, a piece of compact JSON as serde_json writes it,
/// escaped for the inside of a JSON string. serde_json never writes a raw
/// control character (it escapes them, with a `\`), so only `"` and `\`
/// need escaping here; memchr finds them.
fn push_escaped(out: &mut Vec<u8>, json: &[u8]) {
    debug_assert!(!json.iter().any(|b| *b < 0x20), "not serde_json output");
    let mut run = 0;
    for i in memchr::memchr2_iter(b'"', b'\\', json) {
        out.extend_from_slice(&json[run..i]);
        out.push(b'\\');
        // The quote or backslash itself starts the next run.
        run = i;
    }
    out.extend_from_slice(&json[run..]);
}

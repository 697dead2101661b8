//! The built-in tools. `whoami` shows what the server knows about the
//! caller: the claims of the access token it presented.
//!
//! Results are typed and serialized once, straight into the response: this
//! is the hot path of every assistant's tool call.

use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use serde_json::{json, Value};

use super::{jsonrpc, modern_meta, Era, Params, Reply, RpcError, INVALID_PARAMS};
use crate::tokens::access::VerifiedToken;

/// The tool list, rendered once.
pub fn list() -> &'static Value {
    static TOOLS: OnceLock<Value> = OnceLock::new();
    TOOLS.get_or_init(|| {
        json!([{
            "name": "whoami",
            "title": "Who am I",
            "description": "Shows who you are signed in as: subject, email, client, scope and when your access token expires.",
            "inputSchema": { "type": "object", "properties": {}, "additionalProperties": false },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "sub": { "type": "string" },
                    "email": { "type": "string" },
                    "client_id": { "type": "string" },
                    "scope": { "type": "string" },
                    "exp": { "type": "integer" },
                    "expires_at": { "type": "string" }
                },
                "required": ["sub", "email", "client_id", "scope", "exp", "expires_at"]
            },
            "annotations": { "readOnlyHint": true, "openWorldHint": false }
        }])
    })
}

pub fn call(params: &Params<'_>, claims: &VerifiedToken, era: Era) -> Result<Reply, RpcError> {
    let name = params.name.and_then(jsonrpc::as_str).ok_or_else(|| {
        RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            "tools/call needs params.name",
        )
    })?;
    if params
        .arguments
        .is_some_and(|a| !jsonrpc::is_null(a) && !jsonrpc::is_object(a))
    {
        return Err(RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            "arguments must be an object",
        ));
    }
    match &*name {
        "whoami" => Ok(whoami(claims, era)),
        other => Err(RpcError::new(
            StatusCode::OK,
            INVALID_PARAMS,
            format!(
                "Unknown tool: {}",
                other.chars().take(80).collect::<String>()
            ),
        )),
    }
}

/// `whoami`'s structured output (its `outputSchema`): `sub`, `email`,
/// `client_id`, `scope`, `exp` and `expires_at`, written by hand. Claims
/// rarely hold anything to escape, and one check per string then one copy
/// is a tenth of what serde_json's byte-at-a-time escaping cost here.
fn whoami(claims: &VerifiedToken, era: Era) -> Reply {
    use std::io::Write as _;
    let mut w = Twice::with_capacity(512);
    w.member('{', "sub");
    w.string(claims.sub());
    w.member(',', "email");
    w.string(claims.email());
    w.member(',', "client_id");
    w.string(claims.client_id());
    w.member(',', "scope");
    w.string(claims.scope());
    w.member(',', "exp");
    w.integer(claims.exp);
    w.member(',', "expires_at");
    // humantime writes years up to 9999; an `exp` past that (no TTL we
    // accept gives one) shows as that year's last second.
    const LAST_RFC3339_SECOND: u64 = 253_402_300_799;
    let at = UNIX_EPOCH + Duration::from_secs(claims.exp.min(LAST_RFC3339_SECOND));
    let mut date = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut date[..]);
    write!(cursor, "{}", humantime::format_rfc3339_seconds(at)).expect("YYYY-MM-DDTHH:MM:SSZ fits");
    let len = cursor.position() as usize;
    w.string(std::str::from_utf8(&date[..len]).expect("ASCII"));
    w.both(b"}");
    // A `CallToolResult`. MCP: a tool with structured output also returns
    // it as text: the same JSON, as a JSON string.
    let Twice { json, text } = w;
    let mut out = Vec::with_capacity(json.len() + text.len() + 160);
    out.extend_from_slice(br#"{"content":[{"type":"text","text":""#);
    out.extend_from_slice(&text);
    out.extend_from_slice(br#""}],"structuredContent":"#);
    out.extend_from_slice(&json);
    out.extend_from_slice(br#","isError":false"#);
    if era == Era::Stateless {
        out.extend_from_slice(br#","resultType":"complete","_meta":"#);
        serde_json::to_writer(&mut out, modern_meta()).expect("serializes");
    }
    out.push(b'}');
    Reply(out)
}

/// One JSON object written twice as it goes: as JSON, and as the contents
/// of a JSON string holding that JSON. Writing both at once costs a copy
/// of each piece; escaping the finished JSON afterwards meant a search
/// that stopped at each of its ~24 quotes.
struct Twice {
    json: Vec<u8>,
    /// Without the string's own quotes.
    text: Vec<u8>,
}

impl Twice {
    fn with_capacity(n: usize) -> Twice {
        Twice {
            json: Vec::with_capacity(n),
            text: Vec::with_capacity(n + n / 4),
        }
    }

    /// Bytes that need no escaping in a JSON string.
    fn both(&mut self, bytes: &[u8]) {
        debug_assert!(!bytes.iter().any(|b| matches!(b, b'"' | b'\\' | 0..=0x1f)));
        self.json.extend_from_slice(bytes);
        self.text.extend_from_slice(bytes);
    }

    /// `{"name":` or `,"name":`. Names are ours: plain ASCII.
    fn member(&mut self, lead: char, name: &str) {
        self.json.push(lead as u8);
        self.json.push(b'"');
        self.json.extend_from_slice(name.as_bytes());
        self.json.extend_from_slice(b"\":");
        self.text.push(lead as u8);
        self.text.extend_from_slice(b"\\\"");
        self.text.extend_from_slice(name.as_bytes());
        self.text.extend_from_slice(b"\\\":");
    }

    fn string(&mut self, s: &str) {
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

    fn integer(&mut self, n: u64) {
        self.both(itoa::Buffer::new().format(n).as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use crate::keys::KeyRing;
    use crate::tokens::access::{self, AccessClaims, Expectations};

    /// A real token carrying `odd` in its string claims, verified.
    fn claims(odd: &str) -> VerifiedToken {
        claims_until(odd, 1_900_000_000)
    }

    fn claims_until(odd: &str, exp: u64) -> VerifiedToken {
        let now = 1_899_996_400;
        let ring = KeyRing::build(generate_set(0, "t"), 1, now).unwrap();
        let c = AccessClaims {
            iss: "https://a.example".into(),
            sub: format!("sub{odd}"),
            aud: "https://a.example/mcp".into(),
            exp,
            iat: now,
            nbf: now,
            jti: "j".into(),
            client_id: format!("client{odd}"),
            scope: "mcp".into(),
            email: format!("a{odd}@example.com"),
        };
        let expect = Expectations {
            issuers: std::slice::from_ref(&c.iss),
            audiences: std::slice::from_ref(&c.aud),
        };
        access::verify(&ring, &access::issue(&ring, &c, now), &expect, now).unwrap()
    }

    #[test]
    fn whoami_text_is_its_structured_content_as_json() {
        for odd in access::AWKWARD_CLAIMS {
            for era in [Era::Legacy, Era::Stateless] {
                let Reply(bytes) = whoami(&claims(odd), era);
                let v: Value = serde_json::from_slice(&bytes).expect("valid JSON");
                let text = v["content"][0]["text"].as_str().unwrap();
                assert_eq!(v["content"][0]["type"], "text");
                assert_eq!(
                    serde_json::from_str::<Value>(text).unwrap(),
                    v["structuredContent"]
                );
                let c = claims(odd);
                assert_eq!(
                    v["structuredContent"],
                    json!({
                        "sub": c.sub(),
                        "email": c.email(),
                        "client_id": c.client_id(),
                        "scope": c.scope(),
                        "exp": 1_900_000_000u64,
                        "expires_at": "2030-03-17T17:46:40Z",
                    })
                );
                assert_eq!(v["isError"], false);
                assert_eq!(v.get("resultType").is_some(), era == Era::Stateless);
                assert_eq!(v.get("_meta").is_some(), era == Era::Stateless);
            }
        }
    }

    #[test]
    fn an_exp_past_the_year_9999_is_shown_as_its_last_second() {
        for exp in [253_402_300_799, 253_402_300_800, u64::MAX] {
            let Reply(bytes) = whoami(&claims_until("", exp), Era::Legacy);
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(v["structuredContent"]["exp"], exp);
            assert_eq!(v["structuredContent"]["expires_at"], "9999-12-31T23:59:59Z");
        }
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them_and_their_json() {
        for s in [
            "",
            "plain@example.com",
            "\"",
            "\\",
            "a\"b\\c\"",
            "\u{7f}é\u{1F600}",
            "\n\u{0}\u{1f}",
            " ~",
        ] {
            let mut w = Twice::with_capacity(0);
            w.string(s);
            let json = serde_json::to_vec(&s).unwrap();
            assert_eq!(w.json, json, "{s:?}");
            let text = serde_json::to_vec(&String::from_utf8(json).unwrap()).unwrap();
            assert_eq!([&b"\""[..], &w.text, b"\""].concat(), text, "{s:?}");
        }
    }
}

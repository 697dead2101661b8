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
    let mut json = Vec::with_capacity(512);
    json.extend_from_slice(br#"{"sub":"#);
    push_str(&mut json, claims.sub());
    json.extend_from_slice(br#","email":"#);
    push_str(&mut json, claims.email());
    json.extend_from_slice(br#","client_id":"#);
    push_str(&mut json, claims.client_id());
    json.extend_from_slice(br#","scope":"#);
    push_str(&mut json, claims.scope());
    let expires_at =
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(claims.exp));
    write!(
        json,
        r#","exp":{},"expires_at":"{expires_at}"}}"#,
        claims.exp
    )
    .expect("a Vec takes it");
    // A `CallToolResult`. MCP: a tool with structured output also returns
    // it as text, so one serialization serves as both; written by hand
    // because serde cannot embed it raw, and escaping our own JSON needs
    // only `"` and `\` (see `push_json_as_string`).
    let mut out = Vec::with_capacity(2 * json.len() + 160);
    out.extend_from_slice(br#"{"content":[{"type":"text","text":"#);
    push_json_as_string(&mut out, &json);
    out.extend_from_slice(br#"}],"structuredContent":"#);
    out.extend_from_slice(&json);
    out.extend_from_slice(br#","isError":false"#);
    if era == Era::Stateless {
        out.extend_from_slice(br#","resultType":"complete","_meta":"#);
        serde_json::to_writer(&mut out, modern_meta()).expect("serializes");
    }
    out.push(b'}');
    Reply(out)
}

/// Appends `s` as a JSON string, exactly as serde_json writes it.
fn push_str(out: &mut Vec<u8>, s: &str) {
    // No short circuit, so that it compiles to a vector loop.
    let plain = s
        .bytes()
        .fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(&mut *out, s).expect("a string serializes");
    }
}

/// Appends `json`, compact JSON written by serde_json, as a JSON string.
/// serde_json never writes a raw control character (it escapes them, with
/// a `\`), so only `"` and `\` need escaping here, and they are found with
/// memchr's SIMD search instead of serde_json's byte-at-a-time loop.
fn push_json_as_string(out: &mut Vec<u8>, json: &[u8]) {
    debug_assert!(!json.iter().any(|b| *b < 0x20), "not serde_json output");
    out.push(b'"');
    let mut run = 0;
    for i in memchr::memchr2_iter(b'"', b'\\', json) {
        out.extend_from_slice(&json[run..i]);
        out.push(b'\\');
        // The quote or backslash itself starts the next run.
        run = i;
    }
    out.extend_from_slice(&json[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use crate::keys::KeyRing;
    use crate::tokens::access::{self, AccessClaims, Expectations};

    /// A real token carrying `odd` in its string claims, verified.
    fn claims(odd: &str) -> VerifiedToken {
        let now = 1_899_996_400;
        let ring = KeyRing::build(generate_set(0, "t"), 1, now).unwrap();
        let c = AccessClaims {
            iss: "https://a.example".into(),
            sub: format!("sub{odd}"),
            aud: "https://a.example/mcp".into(),
            exp: 1_900_000_000,
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
    fn claim_strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain@example.com",
            "\"",
            "\\",
            "a\"b\\c",
            "\u{7f}é\u{1F600}",
            "\n\u{0}\u{1f}",
            " ~",
        ] {
            let mut ours = Vec::new();
            push_str(&mut ours, s);
            assert_eq!(ours, serde_json::to_vec(&s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn our_json_escapes_like_serde_json() {
        for s in [
            "",
            "plain",
            "\"",
            "\\",
            "a\"b\\c\"",
            "\u{7f}é\u{1F600}",
            "\n\u{0}",
        ] {
            let json = serde_json::to_vec(&s).unwrap();
            let mut ours = Vec::new();
            push_json_as_string(&mut ours, &json);
            assert_eq!(
                ours,
                serde_json::to_vec(&String::from_utf8(json).unwrap()).unwrap()
            );
        }
    }
}

use serde_json::{json, Value};

use super::output::Twice;
use super::whoami::whoami;
use super::{list, TOOLS};
use crate::mcp::tests::claims_of;
use crate::tokens::access;

#[test]
fn every_tool_is_listed_under_its_name() {
    let names: Vec<&str> = list()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let table: Vec<&str> = TOOLS.iter().map(|t| t.name).collect();
    assert_eq!(names, table);
}

#[test]
fn whoami_text_is_its_structured_content_as_json() {
    for odd in access::AWKWARD_CLAIMS {
        let c = claims_of(odd, 1_900_000_000);
        let v: Value = serde_json::from_slice(whoami(&c).bytes()).expect("valid JSON");
        let text = v["content"][0]["text"].as_str().unwrap();
        assert_eq!(v["content"][0]["type"], "text");
        assert_eq!(
            serde_json::from_str::<Value>(text).unwrap(),
            v["structuredContent"]
        );
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
        // The era's members are the method table's to add.
        assert!(v.get("resultType").is_none() && v.get("_meta").is_none());
    }
}

#[test]
fn an_exp_past_the_year_9999_is_shown_as_its_last_second() {
    for exp in [253_402_300_799, 253_402_300_800, u64::MAX] {
        let v: Value = serde_json::from_slice(whoami(&claims_of("", exp)).bytes()).unwrap();
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
        let (written, text) = w.parts();
        let json = serde_json::to_vec(&s).unwrap();
        assert_eq!(written, json, "{s:?}");
        let as_text = serde_json::to_vec(&String::from_utf8(json).unwrap()).unwrap();
        assert_eq!([&b"\""[..], text, b"\""].concat(), as_text, "{s:?}");
    }
}

//! Reading JSON-RPC messages without building a JSON tree.
//!
//! A `tools/call` is a handful of members in three nested objects; a
//! `serde_json::Value` of it costs a hash map (SipHash, since a dependency
//! turns on `preserve_order`), an owned key and a node per member, on every
//! request. Here an object is scanned once and only the members asked for
//! are kept, as raw JSON borrowed from the body; each is read when used.
//!
//! A repeated member counts once, the last one, as it would in a
//! `serde_json::Map`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The members `names` of the JSON object `json`, in that order, as raw
/// JSON (a member set to `null` is `Some("null")`, an absent one `None`).
/// Fails when `json` is not valid JSON or not an object.
pub(crate) fn members<'a, const N: usize>(
    json: &'a str,
    names: &[&str; N],
) -> Result<[Option<&'a RawValue>; N], serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let found = Members { names }.deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// Every member `name` (lowercase ASCII) of the JSON object `json`, in
/// order, as raw JSON: repeats included, and names spelled in another
/// case. RFC 8259 §4 leaves repeated names to the parser (most keep the
/// last, some the first), and some parsers match names in any case (Go's
/// `encoding/json`, with `ſ` for `s` and `K` for `k`): a decision that
/// must hold whichever one a server behind mcpgate keeps looks at all of
/// them. Fails when `json` is not valid JSON or not an object.
pub(crate) fn every_member<'a>(
    json: &'a str,
    name: &str,
) -> Result<Vec<&'a RawValue>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let found = de::Deserializer::deserialize_map(&mut de, Every { name })?;
    de.end()?;
    Ok(found)
}

/// The first `max` elements of the JSON array `json`, as raw JSON, and how
/// many elements it has. Elements past `max` are skipped, not kept, so a
/// huge array costs no more memory than a short one. Fails when `json` is
/// not JSON or not an array (a kept element that is not UTF-8 fails too).
pub(crate) fn elements(
    json: &[u8],
    max: usize,
) -> Result<(Vec<&RawValue>, usize), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(json);
    let found = de::Deserializer::deserialize_seq(&mut de, Elements { max })?;
    de.end()?;
    Ok(found)
}

/// [`members`] of a member that is itself an object: `None` when it is
/// absent or not an object.
pub(crate) fn object_members<'a, const N: usize>(
    raw: Option<&'a RawValue>,
    names: &[&str; N],
) -> Option<[Option<&'a RawValue>; N]> {
    raw.filter(|r| is_object(r))
        .and_then(|r| members(r.get(), names).ok())
}

pub(crate) fn is_object(raw: &RawValue) -> bool {
    raw.get().starts_with('{')
}

pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get() == "null"
}

/// The text of a JSON string, unescaped (borrowed when it has no escapes);
/// `None` for any other JSON value.
pub(crate) fn as_str(raw: &RawValue) -> Option<Cow<'_, str>> {
    if !raw.get().starts_with('"') {
        return None;
    }
    serde_json::from_str::<Text<'_>>(raw.get())
        .ok()
        .map(|t| t.0)
}

/// JSON-RPC 2.0 §4: an id is a string or a number, and this server only
/// echoes strings and integers (fractions "SHOULD NOT" be ids; they may
/// not survive a round trip).
pub(crate) fn is_string_or_integer(raw: &RawValue) -> bool {
    let text = raw.get();
    if text.starts_with('"') {
        return as_str(raw).is_some();
    }
    serde_json::from_str::<i64>(text).is_ok() || serde_json::from_str::<u64>(text).is_ok()
}

/// A JSON string or object key: borrowed from the input unless it had
/// escapes (serde's `Cow` always copies).
struct Text<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

struct Members<'n, const N: usize> {
    names: &'n [&'n str; N],
}

impl<'de, const N: usize> DeserializeSeed<'de> for Members<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, const N: usize> Visitor<'de> for Members<'_, N> {
    type Value = [Option<&'de RawValue>; N];

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = [None; N];
        while let Some(Text(key)) = map.next_key()? {
            match self.names.iter().position(|n| *n == key) {
                Some(i) => found[i] = Some(map.next_value::<&'de RawValue>()?),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Whether `key` is `name` (lowercase ASCII) in any case, as Unicode
/// simple case folding reads it.
fn folds_to(key: &str, name: &str) -> bool {
    let folded = key.chars().flat_map(|c| match c {
        '\u{17f}' => 's'.to_lowercase(),
        c => c.to_lowercase(),
    });
    folded.eq(name.chars())
}

struct Every<'n> {
    name: &'n str,
}

impl<'de> Visitor<'de> for Every<'_> {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = Vec::new();
        while let Some(Text(key)) = map.next_key()? {
            if folds_to(&key, self.name) {
                found.push(map.next_value::<&'de RawValue>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

struct Elements {
    max: usize,
}

impl<'de> Visitor<'de> for Elements {
    type Value = (Vec<&'de RawValue>, usize);

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        let mut count = 0;
        loop {
            let more = if count < self.max {
                match seq.next_element::<&'de RawValue>()? {
                    Some(element) => {
                        kept.push(element);
                        true
                    }
                    None => false,
                }
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok((kept, count));
            }
            count += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn members_are_raw_the_last_repeat_wins_and_the_rest_is_skipped() {
        let [a, b, c] = members(
            r#"{"a": {"x": [1, "}"]}, "b\u0000": 1, "\u0062": null, "b": "two", "d": 4}"#,
            &["a", "b", "c"],
        )
        .unwrap();
        assert_eq!(a.unwrap().get(), r#"{"x": [1, "}"]}"#);
        assert_eq!(b.unwrap().get(), r#""two""#);
        assert!(c.is_none());
        // An escaped key is the same key.
        let [b] = members(r#"{"\u0062": null}"#, &["b"]).unwrap();
        assert!(is_null(b.unwrap()));
    }

    #[test]
    fn only_single_valid_objects_are_messages() {
        for bad in [
            "",
            "[]",
            "1",
            "\"x\"",
            "{\"a\":1} {}",
            "{\"a\":}",
            "{\"a\":1,}",
            "null",
        ] {
            assert!(members(bad, &["a"]).is_err(), "{bad:?}");
        }
        assert!(members(" {} ", &["a"]).is_ok());
    }

    #[test]
    fn elements_are_raw_and_only_the_first_max_are_kept() {
        let (kept, count) = elements(br#" [ {"a": [1]}, 2 , "x" ] "#, 2).unwrap();
        assert_eq!(count, 3);
        let kept: Vec<&str> = kept.iter().map(|e| e.get()).collect();
        assert_eq!(kept, [r#"{"a": [1]}"#, "2"]);
        assert_eq!(elements(b"[]", 2).unwrap().1, 0);
        // Past `max`, the rest must still be JSON.
        for bad in [
            &b"[1, 2, 3"[..],
            b"[1, 2, }]",
            b"[1] 2",
            b"{}",
            b"[1,]",
            b"[\"\xff\"]",
        ] {
            assert!(elements(bad, 1).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn strings_and_ids() {
        assert_eq!(as_str(raw(r#""a\"b""#)).unwrap(), "a\"b");
        assert!(matches!(
            as_str(raw(r#""plain""#)),
            Some(Cow::Borrowed("plain"))
        ));
        assert!(as_str(raw("1")).is_none());
        for id in [
            r#""x""#,
            "0",
            "-7",
            "18446744073709551615",
            "-9223372036854775808",
        ] {
            assert!(is_string_or_integer(raw(id)), "{id}");
        }
        for id in [
            "1.5",
            "1e3",
            "18446744073709551616",
            "null",
            "true",
            "{}",
            "[]",
        ] {
            assert!(!is_string_or_integer(raw(id)), "{id}");
        }
    }
}

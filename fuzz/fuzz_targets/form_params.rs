//! Form/query parameters and token-endpoint client credentials:
//! `oauth::params::Params::parse`, `get`/`get_all`/`require`/`pairs`, and
//! `oauth::client::Credentials::from_request`.
//!
//! Input layout: `FLAGS AUTHORIZATION 0x00 FORM-BODY`
//! - FLAGS bit 0: send the Authorization header (when `HeaderValue`
//!   accepts it), bit 1: send it twice;
//! - bit 2: instead of the raw header, build a well-formed
//!   `Basic base64(urlencode(id) ":" urlencode(secret))` from AUTHORIZATION
//!   split at its first `:` and check it decodes back to (id, secret).
//!
//! Invariants, beyond "never panics": parsed pairs are unique (but for
//! `resource`, RFC 8707 §2), non-empty valued, at most 64, and `get`/`require` agree with them; credentials
//! obey RFC 6749 §2.3 (one method, Basic id = body id).
#![no_main]

use base64::Engine as _;
use http::header::{HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use mcpgate::Credentials;
use mcpgate::Params;

const NAMES: &[&str] = &[
    "grant_type",
    "code",
    "redirect_uri",
    "client_id",
    "client_secret",
    "code_verifier",
    "refresh_token",
    "resource",
    "scope",
    "state",
    "response_type",
    "code_challenge",
    "code_challenge_method",
];

/// RFC 8707 §2: the one parameter that may repeat.
const MULTI_VALUED: &str = "resource";

fn check_params(p: &Params<'_>) {
    let pairs: Vec<(&str, &str)> = p.pairs().collect();
    assert!(pairs.len() <= 64, "more than 64 parameters kept");
    for (i, (k, v)) in pairs.iter().enumerate() {
        assert!(!v.is_empty(), "an empty value was kept for {k:?}");
        if *k == MULTI_VALUED {
            continue;
        }
        assert!(
            pairs[..i].iter().all(|(k2, _)| k2 != k),
            "parameter {k:?} kept twice"
        );
        assert_eq!(p.get(k), Some(*v));
    }
    for name in NAMES {
        if *name == MULTI_VALUED {
            let all: Vec<&str> = p.get_all(name).collect();
            let expected: Vec<&str> = pairs
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| *v)
                .collect();
            assert_eq!(all, expected);
            continue;
        }
        let got = p.get(name);
        assert_eq!(got, pairs.iter().find(|(k, _)| k == name).map(|(_, v)| *v));
        assert_eq!(p.require(name).ok(), got);
    }
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (auth, body) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };

    let params = Params::parse(body);
    let Ok(params) = params else {
        return;
    };
    check_params(&params);
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");

    let mut headers = HeaderMap::new();
    let mut expected_basic = None;
    if flags & 4 != 0 {
        let s = String::from_utf8_lossy(auth);
        let (id, secret) = s.split_once(':').unwrap_or((&s, ""));
        let v = basic(id, secret);
        headers.insert(AUTHORIZATION, HeaderValue::from_str(&v).expect("base64 is a valid header"));
        if !id.is_empty() {
            expected_basic = Some((id.to_owned(), secret.to_owned()));
        }
    } else if flags & 1 != 0 {
        let Ok(v) = HeaderValue::from_bytes(auth) else {
            return;
        };
        headers.append(AUTHORIZATION, v.clone());
        if flags & 2 != 0 {
            headers.append(AUTHORIZATION, v);
        }
    }
    let header_count = headers.get_all(AUTHORIZATION).iter().count();

    let r = Credentials::from_request(&headers, body_id, body_secret);
    match &r {
        Ok(Credentials::Basic { client_id, secret }) => {
            assert_eq!(header_count, 1);
            assert!(!client_id.is_empty());
            assert!(body_secret.is_none(), "Basic and client_secret both accepted");
            if let Some(b) = body_id {
                assert_eq!(b, client_id, "Basic id differs from body client_id");
            }
            if let Some((id, s)) = &expected_basic {
                assert_eq!((client_id, secret), (id, s), "Basic credentials did not round-trip");
            }
        }
        Ok(Credentials::Post { client_id, secret }) => {
            assert_eq!(header_count, 0);
            assert_eq!(Some(client_id.as_str()), body_id);
            assert_eq!(Some(secret.as_str()), body_secret);
            assert!(!secret.is_empty());
        }
        Ok(Credentials::None { client_id }) => {
            assert_eq!(header_count, 0);
            assert_eq!(Some(client_id.as_str()), body_id);
            assert!(!client_id.is_empty());
        }
        Ok(Credentials::Assertion { .. }) => {
            unreachable!("from_request never reads client assertions")
        }
        Err(_) => {
            assert!(header_count > 0 || body_id.is_none_or(str::is_empty));
        }
    }
    if let (Some((id, _)), None) = (&expected_basic, body_secret) {
        if body_id.is_none_or(|b| b == id) {
            assert!(r.is_ok(), "well-formed Basic credentials refused: {r:?}");
        }
    }
});

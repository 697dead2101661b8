use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};

use super::cookie::{
    self, cookie_values, expire_oldest, remembered, MAX_COOKIE_BYTES, MAX_REMEMBERED,
};
use super::csrf::{request_hash, AnswerBinding, CsrfError, CSRF_TTL_SECS};
use super::page::{client_html, redirect_label};
use crate::http::page::form_action_source;
use crate::keys::file::generate_set;
use crate::keys::KeyRing;
use crate::oauth::client::Client;
use crate::oauth::params::Params;
use crate::settings::Scheme;
use crate::tokens::grants::{ClientBinding, ClientRegistration, ConsentRemembered};
use crate::tokens::sealed::{self, OpenError};

fn b(raw: &str) -> ClientBinding {
    ClientBinding::from_raw(raw)
}

fn ring() -> KeyRing {
    KeyRing::build(generate_set(0, "t"), 1, 100).unwrap()
}

fn headers(cookies: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for c in cookies {
        h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
    }
    h
}

#[test]
fn cookies_are_found_in_any_header_and_position() {
    let h = headers(&[
        "a=1; mcpgate_consent_x=v1;b=2",
        "c=3",
        " mcpgate_consent_x = \"v2\" ",
    ]);
    assert_eq!(cookie_values(&h, "mcpgate_consent_x"), vec!["v1", "v2"]);
    assert!(cookie_values(&h, "mcpgate_consent_").is_empty());
    let h = headers(&["mcpgate_consent_x=; junk; =x; mcpgate_consent_x=a b"]);
    assert!(cookie_values(&h, "mcpgate_consent_x").is_empty());
    let big = format!(
        "pad={}; mcpgate_consent_x=late",
        "p".repeat(MAX_COOKIE_BYTES)
    );
    assert!(cookie_values(&headers(&[&big]), "mcpgate_consent_x").is_empty());
}

#[test]
fn the_oldest_remember_cookies_are_expired_beyond_the_bound() {
    let ring = ring();
    let pair = |binding: &str, iat: u64| {
        let v = cookie::remember(
            &ring,
            &b(binding),
            "alice@example.com",
            Duration::from_secs(10_000),
            Scheme::Https,
            iat,
        )
        .unwrap();
        v.to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    // Up to the bound, with the one being set, nothing goes.
    let some: Vec<String> = (0..MAX_REMEMBERED - 1)
        .map(|i| pair(&format!("client{i:02}AAAAAAAAAAAAAA"), 100 + i as u64))
        .collect();
    let refs: Vec<&str> = some.iter().map(String::as_str).collect();
    let h = headers(&[&refs.join("; ")]);
    assert!(expire_oldest(&ring, &h, "mcpgate_consent_new", Scheme::Https, 200).is_empty());
    // Three more and a junk one: the junk and the three oldest go.
    let mut more = some.clone();
    for i in MAX_REMEMBERED - 1..MAX_REMEMBERED + 2 {
        more.push(pair(&format!("client{i:02}AAAAAAAAAAAAAA"), 100 + i as u64));
    }
    more.push("mcpgate_consent_junkjunkjunkjunk=garbage".into());
    let refs: Vec<&str> = more.iter().map(String::as_str).collect();
    // Over two headers, with other cookies between.
    let (a, b) = refs.split_at(7);
    let h = headers(&[&a.join("; "), &format!("theme=dark; {}", b.join("; "))]);
    let expired: Vec<String> = expire_oldest(&ring, &h, "mcpgate_consent_new", Scheme::Https, 200)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        expired,
        [
            "mcpgate_consent_junkjunkjunkjunk=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
            "mcpgate_consent_client00AAAAAAAA=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
            "mcpgate_consent_client01AAAAAAAA=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
            "mcpgate_consent_client02AAAAAAAA=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
        ]
    );
    // The cookie being set is never among them, and http keeps no Secure.
    let expired = expire_oldest(
        &ring,
        &h,
        "mcpgate_consent_client00AAAAAAAA",
        Scheme::Http,
        200,
    );
    assert_eq!(expired.len(), 3);
    assert!(expired.iter().all(|v| {
        let v = v.to_str().unwrap();
        !v.starts_with("mcpgate_consent_client00") && !v.contains("Secure")
    }));
}

#[test]
fn remembered_consent_is_per_client_and_person() {
    let ring = ring();
    let v = cookie::remember(
        &ring,
        &b("clientbindingAAAAAAAAA"),
        "alice@example.com",
        Duration::from_secs(60),
        Scheme::Https,
        100,
    )
    .unwrap();
    let s = v.to_str().unwrap();
    assert!(s.starts_with("mcpgate_consent_clientbindingAAA="), "{s}");
    assert!(s.ends_with("; Max-Age=60; Path=/oauth/; HttpOnly; SameSite=Lax; Secure"));
    let pair = s.split(';').next().unwrap();
    let h = headers(&["other=1", pair]);
    assert!(remembered(
        &ring,
        &h,
        &b("clientbindingAAAAAAAAA"),
        "alice@example.com",
        120
    ));
    assert!(!remembered(
        &ring,
        &h,
        &b("clientbindingAAAAAAAAA"),
        "bob@example.com",
        120
    ));
    assert!(!remembered(
        &ring,
        &h,
        &b("clientbindingAAAAAAAAA"),
        "alice@example.com",
        160
    ));
    // Same 16-character prefix, another client: the payload decides.
    assert!(!remembered(
        &ring,
        &h,
        &b("clientbindingAAAAAAAAB"),
        "alice@example.com",
        120
    ));
    let dev = cookie::remember(
        &ring,
        &b("c"),
        "a@b",
        Duration::from_secs(1),
        Scheme::Http,
        0,
    )
    .unwrap();
    assert!(!dev.to_str().unwrap().contains("Secure"));
    assert!(cookie::remember(&ring, &b("c"), "a@b", Duration::ZERO, Scheme::Https, 0).is_none());
}

#[test]
fn csrf_tokens_bind_request_host_and_person() {
    let ring = ring();
    let cb = b("cb");
    let p = Params::parse(b"client_id=c&state=s1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb")
        .unwrap();
    let b = AnswerBinding::new(
        "https://a",
        &cb,
        "http://127.0.0.1:9/cb",
        &p,
        "alice@example.com",
    );
    let t = b.csrf_token(&ring, 100);
    assert!(b.check(&ring, Some(&t), 200).is_ok());
    // Our own form fields do not change the request.
    let with_fields = Params::parse(
        b"state=s1&consent=allow&csrf=x&client_id=c&mcpgate_dev_email=a&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
    )
    .unwrap();
    assert_eq!(request_hash("https://a", &with_fields), b.request);
    let other_state =
        Params::parse(b"client_id=c&state=s2&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb")
            .unwrap();
    let b2 = AnswerBinding::new(
        "https://a",
        &cb,
        "http://127.0.0.1:9/cb",
        &other_state,
        "alice@example.com",
    );
    assert_eq!(
        b2.check(&ring, Some(&t), 200),
        Err(CsrfError::Mismatch("authorize request"))
    );
    let other_host = AnswerBinding::new(
        "https://b",
        &cb,
        "http://127.0.0.1:9/cb",
        &p,
        "alice@example.com",
    );
    assert!(other_host.check(&ring, Some(&t), 200).is_err());
    let bob = AnswerBinding::new(
        "https://a",
        &cb,
        "http://127.0.0.1:9/cb",
        &p,
        "bob@example.com",
    );
    assert_eq!(
        bob.check(&ring, Some(&t), 200),
        Err(CsrfError::Mismatch("person"))
    );
    assert_eq!(b.check(&ring, None, 200), Err(CsrfError::Missing));
    assert_eq!(
        b.check(&ring, Some(&t), 100 + CSRF_TTL_SECS),
        Err(CsrfError::Open(OpenError::Expired))
    );
    // A remember-cookie is not a CSRF token.
    let cookie = sealed::seal(
        &ring,
        &ConsentRemembered {
            client: cb.clone(),
            email: "alice@example.com".into(),
            iat: 100,
            exp: 900,
        },
        100,
    );
    assert_eq!(
        b.check(&ring, Some(cookie.as_str()), 200),
        Err(CsrfError::Open(OpenError::WrongKind))
    );
}

#[test]
fn form_action_names_the_redirect_origin() {
    assert_eq!(
        form_action_source("http://127.0.0.1:33418/callback").as_deref(),
        Some("http://127.0.0.1:33418")
    );
    assert_eq!(
        form_action_source("https://claude.ai/api/mcp/auth_callback?x=1").as_deref(),
        Some("https://claude.ai")
    );
    assert_eq!(
        form_action_source("cursor://anysphere.cursor-mcp/oauth/callback").as_deref(),
        Some("cursor:")
    );
    assert_eq!(
        form_action_source("http://[::1]:9/cb").as_deref(),
        Some("http:")
    );
    assert_eq!(
        redirect_label("https://claude.ai/api/mcp/auth_callback"),
        "claude.ai"
    );
    assert_eq!(
        redirect_label("http://localhost:4000/cb"),
        "localhost:4000 (a program on this computer)"
    );
}

#[test]
fn client_names_are_labelled_cleaned_and_escaped() {
    let reg = |name: Option<&str>| Client::Registered {
        client_id: "x.y",
        registration: ClientRegistration {
            redirect_uris: vec![],
            refresh: false,
            client_name: name.map(str::to_owned),
            client_uri: None,
            scope: None,
            application_type: None,
            software_id: None,
            software_version: None,
            issued_at: 0,
        },
    };
    assert_eq!(client_html(&reg(None)), "An unnamed client");
    assert_eq!(client_html(&reg(Some("\u{202e} "))), "An unnamed client");
    assert_eq!(
        client_html(&reg(Some("<b>Evil\u{202e}</b>"))),
        "An app that calls itself <strong>“&lt;b&gt;Evil&lt;/b&gt;”</strong>"
    );
}

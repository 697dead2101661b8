use super::*;
use crate::config::{IdentityConfig, GOOGLE_ISSUER};
use crate::http::freshness;
use crate::settings::id_token::GOOGLE_ISSUER_BARE;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jws::{JwsSigner as _, RS256};
use serde_json::json;
use serde_json::Value;
use std::sync::OnceLock;

const AUD: &str = "proxy-client.apps.googleusercontent.com";
const NOW: u64 = 1_750_000_000;

struct TestKey {
    signer: josekit::jws::alg::rsassa::RsassaJwsSigner,
    jwk: Value,
}

/// One 2048-bit RSA key for the whole test binary (generating is slow).
fn key(n: usize) -> &'static TestKey {
    static KEYS: OnceLock<Vec<TestKey>> = OnceLock::new();
    &KEYS.get_or_init(|| {
        (0..2)
            .map(|i| {
                let pair = RS256.generate_key_pair(2048).unwrap();
                let mut jwk: Value =
                    serde_json::from_str(&pair.to_jwk_public_key().to_string()).unwrap();
                jwk["kid"] = json!(format!("k{i}"));
                TestKey {
                    signer: RS256.signer_from_der(pair.to_der_private_key()).unwrap(),
                    jwk,
                }
            })
            .collect()
    })[n]
}

fn jwks() -> Jwks {
    Jwks::parse(json!({"keys": [key(0).jwk]}).to_string().as_bytes()).unwrap()
}

fn expected() -> Expected {
    Expected {
        audience: AUD.into(),
        issuers: vec![GOOGLE_ISSUER.into(), GOOGLE_ISSUER_BARE.into()],
    }
}

fn claims() -> Value {
    json!({
        "iss": "https://accounts.google.com",
        "azp": AUD,
        "aud": AUD,
        "sub": "1234567890",
        "hd": "example.com",
        "email": "Alice@Example.com",
        "email_verified": true,
        "iat": NOW - 10,
        "exp": NOW + 3590,
    })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn sign_with(k: &TestKey, header: &Value, claims: &Value) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let sig = k.signer.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn sign(claims: &Value) -> String {
    sign_with(
        key(0),
        &json!({"alg": "RS256", "kid": "k0", "typ": "JWT"}),
        claims,
    )
}

fn run(token: &str) -> Result<String, IdentityError> {
    check(
        &expected(),
        &jwks(),
        token,
        Some("alice@example.com"),
        &["example.com".to_string()],
        NOW,
    )
}

fn with(f: impl FnOnce(&mut Value)) -> String {
    let mut c = claims();
    f(&mut c);
    sign(&c)
}

fn refused(r: Result<String, IdentityError>) -> IdTokenError {
    match r {
        Err(IdentityError::IdToken(e)) => e,
        other => panic!("expected an ID-token refusal, got {other:?}"),
    }
}

#[test]
fn a_good_token_passes() {
    assert_eq!(run(&sign(&claims())).unwrap(), "1234567890");
    // The bare issuer, an audience array, no azp, fractional dates.
    run(&with(|c| {
        c["iss"] = json!("accounts.google.com");
        c["aud"] = json!(["other", AUD]);
        c.as_object_mut().unwrap().remove("azp");
        c["exp"] = json!((NOW + 100) as f64 + 0.5);
    }))
    .unwrap();
    // Within the leeway.
    run(&with(|c| c["exp"] = json!(NOW - 59))).unwrap();
    run(&with(|c| c["iat"] = json!(NOW + 59))).unwrap();
    // Without identity-header email, the token's email is not compared.
    check(
        &expected(),
        &jwks(),
        &with(|c| c["email"] = json!("bob@example.com")),
        None,
        &["example.com".to_string()],
        NOW,
    )
    .unwrap();
}

#[test]
fn claims_are_checked() {
    assert_eq!(
        refused(run(&with(|c| c["iss"] = json!("https://evil.example")))),
        IdTokenError::Issuer
    );
    assert_eq!(
        refused(run(&with(|c| c["aud"] = json!("someone-else")))),
        IdTokenError::Audience
    );
    assert_eq!(
        refused(run(&with(|c| c["aud"] = json!(["a", "b"])))),
        IdTokenError::Audience
    );
    assert_eq!(
        refused(run(&with(|c| c["azp"] = json!("someone-else")))),
        IdTokenError::Audience
    );
    assert_eq!(
        refused(run(&with(|c| c["exp"] = json!(NOW - 61)))),
        IdTokenError::Expired
    );
    assert_eq!(
        refused(run(&with(|c| {
            c.as_object_mut().unwrap().remove("exp");
        }))),
        IdTokenError::Claim("exp")
    );
    assert_eq!(
        refused(run(&with(|c| c["exp"] = json!("tomorrow")))),
        IdTokenError::Claim("exp")
    );
    assert_eq!(
        refused(run(&with(|c| c["iat"] = json!(NOW + 61)))),
        IdTokenError::NotYetValid
    );
    assert_eq!(
        refused(run(&with(|c| c["nbf"] = json!(NOW + 61)))),
        IdTokenError::NotYetValid
    );
    assert_eq!(
        refused(run(&with(|c| c["email_verified"] = json!(false)))),
        IdTokenError::EmailNotVerified
    );
    assert_eq!(
        refused(run(&with(|c| c["email_verified"] = json!("true")))),
        IdTokenError::EmailNotVerified
    );
    assert_eq!(
        refused(run(&with(|c| c["email"] = json!("mallory@example.com")))),
        IdTokenError::EmailMismatch
    );
    assert_eq!(
        refused(run(&with(|c| {
            c.as_object_mut().unwrap().remove("email");
        }))),
        IdTokenError::Claim("email")
    );
}

#[test]
fn the_hosted_domain_must_be_allowed() {
    for token in [
        with(|c| c["hd"] = json!("other.com")),
        with(|c| c["hd"] = json!("sub.example.com")),
        with(|c| {
            c.as_object_mut().unwrap().remove("hd");
        }),
    ] {
        assert!(
            matches!(run(&token), Err(IdentityError::DomainNotAllowed(_))),
            "{:?}",
            run(&token)
        );
    }
    run(&with(|c| c["hd"] = json!("EXAMPLE.com"))).unwrap();
}

#[test]
fn only_rs256_signatures_by_a_known_key_pass() {
    let c = claims();
    // alg none, with or without a signature.
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": "k0"})), b64(&c));
    assert_eq!(refused(run(&none)), IdTokenError::Algorithm("none".into()));
    // HS256 keyed with the public modulus (the classic confusion).
    let hs = json!({"alg": "HS256", "kid": "k0"});
    let input = format!("{}.{}", b64(&hs), b64(&c));
    let k = ring::hmac::Key::new(
        ring::hmac::HMAC_SHA256,
        key(0).jwk["n"].as_str().unwrap().as_bytes(),
    );
    let mac = ring::hmac::sign(&k, input.as_bytes());
    let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
    assert_eq!(refused(run(&hs)), IdTokenError::Algorithm("HS256".into()));
    // No alg, no kid, an unknown kid, a critical header.
    assert_eq!(
        refused(run(&sign_with(key(0), &json!({"kid": "k0"}), &c))),
        IdTokenError::Algorithm("(none)".into())
    );
    assert_eq!(
        refused(run(&sign_with(key(0), &json!({"alg": "RS256"}), &c))),
        IdTokenError::NoKid
    );
    assert_eq!(
        refused(run(&sign_with(
            key(1),
            &json!({"alg": "RS256", "kid": "k1"}),
            &c
        ))),
        IdTokenError::UnknownKid("k1".into())
    );
    assert_eq!(
        refused(run(&sign_with(
            key(0),
            &json!({"alg": "RS256", "kid": "k0", "crit": ["exp"]}),
            &c
        ))),
        IdTokenError::Critical
    );
    // Another key's signature under a known kid.
    assert_eq!(
        refused(run(&sign_with(
            key(1),
            &json!({"alg": "RS256", "kid": "k0"}),
            &c
        ))),
        IdTokenError::BadSignature
    );
    // A changed payload under the original signature.
    let good = sign(&c);
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(&with_value(&c, "email", json!("mallory@example.com"))),
        parts[2]
    );
    assert_eq!(refused(run(&forged)), IdTokenError::BadSignature);
    for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &format!("{good}.")] {
        assert_eq!(refused(run(junk)), IdTokenError::Malformed, "{junk:?}");
    }
}

fn with_value(c: &Value, k: &str, v: Value) -> Value {
    let mut c = c.clone();
    c[k] = v;
    c
}

#[test]
fn jwks_keeps_only_rsa_signing_keys() {
    let mut enc = key(1).jwk.clone();
    enc["use"] = json!("enc");
    let mut no_kid = key(1).jwk.clone();
    no_kid.as_object_mut().unwrap().remove("kid");
    let ec = json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"});
    let j = Jwks::parse(
        json!({"keys": [key(0).jwk, enc, no_kid, ec]})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(j.kids(), vec!["k0"]);
    assert!(Jwks::parse(json!({"keys": [ec]}).to_string().as_bytes()).is_err());
    assert!(Jwks::parse(b"{}").is_err());
    assert!(Jwks::parse(b"not json").is_err());
}

fn cache_lifetime(h: &HeaderMap) -> Duration {
    freshness::lifetime(h, freshness::FETCHED)
}
const MIN_CACHE: Duration = freshness::FETCHED.min;
const MAX_CACHE: Duration = freshness::FETCHED.max;
const DEFAULT_CACHE: Duration = freshness::FETCHED.default;

#[test]
fn cache_lifetime_follows_max_age_within_bounds() {
    let h = |cc: &str, age: Option<&str>| {
        let mut m = HeaderMap::new();
        m.insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
        if let Some(a) = age {
            m.insert(http::header::AGE, a.parse().unwrap());
        }
        cache_lifetime(&m)
    };
    assert_eq!(
        h("public, max-age=19443, must-revalidate, no-transform", None),
        Duration::from_secs(19443)
    );
    assert_eq!(
        h("public, max-age=19443", Some("443")),
        Duration::from_secs(19000)
    );
    assert_eq!(h("max-age=10", None), MIN_CACHE);
    assert_eq!(h("max-age=999999", None), MAX_CACHE);
    // Not to be stored: kept the least time, fetched again soonest.
    assert_eq!(h("no-store", None), MIN_CACHE);
    assert_eq!(cache_lifetime(&HeaderMap::new()), DEFAULT_CACHE);
}

fn verifier() -> IdTokenVerifier {
    IdTokenVerifier::new(
        "x-forwarded-id-token".parse().unwrap(),
        expected(),
        JwksSource::File("/nonexistent".into()),
    )
}

fn header(token: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-id-token", token.parse().unwrap());
    h
}

#[test]
fn nothing_passes_until_a_jwks_is_loaded() {
    let v = verifier();
    let domains = ["example.com".to_string()];
    let good = header(&sign(&claims()));
    assert_eq!(
        refused(v.verify(&good, Some("alice@example.com"), &domains, NOW)),
        IdTokenError::KeysUnavailable
    );
    v.set_keys(jwks());
    v.verify(&good, Some("alice@example.com"), &domains, NOW)
        .unwrap();
    assert!(matches!(
        refused(v.verify(&HeaderMap::new(), Some("alice@example.com"), &domains, NOW)),
        IdTokenError::Missing(_)
    ));
    let mut twice = good.clone();
    twice.append("x-forwarded-id-token", "x".parse().unwrap());
    assert!(matches!(
        refused(v.verify(&twice, Some("alice@example.com"), &domains, NOW)),
        IdTokenError::Duplicated(_)
    ));
}

#[test]
fn an_unknown_kid_refreshes_early_at_most_once_a_minute() {
    let v = verifier();
    v.set_keys(jwks());
    let domains = ["example.com".to_string()];
    let other = header(&sign_with(
        key(1),
        &json!({"alg": "RS256", "kid": "k1"}),
        &claims(),
    ));
    let _ = v.verify(&other, None, &domains, NOW);
    assert_eq!(v.last_early_refresh.load(Ordering::Relaxed), NOW);
    let _ = v.verify(&other, None, &domains, NOW + 30);
    assert_eq!(v.last_early_refresh.load(Ordering::Relaxed), NOW);
    let _ = v.verify(&other, None, &domains, NOW + 60);
    assert_eq!(v.last_early_refresh.load(Ordering::Relaxed), NOW + 60);
}

#[tokio::test]
async fn a_jwks_file_is_loaded_and_reloaded_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, json!({"keys": [key(0).jwk]}).to_string()).unwrap();
    let mut v = verifier();
    v.source = JwksSource::File(path.clone());
    let v = Arc::new(v);
    tokio::time::timeout(Duration::from_secs(10), start(v.clone()))
        .await
        .unwrap();
    assert!(v.is_loaded());
    std::fs::write(&path, json!({"keys": [key(1).jwk]}).to_string()).unwrap();
    // An unknown kid wakes the refresher, which reads the new file.
    let domains = ["example.com".to_string()];
    let other = header(&sign_with(
        key(1),
        &json!({"alg": "RS256", "kid": "k1"}),
        &claims(),
    ));
    let now = crate::clock::unix_now();
    let fresh = with_value(
        &with_value(&claims(), "iat", json!(now)),
        "exp",
        json!(now + 600),
    );
    let other_fresh = header(&sign_with(
        key(1),
        &json!({"alg": "RS256", "kid": "k1"}),
        &fresh,
    ));
    let _ = v.verify(&other, None, &domains, now);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match v.verify(&other_fresh, Some("alice@example.com"), &domains, now) {
            Ok(_) => break,
            Err(e) if std::time::Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the new key was not loaded: {e}"),
        }
    }
}

#[test]
fn from_proxy_checks_the_id_token_when_configured() {
    let now = crate::clock::unix_now();
    let v = verifier();
    v.set_keys(jwks());
    let config = crate::config::Config {
        identity: IdentityConfig {
            allowed_domains: vec!["example.com".into()],
            ..IdentityConfig::default()
        },
        hosts: vec![crate::config::HostConfig {
            issuer: "https://mcp.example.com".into(),
            redirect_uris: vec![],
            client_id_hosts: None,
        }],
        ..crate::config::Config::default()
    };
    let s = crate::settings::Settings::from_config(&config)
        .unwrap()
        .identity;
    let peer = std::net::IpAddr::from([127, 0, 0, 1]);
    let fresh = |f: &dyn Fn(&mut Value)| {
        let mut c = claims();
        c["iat"] = json!(now);
        c["exp"] = json!(now + 600);
        f(&mut c);
        sign(&c)
    };
    let mut h = header(&fresh(&|_| {}));
    h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
    let id = super::super::from_proxy(&s, Some(&v), peer, &h).unwrap();
    assert_eq!(id.email, "alice@example.com");
    assert_eq!(id.subject, "1234567890");
    // The subject is the verified token's, not the user header's: that
    // header is no more proven than the email header was.
    h.insert("x-forwarded-user", "999-someone-else".parse().unwrap());
    let id = super::super::from_proxy(&s, Some(&v), peer, &h).unwrap();
    assert_eq!(id.subject, "1234567890");
    for sub in [
        json!(""),
        json!(42),
        json!("x".repeat(256)),
        json!("a\u{0}b"),
        json!("\u{e9}"),
    ] {
        let mut h = header(&fresh(&|c| c["sub"] = sub.clone()));
        h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
        assert_eq!(
            super::super::from_proxy(&s, Some(&v), peer, &h),
            Err(IdentityError::IdToken(IdTokenError::Claim("sub")))
        );
    }
    let mut h = header(&fresh(&|c| {
        c.as_object_mut().unwrap().remove("sub");
    }));
    h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
    assert_eq!(
        super::super::from_proxy(&s, Some(&v), peer, &h),
        Err(IdentityError::IdToken(IdTokenError::Claim("sub")))
    );

    let mut h = HeaderMap::new();
    h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
    assert!(matches!(
        super::super::from_proxy(&s, Some(&v), peer, &h),
        Err(IdentityError::IdToken(IdTokenError::Missing(_)))
    ));
    let mut h = header(&fresh(&|c| c["hd"] = json!("other.com")));
    h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
    assert!(matches!(
        super::super::from_proxy(&s, Some(&v), peer, &h),
        Err(IdentityError::DomainNotAllowed(_))
    ));
    let mut h = header(&fresh(&|_| {}));
    h.insert("x-forwarded-email", "bob@example.com".parse().unwrap());
    assert_eq!(
        super::super::from_proxy(&s, Some(&v), peer, &h),
        Err(IdentityError::IdToken(IdTokenError::EmailMismatch))
    );
}

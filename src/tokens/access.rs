//! Access tokens: RFC 9068 JWT profile, signed with the ring's active key
//! and verified offline by `kid`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use josekit::jws::{JwsHeader, JwsVerifier};
use ring::rand::SecureRandom as _;
use serde::{Deserialize, Serialize};

use crate::keys::{KeyRing, RingVerifier};

/// RFC 9068 §2.1: the `typ` of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Allowed clock difference for `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// Longest bearer token looked at; anything longer is refused unread.
pub const MAX_TOKEN_LEN: usize = 8192;

/// RFC 9068 §2.2 claims, all NumericDates as integers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    pub email: String,
}

/// Why a bearer token was refused. All map to `invalid_token` on the wire;
/// the variant is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("not a JWS access token")]
    Malformed,
    #[error("typ is not at+jwt")]
    WrongType,
    #[error("signed with an unknown key")]
    UnknownKey,
    #[error("signature or algorithm does not verify")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not valid yet")]
    NotYetValid,
    #[error("issued by another issuer")]
    WrongIssuer,
    #[error("issued for another resource")]
    WrongAudience,
    #[error("revoked")]
    Revoked,
}

impl TokenError {
    /// A label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            TokenError::Malformed => "malformed",
            TokenError::WrongType => "wrong_type",
            TokenError::UnknownKey => "unknown_key",
            TokenError::BadSignature => "bad_signature",
            TokenError::Expired => "expired",
            TokenError::NotYetValid => "not_yet_valid",
            TokenError::WrongIssuer => "wrong_issuer",
            TokenError::WrongAudience => "wrong_audience",
            TokenError::Revoked => "revoked",
        }
    }
}

/// A fresh random identifier: 128 bits, base64url.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system randomness");
    URL_SAFE_NO_PAD.encode(b)
}

/// Signs `claims` with the ring's newest active signing key.
pub fn issue(ring: &KeyRing, claims: &AccessClaims, now: u64) -> String {
    let signer = ring.active_signer(now).signer();
    let mut header = JwsHeader::new();
    header.set_token_type(ACCESS_TOKEN_TYP);
    header.set_key_id(josekit::jws::JwsSigner::key_id(&signer).unwrap_or_default());
    let payload = serde_json::to_vec(claims).expect("claims serialize");
    josekit::jws::serialize_compact(&payload, &header, &signer).expect("ring signing cannot fail")
}

/// What a token must be issued by and for.
pub struct Expectations<'a> {
    pub issuers: &'a [String],
    pub audiences: &'a [String],
}

/// The members of a JWS header that matter here. `crit` and `b64` are
/// only detected (and refused); `jku`, `jwk`, `x5u`… are never read.
#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    typ: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow)]
    kid: Option<std::borrow::Cow<'a, str>>,
    crit: Option<serde::de::IgnoredAny>,
    b64: Option<serde::de::IgnoredAny>,
}

/// Verifies signature (alg from the key, never from the token), `typ`,
/// `iss`, `aud`, `exp` and `nbf`.
///
/// The compact form is split and the header read into a typed struct here
/// rather than by josekit's parser, which builds a JSON map per token; the
/// signature still goes through the key's `JwsVerifier` (ring).
pub fn verify(
    ring: &KeyRing,
    token: &str,
    expect: &Expectations<'_>,
    now: u64,
) -> Result<AccessClaims, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    // The same header bytes as a token that verified: the same checks pass.
    let (verifier, header_known) = match ring.verifier_for_header(h64) {
        Some(v) => (v, true),
        None => (verifier_for(ring, h64)?, false),
    };
    // EdDSA and ES256 (JWS form) signatures are 64 bytes; room for more
    // only so that a wrong length reaches the verifier and is refused there.
    let mut signature = [0u8; 96];
    let signature_len = URL_SAFE_NO_PAD
        .decode_slice(s64, &mut signature)
        .map_err(|_| TokenError::BadSignature)?;
    let signing_input = &token[..h64.len() + 1 + p64.len()];
    verifier
        .verify(signing_input.as_bytes(), &signature[..signature_len])
        .map_err(|_| TokenError::BadSignature)?;
    let payload = URL_SAFE_NO_PAD
        .decode(p64)
        .map_err(|_| TokenError::Malformed)?;
    let claims: AccessClaims =
        serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    check_claims(&claims, expect, now)?;
    if !header_known {
        verifier.remember_verified_header(h64);
    }
    Ok(claims)
}

/// Reads an encoded JWS header and returns the key it names, if the
/// header is one of our access tokens' (`typ`, no extensions, the key's
/// own `alg`).
fn verifier_for<'r>(ring: &'r KeyRing, h64: &str) -> Result<&'r RingVerifier, TokenError> {
    let header_json = URL_SAFE_NO_PAD
        .decode(h64)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if header.typ.as_deref() != Some(ACCESS_TOKEN_TYP) {
        return Err(TokenError::WrongType);
    }
    // RFC 7515 §4.1.11: we understand no extension, so any `crit` is fatal;
    // RFC 7797 unencoded payloads are not ours either.
    if header.crit.is_some() || header.b64.is_some() {
        return Err(TokenError::BadSignature);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let verifier = ring.verifier(kid).ok_or(TokenError::UnknownKey)?;
    // RFC 8725 §3.1: the algorithm is the key's; the token only confirms it.
    if header.alg.as_deref() != Some(verifier.algorithm().name()) {
        return Err(TokenError::BadSignature);
    }
    Ok(verifier)
}

/// The checks that depend on time and config, not on the signature: they
/// run on every use of a token, cached or not.
pub fn check_claims(
    claims: &AccessClaims,
    expect: &Expectations<'_>,
    now: u64,
) -> Result<(), TokenError> {
    if now > claims.exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if claims.nbf > now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    if !expect.issuers.contains(&claims.iss) {
        return Err(TokenError::WrongIssuer);
    }
    if !expect.audiences.contains(&claims.aud) {
        return Err(TokenError::WrongAudience);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;

    fn claims(now: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://a.example".into(),
            sub: "u1".into(),
            aud: "https://a.example/mcp".into(),
            exp: now + 3600,
            iat: now,
            nbf: now,
            jti: random_id(),
            client_id: "c".into(),
            scope: "mcp".into(),
            email: "u@example.com".into(),
        }
    }

    fn expect() -> (Vec<String>, Vec<String>) {
        (
            vec!["https://a.example".into()],
            vec!["https://a.example/mcp".into()],
        )
    }

    #[test]
    fn issued_tokens_verify_and_carry_rfc9068_header() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let t = issue(&ring, &claims(1000), 1000);
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(t.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["typ"], "at+jwt");
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], ring.active_signer(1000).kid.as_str());
        let (i, a) = expect();
        let e = Expectations {
            issuers: &i,
            audiences: &a,
        };
        assert_eq!(
            verify(&ring, &t, &e, 1001).unwrap(),
            claims(1000).clone_with_jti(&t)
        );
    }

    impl AccessClaims {
        fn clone_with_jti(&self, token: &str) -> AccessClaims {
            let payload = URL_SAFE_NO_PAD
                .decode(token.split('.').nth(1).unwrap())
                .unwrap();
            let c: AccessClaims = serde_json::from_slice(&payload).unwrap();
            AccessClaims {
                jti: c.jti,
                ..self.clone()
            }
        }
    }

    #[test]
    fn a_remembered_header_still_needs_a_good_signature_from_its_own_key() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let (i, a) = expect();
        let e = Expectations {
            issuers: &i,
            audiences: &a,
        };
        let t = issue(&ring, &claims(1000), 1000);
        let h64 = t.split('.').next().unwrap();
        assert!(ring.verifier_for_header(h64).is_none());
        verify(&ring, &t, &e, 1001).unwrap();
        assert!(ring.verifier_for_header(h64).is_some());
        // Same header, another payload under the old signature: refused.
        let other = issue(&ring, &claims(1000), 1000);
        let (head_and_payload, _) = other.rsplit_once('.').unwrap();
        let (_, signature) = t.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&ring, &format!("{head_and_payload}.{signature}"), &e, 1001),
            Err(TokenError::BadSignature)
        );
        // A header that failed its checks is never remembered.
        let bad = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            &t[h64.len() + 1..]
        );
        assert!(verify(&ring, &bad, &e, 1001).is_err());
        assert!(ring
            .verifier_for_header(bad.split('.').next().unwrap())
            .is_none());
    }

    #[test]
    fn time_audience_and_issuer_are_enforced() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let (i, a) = expect();
        let e = Expectations {
            issuers: &i,
            audiences: &a,
        };
        let c = claims(1000);
        assert_eq!(check_claims(&c, &e, c.exp + 30), Ok(()));
        assert_eq!(check_claims(&c, &e, c.exp + 61), Err(TokenError::Expired));
        let mut other = c.clone();
        other.aud = "https://a.example/mcp-other".into();
        assert_eq!(
            check_claims(&other, &e, 1000),
            Err(TokenError::WrongAudience)
        );
        other = c.clone();
        other.iss = "https://evil.example".into();
        assert_eq!(check_claims(&other, &e, 1000), Err(TokenError::WrongIssuer));
        other = c.clone();
        other.nbf = 2000;
        assert_eq!(check_claims(&other, &e, 1000), Err(TokenError::NotYetValid));
        let t = issue(&ring, &c, 1000);
        let other_ring = KeyRing::build(generate_set(0, "u"), 1, 1000).unwrap();
        assert_eq!(
            verify(&other_ring, &t, &e, 1000),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let (i, a) = expect();
        let e = Expectations {
            issuers: &i,
            audiences: &a,
        };
        let kid = ring.active_signer(1000).kid.clone();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(1000)).unwrap());
        for alg in ["none", "NONE", "nOnE", "HS256"] {
            let h = URL_SAFE_NO_PAD
                .encode(serde_json::json!({"alg": alg, "typ": "at+jwt", "kid": kid}).to_string());
            let t = format!("{h}.{payload}.");
            assert_eq!(
                verify(&ring, &t, &e, 1000),
                Err(TokenError::BadSignature),
                "{alg}"
            );
            let t = format!("{h}.{payload}.c2lnbmF0dXJl");
            assert_eq!(
                verify(&ring, &t, &e, 1000),
                Err(TokenError::BadSignature),
                "{alg}"
            );
        }
        let h = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"alg": "EdDSA", "typ": "JWT", "kid": kid}).to_string());
        assert_eq!(
            verify(&ring, &format!("{h}.{payload}.AAAA"), &e, 1000),
            Err(TokenError::WrongType)
        );
    }
}

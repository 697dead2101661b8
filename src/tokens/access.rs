//! Access tokens: RFC 9068 JWT profile, signed with the ring's active key
//! and verified offline by `kid`.

use std::borrow::Cow;
use std::sync::Arc;

// Every part of a presented token is read with base64-simd's decoder (AVX2
// or SSE4.1 where the CPU has them, chosen at run time): decoding is most
// of the work of reading a token. The base64 crate still writes what we
// issue.
use base64_simd::{AsOut as _, URL_SAFE_NO_PAD as SIMD_URL_SAFE_NO_PAD};
use josekit::jws::{JwsHeader, JwsVerifier};
use serde::{Deserialize, Serialize};

use super::scope::Scope;
use crate::keys::{KeyRing, RingVerifier};

/// RFC 9068 §2.1: the `typ` of a JWT access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Allowed clock difference for `exp` and `nbf`.
pub use crate::clock::LEEWAY_SECS;

/// Longest bearer token looked at; anything longer is refused unread.
pub const MAX_TOKEN_LEN: usize = 8192;

/// RFC 9068 §2.2 claims, all NumericDates as integers: what is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// The person's groups at sign-in (oauth2-proxy's groups header), at
    /// most [`MAX_GROUPS`] of at most [`MAX_GROUPS_BYTES`] in all: what
    /// upstream policies decide on, offline. Absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// Most groups a token carries: a token travels on every request.
pub const MAX_GROUPS: usize = 32;
/// Most bytes of group names a token carries, all together.
pub const MAX_GROUPS_BYTES: usize = 2048;

/// Who an access token is for: what a grant (or the operator's
/// `token mint`) decided.
pub(crate) struct Grantee {
    pub(crate) sub: String,
    pub(crate) email: String,
    pub(crate) client_id: String,
    pub(crate) scope: Scope,
    pub(crate) groups: Vec<String>,
}

impl AccessClaims {
    /// The claims of a token for `grantee`, issued by `iss` for the
    /// resource `aud`, valid from `now` for `ttl_secs`, with a fresh `jti`.
    /// The one place the token endpoint and `token mint` build them.
    pub(crate) fn new(
        iss: &str,
        aud: String,
        grantee: Grantee,
        now: u64,
        ttl_secs: u64,
    ) -> AccessClaims {
        AccessClaims {
            iss: iss.to_owned(),
            sub: grantee.sub,
            aud,
            exp: now + ttl_secs,
            iat: now,
            nbf: now,
            jti: crate::random::random_id(),
            client_id: grantee.client_id,
            scope: grantee.scope.as_str().to_owned(),
            email: grantee.email,
            groups: grantee.groups,
        }
    }
}

/// The same claims as read from a token's payload, borrowed from it
/// unless a string had to be unescaped. Unknown members are ignored and a
/// missing or repeated one is an error.
#[derive(Deserialize)]
struct ClaimsIn<'a> {
    #[serde(borrow)]
    iss: Cow<'a, str>,
    #[serde(borrow)]
    sub: Cow<'a, str>,
    #[serde(borrow)]
    aud: Cow<'a, str>,
    exp: u64,
    iat: u64,
    nbf: u64,
    #[serde(borrow)]
    jti: Cow<'a, str>,
    #[serde(borrow)]
    client_id: Cow<'a, str>,
    #[serde(borrow)]
    scope: Cow<'a, str>,
    #[serde(borrow)]
    email: Cow<'a, str>,
    #[serde(borrow, default)]
    groups: Vec<Cow<'a, str>>,
}

/// An access token whose signature verified, and its claims.
///
/// The token and every string claim share one buffer: the verified-token
/// cache keeps thousands of these, and one buffer per token (not eight)
/// is what makes remembering a token, and forgetting the oldest, cheap.
/// An `Arc<String>` rather than an `Arc<str>`: the latter would copy the
/// ~1.3 KB buffer once more on every cache miss. Only [`verify`] makes one.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    /// The token, then `iss`, `sub`, `aud`, `jti`, `client_id`, `scope`,
    /// `email`, each ending at its entry in `ends`, then the groups, each
    /// followed by a newline (group names come from a comma-separated
    /// header line: none holds a newline).
    text: Arc<String>,
    ends: [u32; 9],
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
}

impl VerifiedToken {
    fn new(token: &str, c: &ClaimsIn<'_>) -> VerifiedToken {
        let parts: [&str; 8] = [
            token,
            &c.iss,
            &c.sub,
            &c.aud,
            &c.jti,
            &c.client_id,
            &c.scope,
            &c.email,
        ];
        let groups: usize = c.groups.iter().map(|g| g.len() + 1).sum();
        let mut text = String::with_capacity(parts.iter().map(|p| p.len()).sum::<usize>() + groups);
        let mut ends = [0u32; 9];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            // A token is at most MAX_TOKEN_LEN and its payload is inside
            // it: the whole text is far below u32::MAX.
            *end = text.len() as u32;
        }
        for g in c
            .groups
            .iter()
            .filter(|g| !g.is_empty() && !g.contains('\n'))
        {
            text.push_str(g);
            text.push('\n');
        }
        ends[8] = text.len() as u32;
        VerifiedToken {
            text: Arc::new(text),
            ends,
            exp: c.exp,
            iat: c.iat,
            nbf: c.nbf,
        }
    }

    fn part(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start as usize..self.ends[i] as usize]
    }

    /// The token as presented.
    pub fn token(&self) -> &str {
        self.part(0)
    }
    pub fn iss(&self) -> &str {
        self.part(1)
    }
    pub fn sub(&self) -> &str {
        self.part(2)
    }
    pub fn aud(&self) -> &str {
        self.part(3)
    }
    pub fn jti(&self) -> &str {
        self.part(4)
    }
    pub fn client_id(&self) -> &str {
        self.part(5)
    }
    pub fn scope(&self) -> &str {
        self.part(6)
    }
    pub fn email(&self) -> &str {
        self.part(7)
    }
    /// The groups the person had at sign-in.
    pub fn groups(&self) -> impl Iterator<Item = &str> + Clone {
        self.part(8).split_terminator('\n')
    }
}

/// Never the token itself: it is a credential.
impl std::fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("iss", &self.iss())
            .field("sub", &self.sub())
            .field("aud", &self.aud())
            .field("exp", &self.exp)
            .field("iat", &self.iat)
            .field("nbf", &self.nbf)
            .field("jti", &self.jti())
            .field("client_id", &self.client_id())
            .field("scope", &self.scope())
            .field("email", &self.email())
            .field("groups", &self.groups().collect::<Vec<_>>())
            .finish()
    }
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

/// Signs `claims` with the ring's newest active signing key.
pub fn issue(ring: &KeyRing, claims: &AccessClaims, now: u64) -> String {
    sign(ring, ACCESS_TOKEN_TYP, claims, now)
}

/// A compact JWS of `claims`, typed `typ`, signed with the ring's newest
/// active signing key (its `kid` in the header): access tokens, and the
/// identity assertions upstreams receive (`tokens::identity`).
pub(crate) fn sign(ring: &KeyRing, typ: &str, claims: &impl Serialize, now: u64) -> String {
    let signer = ring.active_signer(now).signer();
    let mut header = JwsHeader::new();
    header.set_token_type(typ);
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
) -> Result<VerifiedToken, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    // Exactly two dots: a compact JWS (RFC 7515 §7.1), never a JWE.
    let mut dots = memchr::memchr_iter(b'.', token.as_bytes());
    let (Some(dot1), Some(dot2), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(TokenError::Malformed);
    };
    let (h64, p64, s64) = (&token[..dot1], &token[dot1 + 1..dot2], &token[dot2 + 1..]);
    // The same header bytes as a token that verified: the same checks pass.
    let (verifier, header_known) = match ring.verifier_for_header(h64) {
        Some(v) => (v, true),
        None => (verifier_for(ring, h64)?, false),
    };
    // EdDSA and ES256 (JWS form) signatures are 64 bytes; room for more
    // only so that a wrong length reaches the verifier and is refused there.
    let mut signature = [0u8; 96];
    let signature = match SIMD_URL_SAFE_NO_PAD.decoded_length(s64.as_bytes()) {
        Ok(len) if len <= signature.len() => SIMD_URL_SAFE_NO_PAD
            .decode(s64.as_bytes(), signature[..len].as_out())
            .map_err(|_| TokenError::BadSignature)?,
        _ => return Err(TokenError::BadSignature),
    };
    let signing_input = &token[..dot2];
    verifier
        .verify(signing_input.as_bytes(), signature)
        .map_err(|_| TokenError::BadSignature)?;
    // Our payloads decode to ~500 bytes: on the stack, not the heap, unless
    // some key's tokens are unusually large.
    let mut on_stack = [0u8; 1024];
    let mut on_heap = Vec::new();
    let payload_len = SIMD_URL_SAFE_NO_PAD
        .decoded_length(p64.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    let buf = if payload_len <= on_stack.len() {
        &mut on_stack[..payload_len]
    } else {
        on_heap.resize(payload_len, 0);
        &mut on_heap[..]
    };
    let payload = SIMD_URL_SAFE_NO_PAD
        .decode(p64.as_bytes(), buf.as_out())
        .map_err(|_| TokenError::Malformed)?;
    // One UTF-8 check over the payload, rather than one per string member.
    let payload = std::str::from_utf8(payload).map_err(|_| TokenError::Malformed)?;
    let claims: ClaimsIn<'_> = serde_json::from_str(payload).map_err(|_| TokenError::Malformed)?;
    let verified = VerifiedToken::new(token, &claims);
    check_claims(&verified, expect, now)?;
    if !header_known {
        verifier.remember_verified_header(h64);
    }
    Ok(verified)
}

/// RFC 9068 §4: a resource server accepts `typ` `at+jwt` or
/// `application/at+jwt`; RFC 7515 §4.1.9: media types compare without
/// regard to case.
fn is_access_token_typ(typ: &str) -> bool {
    let b = typ.as_bytes();
    let subtype = match b.len().checked_sub(ACCESS_TOKEN_TYP.len()) {
        Some(0) => b,
        Some(12) if b[..12].eq_ignore_ascii_case(b"application/") => &b[12..],
        _ => return false,
    };
    subtype.eq_ignore_ascii_case(ACCESS_TOKEN_TYP.as_bytes())
}

/// Reads an encoded JWS header and returns the key it names, if the
/// header is one of our access tokens' (`typ`, no extensions, the key's
/// own `alg`).
fn verifier_for<'r>(ring: &'r KeyRing, h64: &str) -> Result<&'r RingVerifier, TokenError> {
    let header_json = SIMD_URL_SAFE_NO_PAD
        .decode_to_vec(h64)
        .map_err(|_| TokenError::Malformed)?;
    let header: Header<'_> =
        serde_json::from_slice(&header_json).map_err(|_| TokenError::Malformed)?;
    if !header.typ.as_deref().is_some_and(is_access_token_typ) {
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
    token: &VerifiedToken,
    expect: &Expectations<'_>,
    now: u64,
) -> Result<(), TokenError> {
    if now > token.exp.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::Expired);
    }
    if token.nbf > now.saturating_add(LEEWAY_SECS) {
        return Err(TokenError::NotYetValid);
    }
    if !expect.issuers.iter().any(|i| i == token.iss()) {
        return Err(TokenError::WrongIssuer);
    }
    if !expect.audiences.iter().any(|a| a == token.aud()) {
        return Err(TokenError::WrongAudience);
    }
    Ok(())
}

/// Claim values that JSON must escape, or that are not ASCII: tokens
/// carrying them must read back exactly, here and in whoami's answer.
#[cfg(test)]
pub(crate) const AWKWARD_CLAIMS: [&str; 6] = [
    "",
    "\"q\"",
    "back\\slash",
    "tab\tnl\n\u{1}",
    "é—\u{1F600}",
    "\\\"",
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;

    fn claims(now: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://a.example".into(),
            sub: "u1".into(),
            aud: "https://a.example/mcp".into(),
            exp: now + 3600,
            iat: now,
            nbf: now,
            jti: crate::random::random_id(),
            client_id: "c".into(),
            scope: "mcp".into(),
            email: "u@example.com".into(),
            groups: vec!["eng@example.com".into(), "ops".into()],
        }
    }

    /// Issued by and for `https://a.example`, as `claims` is.
    fn expect() -> Expectations<'static> {
        static ISSUERS: std::sync::LazyLock<[String; 1]> =
            std::sync::LazyLock::new(|| ["https://a.example".into()]);
        static AUDIENCES: std::sync::LazyLock<[String; 1]> =
            std::sync::LazyLock::new(|| ["https://a.example/mcp".into()]);
        Expectations {
            issuers: &*ISSUERS,
            audiences: &*AUDIENCES,
        }
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
        let e = expect();
        let c = claims(1000);
        let v = verify(&ring, &issue(&ring, &c, 1000), &e, 1001).unwrap();
        assert_eq!(read_back(&v), c);
        assert_eq!(verify(&ring, &t, &e, 1001).unwrap().token(), t);
    }

    /// What a verified token says, as the claims that were signed.
    fn read_back(v: &VerifiedToken) -> AccessClaims {
        AccessClaims {
            iss: v.iss().into(),
            sub: v.sub().into(),
            aud: v.aud().into(),
            exp: v.exp,
            iat: v.iat,
            nbf: v.nbf,
            jti: v.jti().into(),
            client_id: v.client_id().into(),
            groups: v.groups().map(Into::into).collect(),
            scope: v.scope().into(),
            email: v.email().into(),
        }
    }

    #[test]
    fn claims_are_read_back_exactly_escaped_or_not() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let e = expect();
        // The long one makes a payload too large to decode on the stack.
        let long = "x".repeat(1500);
        for odd in AWKWARD_CLAIMS.into_iter().chain([long.as_str()]) {
            let mut c = claims(1000);
            c.sub = format!("s{odd}");
            c.email = format!("{odd}@example.com");
            c.client_id = odd.into();
            let v = verify(&ring, &issue(&ring, &c, 1000), &e, 1000).unwrap();
            assert_eq!(read_back(&v), c);
            // Debug output is for logs: it never holds the credential.
            assert!(!format!("{v:?}").contains(v.token()));
        }
        // Missing, repeated and mistyped claims are refused.
        let kid = ring.active_signer(1000).kid.clone();
        let h = URL_SAFE_NO_PAD
            .encode(serde_json::json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid}).to_string());
        let full = serde_json::to_value(claims(1000)).unwrap();
        let mut missing = full.clone();
        missing.as_object_mut().unwrap().remove("email");
        let mut mistyped = full.clone();
        mistyped["exp"] = serde_json::json!("2000");
        let repeated =
            serde_json::to_string(&full)
                .unwrap()
                .replacen('{', "{\"sub\":\"other\",", 1);
        for payload in [
            missing.to_string(),
            mistyped.to_string(),
            repeated,
            "[]".into(),
        ] {
            let signing_input = format!("{h}.{}", URL_SAFE_NO_PAD.encode(&payload));
            let signer = ring.active_signer(1000).signer();
            let sig = josekit::jws::JwsSigner::sign(&signer, signing_input.as_bytes()).unwrap();
            let t = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
            assert_eq!(
                verify(&ring, &t, &e, 1000),
                Err(TokenError::Malformed),
                "{payload}"
            );
        }
    }

    #[test]
    fn a_remembered_header_still_needs_a_good_signature_from_its_own_key() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let e = expect();
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
        let e = expect();
        let c = claims(1000);
        let t = issue(&ring, &c, 1000);
        let v = verify(&ring, &t, &e, 1000).unwrap();
        assert_eq!(check_claims(&v, &e, c.exp + 60), Ok(()));
        assert_eq!(check_claims(&v, &e, c.exp + 61), Err(TokenError::Expired));
        assert_eq!(verify(&ring, &t, &e, c.exp + 61), Err(TokenError::Expired));
        let refused = |other: AccessClaims| verify(&ring, &issue(&ring, &other, 1000), &e, 1000);
        let mut other = c.clone();
        other.aud = "https://a.example/mcp-other".into();
        assert_eq!(refused(other), Err(TokenError::WrongAudience));
        other = c.clone();
        other.iss = "https://evil.example".into();
        assert_eq!(refused(other), Err(TokenError::WrongIssuer));
        other = c.clone();
        other.nbf = 1061;
        assert_eq!(refused(other), Err(TokenError::NotYetValid));
        other = c.clone();
        other.nbf = 1060;
        assert!(refused(other).is_ok());
        let other_ring = KeyRing::build(generate_set(0, "u"), 1, 1000).unwrap();
        assert_eq!(
            verify(&other_ring, &t, &e, 1000),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn a_signature_of_any_length_or_alphabet_is_refused_not_a_panic() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let e = expect();
        let t = issue(&ring, &claims(1000), 1000);
        let (signing_input, good) = t.rsplit_once('.').unwrap();
        let (short, long, over, huge) = (
            &good[..good.len() - 2],
            format!("{good}AA"),
            good.repeat(2),
            "A".repeat(2000),
        );
        for sig in [
            "", "A", "AA", "AAAAA", "A+/=", "AA==", short, &long, &over, &huge,
        ] {
            assert_eq!(
                verify(&ring, &format!("{signing_input}.{sig}"), &e, 1000),
                Err(TokenError::BadSignature),
                "{sig:.20}"
            );
        }
        // The signature's last character carries 4 unused bits, which must
        // be zero (RFC 4648 §3.5): one signature, one spelling.
        let last = good.as_bytes()[good.len() - 1];
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let value = table.iter().position(|c| *c == last).unwrap();
        for (other, c) in table
            .iter()
            .enumerate()
            .filter(|(i, _)| i >> 4 == value >> 4)
        {
            let mut variant = t.clone().into_bytes();
            *variant.last_mut().unwrap() = *c;
            let variant = String::from_utf8(variant).unwrap();
            let expected = if other == value {
                Ok(())
            } else {
                Err(TokenError::BadSignature)
            };
            assert_eq!(verify(&ring, &variant, &e, 1000).map(|_| ()), expected);
        }
        for parts in [
            signing_input.to_string(),
            format!("{t}.AAAA"),
            format!("{t}."),
            String::from(".."),
        ] {
            assert_eq!(verify(&ring, &parts, &e, 1000), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn unsigned_and_hmac_tokens_are_refused() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let e = expect();
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
        for typ in [
            "JWT",
            "jwt",
            "at+jwt2",
            "application/jwt",
            "text/at+jwt",
            "",
        ] {
            let h = URL_SAFE_NO_PAD
                .encode(serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": kid}).to_string());
            assert_eq!(
                verify(&ring, &format!("{h}.{payload}.AAAA"), &e, 1000),
                Err(TokenError::WrongType),
                "{typ}"
            );
        }
    }

    #[test]
    fn every_spelling_of_the_access_token_type_rfc_9068_allows_is_accepted() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let kid = ring.active_signer(1000).kid.clone();
        let c = claims(1000);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        for typ in [
            "at+jwt",
            "AT+JWT",
            "application/at+jwt",
            "Application/At+JWT",
        ] {
            let h = URL_SAFE_NO_PAD
                .encode(serde_json::json!({"alg": "EdDSA", "typ": typ, "kid": kid}).to_string());
            let signing_input = format!("{h}.{payload}");
            let signer = ring.active_signer(1000).signer();
            let sig = josekit::jws::JwsSigner::sign(&signer, signing_input.as_bytes()).unwrap();
            let t = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig));
            assert_eq!(
                verify(&ring, &t, &expect(), 1000).map(|v| read_back(&v)),
                Ok(c.clone()),
                "{typ}"
            );
        }
    }
}

//! Identity assertions: the JWT an upstream MCP server receives instead of
//! the client's access token (MCP authorization, "Access Token Privilege
//! Restriction": a server MUST NOT pass on the token it received).
//!
//! Signed with the key ring's active signing key, so an upstream verifies
//! it with mcpgate's JWKS. `typ` is `JWT`, never `at+jwt`, and `aud` is
//! the upstream's URL, never one of mcpgate's resources: an assertion is
//! refused as an access token anywhere mcpgate checks one.
//!
//! Minting costs a signature (~20 µs); an assistant calls an upstream many
//! times with one access token, so an assertion is minted once per access
//! token and upstream and kept until near its expiry, in a bounded cache.

use serde::Serialize;

use super::access::{self, VerifiedToken};
use crate::keys::KeyRing;

/// RFC 7519 §5.1: a plain JWT.
pub(crate) const ASSERTION_TYP: &str = "JWT";

/// Longest life of an assertion; never past the access token's.
pub(crate) const MAX_ASSERTION_SECS: u64 = 300;

/// What an upstream learns about the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct AssertionClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) email: &'a str,
    pub(crate) groups: Vec<&'a str>,
    pub(crate) client_id: &'a str,
    pub(crate) scope: &'a str,
    pub(crate) jti: String,
    pub(crate) iat: u64,
    pub(crate) exp: u64,
}

impl<'a> AssertionClaims<'a> {
    /// The claims of an assertion by the issuer `iss` (the host the
    /// request came to) about `token`'s holder for the upstream at `aud`,
    /// valid from `now` for at most [`MAX_ASSERTION_SECS`] and never past
    /// the access token's `exp`.
    pub(crate) fn new(
        iss: &'a str,
        token: &'a VerifiedToken,
        aud: &'a str,
        now: u64,
    ) -> AssertionClaims<'a> {
        AssertionClaims {
            iss,
            aud,
            sub: token.sub(),
            email: token.email(),
            groups: token.groups().collect(),
            client_id: token.client_id(),
            scope: token.scope(),
            jti: crate::random::random_id(),
            iat: now,
            exp: (now + MAX_ASSERTION_SECS).min(token.exp).max(now),
        }
    }
}

/// Signs `claims` with the ring's newest active signing key.
pub(crate) fn mint(ring: &KeyRing, claims: &AssertionClaims<'_>, now: u64) -> String {
    access::sign(ring, ASSERTION_TYP, claims, now)
}

#[derive(Clone)]
struct Minted {
    /// `Bearer <JWT>`, ready to send: the header is checked once, not on
    /// every request.
    bearer: http::HeaderValue,
    /// Minted again from here: a quarter of its life before `exp`, so an
    /// upstream never receives one about to expire in flight.
    renew_at: u64,
}

/// Assertions minted, by access token (`jti`), upstream and host.
pub(crate) struct Assertions {
    cache: quick_cache::sync::Cache<(String, usize, usize), Minted>,
}

/// Where an assertion goes, and who issues it.
pub(crate) struct Audience<'a> {
    /// The upstream's index among the mounts, and its URL (`aud`).
    pub(crate) upstream: (usize, &'a str),
    /// The host's index and issuer (`iss`).
    pub(crate) host: (usize, &'a str),
}

impl Assertions {
    /// Remembers at most `capacity` assertions (the least used go first).
    pub(crate) fn new(capacity: usize) -> Assertions {
        Assertions {
            cache: quick_cache::sync::Cache::new(capacity.max(1)),
        }
    }

    /// The assertion for `token`'s holder at `to`, as an `Authorization`
    /// value: the one minted before while it is fresh, else a new one.
    pub(crate) fn for_upstream(
        &self,
        ring: &KeyRing,
        token: &VerifiedToken,
        to: Audience<'_>,
        now: u64,
    ) -> http::HeaderValue {
        let key = (token.jti().to_owned(), to.upstream.0, to.host.0);
        if let Some(m) = self.cache.get(&key) {
            if now < m.renew_at {
                return m.bearer;
            }
        }
        let claims = AssertionClaims::new(to.host.1, token, to.upstream.1, now);
        let life = claims.exp - claims.iat;
        let jwt = mint(ring, &claims, now);
        let minted = Minted {
            bearer: http::HeaderValue::from_str(&format!("Bearer {jwt}"))
                .expect("a compact JWS is header text"),
            renew_at: claims.iat + life * 3 / 4,
        };
        self.cache.insert(key, minted.clone());
        minted.bearer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use crate::tokens::access::{self, AccessClaims, Expectations};

    fn token(ring: &KeyRing, now: u64, ttl: u64) -> VerifiedToken {
        let c = AccessClaims {
            iss: "https://a.example".into(),
            sub: "u1".into(),
            aud: "https://a.example/mcp/x".into(),
            exp: now + ttl,
            iat: now,
            nbf: now,
            jti: crate::random::random_id(),
            client_id: "c".into(),
            scope: "mcp".into(),
            email: "u@example.com".into(),
            groups: vec!["eng@example.com".into()],
        };
        let t = access::issue(ring, &c, now);
        let iss = vec![c.iss.clone()];
        let aud = vec![c.aud.clone()];
        let e = Expectations {
            issuers: &iss,
            audiences: &aud,
        };
        access::verify(ring, &t, &e, now).unwrap()
    }

    fn jwt(bearer: &http::HeaderValue) -> String {
        bearer
            .to_str()
            .unwrap()
            .strip_prefix("Bearer ")
            .unwrap()
            .to_owned()
    }

    fn payload(bearer: &http::HeaderValue) -> serde_json::Value {
        use base64::Engine as _;
        let jwt = jwt(bearer);
        let p = jwt.split('.').nth(1).unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    }

    fn to(upstream: usize, url: &str) -> Audience<'_> {
        Audience {
            upstream: (upstream, url),
            host: (0, "https://a.example"),
        }
    }

    #[test]
    fn an_assertion_names_the_upstream_and_never_outlives_the_token() {
        let ring = KeyRing::build(generate_set(0, "t"), 1, 1000).unwrap();
        let t = token(&ring, 1000, 3600);
        let a = Assertions::new(10);
        let bearer = a.for_upstream(&ring, &t, to(0, "http://up/mcp"), 1000);
        let p = payload(&bearer);
        assert_eq!(p["aud"], "http://up/mcp");
        assert_eq!(p["iss"], "https://a.example");
        assert_eq!(p["sub"], "u1");
        assert_eq!(p["email"], "u@example.com");
        assert_eq!(p["groups"], serde_json::json!(["eng@example.com"]));
        assert_eq!(p["exp"], 1300);
        // Not an access token: mcpgate itself refuses it.
        let e = Expectations {
            issuers: &["https://a.example".into()],
            audiences: &["http://up/mcp".into()],
        };
        assert_eq!(
            access::verify(&ring, &jwt(&bearer), &e, 1000).unwrap_err(),
            access::TokenError::WrongType
        );
        // Reused until a quarter of its life is left, then minted again.
        assert_eq!(
            a.for_upstream(&ring, &t, to(0, "http://up/mcp"), 1224),
            bearer
        );
        assert_ne!(
            a.for_upstream(&ring, &t, to(0, "http://up/mcp"), 1225),
            bearer
        );
        // Each upstream its own.
        assert_ne!(
            a.for_upstream(&ring, &t, to(1, "http://other/mcp"), 1000),
            bearer
        );
        // A token with 60 s left: the assertion ends with it.
        let short = token(&ring, 1000, 60);
        let p = payload(&a.for_upstream(&ring, &short, to(0, "http://up/mcp"), 1000));
        assert_eq!(p["exp"], 1060);
    }
}

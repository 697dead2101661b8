//! Verified-token cache: an assistant presents the same access token on
//! every `/mcp` call for an hour, and the signature check is ~95% of the
//! cost of accepting it. A token whose signature and claims verified is
//! remembered, keyed by the whole token, with the key-ring generation it
//! was verified under.
//!
//! The key is the token itself, not a digest of it: a hit needs the same
//! bytes (the map's hash only picks the bucket), so no collision can let
//! one token stand in for another, and a lookup costs a hash of 16 bytes
//! and a compare instead of a SHA-256 of ~900 bytes on every request. The
//! price is memory: an entry holds the token and its claims, ~1.2 KB, in
//! one allocation that key and value share.
//!
//! It can never make a refused token valid: an entry from another ring
//! generation (a key removed, the deny file changed) is a miss, and the
//! time, issuer and audience checks run on every hit.

use std::hash::{Hash, Hasher};

use super::access::{self, Expectations, TokenError, VerifiedToken};
use crate::keys::KeyRing;

/// A verified token, as the cache's key: equal to another only when every
/// byte of the token is.
#[derive(Clone)]
struct Verified(VerifiedToken);

impl PartialEq for Verified {
    fn eq(&self, other: &Verified) -> bool {
        self.0.token() == other.0.token()
    }
}

impl Eq for Verified {}

/// A presented token, as a lookup key: equal to a [`Verified`] only when
/// every byte is.
struct Presented<'a>(&'a str);

/// The bytes that pick a token's bucket: its last 16, which are inside
/// the Ed25519 signature, so hashing them is enough for a uniform spread
/// without hashing the whole token. Only tokens that verified are ever
/// inserted (tokens crafted to share a tail are refused before they get a
/// slot) and equality still compares the whole token.
fn bucket_bytes(token: &str) -> &[u8] {
    let b = token.as_bytes();
    &b[b.len().saturating_sub(16)..]
}

impl Hash for Verified {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(bucket_bytes(self.0.token()));
    }
}

impl Hash for Presented<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(bucket_bytes(self.0));
    }
}

impl quick_cache::Equivalent<Verified> for Presented<'_> {
    fn equivalent(&self, key: &Verified) -> bool {
        self.0 == key.0.token()
    }
}

#[derive(Clone)]
struct Entry {
    generation: u64,
    token: VerifiedToken,
}

pub struct VerifiedTokens {
    /// `None` when the cache is configured off (size 0).
    cache: Option<quick_cache::sync::Cache<Verified, Entry>>,
}

impl VerifiedTokens {
    pub fn new(capacity: usize) -> VerifiedTokens {
        VerifiedTokens {
            cache: (capacity > 0).then(|| quick_cache::sync::Cache::new(capacity)),
        }
    }

    /// [`access::verify`], skipping the signature for a token verified
    /// before under the same key ring.
    pub fn verify(
        &self,
        ring: &KeyRing,
        token: &str,
        expect: &Expectations<'_>,
        now: u64,
    ) -> Result<VerifiedToken, TokenError> {
        let Some(cache) = &self.cache else {
            return access::verify(ring, token, expect, now);
        };
        if token.len() > access::MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        if let Some(hit) = cache.get(&Presented(token)) {
            if hit.generation == ring.generation {
                access::check_claims(&hit.token, expect, now)?;
                return Ok(hit.token);
            }
        }
        let verified = access::verify(ring, token, expect, now)?;
        cache.insert(
            Verified(verified.clone()),
            Entry {
                generation: ring.generation,
                token: verified.clone(),
            },
        );
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use crate::tokens::access::AccessClaims;

    fn claims(now: u64) -> AccessClaims {
        AccessClaims {
            iss: "https://a.example".into(),
            sub: "u".into(),
            aud: "https://a.example/mcp".into(),
            exp: now + 100,
            iat: now,
            nbf: now,
            jti: crate::random::random_id(),
            client_id: "c".into(),
            scope: "mcp".into(),
            email: "u@example.com".into(),
            groups: vec![],
        }
    }

    #[test]
    fn cached_tokens_still_expire_and_a_new_ring_re_verifies() {
        let files = generate_set(0, "t");
        let ring = KeyRing::build(files.clone(), 1, 1000).unwrap();
        let iss = vec!["https://a.example".to_string()];
        let aud = vec!["https://a.example/mcp".to_string()];
        let e = Expectations {
            issuers: &iss,
            audiences: &aud,
        };
        let cache = VerifiedTokens::new(100);
        let t = access::issue(&ring, &claims(1000), 1000);
        assert!(cache.verify(&ring, &t, &e, 1000).is_ok());
        // Only the same bytes are a hit: a copy with its signature changed
        // (or anything after it) is verified, and refused.
        let mut tampered = t.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert!(cache.verify(&ring, &tampered, &e, 1000).is_err());
        assert!(cache.verify(&ring, &format!("{t}A"), &e, 1000).is_err());
        // Same bucket (same signature tail), other bytes before it.
        let mut same_tail = t.clone().into_bytes();
        same_tail[30] = if same_tail[30] == b'A' { b'B' } else { b'A' };
        let same_tail = String::from_utf8(same_tail).unwrap();
        assert!(cache.verify(&ring, &same_tail, &e, 1000).is_err());
        assert!(cache.verify(&ring, &t, &e, 1001).is_ok());
        assert_eq!(
            cache.verify(&ring, &t, &e, 1000 + 100 + 61).unwrap_err(),
            TokenError::Expired
        );
        // Another generation without the key: the cached entry must not count.
        let other = KeyRing::build(generate_set(0, "u"), 2, 1000).unwrap();
        assert_eq!(
            cache.verify(&other, &t, &e, 1001).unwrap_err(),
            TokenError::UnknownKey
        );
        // Same keys, new generation: verified again, accepted.
        let same = KeyRing::build(files, 3, 1000).unwrap();
        assert!(cache.verify(&same, &t, &e, 1001).is_ok());
        let aud2 = vec!["https://b.example/mcp".to_string()];
        let e2 = Expectations {
            issuers: &iss,
            audiences: &aud2,
        };
        assert_eq!(
            cache.verify(&same, &t, &e2, 1001).unwrap_err(),
            TokenError::WrongAudience
        );
    }
}

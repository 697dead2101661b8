//! Bearer tokens: `tokens::access::verify` and the verified-token cache in
//! front of it, on arbitrary UTF-8.
//!
//! Invariants, beyond "never panics":
//! - a token that verifies is byte for byte one the fixture keys signed
//!   (an issued token or a committed seed): no forged or malleated token
//!   is accepted, and its claims pass `check_claims`;
//! - `VerifiedTokens::verify` (cache on, twice: miss then hit; and cache
//!   off) returns exactly what `access::verify` returns;
//! - extreme clocks (0, u64::MAX) do not panic and never accept more than
//!   the real clock does for a forged token.
#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use mcpgate::access::{self, TokenError};
use mcpgate::verified::VerifiedTokens;
use mcpgate_fuzz::{expectations, read_seeds, ring, sample_claims, NEXT_ACTIVATION, NOW};

struct Fixture {
    /// Every token the ring issued for the sample claims.
    genuine: HashSet<String>,
    cache: VerifiedTokens,
    no_cache: VerifiedTokens,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ring = ring();
        // Ed25519 signing is deterministic: these are among the committed
        // seeds, which also hold tokens signed by hand with the fixture
        // keys (odd headers and payloads). Nothing else can carry a valid
        // signature.
        let mut genuine: HashSet<String> = read_seeds("access_token")
            .into_iter()
            .filter_map(|b| String::from_utf8(b).ok())
            .collect();
        for (_, c) in sample_claims() {
            genuine.insert(access::issue(ring, &c, NOW));
            genuine.insert(access::issue(ring, &c, NEXT_ACTIVATION));
        }
        Fixture {
            genuine,
            cache: VerifiedTokens::new(1024),
            no_cache: VerifiedTokens::new(0),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let f = fixture();
    let ring = ring();
    let expect = expectations();

    let direct = access::verify(ring, token, &expect, NOW);
    if let Ok(claims) = &direct {
        assert!(
            f.genuine.contains(token),
            "a token the ring never issued verified: {token:?} -> {claims:?}"
        );
        assert_eq!(access::check_claims(claims, &expect, NOW), Ok(()));
    }
    if token.len() > access::MAX_TOKEN_LEN {
        assert_eq!(direct, Err(TokenError::Malformed));
    }

    let miss = f.cache.verify(ring, token, &expect, NOW);
    let hit = f.cache.verify(ring, token, &expect, NOW);
    let off = f.no_cache.verify(ring, token, &expect, NOW);
    assert_eq!(miss, direct, "cache (first use) disagrees with verify");
    assert_eq!(hit, direct, "cache (second use) disagrees with verify");
    assert_eq!(off, direct, "cache-off disagrees with verify");

    // Extreme clocks: no overflow panics; a token that is not genuine is
    // refused whatever the time.
    for now in [0, u64::MAX] {
        let r = access::verify(ring, token, &expect, now);
        if r.is_ok() {
            assert!(f.genuine.contains(token));
        }
        let c = f.cache.verify(ring, token, &expect, now);
        assert_eq!(c, r, "cache disagrees with verify at now={now}");
    }
});

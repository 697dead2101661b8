//! The one source of randomness outside key generation: token and code
//! `jti`s, refresh-token families, request-id prefixes, key-file tags and
//! client secrets. All from the system CSPRNG.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SecureRandom as _;

/// A fresh random identifier: 128 bits from the system CSPRNG, base64url
/// (22 characters), unguessable and unique in practice.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    fill(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Fills `out` with bytes from the system CSPRNG.
pub(crate) fn fill(out: &mut [u8]) {
    ring::rand::SystemRandom::new()
        .fill(out)
        .expect("system randomness");
}

//! The one source of random identifiers: token `jti`s, code ids, CSRF
//! nonces and request ids.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SecureRandom as _;

/// A fresh random identifier: 128 bits from the system CSPRNG, base64url
/// (22 characters), unguessable and unique in practice.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("system randomness");
    URL_SAFE_NO_PAD.encode(b)
}

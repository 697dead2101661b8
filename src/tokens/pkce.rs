//! PKCE (RFC 7636) with the only method OAuth 2.1 lets us accept: S256.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq as _;

/// A `code_challenge` sent with `code_challenge_method=S256`: the base64url
/// SHA-256 of a verifier, so always 43 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

/// Why a PKCE parameter was refused; the text is the `error_description`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PkceError {
    #[error("code_challenge_method must be S256")]
    MethodNotS256,
    #[error("code_challenge must be 43 base64url characters (S256)")]
    MalformedChallenge,
    #[error("code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~]")]
    MalformedVerifier,
    #[error("code_verifier does not match the code_challenge")]
    Mismatch,
}

impl CodeChallenge {
    /// Parses the authorize request's pair. RFC 7636 §4.3: an absent method
    /// means `plain`, which OAuth 2.1 §4.1.1 forbids here.
    pub fn from_request(challenge: &str, method: Option<&str>) -> Result<Self, PkceError> {
        if method != Some("S256") {
            return Err(PkceError::MethodNotS256);
        }
        let ok = challenge.len() == 43
            && challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(CodeChallenge(challenge.to_owned()))
    }

    /// The challenge for `verifier`, as a client computes it.
    pub fn s256(verifier: &str) -> CodeChallenge {
        let digest = ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes());
        CodeChallenge(URL_SAFE_NO_PAD.encode(digest.as_ref()))
    }

    /// RFC 7636 §4.6, compared in constant time.
    pub fn verify(&self, verifier: &str) -> Result<(), PkceError> {
        // §4.1: 43..=128 characters of the unreserved set.
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if !well_formed {
            return Err(PkceError::MalformedVerifier);
        }
        let expected = CodeChallenge::s256(verifier);
        if bool::from(expected.0.as_bytes().ct_eq(self.0.as_bytes())) {
            Ok(())
        } else {
            Err(PkceError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_vector_verifies() {
        let c = CodeChallenge::from_request(CHALLENGE, Some("S256")).unwrap();
        assert_eq!(c.verify(VERIFIER), Ok(()));
        assert_eq!(CodeChallenge::s256(VERIFIER), c);
    }

    #[test]
    fn plain_and_absent_methods_are_refused() {
        assert_eq!(
            CodeChallenge::from_request(CHALLENGE, Some("plain")),
            Err(PkceError::MethodNotS256)
        );
        assert_eq!(
            CodeChallenge::from_request(CHALLENGE, None),
            Err(PkceError::MethodNotS256)
        );
        assert_eq!(
            CodeChallenge::from_request("short", Some("S256")),
            Err(PkceError::MalformedChallenge)
        );
    }

    #[test]
    fn verifier_length_and_alphabet_are_enforced() {
        let c = CodeChallenge::from_request(CHALLENGE, Some("S256")).unwrap();
        assert_eq!(c.verify(&"a".repeat(42)), Err(PkceError::MalformedVerifier));
        assert_eq!(
            c.verify(&"a".repeat(129)),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(
            c.verify(&format!("{}!", "a".repeat(43))),
            Err(PkceError::MalformedVerifier)
        );
        assert_eq!(c.verify(&"a".repeat(43)), Err(PkceError::Mismatch));
    }
}

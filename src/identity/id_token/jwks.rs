//! The issuer's JWKS: its RSA keys, parsed once per fetch.

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

/// One RSA verification key.
#[derive(Clone)]
pub(super) struct RsaKey {
    pub(super) n: Vec<u8>,
    pub(super) e: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({} bits)", self.n.len() * 8)
    }
}

/// The issuer's usable keys (RSA, RS256, for signatures), by `kid`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Jwks {
    pub(super) keys: HashMap<String, RsaKey>,
    /// SHA-256 of the document, to log changes only.
    pub(super) digest: Vec<u8>,
}

impl Jwks {
    /// Parses a JWKS document, keeping the keys that can verify RS256.
    /// A document with no such key is an error.
    pub(crate) fn parse(body: &[u8]) -> Result<Jwks, String> {
        let doc: Value =
            serde_json::from_slice(body).map_err(|e| format!("not a JWKS (JSON): {e}"))?;
        let Some(list) = doc.get("keys").and_then(Value::as_array) else {
            return Err("not a JWKS: no `keys` array".into());
        };
        let mut keys = HashMap::new();
        for k in list {
            let s = |name: &str| k.get(name).and_then(Value::as_str);
            if s("kty") != Some("RSA")
                || !matches!(s("use"), None | Some("sig"))
                || !matches!(s("alg"), None | Some("RS256"))
            {
                continue;
            }
            let Some(kid) = s("kid").filter(|k| !k.is_empty()) else {
                continue;
            };
            let decode = |name: &str| {
                s(name)
                    .and_then(|v| URL_SAFE_NO_PAD.decode(v.trim_end_matches('=')).ok())
                    .map(strip_leading_zeros)
            };
            let (Some(n), Some(e)) = (decode("n"), decode("e")) else {
                continue;
            };
            // RSA_PKCS1_2048_8192_SHA256 accepts 2048 to 8192-bit moduli.
            if !(256..=1024).contains(&n.len()) || e.is_empty() || e.len() > 8 {
                continue;
            }
            // The first key of a kid wins: a duplicate cannot replace it.
            keys.entry(kid.to_owned()).or_insert(RsaKey { n, e });
        }
        if keys.is_empty() {
            return Err("the JWKS has no RSA signing key (kty RSA, alg RS256, with kid)".into());
        }
        Ok(Jwks {
            keys,
            digest: ring::digest::digest(&ring::digest::SHA256, body)
                .as_ref()
                .to_vec(),
        })
    }

    pub(crate) fn kids(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        k.sort_unstable();
        k
    }
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

//! Sealed blobs: JWE compact, `dir` + `A256GCM`, the kind in the protected
//! (authenticated) `typ` header.
//!
//! [`Sealed<T>`] is the wire form of a `T`; only [`open`] turns it back into
//! a `T`, and only when the header names `T`'s kind. A code can therefore
//! never be opened as a client registration or a refresh token, even though
//! all three are strings to the client.

use std::marker::PhantomData;

use josekit::jwe::{JweDecrypter, JweHeader};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::keys::{KeyRing, SealClass};

/// Longest sealed blob accepted: bigger input is refused before any work.
pub const MAX_SEALED_LEN: usize = 4096;

/// A payload type that travels sealed.
pub trait Sealable: Serialize + DeserializeOwned {
    /// The `typ` header that marks this kind.
    const TYP: &'static str;
    /// Which family of keys seals it.
    const CLASS: SealClass;
    /// Unix seconds after which the blob is refused, if it expires.
    fn expires_at(&self) -> Option<u64>;
}

/// The sealed, opaque form of a `T`, as handed to a client.
pub struct Sealed<T> {
    text: String,
    _kind: PhantomData<fn() -> T>,
}

impl<T> Sealed<T> {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

impl<T> std::fmt::Debug for Sealed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A sealed blob is a credential: never print it.
        f.write_str("Sealed(..)")
    }
}

/// Why a blob did not open. Callers map all of these to one protocol error
/// (`invalid_grant`, `invalid_client`…); the variant is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("not a sealed value of this server")]
    Malformed,
    #[error("sealed for another purpose")]
    WrongKind,
    #[error("sealed with a key this server no longer has")]
    UnknownKey,
    #[error("compressed or non-dir JWE refused")]
    Refused,
    #[error("does not decrypt")]
    Tampered,
    #[error("expired")]
    Expired,
}

/// Seals `value` with the newest active key of its class.
pub fn seal<T: Sealable>(ring: &KeyRing, value: &T, now: u64) -> Sealed<T> {
    let key = ring.active_sealer(T::CLASS, now);
    let mut header = JweHeader::new();
    header.set_content_encryption("A256GCM");
    header.set_token_type(T::TYP);
    header.set_key_id(&key.kid);
    let payload = serde_json::to_vec(value).expect("sealed payloads serialize");
    let text = josekit::jwe::serialize_compact(&payload, &header, &*key.encrypter)
        .expect("dir + A256GCM with a 32-byte key cannot fail");
    Sealed {
        text,
        _kind: PhantomData,
    }
}

/// Opens a blob as a `T`: the `typ`, `alg`, `enc` and `kid` are checked
/// before any decryption, then the payload's expiry against `now`.
pub fn open<T: Sealable>(ring: &KeyRing, text: &str, now: u64) -> Result<T, OpenError> {
    if text.is_empty() || text.len() > MAX_SEALED_LEN {
        return Err(OpenError::Malformed);
    }
    // The shape `dir` + A256GCM always has (RFC 7516 §7.1): no encrypted
    // key, a 96-bit IV, a 128-bit tag. Checked before josekit, which does
    // not bound the IV (found by fuzzing: an empty one panics in OpenSSL).
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 5
        || !parts[1].is_empty()
        || parts[2].len() != 16
        || parts[3].is_empty()
        || parts[4].len() != 22
    {
        return Err(OpenError::Malformed);
    }
    // The selector runs on the parsed protected header, before decryption;
    // it records the reason it refused so the caller gets a precise error.
    let refused = std::cell::Cell::new(None);
    let result = josekit::jwe::deserialize_compact_with_selector(text, |h| {
        let reject = |e: OpenError| {
            refused.set(Some(e));
            Err(josekit::JoseError::InvalidJweFormat(anyhow::Error::msg(
                "refused",
            )))
        };
        // RFC 8725 §3.1/§2.8: only our one algorithm; never decompress.
        if h.algorithm() != Some("dir")
            || h.content_encryption() != Some("A256GCM")
            || h.compression().is_some()
            || h.claim("crit").is_some()
        {
            return reject(OpenError::Refused);
        }
        if h.token_type() != Some(T::TYP) {
            return reject(OpenError::WrongKind);
        }
        let Some(kid) = h.key_id() else {
            return reject(OpenError::Malformed);
        };
        match ring.sealer(T::CLASS, kid) {
            Some(key) => {
                refused.set(Some(OpenError::Tampered));
                Ok(Some(&*key.decrypter as &dyn JweDecrypter))
            }
            None => reject(OpenError::UnknownKey),
        }
    });
    let (payload, _header) = match result {
        Ok(ok) => ok,
        Err(_) => return Err(refused.get().unwrap_or(OpenError::Malformed)),
    };
    let value: T = serde_json::from_slice(&payload).map_err(|_| OpenError::Malformed)?;
    if let Some(exp) = value.expires_at() {
        if now >= exp {
            return Err(OpenError::Expired);
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        body: String,
        exp: u64,
    }
    impl Sealable for Note {
        const TYP: &'static str = "note";
        const CLASS: SealClass = SealClass::Tokens;
        fn expires_at(&self) -> Option<u64> {
            Some(self.exp)
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Other {
        body: String,
        exp: u64,
    }
    impl Sealable for Other {
        const TYP: &'static str = "other";
        const CLASS: SealClass = SealClass::Tokens;
        fn expires_at(&self) -> Option<u64> {
            Some(self.exp)
        }
    }

    fn ring() -> KeyRing {
        KeyRing::build(generate_set(0, "t"), 1, 100).unwrap()
    }

    #[test]
    fn sealed_values_open_only_as_their_own_kind() {
        let ring = ring();
        let n = Note {
            body: "hi".into(),
            exp: 200,
        };
        let s = seal(&ring, &n, 100);
        assert_eq!(open::<Note>(&ring, s.as_str(), 150), Ok(n));
        assert_eq!(
            open::<Other>(&ring, s.as_str(), 150),
            Err(OpenError::WrongKind)
        );
        assert_eq!(
            open::<Note>(&ring, s.as_str(), 200),
            Err(OpenError::Expired)
        );
    }

    #[test]
    fn tampering_and_foreign_keys_are_refused() {
        let ring = ring();
        let s = seal(
            &ring,
            &Note {
                body: "hi".into(),
                exp: 200,
            },
            100,
        )
        .into_string();
        let mut parts: Vec<String> = s.split('.').map(str::to_owned).collect();
        let mut ct = parts[3].clone().into_bytes();
        ct[0] = if ct[0] == b'A' { b'B' } else { b'A' };
        parts[3] = String::from_utf8(ct).unwrap();
        assert_eq!(
            open::<Note>(&ring, &parts.join("."), 150),
            Err(OpenError::Tampered)
        );
        let other_ring = KeyRing::build(generate_set(0, "u"), 1, 100).unwrap();
        assert_eq!(
            open::<Note>(&other_ring, &s, 150),
            Err(OpenError::UnknownKey)
        );
        assert_eq!(open::<Note>(&ring, "a.b.c", 150), Err(OpenError::Malformed));
        // Found by fuzzing: an empty IV used to reach OpenSSL and panic.
        let empty_iv = format!("{}...{}.{}", parts[0], parts[3], parts[4]);
        assert_eq!(
            open::<Note>(&ring, &empty_iv, 150),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            open::<Note>(&ring, &"a.".repeat(3000), 150),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn compressed_blobs_are_refused_before_decryption() {
        use base64::Engine as _;
        let ring = ring();
        let kid = &ring.active_sealer(SealClass::Tokens, 100).kid;
        let header =
            serde_json::json!({"alg":"dir","enc":"A256GCM","zip":"DEF","typ":"note","kid":kid});
        let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header.to_string());
        let blob = format!("{h}..AAAAAAAAAAAAAAAA.AAAA.AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(open::<Note>(&ring, &blob, 150), Err(OpenError::Refused));
    }
}

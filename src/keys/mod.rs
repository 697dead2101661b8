//! Keys: files in `keys/` → an immutable [`KeyRing`], swapped in whole.
//!
//! Every key has an *activation time* written in its file, the same on
//! every replica: a key is published (JWKS) and usable for verifying and
//! opening from the moment its file is seen, but used for signing and
//! sealing only from its activation time. That is what lets an operator drop
//! a successor into a volume that replicas see minutes apart.
//!
//! - [`file`]: the on-disk format (JWK JSON, PEM for signing keys), parsing
//!   and writing.
//! - [`KeyRing`]: one complete, validated set of keys with pre-built
//!   signers/verifiers/sealers and the pre-rendered JWKS.
//! - [`Keys`]: the `ArcSwap` every request loads the current ring from.
//! - [`state`]: each key's place in its kind's succession, and what
//!   `keys prune` may remove.

pub(crate) mod deny;
pub(crate) mod file;
pub(crate) mod state;
pub(crate) mod watch;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use josekit::jwe::{JweDecrypter, JweEncrypter};
use josekit::jws::{JwsAlgorithm, JwsSigner, JwsVerifier};
use josekit::JoseError;
use ring::signature;

use crate::clock::unix_now;

pub(crate) use deny::DenyList;
pub use file::{KeyFile, KeyKind, KeyMaterial};

// ===== signing and verifying (ring behind josekit's traits) =====

/// A private signing key. Signing goes through ring rather than josekit's
/// OpenSSL signers (faster Ed25519; see DESIGN.md's measured facts).
pub struct SigningKey {
    pub kid: String,
    pub activates_at: u64,
    inner: Arc<SignerInner>,
}

enum SignerInner {
    Ed25519(signature::Ed25519KeyPair),
    EcdsaP256(signature::EcdsaKeyPair, ring::rand::SystemRandom),
}

impl SigningKey {
    pub fn algorithm_name(&self) -> &'static str {
        match *self.inner {
            SignerInner::Ed25519(_) => "EdDSA",
            SignerInner::EcdsaP256(..) => "ES256",
        }
    }

    /// The josekit signer for this key (cheap: shares the ring key pair).
    pub fn signer(&self) -> RingSigner {
        RingSigner {
            kid: self.kid.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.algorithm_name())
            .field("activates_at", &self.activates_at)
            .finish()
    }
}

#[derive(Clone)]
pub struct RingSigner {
    kid: String,
    inner: Arc<SignerInner>,
}

impl std::fmt::Debug for RingSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

impl JwsSigner for RingSigner {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        match *self.inner {
            SignerInner::Ed25519(_) => &josekit::jws::EdDSA,
            SignerInner::EcdsaP256(..) => &josekit::jws::ES256,
        }
    }

    fn key_id(&self) -> Option<&str> {
        Some(&self.kid)
    }

    fn signature_len(&self) -> usize {
        64
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &*self.inner {
            SignerInner::Ed25519(kp) => Ok(kp.sign(message).as_ref().to_vec()),
            SignerInner::EcdsaP256(kp, rng) => kp
                .sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::InvalidSignature(anyhow_msg("ECDSA signing failed"))),
        }
    }

    fn box_clone(&self) -> Box<dyn JwsSigner> {
        Box::new(self.clone())
    }
}

/// A public key that verifies signatures with ring.
#[derive(Clone)]
pub struct RingVerifier {
    kid: String,
    alg: VerifyAlg,
    public_key: Arc<[u8]>,
    /// The encoded JWS header of a token that verified under this key: the
    /// tokens of one key all carry the same header, and the same bytes
    /// always pass the same header checks, so later tokens skip decoding
    /// and parsing it. Per ring: a reload starts empty.
    verified_header: std::sync::OnceLock<Box<str>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VerifyAlg {
    Ed25519,
    EcdsaP256,
}

impl RingVerifier {
    /// Remembers the encoded header of a token that fully verified under
    /// this key (see `verified_header`).
    pub fn remember_verified_header(&self, encoded_header: &str) {
        let _ = self.verified_header.set(encoded_header.into());
    }
}

impl std::fmt::Debug for RingVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingVerifier")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish()
    }
}

impl JwsVerifier for RingVerifier {
    fn algorithm(&self) -> &dyn JwsAlgorithm {
        match self.alg {
            VerifyAlg::Ed25519 => &josekit::jws::EdDSA,
            VerifyAlg::EcdsaP256 => &josekit::jws::ES256,
        }
    }

    fn key_id(&self) -> Option<&str> {
        Some(&self.kid)
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> Result<(), JoseError> {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            VerifyAlg::Ed25519 => &signature::ED25519,
            VerifyAlg::EcdsaP256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        signature::UnparsedPublicKey::new(alg, &*self.public_key)
            .verify(message, sig)
            .map_err(|_| JoseError::InvalidSignature(anyhow_msg("signature does not verify")))
    }

    fn box_clone(&self) -> Box<dyn JwsVerifier> {
        Box::new(self.clone())
    }
}

fn anyhow_msg(msg: &'static str) -> anyhow::Error {
    anyhow::Error::msg(msg)
}

// ===== sealing (JWE dir + A256GCM) =====

/// A symmetric key for sealed blobs (codes, refresh tokens, client ids).
pub struct SealingKey {
    pub kid: String,
    pub activates_at: u64,
    pub(crate) encrypter: Box<dyn JweEncrypter>,
    pub(crate) decrypter: Box<dyn JweDecrypter>,
}

impl std::fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealingKey")
            .field("kid", &self.kid)
            .field("activates_at", &self.activates_at)
            .finish()
    }
}

/// Which family of symmetric keys seals a kind of blob. Client ids live
/// for months, codes for a minute: they rotate on different schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealClass {
    /// Codes and refresh tokens.
    Tokens,
    /// Dynamically registered client ids.
    Registration,
}

// ===== the ring =====

/// One complete, immutable set of keys. Built off the request path and
/// swapped in whole; a request sees one ring from start to end.
#[derive(Debug)]
pub struct KeyRing {
    /// Increases with every successful reload; tokens cached under an older
    /// generation are re-verified.
    pub generation: u64,
    /// Sorted by activation time, oldest first.
    signing: Vec<SigningKey>,
    verifiers: Vec<RingVerifier>,
    sealing: Vec<SealingKey>,
    registration: Vec<SealingKey>,
    /// `{"keys":[…]}` with every signing key's public half, pending ones
    /// included, so verifiers learn a key before anyone signs with it.
    jwks: Bytes,
    /// What the files said, for `keys list` and logs.
    pub files: Vec<KeyFile>,
    /// Revoked subjects, tokens, clients and refresh families.
    pub deny: DenyList,
    /// Digest of everything above: a rescan that finds the same keys and
    /// deny list swaps nothing (and so invalidates no cache).
    pub fingerprint: [u8; 32],
}

/// Why a set of files cannot become the ring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RingError {
    #[error("cannot read key directory {dir}: {reason}")]
    Unreadable { dir: PathBuf, reason: String },
    #[error("no {0} key is active yet (run `mcpgate keys generate --dir DIR`)")]
    NoActiveKey(KeyKind),
    #[error("duplicate kid `{0}`")]
    DuplicateKid(String),
}

/// A key file that was skipped, and why (never key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub file: PathBuf,
    pub reason: String,
}

fn fingerprint(files: &[KeyFile], deny: &DenyList) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for f in files {
        ctx.update(f.kid.as_bytes());
        ctx.update(&[0, f.kind as u8]);
        ctx.update(&f.activates_at.to_be_bytes());
        ctx.update(f.to_json().to_string().as_bytes());
    }
    deny.digest(&mut ctx);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

fn newest_active<K>(keys: &[K], now: u64, at: impl Fn(&K) -> u64) -> Option<&K> {
    keys.iter().rev().find(|k| at(k) <= now)
}

impl KeyRing {
    /// Builds a ring from parsed key files. Fails unless a signing key, a
    /// token-sealing key and a registration key are active at `now`.
    pub fn build(files: Vec<KeyFile>, generation: u64, now: u64) -> Result<KeyRing, RingError> {
        KeyRing::build_with_deny(files, DenyList::default(), generation, now)
    }

    pub fn build_with_deny(
        files: Vec<KeyFile>,
        deny: DenyList,
        generation: u64,
        now: u64,
    ) -> Result<KeyRing, RingError> {
        let mut files = files;
        files.sort_by(|a, b| (a.activates_at, &a.kid).cmp(&(b.activates_at, &b.kid)));
        let mut seen = std::collections::HashSet::new();
        for f in &files {
            if !seen.insert(f.kid.as_str()) {
                return Err(RingError::DuplicateKid(f.kid.clone()));
            }
        }

        let mut signing = Vec::new();
        let mut verifiers = Vec::new();
        let mut sealing = Vec::new();
        let mut registration = Vec::new();
        let mut jwks_keys = Vec::new();
        for f in &files {
            match &f.material {
                KeyMaterial::Ed25519 { seed, public } => {
                    let pair = signature::Ed25519KeyPair::from_seed_and_public_key(seed, public)
                        .expect("validated when the file was parsed");
                    verifiers.push(RingVerifier {
                        kid: f.kid.clone(),
                        alg: VerifyAlg::Ed25519,
                        public_key: public.as_slice().into(),
                        verified_header: Default::default(),
                    });
                    jwks_keys.push(f.public_jwk());
                    signing.push(SigningKey {
                        kid: f.kid.clone(),
                        activates_at: f.activates_at,
                        inner: Arc::new(SignerInner::Ed25519(pair)),
                    });
                }
                KeyMaterial::EcdsaP256 { d, public } => {
                    let rng = ring::rand::SystemRandom::new();
                    let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
                        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                        d,
                        public,
                        &rng,
                    )
                    .expect("validated when the file was parsed");
                    verifiers.push(RingVerifier {
                        kid: f.kid.clone(),
                        alg: VerifyAlg::EcdsaP256,
                        public_key: public.as_slice().into(),
                        verified_header: Default::default(),
                    });
                    jwks_keys.push(f.public_jwk());
                    signing.push(SigningKey {
                        kid: f.kid.clone(),
                        activates_at: f.activates_at,
                        inner: Arc::new(SignerInner::EcdsaP256(pair, rng)),
                    });
                }
                KeyMaterial::Symmetric { key } => {
                    let sk = SealingKey {
                        kid: f.kid.clone(),
                        activates_at: f.activates_at,
                        encrypter: Box::new(
                            josekit::jwe::Dir
                                .encrypter_from_bytes(key.as_ref())
                                .expect("a 32-byte key is a valid dir key"),
                        ),
                        decrypter: Box::new(
                            josekit::jwe::Dir
                                .decrypter_from_bytes(key.as_ref())
                                .expect("a 32-byte key is a valid dir key"),
                        ),
                    };
                    match f.kind {
                        KeyKind::Registration => registration.push(sk),
                        _ => sealing.push(sk),
                    }
                }
            }
        }

        if newest_active(&signing, now, |k| k.activates_at).is_none() {
            return Err(RingError::NoActiveKey(KeyKind::Signing));
        }
        if newest_active(&sealing, now, |k| k.activates_at).is_none() {
            return Err(RingError::NoActiveKey(KeyKind::Sealing));
        }
        if newest_active(&registration, now, |k| k.activates_at).is_none() {
            return Err(RingError::NoActiveKey(KeyKind::Registration));
        }

        let jwks = serde_json::to_vec(&serde_json::json!({ "keys": jwks_keys }))
            .expect("JSON values serialize")
            .into();
        let fingerprint = fingerprint(&files, &deny);
        Ok(KeyRing {
            generation,
            signing,
            verifiers,
            sealing,
            registration,
            jwks,
            files,
            deny,
            fingerprint,
        })
    }

    /// Reads every key file in `dir` and builds a ring. Files that do not
    /// parse are skipped and returned as problems.
    pub fn load(
        dir: &Path,
        generation: u64,
        now: u64,
    ) -> Result<(KeyRing, Vec<FileProblem>), RingError> {
        KeyRing::load_with_deny(dir, &dir.join(file::DENY_FILE_NAME), generation, now)
    }

    /// Like [`KeyRing::load`], with the deny file at `deny_path` (absent
    /// is an empty list; unparseable lines are problems).
    pub fn load_with_deny(
        dir: &Path,
        deny_path: &Path,
        generation: u64,
        now: u64,
    ) -> Result<(KeyRing, Vec<FileProblem>), RingError> {
        let (files, mut problems) = file::read_dir(dir)?;
        let deny = match std::fs::read_to_string(deny_path) {
            Ok(text) => {
                let (list, bad) = DenyList::parse(&text);
                problems.extend(bad.into_iter().map(|reason| FileProblem {
                    file: deny_path.to_path_buf(),
                    reason,
                }));
                list
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DenyList::default(),
            Err(e) => {
                // Failing open here would un-revoke everything: keep the
                // previous ring instead.
                return Err(RingError::Unreadable {
                    dir: deny_path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        Ok((
            KeyRing::build_with_deny(files, deny, generation, now)?,
            problems,
        ))
    }

    /// The key to sign new tokens with: the newest one already active.
    pub fn active_signer(&self, now: u64) -> &SigningKey {
        newest_active(&self.signing, now, |k| k.activates_at)
            // `build` proved one active at load time, and time moves forward.
            .unwrap_or(&self.signing[0])
    }

    /// The verifier under which a token with this exact encoded header
    /// has verified before.
    pub fn verifier_for_header(&self, encoded_header: &str) -> Option<&RingVerifier> {
        self.verifiers.iter().find(|v| {
            v.verified_header
                .get()
                .is_some_and(|h| **h == *encoded_header)
        })
    }

    pub fn verifier(&self, kid: &str) -> Option<&RingVerifier> {
        self.verifiers.iter().find(|v| v.kid == kid)
    }

    fn sealing_keys(&self, class: SealClass) -> &[SealingKey] {
        match class {
            SealClass::Tokens => &self.sealing,
            SealClass::Registration => &self.registration,
        }
    }

    pub fn active_sealer(&self, class: SealClass, now: u64) -> &SealingKey {
        let keys = self.sealing_keys(class);
        newest_active(keys, now, |k| k.activates_at).unwrap_or(&keys[0])
    }

    pub fn sealer(&self, class: SealClass, kid: &str) -> Option<&SealingKey> {
        self.sealing_keys(class).iter().find(|k| k.kid == kid)
    }

    /// The pre-rendered JWKS document.
    pub fn jwks(&self) -> &Bytes {
        &self.jwks
    }
}

/// The current key ring, shared by every request. Loading it is a few
/// nanoseconds and never blocks; reloads replace it whole.
pub(crate) struct Keys {
    current: ArcSwap<KeyRing>,
    dir: PathBuf,
    deny_path: PathBuf,
    /// Set when the last reload failed and the previous ring was kept.
    degraded: std::sync::atomic::AtomicBool,
}

impl Keys {
    pub(crate) fn new(ring: KeyRing, dir: PathBuf, deny_path: PathBuf) -> Keys {
        Keys {
            current: ArcSwap::from_pointee(ring),
            dir,
            deny_path,
            degraded: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<KeyRing>> {
        self.current.load()
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn deny_path(&self) -> &Path {
        &self.deny_path
    }

    /// Whether the ring in use is the result of the last reload.
    pub(crate) fn is_healthy(&self) -> bool {
        !self.degraded.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Re-reads the directory and swaps in the new ring if anything
    /// changed. On failure the previous ring stays in use and the replica
    /// reports itself not ready.
    pub(crate) fn reload(&self) -> Result<Reload, RingError> {
        let current = self.current.load();
        let generation = current.generation + 1;
        match KeyRing::load_with_deny(&self.dir, &self.deny_path, generation, unix_now()) {
            Ok((ring, problems)) => {
                let changed = ring.fingerprint != current.fingerprint;
                if changed {
                    self.current.store(Arc::new(ring));
                }
                self.degraded
                    .store(false, std::sync::atomic::Ordering::Relaxed);
                Ok(Reload {
                    changed,
                    generation: self.current.load().generation,
                    problems,
                })
            }
            Err(e) => {
                self.degraded
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Err(e)
            }
        }
    }
}

/// The outcome of a successful reload.
#[derive(Debug)]
pub(crate) struct Reload {
    /// Whether a new ring was swapped in.
    pub changed: bool,
    /// The generation now in use.
    pub generation: u64,
    /// Files (or deny lines) that were skipped.
    pub problems: Vec<FileProblem>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring_with(files: Vec<KeyFile>, now: u64) -> Result<KeyRing, RingError> {
        KeyRing::build(files, 1, now)
    }

    #[test]
    fn newest_active_key_signs_and_pending_keys_are_published_only() {
        let now = 1_000_000;
        let mut files = file::generate_set(now - 100, "a");
        files.extend(file::generate_set(now + 300, "b"));
        let ring = ring_with(files, now).unwrap();
        let signer = ring.active_signer(now);
        assert!(signer.kid.contains("-a"), "{}", signer.kid);
        // After the successor's activation time it signs instead.
        assert!(ring.active_signer(now + 301).kid.contains("-b"));
        let jwks: serde_json::Value = serde_json::from_slice(ring.jwks()).unwrap();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert!(
            jwks["keys"][0].get("d").is_none(),
            "no private part in JWKS"
        );
        assert!(ring
            .active_sealer(SealClass::Tokens, now)
            .kid
            .contains("-a"));
        assert!(ring
            .active_sealer(SealClass::Registration, now + 301)
            .kid
            .contains("-b"));
    }

    #[test]
    fn a_ring_with_only_pending_keys_is_refused() {
        let now = 1_000_000;
        let err = ring_with(file::generate_set(now + 60, "a"), now).unwrap_err();
        assert_eq!(err, RingError::NoActiveKey(KeyKind::Signing));
    }

    #[test]
    fn a_ring_without_a_registration_key_is_refused() {
        let now = 1_000_000;
        let files: Vec<_> = file::generate_set(now, "a")
            .into_iter()
            .filter(|f| f.kind != KeyKind::Registration)
            .collect();
        assert_eq!(
            ring_with(files, now).unwrap_err(),
            RingError::NoActiveKey(KeyKind::Registration)
        );
    }

    #[test]
    fn reload_keeps_the_previous_ring_when_the_new_one_is_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let now = unix_now();
        for f in file::generate_set(now - 10, "a") {
            f.write_to_dir(dir.path()).unwrap();
        }
        let (ring, problems) = KeyRing::load(dir.path(), 1, now).unwrap();
        assert!(problems.is_empty());
        let keys = Keys::new(ring, dir.path().to_path_buf(), dir.path().join("revoked"));
        let first_kid = keys.load().active_signer(now).kid.clone();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        assert!(keys.reload().is_err());
        assert!(!keys.is_healthy());
        assert_eq!(keys.load().active_signer(now).kid, first_kid);
        assert_eq!(keys.load().generation, 1);
        for f in file::generate_set(now - 10, "b") {
            f.write_to_dir(dir.path()).unwrap();
        }
        assert!(keys.reload().unwrap().changed);
        assert!(keys.is_healthy());
        assert_eq!(keys.load().generation, 2);
        // Nothing changed on disk: nothing is swapped.
        assert!(!keys.reload().unwrap().changed);
        assert_eq!(keys.load().generation, 2);
        std::fs::write(dir.path().join("revoked"), "email alice@example.com\n").unwrap();
        assert!(keys.reload().unwrap().changed);
        assert_eq!(keys.load().generation, 3);
        assert_eq!(keys.load().deny.len(), 1);
        assert_ne!(keys.load().active_signer(now).kid, first_kid);
    }
}

//! The key file format: one key per file.
//!
//! JWK JSON (`*.json`, `*.jwk`), RFC 7517 members plus two of mcpgate's:
//!
//! ```json
//! {"kty":"OKP","crv":"Ed25519","x":"…","d":"…","kid":"sig-20261126T130500Z-1a2b",
//!  "alg":"EdDSA","use":"sig","kind":"signing","activates_at":"2026-11-26T13:05:00Z"}
//! {"kty":"oct","k":"…","kid":"seal-…","alg":"dir","use":"enc","kind":"sealing","activates_at":"…"}
//! ```
//!
//! `kind` is `signing` (OKP Ed25519 or EC P-256), `sealing` (codes and
//! refresh tokens) or `registration` (client ids); `activates_at` is RFC 3339
//! or integer seconds, and absent means "active since always".
//!
//! PEM (`*.pem`, PKCS#8 or SEC1) holds a signing key; its kid is the file
//! stem and its activation the `YYYYMMDDTHHMMSSZ` stamp in the name, if any
//! (`sig-20261126T130500Z.pem`).
//!
//! Names starting with `.` are never read: Kubernetes keeps its `..data`
//! machinery there and [`KeyFile::write_to_dir`] its temporary files.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::rand::SecureRandom;
use ring::signature::{self, KeyPair};
use serde_json::{json, Map, Value};

use super::{FileProblem, RingError};
use crate::clock::{parse_rfc3339, rfc3339};

pub(crate) use crate::config::DENY_FILE_NAME;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// Signs access tokens; its public half is in the JWKS.
    Signing,
    /// Seals authorization codes and refresh tokens.
    Sealing,
    /// Seals dynamically registered client ids (long-lived).
    Registration,
}

impl KeyKind {
    pub const ALL: [KeyKind; 3] = [KeyKind::Signing, KeyKind::Sealing, KeyKind::Registration];

    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Signing => "signing",
            KeyKind::Sealing => "sealing",
            KeyKind::Registration => "registration",
        }
    }

    fn kid_prefix(self) -> &'static str {
        match self {
            KeyKind::Signing => "sig",
            KeyKind::Sealing => "seal",
            KeyKind::Registration => "reg",
        }
    }
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, not `write_str`: `keys list` aligns its columns with widths.
        f.pad(self.as_str())
    }
}

/// Private key bytes. No `Debug`, no `Display`: it cannot end up in a log.
#[derive(Clone)]
pub enum KeyMaterial {
    Ed25519 {
        seed: [u8; 32],
        public: [u8; 32],
    },
    /// `d` is the 32-byte scalar; `public` the uncompressed point (65 bytes).
    EcdsaP256 {
        d: Vec<u8>,
        public: Vec<u8>,
    },
    Symmetric {
        key: [u8; 32],
    },
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyMaterial::Ed25519 { .. } => "Ed25519(..)",
            KeyMaterial::EcdsaP256 { .. } => "EcdsaP256(..)",
            KeyMaterial::Symmetric { .. } => "Symmetric(..)",
        })
    }
}

#[derive(Debug, Clone)]
pub struct KeyFile {
    /// Where it was read from (none for a freshly generated key).
    pub path: Option<PathBuf>,
    pub kid: String,
    pub kind: KeyKind,
    /// Unix seconds from which the key signs or seals.
    pub activates_at: u64,
    pub material: KeyMaterial,
}

impl KeyFile {
    pub fn alg(&self) -> &'static str {
        match self.material {
            KeyMaterial::Ed25519 { .. } => "EdDSA",
            KeyMaterial::EcdsaP256 { .. } => "ES256",
            KeyMaterial::Symmetric { .. } => "dir",
        }
    }

    /// The JWKS entry: public members only.
    pub fn public_jwk(&self) -> Value {
        match &self.material {
            KeyMaterial::Ed25519 { public, .. } => json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64(public),
                "kid": self.kid, "alg": "EdDSA", "use": "sig",
            }),
            KeyMaterial::EcdsaP256 { public, .. } => json!({
                "kty": "EC", "crv": "P-256",
                "x": b64(&public[1..33]), "y": b64(&public[33..65]),
                "kid": self.kid, "alg": "ES256", "use": "sig",
            }),
            KeyMaterial::Symmetric { .. } => Value::Null,
        }
    }

    /// The whole file, private members included.
    pub fn to_json(&self) -> Value {
        let activates = rfc3339(self.activates_at);
        let mut v = match &self.material {
            KeyMaterial::Ed25519 { seed, .. } => {
                let mut v = self.public_jwk();
                v["d"] = b64(seed).into();
                v
            }
            KeyMaterial::EcdsaP256 { d, .. } => {
                let mut v = self.public_jwk();
                v["d"] = b64(d).into();
                v
            }
            KeyMaterial::Symmetric { key } => json!({
                "kty": "oct", "k": b64(key), "kid": self.kid, "alg": "dir", "use": "enc",
            }),
        };
        v["kind"] = self.kind.as_str().into();
        v["activates_at"] = activates.into();
        v
    }

    pub fn file_name(&self) -> String {
        format!("{}.json", self.kid)
    }

    /// Writes atomically: a dot-named temporary file (never read by the
    /// loader), then a rename, so a watcher never sees half a key.
    pub fn write_to_dir(&self, dir: &Path) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        let final_path = dir.join(self.file_name());
        let tmp = dir.join(format!(".{}.tmp", self.file_name()));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        let mut body = serde_json::to_vec_pretty(&self.to_json()).expect("JSON serializes");
        body.push(b'\n');
        f.write_all(&body)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &final_path)?;
        Ok(final_path)
    }

    /// Generates a key of `kind` that activates at `activates_at`. `tag`
    /// makes the kid unique among keys generated in the same second.
    pub fn generate(kind: KeyKind, activates_at: u64, tag: &str) -> KeyFile {
        let rng = ring::rand::SystemRandom::new();
        let mut bytes = [0u8; 32];
        rng.fill(&mut bytes).expect("system randomness");
        let material = match kind {
            KeyKind::Signing => {
                let pair = signature::Ed25519KeyPair::from_seed_unchecked(&bytes)
                    .expect("any 32 bytes are an Ed25519 seed");
                let mut public = [0u8; 32];
                public.copy_from_slice(pair.public_key().as_ref());
                KeyMaterial::Ed25519 {
                    seed: bytes,
                    public,
                }
            }
            KeyKind::Sealing | KeyKind::Registration => KeyMaterial::Symmetric { key: bytes },
        };
        KeyFile {
            path: None,
            kid: format!(
                "{}-{}-{}",
                kind.kid_prefix(),
                compact_stamp(activates_at),
                tag
            ),
            kind,
            activates_at,
            material,
        }
    }
}

/// One key of every kind, all activating at `activates_at`.
pub fn generate_set(activates_at: u64, tag: &str) -> Vec<KeyFile> {
    KeyKind::ALL
        .iter()
        .map(|k| KeyFile::generate(*k, activates_at, tag))
        .collect()
}

/// A short random tag for kids (`1a2b`).
pub(crate) fn random_tag() -> String {
    let mut b = [0u8; 2];
    crate::random::fill(&mut b);
    format!("{:02x}{:02x}", b[0], b[1])
}

/// Whether `path` with `mode` has not been warned about yet in this
/// process: the directory is read again on every change and rescan, and a
/// mode that stays the same (a Kubernetes Secret mounted 0440 on purpose)
/// is said once, not every `keys.rescan`.
#[cfg(unix)]
fn first_warning(path: &Path, mode: u32) -> bool {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static WARNED: OnceLock<Mutex<HashSet<(PathBuf, u32)>>> = OnceLock::new();
    WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert((path.to_owned(), mode))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `20261126T130500Z`: a stamp that is legal in file names and Kubernetes
/// Secret keys (no colons).
pub(crate) fn compact_stamp(secs: u64) -> String {
    rfc3339(secs).replace(['-', ':'], "")
}

fn parse_compact_stamp(name: &str) -> Option<u64> {
    // Find `YYYYMMDDTHHMMSSZ` anywhere in the name.
    let b = name.as_bytes();
    (0..b.len().saturating_sub(15)).find_map(|i| {
        let w = &b[i..i + 16];
        let shape = w.iter().enumerate().all(|(j, c)| match j {
            8 => *c == b'T',
            15 => *c == b'Z',
            _ => c.is_ascii_digit(),
        });
        if !shape {
            return None;
        }
        let w = std::str::from_utf8(w).ok()?;
        let rfc = format!(
            "{}-{}-{}T{}:{}:{}Z",
            &w[0..4],
            &w[4..6],
            &w[6..8],
            &w[9..11],
            &w[11..13],
            &w[13..15]
        );
        parse_rfc3339(&rfc)
    })
}

// ===== parsing =====

fn member<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("`{name}` must be a string")),
    }
}

fn required<'a>(m: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    member(m, name)?.ok_or_else(|| format!("missing `{name}`"))
}

fn decode(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(required(m, name)?)
        .map_err(|_| format!("`{name}` is not base64url"))
}

fn fixed32(v: Vec<u8>, name: &str) -> Result<[u8; 32], String> {
    v.try_into()
        .map_err(|_| format!("`{name}` must be 32 bytes"))
}

fn parse_activation(m: &Map<String, Value>) -> Result<u64, String> {
    match m.get("activates_at") {
        None => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| "`activates_at` must be a non-negative integer".to_string()),
        Some(Value::String(s)) => {
            parse_rfc3339(s).ok_or_else(|| format!("`activates_at` is not an RFC 3339 time: {s}"))
        }
        Some(_) => Err("`activates_at` must be a time string or seconds".into()),
    }
}

/// Parses a JWK JSON key file. Errors name the problem, never the key.
pub(crate) fn parse_jwk(bytes: &[u8], stem: &str) -> Result<KeyFile, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let m = v.as_object().ok_or("not a JSON object")?;
    let kid = member(m, "kid")?.unwrap_or(stem).to_string();
    if kid.is_empty() || kid.len() > 128 {
        return Err("`kid` must be 1 to 128 characters".into());
    }
    let activates_at = parse_activation(m)?;
    let declared_kind = member(m, "kind")?;
    let kty = required(m, "kty")?;
    let (kind, material) = match kty {
        "OKP" => {
            if required(m, "crv")? != "Ed25519" {
                return Err("only the Ed25519 curve is supported for OKP keys".into());
            }
            let seed = fixed32(decode(m, "d")?, "d")?;
            let public = fixed32(decode(m, "x")?, "x")?;
            signature::Ed25519KeyPair::from_seed_and_public_key(&seed, &public)
                .map_err(|_| "`x` is not the public key of `d`")?;
            (KeyKind::Signing, KeyMaterial::Ed25519 { seed, public })
        }
        "EC" => {
            if required(m, "crv")? != "P-256" {
                return Err("only the P-256 curve is supported for EC keys".into());
            }
            let d = decode(m, "d")?;
            let x = decode(m, "x")?;
            let y = decode(m, "y")?;
            if d.len() != 32 || x.len() != 32 || y.len() != 32 {
                return Err("P-256 `d`, `x`, `y` must be 32 bytes each".into());
            }
            let mut public = vec![4u8];
            public.extend_from_slice(&x);
            public.extend_from_slice(&y);
            signature::EcdsaKeyPair::from_private_key_and_public_key(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                &d,
                &public,
                &ring::rand::SystemRandom::new(),
            )
            .map_err(|_| "`x`/`y` are not the public key of `d`")?;
            (KeyKind::Signing, KeyMaterial::EcdsaP256 { d, public })
        }
        "oct" => {
            let kind = match declared_kind {
                Some("sealing") => KeyKind::Sealing,
                Some("registration") => KeyKind::Registration,
                Some(other) => {
                    return Err(format!("`kind` {other} is not sealing or registration"))
                }
                None => return Err("a symmetric key needs `kind`: sealing or registration".into()),
            };
            if let Some(alg) = member(m, "alg")? {
                if alg != "dir" && alg != "A256GCM" {
                    return Err(format!("symmetric keys are for dir + A256GCM, not {alg}"));
                }
            }
            let key = fixed32(decode(m, "k")?, "k")?;
            (kind, KeyMaterial::Symmetric { key })
        }
        other => return Err(format!("unsupported kty {other}")),
    };
    if kind == KeyKind::Signing {
        if let Some(k) = declared_kind.filter(|k| *k != "signing") {
            return Err(format!("an asymmetric key cannot have kind {k}"));
        }
        if let Some(u) = member(m, "use")?.filter(|u| *u != "sig") {
            return Err(format!("a signing key must have use sig, not {u}"));
        }
    }
    Ok(KeyFile {
        path: None,
        kid,
        kind,
        activates_at,
        material,
    })
}

/// Parses a PEM signing key (Ed25519 or P-256, PKCS#8 or SEC1).
pub(crate) fn parse_pem(bytes: &[u8], stem: &str) -> Result<KeyFile, String> {
    let activates_at = parse_compact_stamp(stem).unwrap_or(0);
    let jwk = if let Ok(pair) = josekit::jwk::alg::ed::EdKeyPair::from_pem(bytes) {
        pair.to_jwk_key_pair()
    } else if let Ok(pair) = josekit::jwk::alg::ec::EcKeyPair::from_pem(
        bytes,
        Some(josekit::jwk::alg::ec::EcCurve::P256),
    ) {
        pair.to_jwk_key_pair()
    } else {
        return Err("not an Ed25519 or P-256 private key in PEM".into());
    };
    let mut m: Map<String, Value> = jwk.as_ref().clone();
    m.insert("kid".into(), stem.into());
    m.insert("activates_at".into(), activates_at.into());
    m.remove("use");
    m.remove("alg");
    parse_jwk(&serde_json::to_vec(&m).expect("JSON"), stem)
}

/// Whether a directory entry is a key file the loader reads.
pub(crate) fn is_key_file_name(name: &str) -> bool {
    !name.starts_with('.')
        && (name.ends_with(".json") || name.ends_with(".jwk") || name.ends_with(".pem"))
}

/// Reads every key file of `dir`. Unparseable files are skipped and
/// reported; the directory itself being unreadable is an error.
pub(crate) fn read_dir(dir: &Path) -> Result<(Vec<KeyFile>, Vec<FileProblem>), RingError> {
    let unreadable = |e: std::io::Error| RingError::Unreadable {
        dir: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(Result::ok)
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_key_file_name(&name) {
            continue;
        }
        let path = entry.path();
        // Follow symlinks: a Kubernetes Secret volume is all symlinks.
        let meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) => {
                problems.push(FileProblem {
                    file: path,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 && first_warning(&path, mode) {
                tracing::warn!(file = %path.display(), mode = format!("{mode:o}"),
                    "key file is readable by group or others; chmod 600 it");
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let stem = name.rsplit_once('.').map(|(s, _)| s).unwrap_or(&name);
        let parsed = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                if name.ends_with(".pem") {
                    parse_pem(&bytes, stem)
                } else {
                    parse_jwk(&bytes, stem)
                }
            });
        match parsed {
            Ok(mut f) => {
                f.path = Some(path);
                files.push(f);
            }
            Err(reason) => problems.push(FileProblem { file: path, reason }),
        }
    }
    Ok((files, problems))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[cfg(unix)]
    #[test]
    fn a_loose_mode_is_warned_about_once_per_file_and_mode() {
        let p = Path::new("/nonexistent/warned-once.json");
        assert!(first_warning(p, 0o640));
        assert!(!first_warning(p, 0o640), "a rescan says nothing new");
        assert!(first_warning(p, 0o644), "a new mode is said again");
    }

    #[test]
    fn a_generated_key_round_trips_through_its_file() {
        let dir = tempfile::tempdir().unwrap();
        for f in generate_set(1_800_000_000, "t1") {
            f.write_to_dir(dir.path()).unwrap();
        }
        let (files, problems) = read_dir(dir.path()).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(files.len(), 3);
        for f in &files {
            assert_eq!(f.activates_at, 1_800_000_000);
            assert!(f.kid.contains("20270115T080000Z"), "{}", f.kid);
        }
        let kinds: Vec<_> = files.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&KeyKind::Registration));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(files[0].path.as_ref().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bad_files_are_skipped_with_a_reason_and_the_rest_loads() {
        let dir = tempfile::tempdir().unwrap();
        for f in generate_set(0, "ok") {
            f.write_to_dir(dir.path()).unwrap();
        }
        std::fs::write(dir.path().join("broken.json"), b"{not json").unwrap();
        std::fs::write(
            dir.path().join("short.json"),
            br#"{"kty":"oct","k":"AAAA","kind":"sealing"}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("README.md"), b"ignored").unwrap();
        std::fs::write(dir.path().join(".hidden.json"), b"ignored").unwrap();
        let (files, problems) = read_dir(dir.path()).unwrap();
        assert_eq!(files.len(), 3);
        assert_eq!(problems.len(), 2);
        let reasons: Vec<_> = problems.iter().map(|p| p.reason.as_str()).collect();
        assert!(
            reasons.iter().any(|r| r.starts_with("not JSON")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.contains("32 bytes")),
            "{reasons:?}"
        );
    }

    #[test]
    fn mismatched_public_key_is_refused() {
        let a = KeyFile::generate(KeyKind::Signing, 0, "a").to_json();
        let b = KeyFile::generate(KeyKind::Signing, 0, "b").to_json();
        let mut mixed = a.clone();
        mixed["x"] = b["x"].clone();
        let err = parse_jwk(mixed.to_string().as_bytes(), "x").unwrap_err();
        assert!(err.contains("not the public key"), "{err}");
    }

    #[test]
    fn pem_keys_take_kid_and_activation_from_the_file_name() {
        // RFC 8410 PKCS#8 for Ed25519: a fixed 16-byte prefix, then the seed.
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&[9u8; 32]);
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(&der)
        );
        let f = parse_pem(pem.as_bytes(), "sig-20261126T130500Z").unwrap();
        assert_eq!(f.kind, KeyKind::Signing);
        assert_eq!(f.kid, "sig-20261126T130500Z");
        assert_eq!(
            f.activates_at,
            humantime::parse_rfc3339("2026-11-26T13:05:00Z")
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        );
        assert!(parse_pem(
            b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "x"
        )
        .is_err());
    }

    #[test]
    fn symmetric_keys_need_a_kind() {
        let k = b64(&[7u8; 32]);
        let err = parse_jwk(format!(r#"{{"kty":"oct","k":"{k}"}}"#).as_bytes(), "s").unwrap_err();
        assert!(err.contains("kind"), "{err}");
        let f = parse_jwk(
            format!(r#"{{"kty":"oct","k":"{k}","kind":"registration","activates_at":5}}"#)
                .as_bytes(),
            "stem",
        )
        .unwrap();
        assert_eq!(
            (f.kind, f.kid.as_str(), f.activates_at),
            (KeyKind::Registration, "stem", 5)
        );
    }
}

//! Fixtures shared by the fuzz targets and by `examples/gen_seeds.rs`.
//!
//! Everything here is deterministic: the key ring is built from
//! `generate_set` and then given fixed key material, so the tokens and
//! sealed blobs committed under `seeds/` were made with the very keys the
//! fuzz targets verify and open with (a seed token really verifies, a seed
//! blob really opens), and a reproducer stays a reproducer across runs.
//!
//! These keys are test fixtures: public, never used anywhere else.

use std::sync::OnceLock;

use mcpgate::{Config, HostConfig};
use mcpgate::generate_set;
use mcpgate::{KeyFile, KeyKind, KeyMaterial, KeyRing};
use mcpgate::{Settings, Site};
use mcpgate::access::{self, AccessClaims, Expectations, VerifiedToken};
use mcpgate::grants::{
    ClientBinding, ClientRegistration, CodeGrant, ConsentRemembered, ConsentRequest,
    RefreshGrant,
};
use mcpgate::pkce::CodeChallenge;
use mcpgate::scope::Scope;

/// The fuzzers' clock: 2030-03-17. Fixed, so an input behaves the same on
/// every run.
pub const NOW: u64 = 1_900_000_000;

/// When the second ("next") set of keys activates: published and usable
/// for verifying and opening, never yet for signing or sealing.
pub const NEXT_ACTIVATION: u64 = NOW + 30 * 24 * 3600;

/// The two hosts of the fuzzers' config.
pub const LOOPBACK_ISSUER: &str = "http://127.0.0.1:8080";
pub const CLOUD_ISSUER: &str = "https://mcp.example.com";

fn fixed_material(kind: KeyKind, byte: u8) -> KeyMaterial {
    let seed = [byte; 32];
    match kind {
        KeyKind::Signing => {
            use ring::signature::KeyPair as _;
            let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
                .expect("any 32 bytes are an Ed25519 seed");
            let mut public = [0u8; 32];
            public.copy_from_slice(pair.public_key().as_ref());
            KeyMaterial::Ed25519 { seed, public }
        }
        KeyKind::Sealing | KeyKind::Registration => KeyMaterial::Symmetric { key: seed },
    }
}

/// One key of each kind active since 0 (`generate_set(0, "fz")`) plus one
/// of each kind activating at [`NEXT_ACTIVATION`], all with fixed material.
pub fn key_files() -> Vec<KeyFile> {
    let mut files = generate_set(0, "fz");
    files.extend(generate_set(NEXT_ACTIVATION, "fz2"));
    for (i, f) in files.iter_mut().enumerate() {
        f.material = fixed_material(f.kind, 0x11 * (i as u8 + 1));
    }
    files
}

/// The key ring every target uses, built once.
pub fn ring() -> &'static KeyRing {
    static RING: OnceLock<KeyRing> = OnceLock::new();
    RING.get_or_init(|| KeyRing::build(key_files(), 1, NOW).expect("fixture ring builds"))
}

/// The config of the brief: a loopback host (`redirect_uris =
/// ["loopback"]`) and a cloud host (Claude's callback exactly, ChatGPT's by
/// prefix), people from example.com.
pub fn config() -> Config {
    let mut c = Config::default();
    c.hosts.push(HostConfig {
        issuer: LOOPBACK_ISSUER.into(),
        redirect_uris: vec!["loopback".into()],
        client_id_hosts: None,
    });
    c.hosts.push(HostConfig {
        issuer: CLOUD_ISSUER.into(),
        redirect_uris: vec![
            "https://claude.ai/api/mcp/auth_callback".into(),
            "prefix:https://chatgpt.com/connector/oauth/".into(),
        ],
        client_id_hosts: None,
    });
    c.identity.allowed_domains = vec!["example.com".into()];
    c
}

pub fn settings() -> &'static Settings {
    static SETTINGS: OnceLock<Settings> = OnceLock::new();
    SETTINGS.get_or_init(|| Settings::from_config(&config()).expect("fixture config is valid"))
}

/// `sites()[0]` is the loopback host, `sites()[1]` the cloud one.
pub fn sites() -> &'static [Site] {
    &settings().sites
}

pub fn expectations() -> Expectations<'static> {
    let s = settings();
    Expectations {
        issuers: &s.issuers,
        audiences: &s.resources,
    }
}

/// Access-token claims that verify at [`NOW`] (index 0 and 1) and ones
/// that are refused for their content (the rest): expired, not yet valid,
/// another issuer, another audience.
pub fn sample_claims() -> Vec<(&'static str, AccessClaims)> {
    let base = AccessClaims {
        iss: CLOUD_ISSUER.into(),
        sub: "108234567890123456789".into(),
        aud: format!("{CLOUD_ISSUER}/mcp"),
        exp: NOW + 3600,
        iat: NOW - 10,
        nbf: NOW - 10,
        jti: "fz-jti-0000000000000001".into(),
        client_id: "claude".into(),
        scope: "mcp offline_access".into(),
        email: "person@example.com".into(),
        groups: vec![],
    };
    let mut out = vec![("valid_cloud", base.clone())];
    out.push((
        "valid_loopback",
        AccessClaims {
            iss: LOOPBACK_ISSUER.into(),
            aud: format!("{LOOPBACK_ISSUER}/mcp"),
            jti: "fz-jti-0000000000000002".into(),
            scope: "mcp".into(),
            ..base.clone()
        },
    ));
    out.push((
        "expired",
        AccessClaims {
            exp: NOW - 61,
            iat: NOW - 3700,
            nbf: NOW - 3700,
            ..base.clone()
        },
    ));
    out.push((
        "not_yet_valid",
        AccessClaims {
            nbf: NOW + 3600,
            ..base.clone()
        },
    ));
    out.push((
        "wrong_issuer",
        AccessClaims {
            iss: "https://evil.example".into(),
            ..base.clone()
        },
    ));
    out.push((
        "wrong_audience",
        AccessClaims {
            aud: format!("{CLOUD_ISSUER}/mcp-other"),
            ..base
        },
    ));
    out
}

/// Claims the verifier must accept at [`NOW`].
pub fn valid_claims() -> Vec<AccessClaims> {
    sample_claims().into_iter().take(2).map(|(_, c)| c).collect()
}

pub fn sample_registration() -> ClientRegistration {
    ClientRegistration {
        redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
        refresh: true,
        client_name: Some("Fuzz Client".into()),
        client_uri: Some("https://client.example".into()),
        scope: Some("mcp offline_access".into()),
        application_type: Some("native".into()),
        software_id: Some("fz".into()),
        software_version: Some("1.0".into()),
        issued_at: NOW - 100,
    }
}

pub fn sample_code() -> CodeGrant {
    CodeGrant {
        jti: "fz-code-1".into(),
        client: ClientBinding::of("claude"),
        redirect_uri: "https://claude.ai/api/mcp/auth_callback".into(),
        redirect_uri_sent: true,
        code_challenge: Some(CodeChallenge::s256(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        )),
        sub: "108234567890123456789".into(),
        email: "person@example.com".into(),
        groups: vec![],
        scope: Scope::granted(Some("mcp"), true).expect("a supported scope"),
        resource: format!("{CLOUD_ISSUER}/mcp"),
        iat: NOW - 5,
        exp: NOW + 55,
    }
}

pub fn sample_refresh() -> RefreshGrant {
    RefreshGrant {
        client: ClientBinding::of("claude"),
        sub: "108234567890123456789".into(),
        email: "person@example.com".into(),
        groups: vec![],
        scope: Scope::granted(Some("mcp offline_access"), true).expect("a supported scope"),
        resource: format!("{CLOUD_ISSUER}/mcp"),
        fam: "fz-family-1".into(),
        gen: 3,
        iat: NOW - 60,
        auth_time: NOW - 86_400,
        exp: NOW + 29 * 86_400,
    }
}

pub fn sample_consent_request() -> ConsentRequest {
    ConsentRequest {
        client: ClientBinding::of("claude"),
        redirect_uri: "https://claude.ai/api/mcp/auth_callback".into(),
        req: "x".repeat(43),
        email: "person@example.com".into(),
        jti: "fz-consent-form-jti-01".into(),
        exp: NOW + 600,
    }
}

pub fn sample_consent_remembered() -> ConsentRemembered {
    ConsentRemembered {
        client: ClientBinding::of("claude"),
        email: "person@example.com".into(),
        iat: NOW - 10,
        exp: NOW + 86_400,
    }
}

/// The fixed caller of the JSON-RPC target: a token the fixture ring
/// issued, verified.
pub fn jsonrpc_claims() -> VerifiedToken {
    let claims = sample_claims().remove(0).1;
    access::verify(ring(), &access::issue(ring(), &claims, NOW), &expectations(), NOW)
        .expect("the sample claims verify")
}

/// The seeds of one target, as committed (`seeds/<target>/`), read at
/// run time: the targets use them to tell the genuine tokens and blobs
/// from anything else that verifies.
pub fn read_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("seeds")
        .join(target);
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            if let Ok(b) = std::fs::read(e.path()) {
                out.push(b);
            }
        }
    }
    out
}

/// Whether the known, reported issue `name` is to be tolerated in this run
/// (`MCPGATE_FUZZ_KNOWN=name[,name…]`), so a long run can look for other
/// problems before the fix lands. Unset (the default, and what run.sh's
/// regression replay uses): every invariant is enforced.
pub fn known_issue(name: &str) -> bool {
    static KNOWN: OnceLock<Vec<String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| {
            std::env::var("MCPGATE_FUZZ_KNOWN")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|k| k == name)
}

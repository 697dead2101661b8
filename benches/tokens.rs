//! Micro-benchmarks of what every request pays for its tokens.
//!
//! `cargo bench --bench tokens`. Each group also runs a bare ring Ed25519
//! baseline on the same bytes, so the results read as ratios: how much of
//! a token check is the signature and how much is everything around it.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use mcpgate::access::{self, AccessClaims, Expectations};
use mcpgate::generate_set;
use mcpgate::grants::{ClientBinding, ClientRegistration, CodeGrant};
use mcpgate::pkce::CodeChallenge;
use mcpgate::scope::Scope;
use mcpgate::sealed;
use mcpgate::unix_now;
use mcpgate::verified::VerifiedTokens;
use mcpgate::{KeyMaterial, KeyRing};
use ring::signature::{self, KeyPair as _};
use std::hint::black_box;

const ISSUER: &str = "https://mcp.internal.example";
const RESOURCE: &str = "https://mcp.internal.example/mcp";
/// RFC 7636 Appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Fixture {
    ring: KeyRing,
    seed: [u8; 32],
    public: [u8; 32],
    now: u64,
}

fn fixture() -> Fixture {
    let now = unix_now();
    let files = generate_set(now - 10, "bench");
    let (seed, public) = files
        .iter()
        .find_map(|f| match &f.material {
            KeyMaterial::Ed25519 { seed, public } => Some((*seed, *public)),
            _ => None,
        })
        .expect("generate_set makes an Ed25519 signing key");
    let ring = KeyRing::build(files, 1, now).expect("a complete key set");
    Fixture {
        ring,
        seed,
        public,
        now,
    }
}

/// Claims the size of a real token (a sealed dynamic client id is long).
fn claims(now: u64, client_id: &str) -> AccessClaims {
    AccessClaims {
        iss: ISSUER.into(),
        sub: "108234567890123456789".into(),
        aud: RESOURCE.into(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: mcpgate::random_id(),
        client_id: client_id.into(),
        scope: "mcp".into(),
        email: "alice@example.com".into(),
        groups: vec![],
    }
}

fn registration(now: u64) -> ClientRegistration {
    ClientRegistration {
        redirect_uris: vec!["http://127.0.0.1:33418/callback".into()],
        refresh: true,
        client_name: Some("Claude Code (bench)".into()),
        client_uri: None,
        scope: None,
        application_type: Some("native".into()),
        software_id: None,
        software_version: None,
        issued_at: now,
    }
}

fn code_grant(now: u64, client_id: &str) -> CodeGrant {
    CodeGrant {
        jti: mcpgate::random_id(),
        client: ClientBinding::of(client_id),
        redirect_uri: "http://127.0.0.1:33418/callback".into(),
        redirect_uri_sent: true,
        code_challenge: Some(CodeChallenge::s256(VERIFIER)),
        sub: "108234567890123456789".into(),
        email: "alice@example.com".into(),
        groups: vec![],
        scope: Scope::granted(Some("mcp"), false).expect("a supported scope"),
        resource: RESOURCE.into(),
        iat: now,
        exp: now + 600,
    }
}

/// Bounded: 0.5 s warm-up + 2 s measurement, 30 samples per benchmark.
fn benches(c: &mut Criterion) {
    let fx = fixture();
    let now = fx.now;
    let client_id = sealed::seal(&fx.ring, &registration(now), now).into_string();
    let token = access::issue(&fx.ring, &claims(now, &client_id), now);
    let issuers = vec![ISSUER.to_string()];
    let audiences = vec![RESOURCE.to_string()];
    let expect = Expectations {
        issuers: &issuers,
        audiences: &audiences,
    };

    // The bytes the signature covers, and the signature, for the baseline.
    let (signing_input, sig_b64) = token.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).unwrap();
    let public = signature::UnparsedPublicKey::new(&signature::ED25519, fx.public);
    assert!(public.verify(signing_input.as_bytes(), &sig).is_ok());
    let pair = signature::Ed25519KeyPair::from_seed_and_public_key(&fx.seed, &fx.public).unwrap();
    assert_eq!(pair.public_key().as_ref(), &fx.public);

    let mut g = c.benchmark_group("access_token");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("ring_ed25519_verify (baseline)", |b| {
        b.iter(|| {
            public
                .verify(black_box(signing_input.as_bytes()), black_box(&sig))
                .unwrap()
        })
    });
    g.bench_function("ring_ed25519_sign (baseline)", |b| {
        b.iter(|| pair.sign(black_box(signing_input.as_bytes())))
    });
    let c1 = claims(now, &client_id);
    g.bench_function("issue", |b| {
        b.iter(|| access::issue(&fx.ring, black_box(&c1), now))
    });
    g.bench_function("verify_cold", |b| {
        b.iter(|| access::verify(&fx.ring, black_box(&token), &expect, now).unwrap())
    });
    let cache = VerifiedTokens::new(65_536);
    cache.verify(&fx.ring, &token, &expect, now).unwrap();
    g.bench_function("verify_cached_hot", |b| {
        b.iter(|| {
            cache
                .verify(&fx.ring, black_box(&token), &expect, now)
                .unwrap()
        })
    });
    g.finish();

    // Every call a token never seen before, as in the load bench's (c):
    // its bytes are cold, the branch predictor has not learned its
    // signature, and a cache miss inserts (and, once full, evicts). Tokens
    // are minted outside the timing; the baseline verifies such tokens
    // with nothing else.
    let fresh = || access::issue(&fx.ring, &claims(now, &client_id), now);
    let mut g = c.benchmark_group("access_token_distinct");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("ring_ed25519_verify (baseline)", |b| {
        b.iter_batched(
            || {
                let t = fresh();
                let (input, sig) = t.rsplit_once('.').unwrap();
                (input.to_string(), URL_SAFE_NO_PAD.decode(sig).unwrap())
            },
            |(input, sig)| public.verify(input.as_bytes(), &sig).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("verify_cold", |b| {
        b.iter_batched(
            fresh,
            |t| access::verify(&fx.ring, &t, &expect, now).unwrap(),
            BatchSize::SmallInput,
        )
    });
    // The default size, full after the first 16,384.
    let cache = VerifiedTokens::new(16_384);
    g.bench_function("verify_miss_and_insert", |b| {
        b.iter_batched(
            fresh,
            |t| cache.verify(&fx.ring, &t, &expect, now).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let mut g = c.benchmark_group("sealed");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let grant = code_grant(now, &client_id);
    g.bench_function("seal_code", |b| {
        b.iter(|| sealed::seal(&fx.ring, black_box(&grant), now))
    });
    let code = sealed::seal(&fx.ring, &grant, now).into_string();
    g.bench_function("open_code", |b| {
        b.iter(|| sealed::open::<CodeGrant>(&fx.ring, black_box(&code), now).unwrap())
    });
    g.bench_function("open_client_id", |b| {
        b.iter(|| sealed::open::<ClientRegistration>(&fx.ring, black_box(&client_id), now).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("pkce");
    g.sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let challenge = CodeChallenge::s256(VERIFIER);
    g.bench_function("s256_verify", |b| {
        b.iter(|| challenge.verify(black_box(VERIFIER)).unwrap())
    });
    g.finish();

    println!(
        "sizes: access token {} B, client_id {} B, code {} B",
        token.len(),
        client_id.len(),
        code.len()
    );
}

criterion_group!(tokens, benches);
criterion_main!(tokens);

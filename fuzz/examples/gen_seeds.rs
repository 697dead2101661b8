//! Writes the token and blob seeds (`seeds/access_token/`,
//! `seeds/sealed_blob/`) and `dicts/jose.dict`, from the fixture keys.
//!
//! Run from `fuzz/` with the plain toolchain (no fuzzing flags):
//!
//! ```sh
//! cargo run --example gen_seeds
//! ```
//!
//! Access tokens are deterministic (Ed25519), so rerunning rewrites the
//! same files. Sealed blobs made by `sealed::seal` have a random IV: an
//! existing seed file that still opens to the same value is kept, so a
//! rerun changes nothing unless the fixtures changed. The hand-made blobs
//! use fixed IVs.
//!
//! For each seed it prints what the library makes of it at `NOW`.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mcpgate::{KeyKind, KeyMaterial};
use mcpgate::access;
use mcpgate::grants::{
    ClientRegistration, CodeGrant, ConsentRemembered, ConsentRequest, RefreshGrant,
};
use mcpgate::sealed::{self, Sealable};
use mcpgate_fuzz::*;
use serde_json::{json, Value};

fn b64(b: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// (kid, material) of the fixture key of `kind` activating at `at`.
fn key(kind: KeyKind, at: u64) -> (String, KeyMaterial) {
    let f = key_files()
        .into_iter()
        .find(|f| f.kind == kind && f.activates_at == at)
        .expect("fixture key");
    (f.kid, f.material)
}

/// A JWS signed by hand with the fixture signing key: any header, any
/// payload bytes.
fn jws(header: &Value, payload: &[u8], at: u64) -> String {
    let (_, m) = key(KeyKind::Signing, at);
    let KeyMaterial::Ed25519 { seed, .. } = m else {
        unreachable!()
    };
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let input = format!("{}.{}", b64(header.to_string()), b64(payload));
    let sig = pair.sign(input.as_bytes());
    format!("{input}.{}", b64(sig.as_ref()))
}

/// A JWE `dir`/A256GCM sealed by hand: any header, any payload, fixed IV.
fn jwe(header: &Value, payload: &[u8], key_bytes: &[u8; 32], iv: [u8; 12]) -> String {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key_bytes).unwrap());
    let h = b64(header.to_string());
    let mut buf = payload.to_vec();
    let tag = k
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(iv),
            Aad::from(h.as_bytes()),
            &mut buf,
        )
        .unwrap();
    format!("{h}..{}.{}.{}", b64(iv), b64(&buf), b64(tag.as_ref()))
}

fn sym(kind: KeyKind, at: u64) -> (String, [u8; 32]) {
    let (kid, m) = key(kind, at);
    let KeyMaterial::Symmetric { key } = m else {
        unreachable!()
    };
    (kid, key)
}

fn write(dir: &Path, name: &str, content: &str) {
    std::fs::write(dir.join(name), content).unwrap();
}

fn describe_token(t: &str) -> String {
    match access::verify(ring(), t, &expectations(), NOW) {
        Ok(c) => format!("Ok(sub={}, aud={})", c.sub(), c.aud()),
        Err(e) => format!("Err({e:?})"),
    }
}

fn describe_blob(t: &str) -> String {
    let r = ring();
    let mut out = Vec::new();
    macro_rules! one {
        ($ty:ty) => {
            match sealed::open::<$ty>(r, t, NOW) {
                Ok(_) => out.push(format!("{}:Ok", <$ty>::TYP)),
                Err(e) => out.push(format!("{}:{e:?}", <$ty>::TYP)),
            }
        };
    }
    one!(CodeGrant);
    one!(ClientRegistration);
    one!(RefreshGrant);
    one!(ConsentRequest);
    one!(ConsentRemembered);
    out.join(" ")
}

/// Keeps an existing sealed seed when it still opens to `value`.
fn seal_seed<T: Sealable + PartialEq>(dir: &Path, name: &str, value: &T, at: u64) {
    let path = dir.join(name);
    if let Ok(old) = std::fs::read_to_string(&path) {
        if sealed::open::<T>(ring(), &old, NOW).is_ok_and(|v| &v == value) {
            println!("sealed_blob/{name}: kept; {}", describe_blob(&old));
            return;
        }
    }
    let s = sealed::seal(ring(), value, at).into_string();
    println!("sealed_blob/{name}: {}", describe_blob(&s));
    write(dir, name, &s);
}

fn main() {
    let root: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf());
    let ring = ring();
    let (sig_kid, _) = key(KeyKind::Signing, 0);
    let mut dict: Vec<String> = Vec::new();

    // ===== access tokens =====
    let dir = root.join("seeds/access_token");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, c) in sample_claims() {
        let t = access::issue(ring, &c, NOW);
        println!("access_token/{name}: {}", describe_token(&t));
        write(&dir, name, &t);
    }
    let c0 = sample_claims().remove(0).1;
    let t = access::issue(ring, &c0, NEXT_ACTIVATION);
    println!("access_token/next_key: {}", describe_token(&t));
    write(&dir, "next_key", &t);

    let payload = serde_json::to_vec(&c0).unwrap();
    let hdr = |alg: &str, typ: &str| json!({"alg": alg, "typ": typ, "kid": sig_kid});
    let mut hand: Vec<(&str, String)> = Vec::new();
    for alg in ["none", "HS256", "ES256", "RS256"] {
        let h = b64(hdr(alg, "at+jwt").to_string());
        hand.push((
            match alg {
                "none" => "alg_none",
                "HS256" => "alg_hs256",
                "ES256" => "alg_es256",
                _ => "alg_rs256",
            },
            format!("{h}.{}.", b64(&payload)),
        ));
    }
    hand.push(("typ_jwt", jws(&hdr("EdDSA", "JWT"), &payload, 0)));
    hand.push((
        "no_kid",
        jws(&json!({"alg": "EdDSA", "typ": "at+jwt"}), &payload, 0),
    ));
    hand.push((
        "unknown_kid",
        jws(&json!({"alg": "EdDSA", "typ": "at+jwt", "kid": "sig-nope"}), &payload, 0),
    ));
    hand.push((
        "crit_header",
        jws(
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": sig_kid, "crit": ["exp"], "exp": 1}),
            &payload,
            0,
        ),
    ));
    hand.push((
        "b64_false",
        jws(
            &json!({"alg": "EdDSA", "typ": "at+jwt", "kid": sig_kid, "b64": false, "crit": ["b64"]}),
            &payload,
            0,
        ),
    ));
    let mut extra: Value = serde_json::to_value(&c0).unwrap();
    extra["extra"] = json!({"nested": [1, 2, 3]});
    hand.push(("extra_claim", jws(&hdr("EdDSA", "at+jwt"), extra.to_string().as_bytes(), 0)));
    let mut missing = extra.clone();
    missing.as_object_mut().unwrap().remove("email");
    hand.push(("missing_claim", jws(&hdr("EdDSA", "at+jwt"), missing.to_string().as_bytes(), 0)));
    let mut float_exp = serde_json::to_value(&c0).unwrap();
    float_exp["exp"] = json!(1.9e9);
    hand.push((
        "float_exp",
        jws(&hdr("EdDSA", "at+jwt"), float_exp.to_string().as_bytes(), 0),
    ));
    let mut huge = serde_json::to_value(&c0).unwrap();
    huge["exp"] = json!(u64::MAX);
    huge["nbf"] = json!(0);
    hand.push(("max_exp", jws(&hdr("EdDSA", "at+jwt"), huge.to_string().as_bytes(), 0)));
    hand.push((
        "payload_not_json",
        jws(&hdr("EdDSA", "at+jwt"), b"not json", 0),
    ));
    // The same claims object twice: which `sub` wins?
    let dup = format!(
        "{{\"sub\":\"evil\",{}",
        &String::from_utf8(payload.clone()).unwrap()[1..]
    );
    hand.push(("duplicate_sub", jws(&hdr("EdDSA", "at+jwt"), dup.as_bytes(), 0)));
    // Valid, then with the signature's last character changed (the
    // base64url of a 64-byte signature has 4 spare bits at the end).
    let good = access::issue(ring, &c0, NOW);
    let mut tweaked = good.clone().into_bytes();
    let last = tweaked.len() - 1;
    tweaked[last] = if tweaked[last] == b'A' { b'B' } else { b'A' };
    hand.push(("sig_last_char", String::from_utf8(tweaked).unwrap()));
    hand.push(("padded_sig", format!("{good}==")));
    hand.push(("json_serialization", {
        let p: Vec<&str> = good.split('.').collect();
        json!({"protected": p[0], "payload": p[1], "signature": p[2]}).to_string()
    }));
    for (name, t) in &hand {
        println!("access_token/{name}: {}", describe_token(t));
        write(&dir, name, t);
    }

    // ===== sealed blobs =====
    let dir = root.join("seeds/sealed_blob");
    std::fs::create_dir_all(&dir).unwrap();
    seal_seed(&dir, "code", &sample_code(), NOW);
    seal_seed(&dir, "client", &sample_registration(), NOW);
    seal_seed(&dir, "refresh", &sample_refresh(), NOW);
    seal_seed(&dir, "consent_request", &sample_consent_request(), NOW);
    seal_seed(&dir, "consent", &sample_consent_remembered(), NOW);
    seal_seed(&dir, "code_next_key", &sample_code(), NEXT_ACTIVATION);
    seal_seed(&dir, "client_next_key", &sample_registration(), NEXT_ACTIVATION);
    let mut expired = sample_code();
    expired.exp = NOW - 1;
    seal_seed(&dir, "code_expired", &expired, NOW);

    let (tok_kid, tok_key) = sym(KeyKind::Sealing, 0);
    let (reg_kid, reg_key) = sym(KeyKind::Registration, 0);
    let code_json = serde_json::to_vec(&sample_code()).unwrap();
    let reg_json = serde_json::to_vec(&sample_registration()).unwrap();
    let h = |typ: &str, kid: &str| json!({"alg": "dir", "enc": "A256GCM", "typ": typ, "kid": kid});
    let mut hand: Vec<(&str, String)> = Vec::new();
    let iv = |n: u8| [n; 12];
    hand.push(("zip_def", {
        let mut x = h("code", &tok_kid);
        x["zip"] = "DEF".into();
        jwe(&x, &code_json, &tok_key, iv(1))
    }));
    hand.push(("alg_a256kw", {
        let mut x = h("code", &tok_kid);
        x["alg"] = "A256KW".into();
        jwe(&x, &code_json, &tok_key, iv(2))
    }));
    hand.push(("alg_rsa_oaep", {
        let mut x = h("code", &tok_kid);
        x["alg"] = "RSA-OAEP-256".into();
        jwe(&x, &code_json, &tok_key, iv(3))
    }));
    hand.push(("enc_a128gcm", {
        let mut x = h("code", &tok_kid);
        x["enc"] = "A128GCM".into();
        jwe(&x, &code_json, &tok_key, iv(4))
    }));
    hand.push(("enc_cbc_hs", {
        let mut x = h("code", &tok_kid);
        x["enc"] = "A256CBC-HS512".into();
        jwe(&x, &code_json, &tok_key, iv(5))
    }));
    hand.push(("crit", {
        let mut x = h("code", &tok_kid);
        x["crit"] = json!(["exp"]);
        x["exp"] = 1.into();
        jwe(&x, &code_json, &tok_key, iv(6))
    }));
    hand.push(("no_kid", {
        let mut x = h("code", &tok_kid);
        x.as_object_mut().unwrap().remove("kid");
        jwe(&x, &code_json, &tok_key, iv(7))
    }));
    hand.push(("unknown_kid", jwe(&h("code", "seal-nope"), &code_json, &tok_key, iv(8))));
    // A client registration sealed with a tokens-class key (and the
    // reverse): the kid is looked up in the wrong family.
    hand.push(("client_with_token_key", jwe(&h("client", &tok_kid), &reg_json, &tok_key, iv(9))));
    hand.push(("code_with_reg_key", jwe(&h("code", &reg_kid), &code_json, &reg_key, iv(10))));
    // Right typ and key, but another kind's payload, or not JSON.
    hand.push(("code_typ_client_payload", jwe(&h("code", &tok_kid), &reg_json, &tok_key, iv(11))));
    hand.push(("payload_not_json", jwe(&h("code", &tok_kid), b"\x00\xffnot json", &tok_key, iv(12))));
    hand.push(("empty_payload", jwe(&h("refresh", &tok_kid), b"", &tok_key, iv(13))));
    hand.push(("typ_missing", {
        let mut x = h("code", &tok_kid);
        x.as_object_mut().unwrap().remove("typ");
        jwe(&x, &code_json, &tok_key, iv(14))
    }));
    // A non-empty encrypted-key part with `dir`.
    hand.push(("dir_with_encrypted_key", {
        let s = jwe(&h("code", &tok_kid), &code_json, &tok_key, iv(15));
        s.replacen("..", ".AAAA.", 1)
    }));
    // Truncated tag, short IV.
    hand.push(("short_tag", {
        let s = jwe(&h("code", &tok_kid), &code_json, &tok_key, iv(16));
        s[..s.len() - 4].to_owned()
    }));
    hand.push(("short_iv", {
        let s = jwe(&h("code", &tok_kid), &code_json, &tok_key, iv(17));
        let p: Vec<&str> = s.split('.').collect();
        format!("{}.{}.{}.{}.{}", p[0], p[1], &p[2][..8], p[3], p[4])
    }));
    for (name, t) in &hand {
        println!("sealed_blob/{name}: {}", describe_blob(t));
        write(&dir, name, t);
    }

    // ===== dictionary for both =====
    for v in [
        json!({"alg":"EdDSA","typ":"at+jwt","kid": sig_kid}),
        json!({"typ":"at+jwt","alg":"EdDSA","kid": sig_kid}),
        json!({"alg":"none"}),
        json!({"alg":"dir","enc":"A256GCM"}),
        json!({"alg":"dir","enc":"A256GCM","zip":"DEF"}),
        json!({"enc":"A256GCM","typ":"code","kid": tok_kid,"alg":"dir"}),
        json!({"enc":"A256GCM","typ":"client","kid": reg_kid,"alg":"dir"}),
        json!({"enc":"A256GCM","typ":"refresh","kid": tok_kid,"alg":"dir"}),
    ] {
        dict.push(b64(v.to_string()));
    }
    for s in [
        "{\"", "\":\"", "\",\"", "\"}", "alg", "typ", "kid", "enc", "zip", "crit", "at+jwt",
        "EdDSA", "dir", "A256GCM", "DEF", &sig_kid, &tok_kid, &reg_kid,
    ] {
        dict.push(b64(s));
    }
    dict.push(".".into());
    dict.push("..".into());
    let mut text = String::from("# Generated by examples/gen_seeds.rs: base64url JOSE fragments.\n");
    for (i, d) in dict.iter().enumerate() {
        text.push_str(&format!("jose_{i}=\"{d}\"\n"));
    }
    std::fs::create_dir_all(root.join("dicts")).unwrap();
    std::fs::write(root.join("dicts/jose.dict"), text).unwrap();
    println!("dicts/jose.dict: {} entries", dict.len());
}

//! `private_key_jwt` (RFC 7523 §2.2, §3; OpenID Connect Core §9): a client
//! whose metadata document says so proves itself at the token endpoint
//! with a JWT signed by a key of its document's `jwks` / `jwks_uri`.
//!
//! Checked here: the signature (an asymmetric algorithm only, by the
//! header's `kid` when it names one), `iss` = `sub` = the client_id, `aud`
//! naming this host (its issuer or its token endpoint), `exp` in the
//! future and at most [`MAX_LIFETIME`] away, `nbf` if present, and `jti`
//! used once per replica.

use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::Value;

use super::error::OAuthError;
use crate::cimd::document::{DocumentAuth, KeySource};
use crate::cimd::Resolver;
use crate::oauth::client::Client;
use crate::settings::Site;
use crate::store::{Once, Store};

/// Longest assertion lifetime accepted: it bounds how long a `jti` must be
/// remembered.
const MAX_LIFETIME: u64 = 3600;

/// Clock skew tolerated on `exp` and `nbf`.
const SKEW: u64 = 30;

/// Keys tried at most when the header names no `kid`.
const MAX_KEYS_TRIED: usize = 8;

fn bad(why: &'static str) -> OAuthError {
    OAuthError::invalid_client(format!("client assertion refused: {why}"))
}

/// A verifier of `alg` for `jwk`; `None` for symmetric or unknown
/// algorithms (never `none`, never HMAC: the client has no shared secret).
fn verifier(alg: &str, jwk: &Jwk) -> Option<Box<dyn JwsVerifier>> {
    use josekit::jws::*;
    Some(match alg {
        "RS256" => Box::new(RS256.verifier_from_jwk(jwk).ok()?),
        "RS384" => Box::new(RS384.verifier_from_jwk(jwk).ok()?),
        "RS512" => Box::new(RS512.verifier_from_jwk(jwk).ok()?),
        "PS256" => Box::new(PS256.verifier_from_jwk(jwk).ok()?),
        "PS384" => Box::new(PS384.verifier_from_jwk(jwk).ok()?),
        "PS512" => Box::new(PS512.verifier_from_jwk(jwk).ok()?),
        "ES256" => Box::new(ES256.verifier_from_jwk(jwk).ok()?),
        "ES384" => Box::new(ES384.verifier_from_jwk(jwk).ok()?),
        "EdDSA" => Box::new(EdDSA.verifier_from_jwk(jwk).ok()?),
        _ => return None,
    })
}

/// Checks `assertion` for `client`, a document client using
/// `private_key_jwt`, on the token endpoint of `site`.
pub(crate) async fn verify(
    client: &Client<'_>,
    assertion: &str,
    documents: &Resolver,
    store: &Store,
    site: &Site,
    now: u64,
) -> Result<(), OAuthError> {
    let Client::Document { url, document } = client else {
        return Err(bad("only private_key_jwt clients send one"));
    };
    let DocumentAuth::PrivateKeyJwt(keys) = &document.auth else {
        return Err(bad("this client's document does not use private_key_jwt"));
    };
    let jwks = match keys {
        KeySource::Inline(v) => v.clone(),
        KeySource::Uri(u) => documents
            .jwks(u)
            .await
            .map_err(|e| OAuthError::client_document(e, "the client's jwks_uri: "))?,
    };
    let header = josekit::jwt::decode_header(assertion).map_err(|_| bad("not a JWT"))?;
    let alg = header
        .claim("alg")
        .and_then(Value::as_str)
        .ok_or(bad("no alg"))?
        .to_owned();
    let kid = header
        .claim("kid")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let candidates: Vec<Jwk> = jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_object().cloned())
        .filter(|k| match &kid {
            Some(kid) => k.get("kid").and_then(Value::as_str) == Some(kid),
            None => true,
        })
        .filter_map(|k| Jwk::from_map(k).ok())
        .take(MAX_KEYS_TRIED)
        .collect();
    let payload = candidates
        .iter()
        .filter_map(|jwk| verifier(&alg, jwk))
        .find_map(|v| josekit::jwt::decode_with_verifier(assertion, v.as_ref()).ok())
        .map(|(payload, _)| payload)
        .ok_or(bad("no key of the client's JWKS verifies its signature"))?;

    let client_id = url.as_str();
    if payload.issuer() != Some(client_id) || payload.subject() != Some(client_id) {
        return Err(bad("iss and sub must be the client_id"));
    }
    let token_endpoint = format!("{}/oauth/token", site.issuer);
    let aud_ok = payload
        .audience()
        .is_some_and(|a| a.iter().any(|a| *a == site.issuer || *a == token_endpoint));
    if !aud_ok {
        return Err(bad("aud must name this server's issuer or token endpoint"));
    }
    let number = |name: &str| payload.claim(name).and_then(Value::as_u64);
    let exp = number("exp").ok_or(bad("exp is required"))?;
    // Saturating: `exp` is the client's number, up to u64::MAX.
    if exp.saturating_add(SKEW) <= now {
        return Err(bad("it has expired"));
    }
    if exp > now + MAX_LIFETIME {
        return Err(bad("it lives longer than an hour"));
    }
    if number("nbf").is_some_and(|nbf| nbf > now + SKEW) {
        return Err(bad("it is not valid yet"));
    }
    let jti = payload
        .jwt_id()
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(bad("jti is required"))?;
    // RFC 7523 §3 item 7: a `jti` is used once, in the store like codes
    // (per replica, or across replicas with a shared one). Keyed by a
    // digest of the pair: one client's `jti` never collides with another's,
    // and the id is short.
    let id = assertion_id(client_id, jti);
    let first = store
        .first_use(Once::ClientAssertion, &id, exp.saturating_add(SKEW), now)
        .await
        .map_err(OAuthError::store)?;
    if !first {
        return Err(bad("it was already used"));
    }
    Ok(())
}

/// The store id of `client_id`'s assertion `jti`: 128 bits of SHA-256 of
/// the pair, base64url (22 characters).
fn assertion_id(client_id: &str, jti: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(client_id.as_bytes());
    ctx.update(&[0]);
    ctx.update(jti.as_bytes());
    base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &ctx.finish().as_ref()[..16],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_assertion_id_is_used_once_per_client() {
        let a = assertion_id("https://a.example/c", "j1");
        assert_eq!(a.len(), 22, "fits the memory store's inline ids");
        assert_ne!(a, assertion_id("https://b.example/c", "j1"));
        assert_ne!(a, assertion_id("https://a.example/c", "j2"));
        // No concatenation ambiguity: the pair is separated.
        assert_ne!(
            assertion_id("https://a.example/cj", "1"),
            assertion_id("https://a.example/c", "j1")
        );
        let store = Store::new(&crate::settings::StoreSettings::Memory).unwrap();
        let once = |id: String, now| {
            let store = &store;
            async move { store.first_use(Once::ClientAssertion, &id, 100, now).await }
        };
        assert_eq!(once(a.clone(), 1).await, Ok(true));
        assert_eq!(once(a, 2).await, Ok(false));
        assert_eq!(
            once(assertion_id("https://b.example/c", "j1"), 2).await,
            Ok(true)
        );
    }
}

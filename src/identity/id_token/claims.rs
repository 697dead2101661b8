//! One ID token against one JWKS: the RS256 signature, then the claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::{IdTokenError, Jwks, LEEWAY_SECS};
use crate::identity::IdentityError;
use crate::settings::id_token::Expected;

/// Checks `token` against `keys` and `expected` at `now`: signature first,
/// then the claims. `email` is the (lowercased) email of the identity
/// headers; `allowed_domains` are lowercased. Returns the token's `sub`:
/// the person's stable id, as verified as the email.
pub(crate) fn check(
    expected: &Expected,
    keys: &Jwks,
    token: &str,
    email: Option<&str>,
    allowed_domains: &[String],
    now: u64,
) -> Result<String, IdentityError> {
    let bad = |e: IdTokenError| IdentityError::IdToken(e);
    // 1. The compact JWS and its signature.
    let mut parts = token.split('.');
    let (Some(h64), Some(p64), Some(s64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(IdTokenError::Malformed));
    };
    let decode = |s: &str| {
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad(IdTokenError::Malformed))
    };
    let header: Map<String, Value> =
        serde_json::from_slice(&decode(h64)?).map_err(|_| bad(IdTokenError::Malformed))?;
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => {}
        Some(other) => return Err(bad(IdTokenError::Algorithm(shown(other)))),
        None => return Err(bad(IdTokenError::Algorithm("(none)".into()))),
    }
    if header.contains_key("crit") {
        return Err(bad(IdTokenError::Critical));
    }
    let Some(kid) = header.get("kid").and_then(Value::as_str) else {
        return Err(bad(IdTokenError::NoKid));
    };
    let Some(key) = keys.keys.get(kid) else {
        return Err(bad(IdTokenError::UnknownKid(shown(kid))));
    };
    let signature = decode(s64)?;
    let signed = &token.as_bytes()[..h64.len() + 1 + p64.len()];
    ring::signature::RsaPublicKeyComponents {
        n: &key.n,
        e: &key.e,
    }
    .verify(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        signed,
        &signature,
    )
    .map_err(|_| bad(IdTokenError::BadSignature))?;

    // 2. The claims, now that they are the issuer's.
    let claims: Map<String, Value> =
        serde_json::from_slice(&decode(p64)?).map_err(|_| bad(IdTokenError::Malformed))?;
    match claims.get("iss").and_then(Value::as_str) {
        Some(iss) if expected.issuers.iter().any(|i| i == iss) => {}
        _ => return Err(bad(IdTokenError::Issuer)),
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => *a == expected.audience,
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str() == Some(expected.audience.as_str())),
        _ => false,
    };
    // OIDC Core §3.1.3.7: an `azp`, when present, is the client itself.
    let azp_ok = match claims.get("azp") {
        None => true,
        Some(v) => v.as_str() == Some(expected.audience.as_str()),
    };
    if !aud_ok || !azp_ok {
        return Err(bad(IdTokenError::Audience));
    }
    let exp = numeric_date(&claims, "exp")?.ok_or(bad(IdTokenError::Claim("exp")))?;
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(bad(IdTokenError::Expired));
    }
    let iat = numeric_date(&claims, "iat")?.ok_or(bad(IdTokenError::Claim("iat")))?;
    if iat > now.saturating_add(LEEWAY_SECS) {
        return Err(bad(IdTokenError::NotYetValid));
    }
    if let Some(nbf) = numeric_date(&claims, "nbf")? {
        if nbf > now.saturating_add(LEEWAY_SECS) {
            return Err(bad(IdTokenError::NotYetValid));
        }
    }
    // OIDC Core §2: `sub` is required, a non-empty string of at most 255
    // ASCII characters; held to the identity headers' rule, since a code
    // seals it like them.
    let sub = match claims.get("sub").and_then(Value::as_str) {
        Some(sub)
            if !sub.is_empty() && sub.len() <= 255 && crate::identity::is_identity_text(sub) =>
        {
            sub.to_owned()
        }
        _ => return Err(bad(IdTokenError::Claim("sub"))),
    };
    if claims.get("email_verified") != Some(&Value::Bool(true)) {
        return Err(bad(IdTokenError::EmailNotVerified));
    }
    let Some(token_email) = claims.get("email").and_then(Value::as_str) else {
        return Err(bad(IdTokenError::Claim("email")));
    };
    let token_email = token_email.to_ascii_lowercase();
    if let Some(email) = email {
        if !token_email.eq_ignore_ascii_case(email) {
            return Err(bad(IdTokenError::EmailMismatch));
        }
    }
    // 3. Google's hosted domain: the Workspace the account belongs to. A
    //    personal account has none.
    match claims.get("hd") {
        Some(Value::String(hd)) => {
            let hd = hd.to_ascii_lowercase();
            if !allowed_domains.contains(&hd) {
                return Err(IdentityError::DomainNotAllowed(format!(
                    "{token_email} (Google Workspace domain {})",
                    shown(&hd)
                )));
            }
        }
        None => {
            return Err(IdentityError::DomainNotAllowed(format!(
                "{token_email} (not a Google Workspace account: no hd claim)"
            )))
        }
        Some(_) => return Err(bad(IdTokenError::Claim("hd"))),
    }
    Ok(sub)
}

/// A NumericDate claim as whole seconds (fractions are cut).
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, IdentityError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) => Ok(Some(n)),
            None => match v.as_f64() {
                Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
                _ => Err(IdentityError::IdToken(IdTokenError::Claim(name))),
            },
        },
    }
}

/// An untrusted value, safe to show in a page or a log line.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect();
    if s.len() > out.len() {
        out.push('…');
    }
    out
}

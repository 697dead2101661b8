//! Remember-cookies: an Allow, sealed ([`ConsentRemembered`]) and bound to
//! the client and the person, so the consent page is skipped until it
//! expires. Read from every `Cookie` header within a byte budget; at most
//! [`MAX_REMEMBERED`] kept per browser.

use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};

use crate::keys::KeyRing;
use crate::settings::Scheme;
use crate::tokens::grants::{ClientBinding, ConsentRemembered};
use crate::tokens::sealed;

/// Remember-cookies are named this plus 16 characters of the client binding.
pub(super) const COOKIE_PREFIX: &str = "mcpgate_consent_";

/// `Cookie` header bytes looked at, all headers together; the rest is
/// ignored (an oversized header only costs a consent page).
pub(super) const MAX_COOKIE_BYTES: usize = 16 * 1024;
/// Cookies of the right name opened at most (each is a decryption).
const MAX_COOKIE_CANDIDATES: usize = 4;

/// The name of the remember-cookie of `client`.
pub(super) fn name(client: &ClientBinding) -> String {
    let short: String = client.as_str().chars().take(16).collect();
    format!("{COOKIE_PREFIX}{short}")
}

/// The `Set-Cookie` value remembering an Allow, or `None` when remembering
/// is off (`consent_ttl = "0s"`). `Secure` unless the host is `http`
/// (a loopback dev server, where a browser would drop a Secure cookie).
pub(super) fn remember(
    ring: &KeyRing,
    client: &ClientBinding,
    email: &str,
    ttl: Duration,
    scheme: Scheme,
    now: u64,
) -> Option<HeaderValue> {
    let ttl = ttl.as_secs();
    if ttl == 0 {
        return None;
    }
    let value = ConsentRemembered {
        client: client.clone(),
        email: email.to_owned(),
        iat: now,
        exp: now + ttl,
    };
    let sealed = sealed::seal(ring, &value, now);
    HeaderValue::from_str(&format!(
        "{}={}; Max-Age={ttl}; Path=/oauth/; HttpOnly; SameSite=Lax{}",
        name(client),
        sealed.as_str(),
        secure_attribute(scheme)
    ))
    .ok()
}

/// Whether a remember-cookie in `headers` says this person already allowed
/// this client. A cookie that does not open or names someone else is
/// ignored.
pub(super) fn remembered(
    ring: &KeyRing,
    headers: &HeaderMap,
    client: &ClientBinding,
    email: &str,
    now: u64,
) -> bool {
    cookie_values(headers, &name(client))
        .into_iter()
        .take(MAX_COOKIE_CANDIDATES)
        .any(|v| {
            matches!(
                sealed::open::<ConsentRemembered>(ring, v, now),
                Ok(c) if c.client == *client && c.email == email
            )
        })
}

/// The values of every cookie called `name`, from every `Cookie` header
/// (RFC 6265 §5.4: `a=1; b=2`; HTTP/2 may split them over several
/// headers), looking at no more than [`MAX_COOKIE_BYTES`] in all. Values
/// that are not visible ASCII are skipped.
pub(super) fn cookie_values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    cookies(headers)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect()
}

/// Every `name=value` cookie pair in `headers`, within
/// [`MAX_COOKIE_BYTES`] in all, values unquoted; pairs whose name or value
/// is not visible ASCII are skipped.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    let mut budget = MAX_COOKIE_BYTES;
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .map_while(move |h| {
            let bytes = h.as_bytes();
            if budget == 0 {
                return None;
            }
            let bytes = &bytes[..bytes.len().min(budget)];
            budget -= bytes.len();
            Some(bytes)
        })
        .flat_map(|bytes| bytes.split(|b| *b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (n, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            let visible = |s: &[u8]| !s.is_empty() && s.iter().all(|b| (0x21..=0x7e).contains(b));
            if !visible(n) || !visible(v) {
                return None;
            }
            Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?))
        })
}

/// Remember-cookies one browser keeps at most. Each is ~300 bytes on every
/// `/oauth/` request: without a bound, a person who allowed many cloud
/// clients would send a `Cookie` header past the server's (or a proxy's)
/// header limit and be refused every sign-in until the cookies expired.
pub(super) const MAX_REMEMBERED: usize = 16;

/// `Set-Cookie` values expiring this browser's oldest remember-cookies, so
/// that with the one named `keeping` (being set) at most
/// [`MAX_REMEMBERED`] remain. Cookies that no longer open (expired, from a
/// retired key, tampered) go first, then the oldest Allows.
pub(super) fn expire_oldest(
    ring: &KeyRing,
    headers: &HeaderMap,
    keeping: &str,
    scheme: Scheme,
    now: u64,
) -> Vec<HeaderValue> {
    let mut others: Vec<(u64, &str)> = cookies(headers)
        .filter(|(n, _)| n.starts_with(COOKIE_PREFIX) && *n != keeping)
        .map(|(n, v)| {
            let iat = sealed::open::<ConsentRemembered>(ring, v, now).map_or(0, |c| c.iat);
            (iat, n)
        })
        .collect();
    others.sort_unstable();
    let surplus = (others.len() + 1).saturating_sub(MAX_REMEMBERED);
    others
        .iter()
        .take(surplus)
        .filter_map(|(_, name)| {
            HeaderValue::from_str(&format!(
                "{name}=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax{}",
                secure_attribute(scheme)
            ))
            .ok()
        })
        .collect()
}

/// `; Secure` unless the host is `http` (a loopback dev server, where a
/// browser would drop a Secure cookie).
fn secure_attribute(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Https => "; Secure",
        Scheme::Http => "",
    }
}

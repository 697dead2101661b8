//! The Google ID token oauth2-proxy injects, checked on `/oauth/authorize`.
//!
//! The identity headers prove nothing by themselves: anything that can reach
//! mcpgate from a trusted address can write them. When `[identity]
//! id_token_header` is set, oauth2-proxy also passes the person's Google ID
//! token (alpha config `injectRequestHeaders`, `claimSource: id_token`) and
//! mcpgate verifies it: an RS256 compact JWS signed by a key of the issuer's
//! JWKS, for the proxy's client id, unexpired, with a verified email equal to
//! the header's and a Google Workspace domain (`hd`, which oauth2-proxy never
//! checks) among `allowed_domains`.
//!
//! The JWKS is fetched (or read from a file) by a background task started
//! from `serve` and kept in an `ArcSwap`: a request never waits for I/O.
//! Until a JWKS is loaded, every sign-in is refused. The token itself is
//! never logged.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{HeaderMap, HeaderName};
use serde_json::{Map, Value};

use super::IdentityError;
use crate::config::{IdentityConfig, IdentitySource};

/// Google's issuer, as `id_token_issuer` defaults to.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Google also writes its issuer without the scheme.
pub const GOOGLE_ISSUER_BARE: &str = "accounts.google.com";
/// Google's signing keys.
pub const GOOGLE_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;
/// Longest ID token accepted (Google's are about 1 KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
/// Bounds on how long a fetched JWKS is used before fetching again.
const MIN_CACHE: Duration = Duration::from_secs(5 * 60);
const MAX_CACHE: Duration = Duration::from_secs(24 * 3600);
/// When the response says nothing about caching.
const DEFAULT_CACHE: Duration = Duration::from_secs(3600);
/// How often a JWKS file is read again.
const FILE_POLL: Duration = Duration::from_secs(30);
/// Retry delays after a failed load: doubling from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(5 * 60);
/// An unknown `kid` refreshes the JWKS early at most this often.
const EARLY_REFRESH_EVERY_SECS: u64 = 60;
/// How long `serve` waits for the first JWKS before listening anyway.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// Why an ID token was refused. Attacker-chosen values (`alg`, `kid`) are
/// shortened and reduced to visible ASCII before they are shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    #[error("no ID token in the {0} header")]
    Missing(String),
    #[error("the {0} header appears more than once")]
    Duplicated(String),
    #[error("the issuer's signing keys are not loaded yet (see the server log)")]
    KeysUnavailable,
    #[error("not a compact JWS")]
    Malformed,
    #[error("alg {0} is not RS256")]
    Algorithm(String),
    #[error("critical header parameters are not supported")]
    Critical,
    #[error("no kid in the header")]
    NoKid,
    #[error("kid {0} is not a key of the issuer")]
    UnknownKid(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the issuer is not the configured one")]
    Issuer,
    #[error("it was issued for another audience")]
    Audience,
    #[error("it has expired")]
    Expired,
    #[error("it is not valid yet")]
    NotYetValid,
    #[error("the claim {0} is missing or malformed")]
    Claim(&'static str),
    #[error("its email is not verified")]
    EmailNotVerified,
    #[error("its email is not the signed-in email")]
    EmailMismatch,
}

/// Where the issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(url::Url),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(p) => write!(f, "{}", p.display()),
            JwksSource::Url(u) => write!(f, "{u}"),
        }
    }
}

/// One RSA verification key.
#[derive(Clone)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKey({} bits)", self.n.len() * 8)
    }
}

/// The issuer's usable keys (RSA, RS256, for signatures), by `kid`.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: HashMap<String, RsaKey>,
    /// SHA-256 of the document, to log changes only.
    digest: Vec<u8>,
}

impl Jwks {
    /// Parses a JWKS document, keeping the keys that can verify RS256.
    /// A document with no such key is an error.
    pub fn parse(body: &[u8]) -> Result<Jwks, String> {
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

    pub fn kids(&self) -> Vec<&str> {
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

/// What a token must say, from the config.
#[derive(Debug, Clone)]
pub struct Expected {
    pub audience: String,
    /// Accepted `iss` values.
    pub issuers: Vec<String>,
}

/// Checks `token` against `keys` and `expected` at `now`: signature first,
/// then the claims. `email` is the (lowercased) email of the identity
/// headers; `allowed_domains` are lowercased. Returns the token's `sub`:
/// the person's stable id, as verified as the email.
pub fn check(
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
        Some(sub) if !sub.is_empty() && sub.len() <= 255 && super::is_identity_text(sub) => {
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

/// Verifies ID tokens with the JWKS its refresher keeps current.
#[derive(Debug)]
pub struct IdTokenVerifier {
    pub header: HeaderName,
    pub expected: Expected,
    pub source: JwksSource,
    keys: ArcSwapOption<Jwks>,
    /// Wakes the refresher early (an unknown kid).
    wake: tokio::sync::Notify,
    /// When an unknown kid last woke it (unix seconds).
    last_early_refresh: AtomicU64,
}

impl IdTokenVerifier {
    pub fn new(header: HeaderName, expected: Expected, source: JwksSource) -> IdTokenVerifier {
        IdTokenVerifier {
            header,
            expected,
            source,
            keys: ArcSwapOption::const_empty(),
            wake: tokio::sync::Notify::new(),
            last_early_refresh: AtomicU64::new(0),
        }
    }

    /// The `[identity] id_token_*` keys, validated; `None` when
    /// `id_token_header` is unset.
    pub fn from_config(id: &IdentityConfig) -> Result<Option<IdTokenVerifier>, String> {
        let Some(header) = id.id_token_header.as_deref() else {
            if id.id_token_audience.is_some() {
                return Err(
                    "identity.id_token_audience: set identity.id_token_header too (the header oauth2-proxy injects the ID token in)"
                        .into(),
                );
            }
            return Ok(None);
        };
        let key = "identity.id_token_header";
        let name = HeaderName::from_bytes(header.trim().as_bytes())
            .map_err(|_| format!("{key}: `{header}` is not a header name"))?;
        if matches!(
            name.as_str(),
            "authorization" | "proxy-authorization" | "cookie" | "host"
        ) {
            return Err(format!(
                "{key}: `{header}` cannot carry the ID token (oauth2-proxy would clobber Authorization, and it is the client's); use a custom header such as X-Forwarded-Id-Token"
            ));
        }
        for (other, value) in [
            ("email_header", &id.email_header),
            ("user_header", &id.user_header),
            ("groups_header", &id.groups_header),
        ] {
            if value.eq_ignore_ascii_case(name.as_str()) {
                return Err(format!("{key}: `{header}` is already identity.{other}"));
            }
        }
        if id.source == IdentitySource::Dev {
            return Err(format!(
                "{key}: the dev sign-in form has no ID token to check; unset it or use source = \"proxy\""
            ));
        }
        let audience = id
            .id_token_audience
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                "identity.id_token_audience: required with identity.id_token_header (the proxy's Google OAuth client id)"
                    .to_string()
            })?
            .to_owned();
        let issuer = id.id_token_issuer.trim();
        let issuers = if issuer == GOOGLE_ISSUER {
            vec![GOOGLE_ISSUER.to_owned(), GOOGLE_ISSUER_BARE.to_owned()]
        } else {
            remote_url("identity.id_token_issuer", issuer)?;
            vec![issuer.to_owned()]
        };
        let jwks = id.id_token_jwks.trim();
        let source = if jwks.starts_with("https://") || jwks.starts_with("http://") {
            JwksSource::Url(remote_url("identity.id_token_jwks", jwks)?)
        } else if jwks.is_empty() || jwks.contains("://") {
            return Err(format!(
                "identity.id_token_jwks: `{jwks}` is neither a file path nor an https:// URL"
            ));
        } else {
            JwksSource::File(PathBuf::from(jwks))
        };
        Ok(Some(IdTokenVerifier::new(
            name,
            Expected { audience, issuers },
            source,
        )))
    }

    /// Whether a JWKS is loaded (sign-ins are refused until it is).
    pub fn is_loaded(&self) -> bool {
        self.keys.load().is_some()
    }

    /// Replaces the JWKS.
    pub fn set_keys(&self, keys: Jwks) {
        self.keys.store(Some(Arc::new(keys)));
    }

    /// Checks the ID token in `headers` for the identity-header `email`
    /// and returns its `sub`. Never blocks: an unknown kid only wakes the
    /// refresher.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        email: Option<&str>,
        allowed_domains: &[String],
        now: u64,
    ) -> Result<String, IdentityError> {
        let token = self.token(headers)?;
        let Some(keys) = self.keys.load_full() else {
            tracing::error!(jwks = %self.source, "ID token not checked: the issuer's JWKS is not loaded; sign-ins are refused until it is");
            return Err(IdentityError::IdToken(IdTokenError::KeysUnavailable));
        };
        let r = check(&self.expected, &keys, token, email, allowed_domains, now);
        if let Err(IdentityError::IdToken(IdTokenError::UnknownKid(kid))) = &r {
            self.early_refresh(kid, now);
        }
        r
    }

    fn token<'a>(&self, headers: &'a HeaderMap) -> Result<&'a str, IdentityError> {
        let bad = |e| IdentityError::IdToken(e);
        let first = match crate::http::single_header(headers, &self.header) {
            Ok(Some(v)) => v,
            Ok(None) => return Err(bad(IdTokenError::Missing(self.header.to_string()))),
            Err(_) => return Err(bad(IdTokenError::Duplicated(self.header.to_string()))),
        };
        let t = first
            .to_str()
            .map_err(|_| bad(IdTokenError::Malformed))?
            .trim();
        // oauth2-proxy sends the bare token; tolerate a `Bearer ` prefix.
        let t = t.strip_prefix("Bearer ").unwrap_or(t).trim();
        if t.is_empty() {
            return Err(bad(IdTokenError::Missing(self.header.to_string())));
        }
        if t.len() > MAX_TOKEN_LEN {
            return Err(bad(IdTokenError::Malformed));
        }
        Ok(t)
    }

    /// Wakes the refresher unless an unknown kid already did within the
    /// last minute.
    fn early_refresh(&self, kid: &str, now: u64) {
        let last = self.last_early_refresh.load(Ordering::Relaxed);
        if now < last.saturating_add(EARLY_REFRESH_EVERY_SECS) {
            return;
        }
        if self
            .last_early_refresh
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::info!(kid = %kid, jwks = %self.source, "ID token names an unknown kid; refreshing the JWKS early");
            self.wake.notify_one();
        }
    }
}

/// An issuer or JWKS URL: https, or http on a loopback host (tests, a
/// local mirror).
fn remote_url(key: &str, value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{key}: `{value}` is not a URL: {e}"))?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{key}: `{value}` must be https (http only on a loopback address)"
        )),
    }
}

/// How long a JWKS response may be used: `Cache-Control: max-age` less
/// `Age`, bounded to 5 minutes .. 24 hours; one hour when unsaid.
pub fn cache_lifetime(headers: &HeaderMap) -> Duration {
    let max_age = headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|d| {
            let (k, v) = d.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("max-age")
                .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
                .flatten()
        })
        .next();
    let Some(max_age) = max_age else {
        return DEFAULT_CACHE;
    };
    let age = headers
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).clamp(MIN_CACHE, MAX_CACHE)
}

/// Reads or fetches the JWKS once; returns it and how long to keep it.
async fn load(
    source: &JwksSource,
    client: &mut Option<reqwest::Client>,
) -> Result<(Jwks, Duration), String> {
    match source {
        JwksSource::File(path) => {
            let body = tokio::fs::read(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            if body.len() > MAX_JWKS_BYTES {
                return Err(format!("{} is larger than 1 MiB", path.display()));
            }
            Ok((Jwks::parse(&body)?, FILE_POLL))
        }
        JwksSource::Url(url) => {
            let built = match client.take() {
                Some(c) => c,
                None => reqwest::Client::builder()
                    .user_agent(concat!("mcpgate/", env!("CARGO_PKG_VERSION")))
                    .connect_timeout(Duration::from_secs(5))
                    .timeout(Duration::from_secs(15))
                    .redirect(reqwest::redirect::Policy::none())
                    .https_only(url.scheme() == "https")
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?,
            };
            let client = client.insert(built);
            let mut resp = client
                .get(url.clone())
                .header(http::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("GET {url}: HTTP {}", resp.status()));
            }
            if resp.content_length().unwrap_or(0) > MAX_JWKS_BYTES as u64 {
                return Err(format!("GET {url}: the JWKS is larger than 1 MiB"));
            }
            let ttl = cache_lifetime(resp.headers());
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_JWKS_BYTES {
                    return Err(format!("GET {url}: the JWKS is larger than 1 MiB"));
                }
            }
            Ok((
                Jwks::parse(&body).map_err(|e| format!("GET {url}: {e}"))?,
                ttl,
            ))
        }
    }
}

/// Keeps `v`'s JWKS current for as long as the process runs: loads it now,
/// then again when its cache lifetime ends (a file: every 30 s), sooner
/// when an unknown kid asks, with growing delays after failures. A failed
/// load keeps the last good JWKS.
pub async fn refresh(v: Arc<IdTokenVerifier>) {
    let mut client = None;
    let mut failures: u32 = 0;
    loop {
        let next = match load(&v.source, &mut client).await {
            Ok((keys, ttl)) => {
                let changed = v
                    .keys
                    .load()
                    .as_ref()
                    .map_or(true, |old| old.digest != keys.digest);
                if changed {
                    tracing::info!(jwks = %v.source, kids = ?keys.kids(), "ID-token JWKS loaded");
                }
                if failures > 0 && !changed {
                    tracing::info!(jwks = %v.source, "ID-token JWKS reachable again");
                }
                v.set_keys(keys);
                failures = 0;
                ttl
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = RETRY_FIRST
                    .saturating_mul(1u32 << (failures - 1).min(10))
                    .min(RETRY_MAX);
                if v.is_loaded() {
                    tracing::warn!(jwks = %v.source, error = %e, retry_in = ?delay,
                        "ID-token JWKS refresh failed; keeping the last good keys");
                } else {
                    tracing::error!(jwks = %v.source, error = %e, retry_in = ?delay,
                        "ID-token JWKS not loaded; /oauth/authorize refuses every sign-in until it is");
                }
                delay
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(next) => {}
            _ = v.wake.notified() => {}
        }
    }
}

/// Starts [`refresh`] in the background and waits (at most a few seconds)
/// for the first JWKS, so a healthy start serves sign-ins at once. Never
/// fails: an unreachable JWKS only delays sign-ins.
pub async fn start(v: Arc<IdTokenVerifier>) {
    tokio::spawn(refresh(v.clone()));
    let deadline = tokio::time::Instant::now() + STARTUP_WAIT;
    while !v.is_loaded() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if !v.is_loaded() {
        tracing::error!(jwks = %v.source,
            "ID-token JWKS not loaded at start; serving, but /oauth/authorize refuses sign-ins until it loads");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use josekit::jws::{JwsSigner as _, RS256};
    use serde_json::json;
    use std::sync::OnceLock;

    const AUD: &str = "proxy-client.apps.googleusercontent.com";
    const NOW: u64 = 1_750_000_000;

    struct TestKey {
        signer: josekit::jws::alg::rsassa::RsassaJwsSigner,
        jwk: Value,
    }

    /// One 2048-bit RSA key for the whole test binary (generating is slow).
    fn key(n: usize) -> &'static TestKey {
        static KEYS: OnceLock<Vec<TestKey>> = OnceLock::new();
        &KEYS.get_or_init(|| {
            (0..2)
                .map(|i| {
                    let pair = RS256.generate_key_pair(2048).unwrap();
                    let mut jwk: Value =
                        serde_json::from_str(&pair.to_jwk_public_key().to_string()).unwrap();
                    jwk["kid"] = json!(format!("k{i}"));
                    TestKey {
                        signer: RS256.signer_from_der(pair.to_der_private_key()).unwrap(),
                        jwk,
                    }
                })
                .collect()
        })[n]
    }

    fn jwks() -> Jwks {
        Jwks::parse(json!({"keys": [key(0).jwk]}).to_string().as_bytes()).unwrap()
    }

    fn expected() -> Expected {
        Expected {
            audience: AUD.into(),
            issuers: vec![GOOGLE_ISSUER.into(), GOOGLE_ISSUER_BARE.into()],
        }
    }

    fn claims() -> Value {
        json!({
            "iss": "https://accounts.google.com",
            "azp": AUD,
            "aud": AUD,
            "sub": "1234567890",
            "hd": "example.com",
            "email": "Alice@Example.com",
            "email_verified": true,
            "iat": NOW - 10,
            "exp": NOW + 3590,
        })
    }

    fn b64(v: &Value) -> String {
        URL_SAFE_NO_PAD.encode(v.to_string())
    }

    fn sign_with(k: &TestKey, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let sig = k.signer.sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn sign(claims: &Value) -> String {
        sign_with(
            key(0),
            &json!({"alg": "RS256", "kid": "k0", "typ": "JWT"}),
            claims,
        )
    }

    fn run(token: &str) -> Result<String, IdentityError> {
        check(
            &expected(),
            &jwks(),
            token,
            Some("alice@example.com"),
            &["example.com".to_string()],
            NOW,
        )
    }

    fn with(f: impl FnOnce(&mut Value)) -> String {
        let mut c = claims();
        f(&mut c);
        sign(&c)
    }

    fn refused(r: Result<String, IdentityError>) -> IdTokenError {
        match r {
            Err(IdentityError::IdToken(e)) => e,
            other => panic!("expected an ID-token refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_good_token_passes() {
        assert_eq!(run(&sign(&claims())).unwrap(), "1234567890");
        // The bare issuer, an audience array, no azp, fractional dates.
        run(&with(|c| {
            c["iss"] = json!("accounts.google.com");
            c["aud"] = json!(["other", AUD]);
            c.as_object_mut().unwrap().remove("azp");
            c["exp"] = json!((NOW + 100) as f64 + 0.5);
        }))
        .unwrap();
        // Within the leeway.
        run(&with(|c| c["exp"] = json!(NOW - 59))).unwrap();
        run(&with(|c| c["iat"] = json!(NOW + 59))).unwrap();
        // Without identity-header email, the token's email is not compared.
        check(
            &expected(),
            &jwks(),
            &with(|c| c["email"] = json!("bob@example.com")),
            None,
            &["example.com".to_string()],
            NOW,
        )
        .unwrap();
    }

    #[test]
    fn claims_are_checked() {
        assert_eq!(
            refused(run(&with(|c| c["iss"] = json!("https://evil.example")))),
            IdTokenError::Issuer
        );
        assert_eq!(
            refused(run(&with(|c| c["aud"] = json!("someone-else")))),
            IdTokenError::Audience
        );
        assert_eq!(
            refused(run(&with(|c| c["aud"] = json!(["a", "b"])))),
            IdTokenError::Audience
        );
        assert_eq!(
            refused(run(&with(|c| c["azp"] = json!("someone-else")))),
            IdTokenError::Audience
        );
        assert_eq!(
            refused(run(&with(|c| c["exp"] = json!(NOW - 61)))),
            IdTokenError::Expired
        );
        assert_eq!(
            refused(run(&with(|c| {
                c.as_object_mut().unwrap().remove("exp");
            }))),
            IdTokenError::Claim("exp")
        );
        assert_eq!(
            refused(run(&with(|c| c["exp"] = json!("tomorrow")))),
            IdTokenError::Claim("exp")
        );
        assert_eq!(
            refused(run(&with(|c| c["iat"] = json!(NOW + 61)))),
            IdTokenError::NotYetValid
        );
        assert_eq!(
            refused(run(&with(|c| c["nbf"] = json!(NOW + 61)))),
            IdTokenError::NotYetValid
        );
        assert_eq!(
            refused(run(&with(|c| c["email_verified"] = json!(false)))),
            IdTokenError::EmailNotVerified
        );
        assert_eq!(
            refused(run(&with(|c| c["email_verified"] = json!("true")))),
            IdTokenError::EmailNotVerified
        );
        assert_eq!(
            refused(run(&with(|c| c["email"] = json!("mallory@example.com")))),
            IdTokenError::EmailMismatch
        );
        assert_eq!(
            refused(run(&with(|c| {
                c.as_object_mut().unwrap().remove("email");
            }))),
            IdTokenError::Claim("email")
        );
    }

    #[test]
    fn the_hosted_domain_must_be_allowed() {
        for token in [
            with(|c| c["hd"] = json!("other.com")),
            with(|c| c["hd"] = json!("sub.example.com")),
            with(|c| {
                c.as_object_mut().unwrap().remove("hd");
            }),
        ] {
            assert!(
                matches!(run(&token), Err(IdentityError::DomainNotAllowed(_))),
                "{:?}",
                run(&token)
            );
        }
        run(&with(|c| c["hd"] = json!("EXAMPLE.com"))).unwrap();
    }

    #[test]
    fn only_rs256_signatures_by_a_known_key_pass() {
        let c = claims();
        // alg none, with or without a signature.
        let none = format!("{}.{}.", b64(&json!({"alg": "none", "kid": "k0"})), b64(&c));
        assert_eq!(refused(run(&none)), IdTokenError::Algorithm("none".into()));
        // HS256 keyed with the public modulus (the classic confusion).
        let hs = json!({"alg": "HS256", "kid": "k0"});
        let input = format!("{}.{}", b64(&hs), b64(&c));
        let k = ring::hmac::Key::new(
            ring::hmac::HMAC_SHA256,
            key(0).jwk["n"].as_str().unwrap().as_bytes(),
        );
        let mac = ring::hmac::sign(&k, input.as_bytes());
        let hs = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(refused(run(&hs)), IdTokenError::Algorithm("HS256".into()));
        // No alg, no kid, an unknown kid, a critical header.
        assert_eq!(
            refused(run(&sign_with(key(0), &json!({"kid": "k0"}), &c))),
            IdTokenError::Algorithm("(none)".into())
        );
        assert_eq!(
            refused(run(&sign_with(key(0), &json!({"alg": "RS256"}), &c))),
            IdTokenError::NoKid
        );
        assert_eq!(
            refused(run(&sign_with(
                key(1),
                &json!({"alg": "RS256", "kid": "k1"}),
                &c
            ))),
            IdTokenError::UnknownKid("k1".into())
        );
        assert_eq!(
            refused(run(&sign_with(
                key(0),
                &json!({"alg": "RS256", "kid": "k0", "crit": ["exp"]}),
                &c
            ))),
            IdTokenError::Critical
        );
        // Another key's signature under a known kid.
        assert_eq!(
            refused(run(&sign_with(
                key(1),
                &json!({"alg": "RS256", "kid": "k0"}),
                &c
            ))),
            IdTokenError::BadSignature
        );
        // A changed payload under the original signature.
        let good = sign(&c);
        let parts: Vec<&str> = good.split('.').collect();
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64(&with_value(&c, "email", json!("mallory@example.com"))),
            parts[2]
        );
        assert_eq!(refused(run(&forged)), IdTokenError::BadSignature);
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!", &format!("{good}.")] {
            assert_eq!(refused(run(junk)), IdTokenError::Malformed, "{junk:?}");
        }
    }

    fn with_value(c: &Value, k: &str, v: Value) -> Value {
        let mut c = c.clone();
        c[k] = v;
        c
    }

    #[test]
    fn jwks_keeps_only_rsa_signing_keys() {
        let mut enc = key(1).jwk.clone();
        enc["use"] = json!("enc");
        let mut no_kid = key(1).jwk.clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let ec = json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"});
        let j = Jwks::parse(
            json!({"keys": [key(0).jwk, enc, no_kid, ec]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(j.kids(), vec!["k0"]);
        assert!(Jwks::parse(json!({"keys": [ec]}).to_string().as_bytes()).is_err());
        assert!(Jwks::parse(b"{}").is_err());
        assert!(Jwks::parse(b"not json").is_err());
    }

    #[test]
    fn cache_lifetime_follows_max_age_within_bounds() {
        let h = |cc: &str, age: Option<&str>| {
            let mut m = HeaderMap::new();
            m.insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
            if let Some(a) = age {
                m.insert(http::header::AGE, a.parse().unwrap());
            }
            cache_lifetime(&m)
        };
        assert_eq!(
            h("public, max-age=19443, must-revalidate, no-transform", None),
            Duration::from_secs(19443)
        );
        assert_eq!(
            h("public, max-age=19443", Some("443")),
            Duration::from_secs(19000)
        );
        assert_eq!(h("max-age=10", None), MIN_CACHE);
        assert_eq!(h("max-age=999999", None), MAX_CACHE);
        assert_eq!(h("no-store", None), DEFAULT_CACHE);
        assert_eq!(cache_lifetime(&HeaderMap::new()), DEFAULT_CACHE);
    }

    fn verifier() -> IdTokenVerifier {
        IdTokenVerifier::new(
            "x-forwarded-id-token".parse().unwrap(),
            expected(),
            JwksSource::File("/nonexistent".into()),
        )
    }

    fn header(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-id-token", token.parse().unwrap());
        h
    }

    #[test]
    fn nothing_passes_until_a_jwks_is_loaded() {
        let v = verifier();
        let domains = ["example.com".to_string()];
        let good = header(&sign(&claims()));
        assert_eq!(
            refused(v.verify(&good, Some("alice@example.com"), &domains, NOW)),
            IdTokenError::KeysUnavailable
        );
        v.set_keys(jwks());
        v.verify(&good, Some("alice@example.com"), &domains, NOW)
            .unwrap();
        assert!(matches!(
            refused(v.verify(&HeaderMap::new(), Some("alice@example.com"), &domains, NOW)),
            IdTokenError::Missing(_)
        ));
        let mut twice = good.clone();
        twice.append("x-forwarded-id-token", "x".parse().unwrap());
        assert!(matches!(
            refused(v.verify(&twice, Some("alice@example.com"), &domains, NOW)),
            IdTokenError::Duplicated(_)
        ));
    }

    #[test]
    fn an_unknown_kid_refreshes_early_at_most_once_a_minute() {
        let v = verifier();
        v.set_keys(jwks());
        let domains = ["example.com".to_string()];
        let other = header(&sign_with(
            key(1),
            &json!({"alg": "RS256", "kid": "k1"}),
            &claims(),
        ));
        let _ = v.verify(&other, None, &domains, NOW);
        assert_eq!(v.last_early_refresh.load(Ordering::Relaxed), NOW);
        let _ = v.verify(&other, None, &domains, NOW + 30);
        assert_eq!(v.last_early_refresh.load(Ordering::Relaxed), NOW);
        let _ = v.verify(&other, None, &domains, NOW + 60);
        assert_eq!(v.last_early_refresh.load(Ordering::Relaxed), NOW + 60);
    }

    #[tokio::test]
    async fn a_jwks_file_is_loaded_and_reloaded_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, json!({"keys": [key(0).jwk]}).to_string()).unwrap();
        let mut v = verifier();
        v.source = JwksSource::File(path.clone());
        let v = Arc::new(v);
        tokio::time::timeout(Duration::from_secs(10), start(v.clone()))
            .await
            .unwrap();
        assert!(v.is_loaded());
        std::fs::write(&path, json!({"keys": [key(1).jwk]}).to_string()).unwrap();
        // An unknown kid wakes the refresher, which reads the new file.
        let domains = ["example.com".to_string()];
        let other = header(&sign_with(
            key(1),
            &json!({"alg": "RS256", "kid": "k1"}),
            &claims(),
        ));
        let now = crate::clock::unix_now();
        let fresh = with_value(
            &with_value(&claims(), "iat", json!(now)),
            "exp",
            json!(now + 600),
        );
        let other_fresh = header(&sign_with(
            key(1),
            &json!({"alg": "RS256", "kid": "k1"}),
            &fresh,
        ));
        let _ = v.verify(&other, None, &domains, now);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match v.verify(&other_fresh, Some("alice@example.com"), &domains, now) {
                Ok(_) => break,
                Err(e) if std::time::Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("the new key was not loaded: {e}"),
            }
        }
    }

    #[test]
    fn from_proxy_checks_the_id_token_when_configured() {
        let now = crate::clock::unix_now();
        let v = verifier();
        v.set_keys(jwks());
        let config = crate::config::Config {
            identity: IdentityConfig {
                allowed_domains: vec!["example.com".into()],
                ..IdentityConfig::default()
            },
            hosts: vec![crate::config::HostConfig {
                issuer: "https://mcp.example.com".into(),
                redirect_uris: vec![],
            }],
            ..crate::config::Config::default()
        };
        let mut s = crate::settings::Settings::from_config(&config)
            .unwrap()
            .identity;
        s.id_token = Some(Arc::new(v));
        let peer = std::net::IpAddr::from([127, 0, 0, 1]);
        let fresh = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            c["iat"] = json!(now);
            c["exp"] = json!(now + 600);
            f(&mut c);
            sign(&c)
        };
        let mut h = header(&fresh(&|_| {}));
        h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
        let id = super::super::from_proxy(&s, peer, &h).unwrap();
        assert_eq!(id.email, "alice@example.com");
        assert_eq!(id.subject, "1234567890");
        // The subject is the verified token's, not the user header's: that
        // header is no more proven than the email header was.
        h.insert("x-forwarded-user", "999-someone-else".parse().unwrap());
        let id = super::super::from_proxy(&s, peer, &h).unwrap();
        assert_eq!(id.subject, "1234567890");
        for sub in [
            json!(""),
            json!(42),
            json!("x".repeat(256)),
            json!("a\u{0}b"),
            json!("\u{e9}"),
        ] {
            let mut h = header(&fresh(&|c| c["sub"] = sub.clone()));
            h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
            assert_eq!(
                super::super::from_proxy(&s, peer, &h),
                Err(IdentityError::IdToken(IdTokenError::Claim("sub")))
            );
        }
        let mut h = header(&fresh(&|c| {
            c.as_object_mut().unwrap().remove("sub");
        }));
        h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
        assert_eq!(
            super::super::from_proxy(&s, peer, &h),
            Err(IdentityError::IdToken(IdTokenError::Claim("sub")))
        );

        let mut h = HeaderMap::new();
        h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
        assert!(matches!(
            super::super::from_proxy(&s, peer, &h),
            Err(IdentityError::IdToken(IdTokenError::Missing(_)))
        ));
        let mut h = header(&fresh(&|c| c["hd"] = json!("other.com")));
        h.insert("x-forwarded-email", "alice@example.com".parse().unwrap());
        assert!(matches!(
            super::super::from_proxy(&s, peer, &h),
            Err(IdentityError::DomainNotAllowed(_))
        ));
        let mut h = header(&fresh(&|_| {}));
        h.insert("x-forwarded-email", "bob@example.com".parse().unwrap());
        assert_eq!(
            super::super::from_proxy(&s, peer, &h),
            Err(IdentityError::IdToken(IdTokenError::EmailMismatch))
        );
    }

    fn config() -> IdentityConfig {
        IdentityConfig {
            id_token_header: Some("X-Forwarded-Id-Token".into()),
            id_token_audience: Some(AUD.into()),
            ..IdentityConfig::default()
        }
    }

    #[test]
    fn config_is_validated_naming_the_key() {
        let v = IdTokenVerifier::from_config(&config()).unwrap().unwrap();
        assert_eq!(v.expected.issuers, vec![GOOGLE_ISSUER, GOOGLE_ISSUER_BARE]);
        assert_eq!(v.source, JwksSource::Url(GOOGLE_JWKS.parse().unwrap()));
        assert!(IdTokenVerifier::from_config(&IdentityConfig::default())
            .unwrap()
            .is_none());
        let err = |f: &dyn Fn(&mut IdentityConfig)| {
            let mut c = config();
            f(&mut c);
            IdTokenVerifier::from_config(&c).unwrap_err()
        };
        assert!(err(&|c| c.id_token_audience = None).starts_with("identity.id_token_audience"));
        assert!(err(&|c| c.id_token_audience = Some(" ".into()))
            .starts_with("identity.id_token_audience"));
        assert!(err(&|c| c.id_token_header = Some("Authorization".into()))
            .starts_with("identity.id_token_header"));
        assert!(err(&|c| c.id_token_header = Some("bad header".into()))
            .starts_with("identity.id_token_header"));
        assert!(
            err(&|c| c.id_token_header = Some("x-forwarded-email".into()))
                .starts_with("identity.id_token_header")
        );
        assert!(err(&|c| c.source = IdentitySource::Dev).starts_with("identity.id_token_header"));
        assert!(err(&|c| c.id_token_issuer = "http://issuer.example".into())
            .starts_with("identity.id_token_issuer"));
        assert!(
            err(&|c| c.id_token_jwks = "http://keys.example/jwks".into())
                .starts_with("identity.id_token_jwks")
        );
        assert!(err(&|c| c.id_token_jwks = "ftp://keys.example/jwks".into())
            .starts_with("identity.id_token_jwks"));
        assert!(err(&|c| {
            c.id_token_header = None;
        })
        .starts_with("identity.id_token_audience"));
        // Loopback http is fine (a local mirror, tests); a path is a file.
        let mut c = config();
        c.id_token_issuer = "http://127.0.0.1:9000".into();
        c.id_token_jwks = "/run/secrets/google-jwks.json".into();
        let v = IdTokenVerifier::from_config(&c).unwrap().unwrap();
        assert_eq!(v.expected.issuers, vec!["http://127.0.0.1:9000"]);
        assert_eq!(
            v.source,
            JwksSource::File("/run/secrets/google-jwks.json".into())
        );
    }
}

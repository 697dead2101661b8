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

mod claims;
mod fetch;
mod jwks;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use http::{HeaderMap, HeaderName};

use super::IdentityError;
use crate::settings::id_token::{Expected, IdTokenSettings, JwksSource};

pub(crate) use claims::check;
pub(crate) use fetch::start;
pub(crate) use jwks::Jwks;

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub(crate) const LEEWAY_SECS: u64 = 60;
/// Longest ID token accepted (Google's are about 1 KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Largest JWKS document read.
const MAX_JWKS_BYTES: usize = 1024 * 1024;
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
pub(crate) enum IdTokenError {
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

/// Verifies ID tokens with the JWKS its refresher keeps current.
#[derive(Debug)]
pub(crate) struct IdTokenVerifier {
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
    /// A verifier for `settings`, with no JWKS yet (see [`start`]).
    pub(crate) fn from_settings(settings: &IdTokenSettings) -> IdTokenVerifier {
        let s = settings.clone();
        IdTokenVerifier::new(s.header, s.expected, s.source)
    }

    pub(crate) fn new(
        header: HeaderName,
        expected: Expected,
        source: JwksSource,
    ) -> IdTokenVerifier {
        IdTokenVerifier {
            header,
            expected,
            source,
            keys: ArcSwapOption::const_empty(),
            wake: tokio::sync::Notify::new(),
            last_early_refresh: AtomicU64::new(0),
        }
    }

    /// Whether a JWKS is loaded (sign-ins are refused until it is).
    pub(crate) fn is_loaded(&self) -> bool {
        self.keys.load().is_some()
    }

    /// Replaces the JWKS.
    pub(crate) fn set_keys(&self, keys: Jwks) {
        self.keys.store(Some(Arc::new(keys)));
    }

    /// Checks the ID token in `headers` for the identity-header `email`
    /// and returns its `sub`. Never blocks: an unknown kid only wakes the
    /// refresher.
    pub(crate) fn verify(
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

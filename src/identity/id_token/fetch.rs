//! Keeping the JWKS current: fetched over HTTPS (or read from a file) by a
//! background task, honouring `Cache-Control`, never on a request's path.

use std::sync::Arc;
use std::time::Duration;

use super::{
    IdTokenVerifier, Jwks, FILE_POLL, MAX_JWKS_BYTES, RETRY_FIRST, RETRY_MAX, STARTUP_WAIT,
};
use crate::http::freshness;
use crate::settings::id_token::JwksSource;

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
            let ttl = freshness::lifetime(resp.headers(), freshness::FETCHED);
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
pub(crate) async fn refresh(v: Arc<IdTokenVerifier>) {
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
pub(crate) async fn start(v: Arc<IdTokenVerifier>) {
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

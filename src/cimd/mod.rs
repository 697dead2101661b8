//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document;
//! the MCP authorization spec's preferred registration): a `client_id`
//! that is an https URL names the client's metadata, which this server
//! fetches from it.
//!
//! - [`url`]: which URLs may be client ids.
//! - [`document`]: what a document must and must not contain.
//! - [`limits`]: per-host fetch windows, how long a document is kept.
//! - [`Resolver`]: the operator's documents (`cimd.documents_dir`), then
//!   the per-replica cache, then a fetch through [`crate::egress`].
//!
//! Stateless like the rest: what is kept is a bounded per-replica cache
//! of valid documents. Errors and invalid documents are never cached, so
//! a fixed document is seen at the next request; a flood of bad URLs costs
//! fetches, which the per-host windows and the concurrency cap bound.

pub(crate) mod document;
pub(crate) mod limits;
pub(crate) mod url;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::egress::{self, Egress, EgressError};
use crate::http::freshness;
use crate::settings::CimdSettings;
use document::{ClientDocument, DocumentError};
use limits::HostWindows;
pub(crate) use url::ClientIdUrl;

/// Largest file read from `cimd.documents_dir`.
const MAX_DIR_DOCUMENT_BYTES: u64 = 64 * 1024;

/// JWKS (`jwks_uri`) kept per replica, as documents are.
const JWKS_ENTRIES: usize = 256;

/// Why no document could be had for a URL client id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum CimdError {
    /// The fetch failed (address refused, TLS, redirect, size, time).
    #[error("the client metadata document could not be fetched: {0}")]
    Fetch(#[from] EgressError),
    #[error("the client metadata document URL answered HTTP {0}, not 200")]
    Status(u16),
    #[error("{0}")]
    Invalid(#[from] DocumentError),
    /// This host's window of fetches is used up, on this replica.
    #[error("too many client metadata fetches for this host; retry in a minute")]
    RateLimited,
    /// Every fetch slot is taken.
    #[error("too many client metadata fetches in flight; retry shortly")]
    Busy,
}

impl CimdError {
    /// A refusal that says nothing about the client (the client may retry).
    pub(crate) fn is_temporary(&self) -> bool {
        matches!(self, CimdError::RateLimited | CimdError::Busy)
    }
}

/// A fetched document (a client's, or a `jwks_uri`'s) kept, and until
/// when.
struct Cached<T> {
    value: Arc<T>,
    until: Instant,
}

impl<T> Clone for Cached<T> {
    fn clone(&self) -> Self {
        Cached {
            value: self.value.clone(),
            until: self.until,
        }
    }
}

/// What `cache` keeps for `url`, if still fresh; a stale entry is dropped.
fn fresh<T>(cache: &quick_cache::sync::Cache<String, Cached<T>>, url: &str) -> Option<Arc<T>> {
    let c = cache.get(url)?;
    if c.until > Instant::now() {
        return Some(c.value);
    }
    cache.remove(url);
    None
}

/// Finds the document a URL client id names.
pub(crate) struct Resolver {
    egress: Egress,
    limits: egress::Limits,
    /// `cimd.documents_dir`, by client id: never fetched.
    pinned: HashMap<String, Arc<ClientDocument>>,
    /// Valid fetched documents. Memory: at most `cimd.cache_entries`
    /// documents of at most `cimd.max_document_bytes` each (parsed, plus
    /// the URL as key).
    cache: quick_cache::sync::Cache<String, Cached<ClientDocument>>,
    windows: HostWindows,
    permits: tokio::sync::Semaphore,
    /// Valid `jwks_uri` documents of `private_key_jwt` clients.
    jwks: quick_cache::sync::Cache<String, Cached<serde_json::Value>>,
    /// URLs being fetched now.
    in_flight: InFlight,
}

/// One lock per URL being fetched, so concurrent requests for one URL
/// cause one fetch. An entry leaves with the last request holding it
/// (also when a request is dropped mid-fetch): the map holds at most one
/// entry per request in flight.
#[derive(Default)]
struct InFlight(std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>);

/// A request's place in the line for one URL.
struct Turn<'a> {
    in_flight: &'a InFlight,
    url: &'a str,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl InFlight {
    fn turn<'a>(&'a self, url: &'a str) -> Turn<'a> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Turn {
            in_flight: self,
            url,
            lock: m.entry(url.to_owned()).or_default().clone(),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut m = self.in_flight.0.lock().unwrap_or_else(|e| e.into_inner());
        // Held by this turn and the map only: nobody else waits.
        if Arc::strong_count(&self.lock) <= 2
            && m.get(self.url).is_some_and(|l| Arc::ptr_eq(l, &self.lock))
        {
            m.remove(self.url);
        }
    }
}

impl Resolver {
    /// Loads `cimd.documents_dir` (a bad file stops the start, naming it).
    pub(crate) fn new(s: &CimdSettings) -> Result<Resolver, String> {
        let pinned = match &s.documents_dir {
            Some(dir) => load_dir(dir)?,
            None => HashMap::new(),
        };
        Ok(Resolver {
            egress: Egress::new(
                s.insecure_test_only_roots.clone(),
                s.insecure_test_only_allow_loopback,
            ),
            limits: egress::Limits {
                max_bytes: s.max_document_bytes,
                timeout: s.fetch_timeout,
            },
            pinned,
            cache: quick_cache::sync::Cache::new(s.cache_entries),
            windows: HostWindows::new(s.fetches_per_host_per_minute),
            permits: tokio::sync::Semaphore::new(s.max_concurrent_fetches),
            jwks: quick_cache::sync::Cache::new(JWKS_ENTRIES),
            in_flight: InFlight::default(),
        })
    }

    /// The client ids `cimd.documents_dir` provides.
    pub(crate) fn pinned_ids(&self) -> impl Iterator<Item = &str> {
        self.pinned.keys().map(String::as_str)
    }

    /// The document at `url`: the operator's, a cached one, or fetched now.
    pub(crate) async fn document(
        &self,
        url: &ClientIdUrl,
    ) -> Result<Arc<ClientDocument>, CimdError> {
        if let Some(doc) = self.pinned.get(url.as_str()) {
            return Ok(doc.clone());
        }
        if let Some(doc) = fresh(&self.cache, url.as_str()) {
            return Ok(doc);
        }
        // One fetch per URL at a time: requests that arrive while it runs
        // wait for it and take its document from the cache (a failure is
        // not cached, so each of them then tries for itself, within the
        // host's window).
        let turn = self.in_flight.turn(url.as_str());
        let _mine = turn.lock.lock().await;
        match fresh(&self.cache, url.as_str()) {
            Some(doc) => Ok(doc),
            None => self.fetch_and_keep(url).await,
        }
    }

    async fn fetch_and_keep(&self, url: &ClientIdUrl) -> Result<Arc<ClientDocument>, CimdError> {
        let now = Instant::now();
        // The slot first: a request refused as busy fetches nothing, so it
        // must not use up the host's window (else a few slow documents
        // would turn every other client of that host away for a minute).
        let Ok(_permit) = self.permits.try_acquire() else {
            tracing::warn!(
                client_id = url.as_str(),
                "client metadata fetch refused: too many in flight"
            );
            return Err(CimdError::Busy);
        };
        if !self.windows.try_fetch(url.host(), now) {
            tracing::warn!(
                client_id = url.as_str(),
                "client metadata fetch refused: host rate limit"
            );
            return Err(CimdError::RateLimited);
        }
        let fetched = self.fetch(url).await;
        match &fetched {
            Ok((doc, ttl)) => {
                tracing::info!(client_id = url.as_str(), client = doc.client_name.as_deref().unwrap_or("-"),
                    cache_for = ?ttl, "client metadata document fetched");
                crate::metrics::cimd_fetch("ok");
            }
            Err(e) => {
                tracing::info!(client_id = url.as_str(), error = %e, "client metadata document refused");
                crate::metrics::cimd_fetch("refused");
            }
        }
        let (doc, ttl) = fetched?;
        let doc = Arc::new(doc);
        self.cache.insert(
            url.as_str().to_owned(),
            Cached {
                value: doc.clone(),
                until: now + ttl,
            },
        );
        Ok(doc)
    }

    /// The JWKS at `url` (a `private_key_jwt` document's `jwks_uri`):
    /// cached, or fetched under the same guard, windows and limits.
    pub(crate) async fn jwks(
        &self,
        url: &ClientIdUrl,
    ) -> Result<Arc<serde_json::Value>, CimdError> {
        let now = Instant::now();
        if let Some(jwks) = fresh(&self.jwks, url.as_str()) {
            return Ok(jwks);
        }
        let Ok(_permit) = self.permits.try_acquire() else {
            return Err(CimdError::Busy);
        };
        if !self.windows.try_fetch(url.host(), now) {
            return Err(CimdError::RateLimited);
        }
        let r = self.get_json(url.url()).await?;
        let jwks = serde_json::from_slice::<serde_json::Value>(&r.body)
            .ok()
            .filter(|v| v.get("keys").is_some_and(serde_json::Value::is_array))
            .ok_or(CimdError::Invalid(DocumentError::Malformed("jwks_uri")))?;
        // As for an inline `jwks`: public keys only (a published private
        // key lets anyone sign as the client), and only what is used kept.
        let jwks = Arc::new(document::public_jwks(&jwks)?);
        self.jwks.insert(
            url.as_str().to_owned(),
            Cached {
                value: jwks.clone(),
                until: now + freshness::lifetime(&r.headers, freshness::FETCHED),
            },
        );
        Ok(jwks)
    }

    async fn fetch(&self, url: &ClientIdUrl) -> Result<(ClientDocument, Duration), CimdError> {
        let r = self.get_json(url.url()).await?;
        // The body must be a JSON object whatever its Content-Type says:
        // some hosts serve documents as text/plain.
        let doc = ClientDocument::parse(&r.body, url)?;
        Ok((doc, freshness::lifetime(&r.headers, freshness::FETCHED)))
    }

    /// GET `url` for JSON under the guard; only a 200 is an answer (draft
    /// §4: a document, or a JWKS, comes with 200, never a redirect).
    async fn get_json(&self, url: &::url::Url) -> Result<egress::Fetched, CimdError> {
        let r = self
            .egress
            .get(url, "application/json", self.limits)
            .await?;
        if r.status != http::StatusCode::OK {
            return Err(CimdError::Status(r.status.as_u16()));
        }
        Ok(r)
    }
}

/// `cimd.documents_dir`: every `*.json` file is one document, whose
/// `client_id` names the URL it stands for.
fn load_dir(dir: &Path) -> Result<HashMap<String, Arc<ClientDocument>>, String> {
    let key = "cimd.documents_dir";
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("{key}: cannot read {}: {e}", dir.display()))?;
    let mut out = HashMap::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("{key}: cannot read {}: {e}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") || !path.is_file() {
            continue;
        }
        let bad = |why: String| format!("{key}: {}: {why}", path.display());
        let len = std::fs::metadata(&path)
            .map_err(|e| bad(e.to_string()))?
            .len();
        if len > MAX_DIR_DOCUMENT_BYTES {
            return Err(bad("larger than 64 KiB".into()));
        }
        let body = std::fs::read(&path).map_err(|e| bad(e.to_string()))?;
        let client_id = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("client_id")?.as_str().map(str::to_owned))
            .ok_or_else(|| bad("not a JSON object with a client_id".into()))?;
        let url = ClientIdUrl::parse(&client_id)
            .map_err(|e| bad(format!("client_id `{client_id}` {e}")))?;
        let doc = ClientDocument::parse(&body, &url).map_err(|e| bad(e.to_string()))?;
        if out.insert(client_id.clone(), Arc::new(doc)).is_some() {
            return Err(bad(format!("a second document for `{client_id}`")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cache_entries: usize) -> CimdSettings {
        CimdSettings::from_config(&crate::config::CimdConfig {
            cache_entries,
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn the_cache_holds_at_most_cache_entries_documents() {
        let r = Resolver::new(&settings(8)).unwrap();
        for i in 0..1000 {
            let id = format!("https://a.example/c/{i}");
            let url = ClientIdUrl::parse(&id).unwrap();
            let body =
                serde_json::json!({"client_id": id, "redirect_uris": ["http://127.0.0.1/cb"]});
            let doc = ClientDocument::parse(body.to_string().as_bytes(), &url).unwrap();
            r.cache.insert(
                id,
                Cached {
                    value: Arc::new(doc),
                    until: Instant::now() + Duration::from_secs(60),
                },
            );
            assert!(r.cache.len() <= 8, "{} documents kept", r.cache.len());
        }
    }

    #[test]
    fn a_url_leaves_the_in_flight_map_with_its_last_turn() {
        let f = InFlight::default();
        let a = f.turn("https://a.example/c");
        let b = f.turn("https://a.example/c");
        assert!(Arc::ptr_eq(&a.lock, &b.lock));
        drop(a);
        assert_eq!(f.0.lock().unwrap().len(), 1);
        drop(b);
        assert!(f.0.lock().unwrap().is_empty());
    }
}

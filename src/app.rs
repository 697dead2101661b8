//! The state every request shares, built once from the settings and the
//! key ring: who each part of it is for is visible in the router, which
//! hands each endpoint only what it uses.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cimd::Resolver;
use crate::discovery::Documents;
use crate::http::host::Hosts;
use crate::identity::SignIn;
use crate::keys::Keys;
use crate::mcp::upstream::Mounts;
use crate::settings::Settings;
use crate::store::Store;
use crate::tokens::verified::VerifiedTokens;

pub(crate) struct App {
    pub settings: Settings,
    pub keys: Arc<Keys>,
    /// The configured hosts, by the names a request may use.
    pub hosts: Hosts,
    /// Discovery documents, rendered per host.
    pub discovery: Documents,
    /// Who is signing in (`/oauth/authorize`).
    pub sign_in: SignIn,
    /// Single use of codes, refresh tokens (`/oauth/token`) and consent
    /// forms (`/oauth/authorize`).
    pub store: Store,
    /// Client ID Metadata Documents: the operator's, cached and fetched
    /// (`/oauth/authorize`, `/oauth/token`).
    pub cimd: Resolver,
    /// Access tokens already verified (`/mcp` and the mounts).
    pub verified_tokens: VerifiedTokens,
    /// The upstream MCP servers mounted behind the sign-in. `/readyz`
    /// does not ask them: one upstream down must not take every replica
    /// out of its load balancer.
    pub mounts: Mounts,
    /// Cleared when shutdown starts, so `/readyz` fails at once.
    accepting: AtomicBool,
}

impl App {
    /// Fails only on a `[store] url` the Redis client cannot use.
    pub(crate) fn new(settings: Settings, keys: Arc<Keys>, cimd: Resolver) -> Result<App, String> {
        Ok(App {
            cimd,
            verified_tokens: VerifiedTokens::new(settings.verified_cache_size),
            hosts: Hosts::new(&settings),
            discovery: Documents::new(&settings),
            sign_in: SignIn::new(&settings.identity),
            store: Store::new(&settings.store)?,
            mounts: Mounts::new(&settings),
            settings,
            keys,
            accepting: AtomicBool::new(true),
        })
    }

    /// Ready for traffic: not shutting down and the key ring is current.
    pub(crate) fn is_ready(&self) -> bool {
        self.accepting.load(Ordering::Relaxed) && self.keys.is_healthy()
    }

    /// Shutdown has started: `/readyz` fails, and HTTP/1.1 responses
    /// close their connection (`server`). One relaxed load.
    pub(crate) fn draining(&self) -> bool {
        !self.accepting.load(Ordering::Relaxed)
    }

    pub(crate) fn begin_shutdown(&self) {
        self.accepting.store(false, Ordering::Relaxed);
    }
}

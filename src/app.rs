//! The state every request shares: validated settings, the key ring, the
//! per-host pre-rendered documents, and the redeemed-code memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::http::host::Hosts;
use crate::identity::SignIn;
use crate::keys::Keys;
use crate::oauth::refresh_ledger::RefreshLedger;
use crate::oauth::replay::ReplayCache;
use crate::settings::Settings;
use crate::tokens::verified::VerifiedTokens;

/// Redeemed codes remembered per process (each lives ≤ 10 minutes).
const REPLAY_CAPACITY: usize = 1_000_000;

pub struct App {
    pub settings: Settings,
    pub keys: Arc<Keys>,
    pub hosts: Hosts,
    pub used_codes: ReplayCache,
    pub refresh_ledger: RefreshLedger,
    pub verified_tokens: VerifiedTokens,
    /// Who is signing in, from the proxy's headers (and ID token).
    pub sign_in: SignIn,
    /// Cleared when shutdown starts, so `/readyz` fails at once.
    accepting: AtomicBool,
}

impl App {
    pub fn new(settings: Settings, keys: Arc<Keys>) -> App {
        App {
            verified_tokens: VerifiedTokens::new(settings.verified_cache_size),
            hosts: Hosts::new(&settings),
            sign_in: SignIn::new(&settings.identity),
            settings,
            keys,
            used_codes: ReplayCache::new(REPLAY_CAPACITY),
            refresh_ledger: RefreshLedger::new(REPLAY_CAPACITY),
            accepting: AtomicBool::new(true),
        }
    }

    /// Ready for traffic: not shutting down and the key ring is current.
    pub fn is_ready(&self) -> bool {
        self.accepting.load(Ordering::Relaxed) && self.keys.is_healthy()
    }

    pub fn begin_shutdown(&self) {
        self.accepting.store(false, Ordering::Relaxed);
    }
}

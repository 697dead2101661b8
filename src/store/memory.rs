//! The per-replica store: each replica remembers on its own.
//!
//! - [`ReplayCache`]: redeemed code ids and answered consent forms, until
//!   they expire.
//! - [`RefreshLedger`]: refresh-token families, rotation and reuse.
//!
//! # Memory
//!
//! Both memories are bounded in entries, so in bytes, under any load:
//!
//! - codes: [`CODES`] = 917,504 ids (64 shards × 14,336). A shard's
//!   table never grows past 16,384 slots of 33 bytes (24-byte inline id,
//!   8-byte expiry, 1 control byte), nor its expiry heap past 16,384 × 32
//!   bytes: 64 × 1.06 MB = 65 MiB, ~74 bytes an entry; measured +67 MiB
//!   RSS for a full cache, 77 bytes an entry. An entry leaves when its code
//!   expires, so the cache fills only when codes are redeemed faster than
//!   917,504 per `tokens.code_ttl` (~15,000/s at the default 60 s; ~1,500/s
//!   at the 10 min maximum); then a new code is refused (503), never an
//!   old one forgotten. The bound does not depend on the settings.
//! - refresh families: [`FAMILIES`] = 1,000,000, ~97 bytes each measured
//!   (+92 MiB RSS): `quick_cache` evicts a cold family beyond that (what
//!   that costs: `refresh_ledger`).
//!
//! - consent forms: [`CONSENT_FORMS`] = 64 × 1,024 ids (~5 MiB), each
//!   held ≤ 10 minutes; past that a consent answer is refused (503) until
//!   some expire. Answers come from signed-in people clicking a button.
//! - client assertions (`private_key_jwt`): [`ASSERTIONS`] = 64 × 1,024
//!   ids (~5 MiB), each held until its assertion expires (≤ 1 h); past that
//!   a new assertion is refused (503).
//!
//! ≈ 170 MiB at most for all four, whatever the load; the replay test
//! `bytes_per_entry` (ignored; run it with `--ignored --nocapture`)
//! measures both.

use super::refresh_ledger::RefreshLedger;
use super::replay::{self, ReplayCache};
use super::{Once, StoreError};

/// Code ids held at most: 64 shards × 14,336, each shard's hash table
/// at its 7/8 load limit of 16,384 slots, so it never grows past that.
/// A code lives ≤ 10 minutes (`tokens.code_ttl`, default 60 s).
pub(super) const CODES: usize = replay::SHARDS * 14_336;

/// Refresh-token families remembered at most.
pub(super) const FAMILIES: usize = 1_000_000;

/// Consent forms answered, held at most.
const CONSENT_FORMS: usize = replay::SHARDS * 1_024;

/// Client assertion ids (`private_key_jwt`) held at most; each lives ≤ an
/// hour and a minute.
const ASSERTIONS: usize = replay::SHARDS * 1_024;

/// The single-use memory of this process.
pub(crate) struct Memory {
    /// Codes redeemed here (RFC 6749 §4.1.2: a code is used once).
    used_codes: ReplayCache,
    /// Consent forms answered here: one answer per page shown.
    consent_forms: ReplayCache,
    /// Client assertions accepted here (RFC 7523 §3 item 7).
    client_assertions: ReplayCache,
    /// Newest generation per refresh-token family (RFC 9700 §4.14.2).
    pub(super) refresh_ledger: RefreshLedger,
}

impl Memory {
    pub(crate) fn new() -> Memory {
        Memory {
            used_codes: ReplayCache::new(CODES),
            consent_forms: ReplayCache::new(CONSENT_FORMS),
            client_assertions: ReplayCache::new(ASSERTIONS),
            refresh_ledger: RefreshLedger::new(FAMILIES),
        }
    }

    pub(super) fn first_use(
        &self,
        kind: Once,
        id: &str,
        exp: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let cache = match kind {
            Once::Code => &self.used_codes,
            Once::ConsentForm => &self.consent_forms,
            Once::ClientAssertion => &self.client_assertions,
        };
        cache
            .first_use(id, exp, now)
            .map_err(|replay::Full| StoreError::Full)
    }
}

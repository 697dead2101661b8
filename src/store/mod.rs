//! Single-use state: which codes were redeemed and which refresh-token
//! generation is current. Only the token endpoint touches it; `/mcp`
//! never does.
//!
//! - [`replay`]: redeemed code ids, until the codes expire.
//! - [`refresh_ledger`]: refresh-token families, rotation and reuse.
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
//! ≈ 160 MiB at most for both, whatever the load; the replay test
//! `bytes_per_entry` (ignored; run it with `--ignored --nocapture`)
//! measures both.

pub(crate) mod refresh_ledger;
pub(crate) mod replay;

use refresh_ledger::RefreshLedger;
use replay::ReplayCache;

/// Code ids held at most: 64 shards × 14,336, each shard's hash table
/// at its 7/8 load limit of 16,384 slots, so it never grows past that.
/// A code lives ≤ 10 minutes (`tokens.code_ttl`, default 60 s).
const CODES: usize = replay::SHARDS * 14_336;

/// Refresh-token families remembered at most.
const FAMILIES: usize = 1_000_000;

/// The single-use memory of this process.
pub(crate) struct Store {
    /// Codes redeemed here (RFC 6749 §4.1.2: a code is used once).
    pub used_codes: ReplayCache,
    /// Newest generation per refresh-token family (RFC 9700 §4.14.2).
    pub refresh_ledger: RefreshLedger,
}

impl Store {
    pub(crate) fn new() -> Store {
        Store {
            used_codes: ReplayCache::new(CODES),
            refresh_ledger: RefreshLedger::new(FAMILIES),
        }
    }
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

//! Single-use state: which codes were redeemed and which refresh-token
//! generation is current. Only the token endpoint touches it; `/mcp`
//! never does.
//!
//! - [`replay`]: redeemed code ids, until the codes expire.
//! - [`refresh_ledger`]: refresh-token families, rotation and reuse.

pub(crate) mod refresh_ledger;
pub(crate) mod replay;

use refresh_ledger::RefreshLedger;
use replay::ReplayCache;

/// Entries each memory holds at most; a code lives ≤ 10 minutes.
const CAPACITY: usize = 1_000_000;

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
            used_codes: ReplayCache::new(CAPACITY),
            refresh_ledger: RefreshLedger::new(CAPACITY),
        }
    }
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

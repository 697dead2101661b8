//! Refresh-token rotation memory, per process.
//!
//! A refresh token is sealed and self-contained, so any replica can rotate
//! it; nothing is shared. Each replica remembers, per family, the newest
//! generation it issued. Presenting an older generation is reuse (RFC 9700
//! §4.14.2) — unless it is the one just replaced and within the grace
//! window, which is a client retrying after a lost response. Reuse revokes
//! the family on this replica. A stateless design cannot see reuse across
//! replicas; the family's total lifetime (`tokens.refresh_ttl`) and the
//! deny file bound what a stolen token is worth.
//!
//! # Bound and eviction
//!
//! At most `crate::store::memory::FAMILIES` (1,000,000) families, ~97 bytes each
//! (measured: `store::replay::tests::bytes_per_entry`), so ~92 MiB at most.
//! Past that `quick_cache` evicts a cold family, forgetting its generation
//! (and a revocation). That weakens reuse detection only as far as the
//! stateless design already concedes: the next token of that family seen
//! here is taken as current, as on a replica that never saw the family; once
//! the thief's and the client's branches both rotate here again, the older
//! generation is reuse again. Filling the ledger takes a million distinct
//! families rotated on one replica, each from a signed-in code exchange.
//! Unlike codes, no refusal guards it: refusing rotations when full would
//! sign people out, and the hard bounds (`tokens.refresh_ttl`, the deny
//! file) hold either way.
//!
//! # One rotation at a time per family
//!
//! Reading a family's state and writing the next is one step: a striped
//! lock (by the family id's hash) is held across both, so two concurrent
//! presentations of one token cannot both rotate it outside the grace
//! window. Different families rarely share a stripe; nothing else waits.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Lock stripes; a power of two.
const STRIPES: usize = 64;

#[derive(Debug, Clone, Copy)]
struct Latest {
    /// Newest generation issued here.
    gen: u32,
    /// When it was issued.
    issued_at: u64,
    /// Reuse was seen: nothing of this family is honoured here any more.
    revoked: bool,
}

/// Reuse of an old refresh token was detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reused;

pub(crate) struct RefreshLedger {
    families: quick_cache::sync::Cache<String, Latest>,
    /// Held across one family's read and write (see the module doc).
    stripes: Box<[Mutex<()>]>,
    hasher: RandomState,
}

impl RefreshLedger {
    pub(crate) fn new(capacity: usize) -> RefreshLedger {
        RefreshLedger {
            families: quick_cache::sync::Cache::new(capacity.max(1)),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Records that generation `presented` of `family` is being rotated
    /// into `presented + 1` at `now`; refuses reuse.
    pub(crate) fn rotate(
        &self,
        family: &str,
        presented: u32,
        now: u64,
        grace: u64,
    ) -> Result<(), Reused> {
        let stripe = self.hasher.hash_one(family) as usize & (STRIPES - 1);
        let _one_at_a_time = self.stripes[stripe]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(latest) = self.families.get(family) {
            if latest.revoked {
                return Err(Reused);
            }
            if presented < latest.gen {
                let just_replaced = presented + 1 == latest.gen;
                // Whole seconds: `<` so that a grace of 0 s means none.
                if just_replaced && now.saturating_sub(latest.issued_at) < grace {
                    return Ok(());
                }
                self.families.insert(
                    family.to_owned(),
                    Latest {
                        revoked: true,
                        ..latest
                    },
                );
                return Err(Reused);
            }
        }
        self.families.insert(
            family.to_owned(),
            Latest {
                gen: presented.saturating_add(1),
                issued_at: now,
                revoked: false,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_replaced_token_works_within_grace_then_reuse_revokes_the_family() {
        let l = RefreshLedger::new(100);
        assert_eq!(l.rotate("f", 1, 1000, 60), Ok(()));
        // Lost response: the client retries with generation 1.
        assert_eq!(l.rotate("f", 1, 1030, 60), Ok(()));
        assert_eq!(l.rotate("f", 2, 1040, 60), Ok(()));
        // Generation 1 again, long after: reuse. The family is dead here.
        assert_eq!(l.rotate("f", 1, 1200, 60), Err(Reused));
        assert_eq!(l.rotate("f", 3, 1201, 60), Err(Reused));
        assert_eq!(l.rotate("g", 1, 1201, 60), Ok(()));
    }

    #[test]
    fn an_older_generation_outside_grace_is_reuse() {
        let l = RefreshLedger::new(100);
        assert_eq!(l.rotate("f", 1, 1000, 60), Ok(()));
        assert_eq!(l.rotate("f", 1, 1060, 60), Err(Reused));
        let l = RefreshLedger::new(100);
        assert_eq!(l.rotate("f", 1, 1000, 0), Ok(()));
        assert_eq!(l.rotate("f", 1, 1000, 0), Err(Reused));
    }

    #[test]
    fn concurrent_presentations_of_one_token_rotate_it_once_without_grace() {
        use std::sync::Arc;
        for round in 0..300 {
            let l = Arc::new(RefreshLedger::new(100));
            let family = format!("f{round}");
            assert_eq!(l.rotate(&family, 1, 1000, 0), Ok(()));
            // Eight presentations of generation 2 released at once: one
            // rotation, the rest reuse (and the family then revoked).
            let start = Arc::new(std::sync::Barrier::new(8));
            let wins: usize = (0..8)
                .map(|_| {
                    let (l, family, start) = (l.clone(), family.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        l.rotate(&family, 2, 1001, 0).is_ok()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| usize::from(t.join().unwrap()))
                .sum();
            assert_eq!(wins, 1, "round {round}");
        }
    }
}

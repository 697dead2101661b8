//! Codes are single-use (RFC 6749 §4.1.2). Without a database that can be
//! enforced per process: each replica remembers the codes it redeemed until
//! they expire. A code is good for `tokens.code_ttl` (60 s by default, 10 min
//! at most), which bounds what a replay against another replica could gain.
//!
//! # Design
//!
//! [`SHARDS`] shards, each one `Mutex` over a `HashMap` (id → exp) and a
//! min-heap of `(exp, id)`; an id goes to the shard its keyed hash picks.
//! A call locks one shard only; with 64 shards and 2–16 cores two calls
//! rarely meet. On every call the shard first drops at most [`PURGE_BATCH`]
//! expired entries from the top of its heap (each entry is pushed once and
//! popped once, so the work is O(log n) per code, amortized, and bounded per
//! call); there is no scan.
//!
//! # Why it is correct
//!
//! - **Exactly one first use per id.** Lookup and insert happen under the
//!   lock of the one shard that holds the id; two concurrent redemptions of
//!   one code serialize there, and the second sees the first's entry.
//! - **Nothing unexpired is forgotten.** An entry leaves only when its
//!   `exp` has passed (`exp <= now`), and a code is refused from then on by
//!   `sealed::open` (`now >= exp`), so a replay of it is refused without the
//!   entry. There is no eviction: a shard at capacity refuses the *new* id
//!   ([`Full`], 503 `temporarily_unavailable`) and keeps every old one.
//! - **Refusal only when needed.** The heap's top is the shard's earliest
//!   `exp`: if it has not passed, nothing in the shard has, so a full shard
//!   with no expired entry is truly full of live codes; if it has, the purge
//!   before the capacity check frees it.
//!
//! Capacity is per shard (`capacity / SHARDS`, rounded up): ids are random
//! (a sealed code's `jti` is a 22-char `random_id`, not the client's choice)
//! and spread evenly, so the first refusal comes within a few percent of the
//! total (the saturation bench: the first 503 at ~900,000 of 917,504).
//! `crate::store` documents the memory bound.
//!
//! Why no cache crate: `quick_cache` (already here) has no expiry, and both
//! it and `moka` evict live entries when full (moka's TinyLFU may also
//! decline to admit a new key), which for codes means a second redemption;
//! a bound kept around moka would be a counter plus eviction callbacks,
//! more code than this, and moka is a large dependency.

use std::cmp::Reverse;
use std::collections::hash_map::RandomState;
use std::collections::{BinaryHeap, HashMap};
use std::hash::BuildHasher;
use std::sync::Mutex;

/// Shards of the cache; a power of two.
pub(crate) const SHARDS: usize = 64;

/// Expired entries a call drops at most before deciding.
const PURGE_BATCH: usize = 32;

/// Longest id stored inline (a code's `jti` is 22 chars).
const MAX_ID: usize = 23;

/// An id of at most [`MAX_ID`] bytes, inline: 24 bytes, no allocation.
/// Byte 0 is the length; the rest is the id, zero-padded.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Key([u8; MAX_ID + 1]);

impl Key {
    fn new(id: &str) -> Option<Key> {
        let b = id.as_bytes();
        if b.len() > MAX_ID {
            return None;
        }
        let mut k = [0u8; MAX_ID + 1];
        k[0] = b.len() as u8;
        k[1..=b.len()].copy_from_slice(b);
        Some(Key(k))
    }
}

#[derive(Default)]
struct Shard {
    /// id → exp.
    exp_of: HashMap<Key, u64>,
    /// The same entries, earliest `exp` on top.
    by_exp: BinaryHeap<Reverse<(u64, Key)>>,
}

impl Shard {
    /// Drops up to [`PURGE_BATCH`] entries whose `exp` has passed.
    fn purge(&mut self, now: u64) {
        for _ in 0..PURGE_BATCH {
            match self.by_exp.peek() {
                Some(Reverse((exp, key))) if *exp <= now => {
                    self.exp_of.remove(key);
                    self.by_exp.pop();
                }
                _ => return,
            }
        }
    }
}

/// Remembered code ids, bounded, sharded.
pub(crate) struct ReplayCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
}

/// The cache is full of unexpired codes: refuse rather than forget one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

impl ReplayCache {
    /// At most `capacity` ids (rounded up to a multiple of [`SHARDS`]).
    pub(crate) fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
        }
    }

    /// Records `id` (valid until `exp`). `Ok(true)` the first time,
    /// `Ok(false)` on any later use before `exp`. `Err(Full)` when the
    /// id's shard holds only unexpired codes, or (never for a minted code)
    /// when the id is longer than 23 bytes.
    pub(crate) fn first_use(&self, id: &str, exp: u64, now: u64) -> Result<bool, Full> {
        let key = Key::new(id).ok_or(Full)?;
        let shard = self.hasher.hash_one(key) as usize & (SHARDS - 1);
        let mut shard = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        shard.purge(now);
        if shard.exp_of.contains_key(&key) {
            return Ok(false);
        }
        if shard.exp_of.len() >= self.per_shard {
            return Err(Full);
        }
        shard.exp_of.insert(key, exp);
        shard.by_exp.push(Reverse((exp, key)));
        Ok(true)
    }

    /// Ids held now, expired or not (for tests and measurement).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap().exp_of.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    #[test]
    fn a_code_is_accepted_once() {
        let c = ReplayCache::new(10);
        assert_eq!(c.first_use("a", 100, 50), Ok(true));
        assert_eq!(c.first_use("a", 100, 51), Ok(false));
        assert_eq!(c.first_use("b", 100, 51), Ok(true));
    }

    #[test]
    fn a_minted_code_id_fits_inline() {
        assert!(Key::new(&crate::random::random_id()).is_some());
        assert!(Key::new(&"x".repeat(MAX_ID)).is_some());
        // Two entries per shard: "a" and "a\0" may hash to one shard.
        let c = ReplayCache::new(2 * SHARDS);
        assert_eq!(c.first_use(&"x".repeat(MAX_ID + 1), 100, 0), Err(Full));
        // Length is part of the key: "a" and "a\0" differ.
        assert_eq!(c.first_use("a", 100, 0), Ok(true));
        assert_eq!(c.first_use("a\0", 100, 0), Ok(true));
    }

    /// 8 threads redeem the same ids at once: exactly one wins per id.
    #[test]
    fn concurrent_first_use_has_exactly_one_winner_per_id() {
        const THREADS: usize = 8;
        const IDS: usize = 20_000;
        let ids: Arc<Vec<String>> =
            Arc::new((0..IDS).map(|_| crate::random::random_id()).collect());
        let c = Arc::new(ReplayCache::new(2 * IDS));
        let wins: Arc<Vec<AtomicUsize>> = Arc::new((0..IDS).map(|_| AtomicUsize::new(0)).collect());
        let start = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (ids, c, wins, start) = (ids.clone(), c.clone(), wins.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    // Each thread walks the ids from a different offset, so
                    // threads meet on the same id at different times.
                    for i in 0..IDS {
                        let i = (i + t * IDS / THREADS) % IDS;
                        if c.first_use(&ids[i], 1000, 0) == Ok(true) {
                            wins[i].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let won: Vec<usize> = wins.iter().map(|w| w.load(Ordering::Relaxed)).collect();
        assert!(won.iter().all(|&w| w <= 1), "an id won twice");
        assert_eq!(won.iter().sum::<usize>(), IDS, "every id won once");
        assert_eq!(c.len(), IDS);
    }

    #[test]
    fn a_full_cache_refuses_new_ids_and_still_refuses_replays() {
        // One id per shard at most.
        let c = ReplayCache::new(SHARDS);
        let mut stored = Vec::new();
        let mut refused = 0;
        for _ in 0..SHARDS * 20 {
            let id = crate::random::random_id();
            match c.first_use(&id, 100, 0) {
                Ok(true) => stored.push(id),
                Ok(false) => unreachable!("random ids do not repeat"),
                Err(Full) => refused += 1,
            }
        }
        assert_eq!(stored.len(), SHARDS, "every shard filled");
        assert_eq!(refused, SHARDS * 19);
        // Full: no old id was forgotten to make room.
        for id in &stored {
            assert_eq!(c.first_use(id, 100, 99), Ok(false));
        }
        assert_eq!(c.first_use(&crate::random::random_id(), 200, 99), Err(Full));
        // At 100 every stored code has expired: room again.
        for _ in 0..SHARDS * 40 {
            assert_ne!(
                c.first_use(&crate::random::random_id(), 200, 100),
                Ok(false)
            );
        }
        assert_eq!(c.len(), SHARDS);
    }

    #[test]
    fn expiry_frees_room_without_forgetting_the_unexpired() {
        // Capacity 1 per shard; ids that all land in one shard.
        let c = ReplayCache::new(SHARDS);
        let shard_of = |id: &str| c.hasher.hash_one(Key::new(id).unwrap()) as usize & (SHARDS - 1);
        let same: Vec<String> = (0..)
            .map(|i| format!("id{i}"))
            .filter(|id| shard_of(id) == 0)
            .take(3)
            .collect();
        assert_eq!(c.first_use(&same[0], 10, 0), Ok(true));
        assert_eq!(c.first_use(&same[1], 20, 5), Err(Full));
        // At 10 the first has expired (sealed::open refuses it from then).
        assert_eq!(c.first_use(&same[1], 20, 10), Ok(true));
        assert_eq!(c.first_use(&same[2], 30, 19), Err(Full));
        assert_eq!(c.first_use(&same[1], 20, 19), Ok(false));
    }

    #[test]
    fn expired_entries_are_purged_in_bounded_batches() {
        let c = ReplayCache::new(SHARDS * 1000);
        for i in 0..SHARDS * 500 {
            assert_eq!(c.first_use(&format!("{i}"), 10, 0), Ok(true));
        }
        // Each call drops at most PURGE_BATCH from its shard.
        c.first_use("late", 100, 10).unwrap();
        assert!(c.len() >= SHARDS * 500 + 1 - PURGE_BATCH);
        for i in 0..SHARDS * 100 {
            c.first_use(&format!("n{i}"), 100, 10).unwrap();
        }
        assert_eq!(c.len(), SHARDS * 100 + 1);
    }

    /// Bytes per entry at the default capacity: the process's RSS before
    /// and after filling a cache. Run with
    /// `cargo test --release --lib bytes_per_entry -- --ignored --nocapture`.
    #[test]
    #[ignore = "measurement: allocates ~100 MB"]
    fn bytes_per_entry() {
        fn rss() -> usize {
            let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
            let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
            pages * 4096
        }
        let n = crate::store::memory::CODES;
        let ids: Vec<String> = (0..crate::store::memory::FAMILIES)
            .map(|_| crate::random::random_id())
            .collect();
        let before = rss();
        let c = ReplayCache::new(n);
        let mut stored = 0;
        for id in &ids {
            if c.first_use(id, 1000, 0) == Ok(true) {
                stored += 1;
            }
        }
        let after = rss();
        let per = (after - before) as f64 / stored as f64;
        println!(
            "replay cache: {stored} of {n} ids stored, RSS +{:.1} MiB, {per:.1} bytes/entry",
            (after - before) as f64 / 1048576.0
        );
        drop(c);
        let n = crate::store::memory::FAMILIES;
        let ledger = crate::store::refresh_ledger::RefreshLedger::new(n);
        let before = rss();
        for id in &ids {
            ledger.rotate(id, 1, 0, 0).unwrap();
        }
        let after = rss();
        println!(
            "refresh ledger: {n} families, RSS +{:.1} MiB, {:.1} bytes/entry",
            (after - before) as f64 / 1048576.0,
            (after - before) as f64 / n as f64
        );
    }
}

//! Codes are single-use (RFC 6749 §4.1.2). Without a database that can be
//! enforced per process: each replica remembers the codes it redeemed until
//! they expire. A code is good for `tokens.code_ttl` (60 s) at most, which
//! bounds what a replay against another replica could gain.

use std::collections::HashMap;
use std::sync::Mutex;

/// Remembered code ids, bounded.
pub(crate) struct ReplayCache {
    seen: Mutex<HashMap<String, u64>>,
    capacity: usize,
}

/// The cache is full of unexpired codes: refuse rather than forget one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

impl ReplayCache {
    pub(crate) fn new(capacity: usize) -> ReplayCache {
        ReplayCache {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Records `id` (valid until `exp`). `Ok(true)` the first time,
    /// `Ok(false)` on any later use.
    pub(crate) fn first_use(&self, id: &str, exp: u64, now: u64) -> Result<bool, Full> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains_key(id) {
            return Ok(false);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, e| *e > now);
            if seen.len() >= self.capacity {
                return Err(Full);
            }
        }
        seen.insert(id.to_owned(), exp);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_accepted_once() {
        let c = ReplayCache::new(10);
        assert_eq!(c.first_use("a", 100, 50), Ok(true));
        assert_eq!(c.first_use("a", 100, 51), Ok(false));
        assert_eq!(c.first_use("b", 100, 51), Ok(true));
    }

    #[test]
    fn expired_entries_make_room_and_a_full_cache_refuses() {
        let c = ReplayCache::new(2);
        assert_eq!(c.first_use("a", 10, 0), Ok(true));
        assert_eq!(c.first_use("b", 100, 0), Ok(true));
        assert_eq!(c.first_use("c", 100, 20), Ok(true));
        assert_eq!(c.first_use("d", 100, 20), Err(Full));
    }
}

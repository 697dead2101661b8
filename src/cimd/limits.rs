//! What keeps fetching bounded on one replica: per-host fetch windows.
//! (How long a fetched document is kept: `http::freshness::FETCHED`.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most hosts tracked at once: a flood of distinct hosts cannot grow the
/// table past this; when full, fetches to new hosts wait for a window to
/// end.
const MAX_TRACKED_HOSTS: usize = 4096;

const WINDOW: Duration = Duration::from_secs(60);

/// Fetches per host in fixed one-minute windows.
pub(crate) struct HostWindows {
    per_window: u32,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl HostWindows {
    pub(crate) fn new(per_minute: u32) -> HostWindows {
        HostWindows {
            per_window: per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one fetch to `host`; `false` when its window is used up (or
    /// the table is full of live windows).
    pub(crate) fn try_fetch(&self, host: &str, now: Instant) -> bool {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if !w.contains_key(host) && w.len() >= MAX_TRACKED_HOSTS {
            w.retain(|_, (start, _)| now.duration_since(*start) < WINDOW);
            if w.len() >= MAX_TRACKED_HOSTS {
                return false;
            }
        }
        let (start, count) = w.entry(host.to_owned()).or_insert((now, 0));
        if now.duration_since(*start) >= WINDOW {
            *start = now;
            *count = 0;
        }
        if *count >= self.per_window {
            return false;
        }
        *count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::freshness;
    use http::HeaderMap;

    fn cc(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::CACHE_CONTROL, v.parse().unwrap());
        h
    }

    fn cache_lifetime(h: &HeaderMap) -> Duration {
        freshness::lifetime(h, freshness::FETCHED)
    }
    const MIN_CACHE: Duration = freshness::FETCHED.min;
    const MAX_CACHE: Duration = freshness::FETCHED.max;
    const DEFAULT_CACHE: Duration = freshness::FETCHED.default;

    #[test]
    fn lifetimes_follow_cache_control_within_bounds() {
        assert_eq!(cache_lifetime(&HeaderMap::new()), DEFAULT_CACHE);
        assert_eq!(
            cache_lifetime(&cc("max-age=7200")),
            Duration::from_secs(7200)
        );
        assert_eq!(cache_lifetime(&cc("max-age=5")), MIN_CACHE);
        assert_eq!(cache_lifetime(&cc("public, max-age=9999999")), MAX_CACHE);
        assert_eq!(cache_lifetime(&cc("no-store")), MIN_CACHE);
        let mut h = cc("max-age=4000");
        h.insert(http::header::AGE, "1000".parse().unwrap());
        assert_eq!(cache_lifetime(&h), Duration::from_secs(3000));
    }

    #[test]
    fn a_host_gets_its_window_and_no_more() {
        let w = HostWindows::new(3);
        let t = Instant::now();
        assert!((0..3).all(|_| w.try_fetch("a.example", t)));
        assert!(!w.try_fetch("a.example", t));
        assert!(w.try_fetch("b.example", t));
        assert!(w.try_fetch("a.example", t + WINDOW));
    }

    #[test]
    fn the_table_of_hosts_is_bounded() {
        let w = HostWindows::new(1);
        let t = Instant::now();
        for i in 0..MAX_TRACKED_HOSTS {
            assert!(w.try_fetch(&format!("h{i}.example"), t));
        }
        assert!(!w.try_fetch("one-more.example", t));
        assert!(w.try_fetch("one-more.example", t + WINDOW));
        assert!(w.windows.lock().unwrap().len() <= MAX_TRACKED_HOSTS);
    }
}

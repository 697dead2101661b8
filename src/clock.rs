//! The one clock: whole seconds since the Unix epoch, the unit of every
//! time in mcpgate's tokens, codes and cookies (JWT NumericDate, RFC 7519 §2).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Allowed clock difference between replicas and clients for an access
/// token's `exp` and `nbf`. Here, below `tokens` and `keys`, because both
/// depend on it: a signing key's tokens live `access_ttl` plus this.
pub const LEEWAY_SECS: u64 = 60;

/// Seconds since the Unix epoch; 0 if the system clock is before it.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch, for what is timed against another
/// clock in ms (the shared store's, `store::redis`); 0 before the epoch.
pub(crate) fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `secs` as RFC 3339 UTC to the second (`2026-11-26T13:05:00Z`): how
/// times are written in key files, deny lines and the CLI's output.
pub(crate) fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

/// An RFC 3339 time (a space for `T` and a missing `Z` tolerated) as
/// seconds since the epoch; `None` if it is not one or is before 1970.
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    humantime::parse_rfc3339_weak(s)
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs())
}

/// A duration as operators write it (`"30s"`, `"15m"`, `"1h"`, `"30d"`),
/// from the config or the command line; the error says what to write.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(unitless(t));
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("`{s}` is not a duration such as \"30s\", \"15m\", \"1h\" or \"30d\" ({e})")
    })
}

/// The error for a bare number where a duration belongs (`rescan = 30`),
/// the likeliest mistake.
pub(crate) fn unitless(n: impl std::fmt::Display) -> String {
    format!("`{n}` has no unit: write a duration such as \"{n}s\" (s, m, h, d)")
}

/// `d` as operators write durations: the largest whole unit (`"30d"`,
/// `"90m"`, not humantime's `"30days"` or `"1h 30m"`), so that what they
/// wrote is what they read back.
pub(crate) fn duration_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        _ if d.subsec_nanos() != 0 => humantime::format_duration(d).to_string(),
        0 => "0s".to_owned(),
        _ if secs % 86_400 == 0 => format!("{}d", secs / 86_400),
        _ if secs % 3_600 == 0 => format!("{}h", secs / 3_600),
        _ if secs % 60 == 0 => format!("{}m", secs / 60),
        _ => format!("{secs}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_to_the_second() {
        assert_eq!(rfc3339(1_764_162_300), "2025-11-26T13:05:00Z");
        assert_eq!(parse_rfc3339("2025-11-26T13:05:00Z"), Some(1_764_162_300));
        assert_eq!(parse_rfc3339("2025-11-26 13:05:00"), Some(1_764_162_300));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn durations_read_back_in_the_largest_whole_unit() {
        let d = |s| duration_text(Duration::from_secs(s));
        assert_eq!(d(31 * 86_400), "31d");
        assert_eq!(d(5400), "90m");
        assert_eq!(d(7200), "2h");
        assert_eq!(d(61), "61s");
        assert_eq!(d(0), "0s");
    }

    #[test]
    fn a_duration_needs_a_unit_and_the_error_says_which() {
        assert_eq!(
            parse_duration(" 30d "),
            Ok(Duration::from_secs(30 * 86_400))
        );
        assert!(parse_duration("3600").unwrap_err().contains("has no unit"));
        assert!(parse_duration("1x")
            .unwrap_err()
            .contains("such as \"30s\""));
    }
}

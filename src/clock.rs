//! The one clock: whole seconds since the Unix epoch, the unit of every
//! time in mcpgate's tokens, codes and cookies (JWT NumericDate, RFC 7519 §2).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch; 0 if the system clock is before it.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

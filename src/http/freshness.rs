//! How long a response fetched from elsewhere may be used (RFC 9111
//! §4.2.1, simplified): the Google JWKS (`identity::id_token`) and client
//! metadata documents (`cimd`) are both kept this way.

use std::time::Duration;

use http::HeaderMap;

/// What a caller keeps responses for: at least `min` (so a server cannot
/// make this one fetch on every request), at most `max` (so a change is
/// seen), `default` when the response says nothing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub min: Duration,
    pub default: Duration,
    pub max: Duration,
}

/// What this server fetches from elsewhere (the Google JWKS, client
/// metadata documents and their key sets) is kept at least 5 minutes, at
/// most a day, an hour when the response says nothing.
pub(crate) const FETCHED: Bounds = Bounds {
    min: Duration::from_secs(5 * 60),
    default: Duration::from_secs(3600),
    max: Duration::from_secs(24 * 3600),
};

/// `Cache-Control: max-age` less `Age`; `no-store`, `no-cache` and
/// `private` mean `bounds.min`; nothing said, `bounds.default`; always
/// within `bounds.min ..= bounds.max`.
pub(crate) fn lifetime(headers: &HeaderMap, bounds: Bounds) -> Duration {
    let mut max_age = None;
    for d in headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let (k, v) = d.trim().split_once('=').unwrap_or((d.trim(), ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "no-store" | "no-cache" | "private" => return bounds.min,
            "max-age" => max_age = v.trim().trim_matches('"').parse::<u64>().ok(),
            _ => {}
        }
    }
    let Some(max_age) = max_age else {
        return bounds.default;
    };
    let age = headers
        .get(http::header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    Duration::from_secs(max_age.saturating_sub(age)).clamp(bounds.min, bounds.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        min: Duration::from_secs(300),
        default: Duration::from_secs(3600),
        max: Duration::from_secs(86_400),
    };

    fn with(cc: &str, age: Option<&str>) -> Duration {
        let mut h = HeaderMap::new();
        h.insert(http::header::CACHE_CONTROL, cc.parse().unwrap());
        if let Some(a) = age {
            h.insert(http::header::AGE, a.parse().unwrap());
        }
        lifetime(&h, B)
    }

    #[test]
    fn max_age_less_age_within_bounds() {
        assert_eq!(lifetime(&HeaderMap::new(), B), B.default);
        assert_eq!(
            with("public, max-age=19443, must-revalidate, no-transform", None),
            Duration::from_secs(19443)
        );
        assert_eq!(
            with("public, max-age=19443", Some("443")),
            Duration::from_secs(19000)
        );
        assert_eq!(with("Max-Age=\"7200\"", None), Duration::from_secs(7200));
        assert_eq!(with("max-age=10", None), B.min);
        assert_eq!(with("max-age=999999", None), B.max);
        for never in ["no-store", "no-cache", "private", "max-age=7200, no-store"] {
            assert_eq!(with(never, None), B.min, "{never}");
        }
    }
}

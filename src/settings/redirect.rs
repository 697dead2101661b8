//! Redirect URIs: what may be registered on a host, and when an authorize
//! request's `redirect_uri` matches a registered one.
//!
//! Comparison is on the exact string (RFC 9700 §4.1.3: exact matching), with
//! one exception: loopback URIs match with any port (RFC 8252 §7.3).

/// Longest `redirect_uri` a client may register, counted as a code seals
/// it: as JSON, where each `"` takes two bytes ([`json_len`]). A code
/// carries its redirect URI, so a longer one could make a code that
/// `sealed::open` refuses as over `MAX_SEALED_LEN`: a client that could
/// sign in but never redeem a code. With every other member of the code at
/// its longest (identity headers of `MAX_IDENTITY_LEN` characters, all
/// escaped; a 300-character resource; a 128-character `kid`; a loopback
/// port added at authorize) the code still opens: pinned by
/// `the_longest_code_still_opens` in `tokens::grants`. Real callbacks are far shorter.
pub const MAX_CODE_REDIRECT_URI: usize = 960;

/// The length of `s` inside a JSON string, as it is sealed.
pub fn json_len(s: &str) -> usize {
    serde_json::to_string(s).map_or(usize::MAX, |j| j.len() - 2)
}

/// Longest redirect URI accepted anywhere. Registration is stricter:
/// [`check_registrable`].
pub const MAX_REDIRECT_URI_LEN: usize = 2000;

/// One entry of a host's `redirect_uris` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyEntry {
    /// `"loopback"`: `http` on 127.0.0.1, \[::1\] or localhost, any port and path.
    Loopback,
    /// `"prefix:<uri>"`: any URI that extends the prefix by plain path
    /// characters (per-connector callbacks such as ChatGPT's).
    Prefix(String),
    /// Any other string: exactly this URI.
    Exact(String),
}

/// A host's redirect policy, checked at registration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedirectPolicy {
    entries: Vec<PolicyEntry>,
}

/// Schemes that can run code in, or read from, the browser: never a
/// redirect target whatever the configuration says.
const FORBIDDEN_SCHEMES: &[&str] = &["javascript", "data", "vbscript", "file", "blob", "about"];

/// Why a URI is not a usable redirect URI. The text is the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UriError {
    #[error("is not an absolute URI")]
    NotAbsolute,
    #[error("is too long")]
    TooLong,
    #[error("must not contain a fragment")]
    Fragment,
    #[error("must not contain user information")]
    UserInfo,
    #[error("uses a forbidden scheme")]
    ForbiddenScheme,
    #[error("uses plain http on a non-loopback host")]
    InsecureHttp,
    #[error("is not allowed on this host")]
    NotAllowed,
    #[error(
        "is too long for an authorization code to carry (at most {} bytes, a double quote counting as two)",
        MAX_CODE_REDIRECT_URI
    )]
    TooLongForCode,
}

/// The loopback hosts RFC 8252 §7.3 lets native apps listen on.
fn is_loopback_host(host: &str) -> bool {
    matches!(host, "127.0.0.1" | "[::1]" | "localhost")
}

/// Splits `http://HOST[:PORT]REST` into (HOST, PORT, REST) without
/// normalizing anything, so comparisons stay exact.
fn split_http(uri: &str) -> Option<(&str, Option<&str>, &str)> {
    let rest = uri.strip_prefix("http://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (host, port) = if authority.starts_with('[') {
        let close = authority.find(']')?;
        let (h, p) = authority.split_at(close + 1);
        // Only `:port` may follow the bracket (found by fuzzing:
        // `[::1]9` was read as `[::1]`).
        match p {
            "" => (h, None),
            p => (h, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    Some((host, port, tail))
}

/// Whether `uri` is an `http` loopback URI (any port).
pub fn is_loopback(uri: &str) -> bool {
    matches!(split_http(uri), Some((host, _, _)) if is_loopback_host(host))
}

/// The checks every redirect URI must pass, whatever the policy: absolute,
/// no fragment (RFC 6749 §3.1.2), no userinfo, no script schemes, `http`
/// only on loopback.
pub fn check_uri(uri: &str) -> Result<(), UriError> {
    if uri.len() > MAX_REDIRECT_URI_LEN {
        return Err(UriError::TooLong);
    }
    if uri.contains('#') {
        return Err(UriError::Fragment);
    }
    if uri.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
        return Err(UriError::NotAbsolute);
    }
    let parsed = url::Url::parse(uri).map_err(|_| UriError::NotAbsolute)?;
    let scheme = parsed.scheme();
    if FORBIDDEN_SCHEMES.contains(&scheme) {
        return Err(UriError::ForbiddenScheme);
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UriError::UserInfo);
    }
    match scheme {
        "http" if is_loopback(uri) => Ok(()),
        "http" => Err(UriError::InsecureHttp),
        "https" if parsed.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "https" => Err(UriError::NotAbsolute),
        // Private-use schemes (RFC 8252 §7.1), only where a policy entry
        // names them exactly or by prefix.
        _ => Ok(()),
    }
}

/// A URI a client may register or an admin may configure for a client:
/// [`check_uri`], and short enough that every code sent to it can be
/// redeemed (see [`MAX_CODE_REDIRECT_URI`]). Only checked when a URI is
/// registered: at authorize, a loopback URI may be a port longer.
pub fn check_registrable(uri: &str) -> Result<(), UriError> {
    check_uri(uri)?;
    if json_len(uri) > MAX_CODE_REDIRECT_URI {
        return Err(UriError::TooLongForCode);
    }
    Ok(())
}

impl PolicyEntry {
    /// Parses a config entry; errors describe what is wrong with it.
    pub fn parse(entry: &str) -> Result<PolicyEntry, String> {
        if entry == "loopback" {
            return Ok(PolicyEntry::Loopback);
        }
        if let Some(prefix) = entry.strip_prefix("prefix:") {
            check_uri(prefix).map_err(|e| format!("prefix `{prefix}` {e}"))?;
            // Without a path boundary, `https://a.com` would also allow
            // `https://a.com.evil.example`.
            let after_scheme = prefix.split_once("://").map(|(_, r)| r).unwrap_or("");
            if !prefix.ends_with('/') || !after_scheme.contains('/') {
                return Err(format!(
                    "prefix `{prefix}` must include a path and end with `/`"
                ));
            }
            if prefix.contains('?') {
                return Err(format!("prefix `{prefix}` must not contain a query"));
            }
            return Ok(PolicyEntry::Prefix(prefix.to_owned()));
        }
        check_uri(entry).map_err(|e| format!("`{entry}` {e}"))?;
        Ok(PolicyEntry::Exact(entry.to_owned()))
    }

    fn allows(&self, uri: &str) -> bool {
        match self {
            PolicyEntry::Loopback => is_loopback(uri),
            PolicyEntry::Exact(e) => e == uri,
            PolicyEntry::Prefix(p) => uri.strip_prefix(p.as_str()).is_some_and(|rest| {
                !rest.is_empty()
                    && rest.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/')
                    })
                    && !rest.split('/').any(|seg| seg == "." || seg == "..")
            }),
        }
    }
}

impl RedirectPolicy {
    pub fn new(entries: Vec<PolicyEntry>) -> RedirectPolicy {
        RedirectPolicy { entries }
    }

    /// Whether `uri` is allowed on this host (registration adds
    /// [`check_registrable`]).
    pub fn check(&self, uri: &str) -> Result<(), UriError> {
        check_uri(uri)?;
        if self.entries.iter().any(|e| e.allows(uri)) {
            Ok(())
        } else {
            Err(UriError::NotAllowed)
        }
    }
}

/// Whether the authorize request's `requested` URI is the `registered` one:
/// the same string, or for loopback the same string but for the port
/// (RFC 8252 §7.3).
pub fn matches_registered(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (split_http(registered), split_http(requested)) {
        (Some((h1, _, rest1)), Some((h2, _, rest2))) => {
            is_loopback_host(h1) && h1 == h2 && rest1 == rest2
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> RedirectPolicy {
        RedirectPolicy::new(
            entries
                .iter()
                .map(|e| PolicyEntry::parse(e).unwrap())
                .collect(),
        )
    }

    #[test]
    fn loopback_policy_accepts_any_port_and_path_on_loopback_only() {
        let p = policy(&["loopback"]);
        for ok in [
            "http://127.0.0.1:33418/",
            "http://localhost:6274/oauth/callback",
            "http://[::1]:8080/cb",
            "http://localhost/callback",
        ] {
            assert_eq!(p.check(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            p.check("http://example.com/cb"),
            Err(UriError::InsecureHttp)
        );
        assert_eq!(
            p.check("http://localhost.evil.com/cb"),
            Err(UriError::InsecureHttp)
        );
        assert_eq!(
            p.check("http://localhost@evil.com/cb"),
            Err(UriError::UserInfo)
        );
        assert_eq!(
            p.check("https://claude.ai/api/mcp/auth_callback"),
            Err(UriError::NotAllowed)
        );
        assert_eq!(
            p.check("http://127.0.0.1:1/cb#frag"),
            Err(UriError::Fragment)
        );
    }

    #[test]
    fn exact_entries_match_the_whole_string() {
        let p = policy(&["https://claude.ai/api/mcp/auth_callback"]);
        assert_eq!(p.check("https://claude.ai/api/mcp/auth_callback"), Ok(()));
        for bad in [
            "https://claude.ai/api/mcp/auth_callback/",
            "https://claude.ai/api/mcp/auth_callback?x",
            "https://Claude.ai/api/mcp/auth_callback",
            "https://claude.ai/API/mcp/auth_callback",
        ] {
            assert_eq!(p.check(bad), Err(UriError::NotAllowed), "{bad}");
        }
        assert_eq!(
            p.check("https://claude.ai@evil.example/api/mcp/auth_callback"),
            Err(UriError::UserInfo)
        );
        assert_eq!(
            p.check("javascript:alert(1)"),
            Err(UriError::ForbiddenScheme)
        );
        assert_eq!(p.check("data:text/html,hi"), Err(UriError::ForbiddenScheme));
    }

    #[test]
    fn prefix_entries_allow_plain_path_extensions_only() {
        let p = policy(&["prefix:https://chatgpt.com/connector/oauth/"]);
        assert_eq!(
            p.check("https://chatgpt.com/connector/oauth/abc-123"),
            Ok(())
        );
        for bad in [
            "https://chatgpt.com/connector/oauth/",
            "https://chatgpt.com/connector/oauth/../evil",
            "https://chatgpt.com/connector/oauth/a?next=https://evil",
            "https://chatgpt.com/connector/oauth/a%2F..",
        ] {
            assert_eq!(p.check(bad), Err(UriError::NotAllowed), "{bad}");
        }
        assert!(PolicyEntry::parse("prefix:https://chatgpt.com").is_err());
        assert!(PolicyEntry::parse("prefix:https://chatgpt.com/x").is_err());
        assert!(PolicyEntry::parse("http://example.com/cb").is_err());
    }

    #[test]
    fn private_use_schemes_need_an_explicit_entry() {
        let p = policy(&["cursor://anysphere.cursor-mcp/oauth/callback", "loopback"]);
        assert_eq!(
            p.check("cursor://anysphere.cursor-mcp/oauth/callback"),
            Ok(())
        );
        assert_eq!(
            p.check("cursor://anysphere.cursor-mcp/other"),
            Err(UriError::NotAllowed)
        );
    }

    #[test]
    fn a_uri_too_long_for_a_code_cannot_be_registered() {
        let base = "http://127.0.0.1:1/";
        let fits = format!("{base}{}", "a".repeat(MAX_CODE_REDIRECT_URI - base.len()));
        assert_eq!(check_registrable(&fits), Ok(()));
        assert_eq!(
            check_registrable(&format!("{fits}a")),
            Err(UriError::TooLongForCode)
        );
        // Measured as sealed: each `"` is two bytes of JSON.
        let quotes = format!("{base}{}", "\"".repeat(MAX_CODE_REDIRECT_URI / 2));
        assert_eq!(check_uri(&quotes), Ok(()));
        assert_eq!(check_registrable(&quotes), Err(UriError::TooLongForCode));
        // The audit's repro: under MAX_REDIRECT_URI_LEN, over the code's room.
        let repro = format!("{base}{}{}", "\"".repeat(800), "a".repeat(1170));
        assert!(repro.len() <= MAX_REDIRECT_URI_LEN);
        assert_eq!(check_registrable(&repro), Err(UriError::TooLongForCode));
        assert_eq!(
            check_registrable("javascript:alert(1)"),
            Err(UriError::ForbiddenScheme)
        );
    }

    #[test]
    fn loopback_registrations_match_with_another_port_only() {
        let reg = "http://127.0.0.1:1234/callback";
        assert!(matches_registered(reg, "http://127.0.0.1:5555/callback"));
        assert!(matches_registered(reg, "http://127.0.0.1/callback"));
        assert!(!matches_registered(reg, "http://localhost:1234/callback"));
        assert!(!matches_registered(reg, "http://127.0.0.1:1234/callback/"));
        assert!(!matches_registered(reg, "http://127.0.0.1:12a/callback"));
        assert!(!matches_registered("http://[::1]/cb", "http://[::1]9/cb"));
        assert!(!is_loopback("http://[::1]evil/cb"));
        let cloud = "https://claude.ai/api/mcp/auth_callback";
        assert!(matches_registered(cloud, cloud));
        assert!(!matches_registered(
            cloud,
            "https://claude.ai:444/api/mcp/auth_callback"
        ));
    }
}

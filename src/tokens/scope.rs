//! OAuth scopes (RFC 6749 §3.3): space-delimited, case-sensitive tokens.
//! This is the one place a scope string is split.

use serde::{Deserialize, Serialize};

/// Scopes this authorization server knows. `mcp` is the resource's;
/// `offline_access` asks for a refresh token.
pub const SCOPES_SUPPORTED: &[&str] = &["mcp", "offline_access"];
/// The scope granted when a client asks for none.
pub(crate) const DEFAULT_SCOPE: &str = "mcp";

/// A scope this server granted: known tokens only, each once, the
/// resource's own (`DEFAULT_SCOPE`) always first. Sealed into codes and
/// refresh tokens; written into access tokens as its string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Scope(String);

/// A requested scope token this server does not know (at most 60
/// characters of it, for the error description).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScope(pub String);

/// The tokens of a scope string as a client wrote it: empty ones (from
/// repeated spaces) are skipped.
pub fn tokens(scope: &str) -> impl Iterator<Item = &str> {
    scope.split(' ').filter(|t| !t.is_empty())
}

/// Whether the scope string `scope` contains `token`.
pub fn contains(scope: &str, token: &str) -> bool {
    tokens(scope).any(|t| t == token)
}

impl Scope {
    /// The scope to grant for `requested`: each token we know, or the
    /// default when none were asked for. Without `offline`,
    /// `offline_access` is left out rather than refused: RFC 6749 §3.3
    /// lets the server grant less than asked and say so in the token
    /// response's `scope`, and clients that always ask for it still sign in.
    pub fn granted(requested: Option<&str>, offline: bool) -> Result<Scope, UnknownScope> {
        let mut out: Vec<&str> = Vec::new();
        for t in tokens(requested.unwrap_or("")) {
            if !SCOPES_SUPPORTED.contains(&t) {
                return Err(UnknownScope(t.chars().take(60).collect()));
            }
            if !out.contains(&t) && (offline || t != "offline_access") {
                out.push(t);
            }
        }
        if !out.contains(&DEFAULT_SCOPE) {
            out.insert(0, DEFAULT_SCOPE);
        }
        Ok(Scope(out.join(" ")))
    }

    /// RFC 6749 §6: a refresh may ask for a narrower scope, never a wider
    /// one. `None` when `requested` names a token not in this scope.
    pub fn narrowed(&self, requested: &str) -> Option<Scope> {
        let asked: Vec<&str> = tokens(requested).collect();
        if asked.iter().any(|t| !self.contains(t)) {
            return None;
        }
        Some(Scope(asked.join(" ")))
    }

    pub fn contains(&self, token: &str) -> bool {
        contains(&self.0, token)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Every scope this server supports, for tests of the longest grants.
    #[cfg(test)]
    pub(crate) fn all() -> Scope {
        Scope(SCOPES_SUPPORTED.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn granted(requested: Option<&str>, offline: bool) -> Result<String, UnknownScope> {
        Scope::granted(requested, offline).map(|s| s.0)
    }

    #[test]
    fn scope_defaults_to_mcp_and_unknown_scopes_are_refused() {
        assert_eq!(granted(None, true).unwrap(), "mcp");
        assert_eq!(granted(Some(""), true).unwrap(), "mcp");
        assert_eq!(
            granted(Some("offline_access"), true).unwrap(),
            "mcp offline_access"
        );
        assert_eq!(granted(Some("mcp mcp"), true).unwrap(), "mcp");
        assert_eq!(
            granted(Some("openid"), true).unwrap_err(),
            UnknownScope("openid".into())
        );
    }

    #[test]
    fn offline_access_is_left_out_for_a_client_that_gets_no_refresh_token() {
        assert_eq!(granted(Some("mcp offline_access"), false).unwrap(), "mcp");
        assert_eq!(granted(Some("offline_access"), false).unwrap(), "mcp");
        // Still refused when unknown, whatever else is left out.
        assert_eq!(
            granted(Some("offline_access admin"), false).unwrap_err(),
            UnknownScope("admin".into())
        );
    }

    #[test]
    fn a_refresh_may_narrow_the_scope_but_never_widen_it() {
        let s = Scope::granted(Some("mcp offline_access"), true).unwrap();
        assert_eq!(s.narrowed("mcp").unwrap().as_str(), "mcp");
        assert_eq!(s.narrowed(" mcp  offline_access").unwrap(), s);
        assert!(s.narrowed("mcp admin").is_none());
        assert!(contains("a  mcp", "mcp") && !contains("mcpx", "mcp"));
    }
}

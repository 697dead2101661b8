//! RFC 8707 resource indicators: which of this server's resources a
//! request's `resource` parameters name.
//!
//! A client may send `resource` more than once (§2). mcpgate's tokens carry
//! a single audience (RFC 9068 `aud` is one resource, and codes and
//! refresh tokens bind one), so a request is honoured when all its values
//! name the same resource, and refused with `invalid_target` when they
//! name several: §2 lets the server refuse a combination of resources it
//! will not issue one token for, and a token whose `aud` named only one
//! of them would not be the token that was asked for.

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use crate::settings::Settings;

/// The resource the request's `resource` parameters name (a host's `/mcp`
/// or an upstream mount), as tokens spell it; `None` when there are none
/// (the caller's default applies).
pub(crate) fn requested<'s>(
    settings: &'s Settings,
    params: &Params<'_>,
) -> Result<Option<&'s str>, OAuthError> {
    one_of(params.get_all("resource"), |r| settings.resource_named(r))
}

/// [`requested`] over any lookup: every value must be found, and all must
/// be found to be the same resource.
fn one_of<'v, 's>(
    values: impl Iterator<Item = &'v str>,
    lookup: impl Fn(&str) -> Option<&'s str>,
) -> Result<Option<&'s str>, OAuthError> {
    let mut found: Option<&'s str> = None;
    for value in values {
        let site = lookup(value).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is not a resource of this server",
            )
        })?;
        match found {
            Some(f) if f != site => {
                return Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    "one resource per request: tokens here are for a single resource, ask for each one separately",
                ))
            }
            _ => found = Some(site),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_resources_are_honoured_only_when_they_name_one_resource() {
        let resources = ["https://a/mcp", "https://b/mcp"];
        let lookup = |r: &str| {
            let r = r.strip_suffix('/').unwrap_or(r);
            resources.iter().copied().find(|s| *s == r)
        };
        let pick = |values: &[&str]| one_of(values.iter().copied(), lookup);
        assert!(pick(&[]).unwrap().is_none());
        assert_eq!(pick(&["https://a/mcp"]).unwrap().unwrap(), "https://a/mcp");
        assert_eq!(
            pick(&["https://b/mcp", "https://b/mcp/"]).unwrap().unwrap(),
            "https://b/mcp"
        );
        let e = pick(&["https://a/mcp", "https://b/mcp"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(e.description().contains("one resource per request"));
        let e = pick(&["https://a/mcp", "https://evil/mcp"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(e.description().contains("not a resource of this server"));
    }
}

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
use crate::settings::{Settings, Site};

/// The site the request's `resource` parameters name; `None` when there
/// are none (the caller's default applies).
pub(crate) fn requested<'s>(
    settings: &'s Settings,
    params: &Params<'_>,
) -> Result<Option<&'s Site>, OAuthError> {
    one_of(params.get_all("resource"), |r| {
        settings.site_for_resource(r)
    })
}

/// [`requested`] over any lookup: every value must be found, and all must
/// be found to be the same site.
fn one_of<'v, 's>(
    values: impl Iterator<Item = &'v str>,
    lookup: impl Fn(&str) -> Option<&'s Site>,
) -> Result<Option<&'s Site>, OAuthError> {
    let mut found: Option<&'s Site> = None;
    for value in values {
        let site = lookup(value).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidTarget,
                "resource is not a resource of this server",
            )
        })?;
        match found {
            Some(f) if f.resource != site.resource => {
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
    use crate::settings::redirect::RedirectPolicy;

    fn site(issuer: &str) -> Site {
        Site::new(issuer, RedirectPolicy::default()).unwrap()
    }

    #[test]
    fn repeated_resources_are_honoured_only_when_they_name_one_resource() {
        let sites = [site("https://a"), site("https://b")];
        let lookup = |r: &str| {
            let r = r.strip_suffix('/').unwrap_or(r);
            sites.iter().find(|s| s.resource == r)
        };
        let pick = |values: &[&str]| one_of(values.iter().copied(), lookup);
        assert!(pick(&[]).unwrap().is_none());
        assert_eq!(
            pick(&["https://a/mcp"]).unwrap().unwrap().issuer,
            "https://a"
        );
        assert_eq!(
            pick(&["https://b/mcp", "https://b/mcp/"])
                .unwrap()
                .unwrap()
                .issuer,
            "https://b"
        );
        let e = pick(&["https://a/mcp", "https://b/mcp"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(e.description().contains("one resource per request"));
        let e = pick(&["https://a/mcp", "https://evil/mcp"]).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidTarget);
        assert!(e.description().contains("not a resource of this server"));
    }
}

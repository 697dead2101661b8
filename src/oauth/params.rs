//! `application/x-www-form-urlencoded` parameters (query strings and
//! token request bodies). RFC 6749 §3.1 / §3.2: a parameter must not be
//! sent twice, and one without a value is treated as absent. The exception
//! is `resource`, which RFC 8707 §2 lets a client repeat.

use std::borrow::Cow;

use super::error::OAuthError;

/// Most parameters a request may carry: more is not a real client.
const MAX_PARAMS: usize = 64;

/// Parameters a request may send more than once (RFC 8707 §2). Read them
/// with [`Params::get_all`].
const MULTI_VALUED: &[&str] = &["resource"];

/// mcpgate's own form fields, posted back to `/oauth/authorize` with the
/// client's request: the consent answer (`allow` or `deny`), the consent
/// form's sealed CSRF token, and the dev sign-in form's email.
pub(crate) const CONSENT_FIELD: &str = "consent";
pub(crate) const CSRF_FIELD: &str = "csrf";
pub(crate) const DEV_EMAIL_FIELD: &str = "mcpgate_dev_email";

/// Whether `name` is one of mcpgate's own form fields, never part of the
/// client's request: left out of the consent request hash and out of
/// re-posted fields.
pub(crate) fn is_own_form_field(name: &str) -> bool {
    matches!(name, CONSENT_FIELD | CSRF_FIELD | DEV_EMAIL_FIELD)
}

pub struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

/// The single-valued parameters that were sent more than once, in the
/// order first repeated; never empty. The authorize endpoint must know
/// which before it can decide where the error goes (RFC 6749 §4.1.2.1), so
/// this is a value, not yet an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repeated {
    names: Vec<String>,
}

impl Repeated {
    /// The error for `name`, if it is one of the repeated parameters.
    pub(crate) fn error_for(&self, name: &str) -> Option<OAuthError> {
        self.names
            .iter()
            .any(|n| n == name)
            .then(|| repeated_error(name))
    }

    /// The error naming the first parameter repeated.
    pub(crate) fn into_error(self) -> OAuthError {
        repeated_error(&self.names[0])
    }
}

/// `invalid_request` naming the parameter: the client's text, so bounded
/// (`OAuthError` keeps it to the characters `error_description` allows).
fn repeated_error(name: &str) -> OAuthError {
    let name: String = name.chars().take(60).collect();
    OAuthError::invalid_request(format!("parameter {name} is repeated"))
}

impl<'a> Params<'a> {
    /// Parses `input`, refusing any repeated single-valued parameter.
    pub fn parse(input: &'a [u8]) -> Result<Params<'a>, OAuthError> {
        match Params::parse_noting_repeats(input)? {
            (params, None) => Ok(params),
            (_, Some(repeated)) => Err(repeated.into_error()),
        }
    }

    /// Parses `input`, keeping the first value of each repeated
    /// single-valued parameter and returning which ones repeated beside the
    /// parameters, for a caller that must look at other parameters before
    /// it answers.
    pub(crate) fn parse_noting_repeats(
        input: &'a [u8],
    ) -> Result<(Params<'a>, Option<Repeated>), OAuthError> {
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        let mut repeated: Vec<String> = Vec::new();
        for (k, v) in form_urlencoded::parse(input) {
            if pairs.len() == MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            if v.is_empty() {
                continue;
            }
            if !MULTI_VALUED.contains(&&*k) && pairs.iter().any(|(seen, _)| *seen == k) {
                if !repeated.iter().any(|r| *r == k) {
                    repeated.push(k.into_owned());
                }
                continue;
            }
            pairs.push((k, v));
        }
        let repeated = (!repeated.is_empty()).then_some(Repeated { names: repeated });
        Ok((Params { pairs }, repeated))
    }

    /// The value of a single-valued parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        debug_assert!(
            !MULTI_VALUED.contains(&name),
            "{name} may repeat: read it with get_all"
        );
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    /// Every value of a parameter that may repeat, in request order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_ref())
    }

    pub fn require(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }

    /// Every pair, for re-posting the authorize request from a form.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_ignored() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=1&b=&c=x+y%21").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y!"));
        // An empty second value is absent, not a repeat.
        assert_eq!(Params::parse(b"a=1&a=").unwrap().get("a"), Some("1"));
    }

    #[test]
    fn a_repeat_is_noted_with_the_first_value_kept() {
        let (p, r) = Params::parse_noting_repeats(b"a=1&b=2&a=3&b=4&a=5").unwrap();
        let r = r.unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), Some("2"));
        assert_eq!(
            r.error_for("b").unwrap().description(),
            "parameter b is repeated"
        );
        assert_eq!(r.error_for("c"), None);
        assert_eq!(r.into_error().description(), "parameter a is repeated");
        let (_, r) = Params::parse_noting_repeats(b"a=1&b=2").unwrap();
        assert_eq!(r, None);
    }

    #[test]
    fn resource_may_repeat() {
        let p = Params::parse(b"resource=https%3A%2F%2Fa%2Fmcp&x=1&resource=https%3A%2F%2Fb%2Fmcp")
            .unwrap();
        assert_eq!(
            p.get_all("resource").collect::<Vec<_>>(),
            ["https://a/mcp", "https://b/mcp"]
        );
        assert_eq!(p.get_all("missing").count(), 0);
    }

    #[test]
    fn a_repeated_name_is_described_within_the_error_description_charset() {
        let (_, r) = Params::parse_noting_repeats("x\"\\é\n=1&x\"\\é\n=2".as_bytes()).unwrap();
        assert_eq!(
            r.unwrap().into_error().description(),
            "parameter x'??? is repeated"
        );
    }
}

//! `[identity] id_token_*`: which Google ID token `/oauth/authorize`
//! checks, validated into plain data. The verifier that uses it lives in
//! `identity::id_token`.

use std::path::PathBuf;

use http::HeaderName;

use crate::config::{IdentityConfig, IdentitySource, GOOGLE_ISSUER};

/// Google also writes its issuer without the scheme.
pub(crate) const GOOGLE_ISSUER_BARE: &str = "accounts.google.com";

/// Where the issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksSource {
    File(PathBuf),
    Url(url::Url),
}

impl std::fmt::Display for JwksSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwksSource::File(p) => write!(f, "{}", p.display()),
            JwksSource::Url(u) => write!(f, "{u}"),
        }
    }
}

/// What a token must say, from the config.
#[derive(Debug, Clone)]
pub struct Expected {
    pub audience: String,
    /// Accepted `iss` values.
    pub issuers: Vec<String>,
}

/// The ID token to check: the header it arrives in, what it must say,
/// and where its issuer's keys come from.
#[derive(Debug, Clone)]
pub struct IdTokenSettings {
    pub header: HeaderName,
    pub expected: Expected,
    pub source: JwksSource,
}

impl IdTokenSettings {
    /// The `[identity] id_token_*` keys, validated; `None` when
    /// `id_token_header` is unset.
    pub fn from_config(id: &IdentityConfig) -> Result<Option<IdTokenSettings>, String> {
        let Some(header) = id.id_token_header.as_deref() else {
            if id.id_token_audience.is_some() {
                return Err(
                    "identity.id_token_audience: set identity.id_token_header too (the header oauth2-proxy injects the ID token in)"
                        .into(),
                );
            }
            return Ok(None);
        };
        let key = "identity.id_token_header";
        let name = HeaderName::from_bytes(header.trim().as_bytes())
            .map_err(|_| format!("{key}: `{header}` is not a header name"))?;
        if matches!(
            name.as_str(),
            "authorization" | "proxy-authorization" | "cookie" | "host"
        ) {
            return Err(format!(
                "{key}: `{header}` cannot carry the ID token (oauth2-proxy would clobber Authorization, and it is the client's); use a custom header such as X-Forwarded-Id-Token"
            ));
        }
        for (other, value) in [
            ("email_header", &id.email_header),
            ("user_header", &id.user_header),
            ("groups_header", &id.groups_header),
        ] {
            if value.eq_ignore_ascii_case(name.as_str()) {
                return Err(format!("{key}: `{header}` is already identity.{other}"));
            }
        }
        if id.source == IdentitySource::Dev {
            return Err(format!(
                "{key}: the dev sign-in form has no ID token to check; unset it or use source = \"proxy\""
            ));
        }
        let audience = id
            .id_token_audience
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                "identity.id_token_audience: required with identity.id_token_header (the proxy's Google OAuth client id)"
                    .to_string()
            })?
            .to_owned();
        let issuer = id.id_token_issuer.trim();
        let issuers = if issuer == GOOGLE_ISSUER {
            vec![GOOGLE_ISSUER.to_owned(), GOOGLE_ISSUER_BARE.to_owned()]
        } else {
            remote_url("identity.id_token_issuer", issuer)?;
            vec![issuer.to_owned()]
        };
        let jwks = id.id_token_jwks.trim();
        let source = if jwks.starts_with("https://") || jwks.starts_with("http://") {
            JwksSource::Url(remote_url("identity.id_token_jwks", jwks)?)
        } else if jwks.is_empty() || jwks.contains("://") {
            return Err(format!(
                "identity.id_token_jwks: `{jwks}` is neither a file path nor an https:// URL"
            ));
        } else {
            JwksSource::File(PathBuf::from(jwks))
        };
        Ok(Some(IdTokenSettings {
            header: name,
            expected: Expected { audience, issuers },
            source,
        }))
    }
}

/// An issuer or JWKS URL: https, or http on a loopback host (tests, a
/// local mirror).
fn remote_url(key: &str, value: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(value).map_err(|e| format!("{key}: `{value}` is not a URL: {e}"))?;
    let loopback = super::is_loopback_url(&url);
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(format!(
            "{key}: `{value}` must be https (http only on a loopback address)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GOOGLE_JWKS;

    const AUD: &str = "proxy-client.apps.googleusercontent.com";

    fn config() -> IdentityConfig {
        IdentityConfig {
            id_token_header: Some("X-Forwarded-Id-Token".into()),
            id_token_audience: Some(AUD.into()),
            ..IdentityConfig::default()
        }
    }

    #[test]
    fn config_is_validated_naming_the_key() {
        let v = IdTokenSettings::from_config(&config()).unwrap().unwrap();
        assert_eq!(v.expected.issuers, vec![GOOGLE_ISSUER, GOOGLE_ISSUER_BARE]);
        assert_eq!(v.source, JwksSource::Url(GOOGLE_JWKS.parse().unwrap()));
        assert!(IdTokenSettings::from_config(&IdentityConfig::default())
            .unwrap()
            .is_none());
        let err = |f: &dyn Fn(&mut IdentityConfig)| {
            let mut c = config();
            f(&mut c);
            IdTokenSettings::from_config(&c).unwrap_err()
        };
        assert!(err(&|c| c.id_token_audience = None).starts_with("identity.id_token_audience"));
        assert!(err(&|c| c.id_token_audience = Some(" ".into()))
            .starts_with("identity.id_token_audience"));
        assert!(err(&|c| c.id_token_header = Some("Authorization".into()))
            .starts_with("identity.id_token_header"));
        assert!(err(&|c| c.id_token_header = Some("bad header".into()))
            .starts_with("identity.id_token_header"));
        assert!(
            err(&|c| c.id_token_header = Some("x-forwarded-email".into()))
                .starts_with("identity.id_token_header")
        );
        assert!(err(&|c| c.source = IdentitySource::Dev).starts_with("identity.id_token_header"));
        assert!(err(&|c| c.id_token_issuer = "http://issuer.example".into())
            .starts_with("identity.id_token_issuer"));
        assert!(
            err(&|c| c.id_token_jwks = "http://keys.example/jwks".into())
                .starts_with("identity.id_token_jwks")
        );
        assert!(err(&|c| c.id_token_jwks = "ftp://keys.example/jwks".into())
            .starts_with("identity.id_token_jwks"));
        assert!(err(&|c| {
            c.id_token_header = None;
        })
        .starts_with("identity.id_token_audience"));
        // Loopback http is fine (a local mirror, tests); a path is a file.
        let mut c = config();
        c.id_token_issuer = "http://127.0.0.1:9000".into();
        c.id_token_jwks = "/run/secrets/google-jwks.json".into();
        let v = IdTokenSettings::from_config(&c).unwrap().unwrap();
        assert_eq!(v.expected.issuers, vec!["http://127.0.0.1:9000"]);
        assert_eq!(
            v.source,
            JwksSource::File("/run/secrets/google-jwks.json".into())
        );
    }
}

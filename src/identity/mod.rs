//! The signed-in person, as oauth2-proxy vouches for them.
//!
//! oauth2-proxy signs the person in with Google and forwards the request
//! with `X-Forwarded-Email` / `-User` / `-Groups`. Those headers mean
//! something only when the TCP peer *is* the proxy: from anyone else they
//! are refused, and the email's domain is checked again here whatever the
//! proxy was configured to check. Missing identity fails closed. When
//! configured, the Google ID token the proxy injects is verified too
//! ([`id_token`]).

pub(crate) mod id_token;

use std::net::IpAddr;
use std::sync::Arc;

use http::HeaderMap;
use subtle::ConstantTimeEq as _;

use crate::settings::IdentitySettings;
use id_token::IdTokenVerifier;

/// Who is signing in: the one question `/oauth/authorize` asks of this
/// module, answered by [`SignIn::person`].
pub(crate) struct SignIn {
    settings: IdentitySettings,
    /// Verifies the proxy's Google ID token, when one is configured.
    id_token: Option<Arc<IdTokenVerifier>>,
}

/// What a request offers as proof of who is signing in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Evidence<'a> {
    /// oauth2-proxy's identity headers, as sent by the TCP peer `peer`.
    Proxy {
        peer: IpAddr,
        headers: &'a HeaderMap,
    },
    /// An email typed into the dev sign-in form (`identity.source = "dev"`).
    DevForm { email: &'a str },
}

impl SignIn {
    pub(crate) fn new(settings: &IdentitySettings) -> SignIn {
        SignIn {
            id_token: settings
                .id_token
                .as_ref()
                .map(|s| Arc::new(IdTokenVerifier::from_settings(s))),
            settings: settings.clone(),
        }
    }

    /// Starts keeping the ID-token JWKS current and waits a few seconds at
    /// most for the first one (see [`id_token::start`]). No-op without an
    /// ID token to check.
    pub(crate) async fn start(&self) {
        if let Some(v) = &self.id_token {
            id_token::start(v.clone()).await;
        }
    }

    /// The person `evidence` proves, or why it proves no one.
    pub(crate) fn person(&self, evidence: Evidence<'_>) -> Result<Identity, IdentityError> {
        match evidence {
            Evidence::Proxy { peer, headers } => {
                from_proxy(&self.settings, self.id_token.as_deref(), peer, headers)
            }
            Evidence::DevForm { email } => from_dev_form(&self.settings, email),
        }
    }
}

/// A person who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Identity {
    /// Stable subject: the proxy's user header (Google `sub`), else the email.
    pub subject: String,
    /// Lowercased email address.
    pub email: String,
    pub groups: Vec<String>,
}

/// Why no identity could be established.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum IdentityError {
    #[error("no signed-in identity reached this server; sign in through the organization's proxy")]
    Missing,
    #[error("identity headers came from a peer that is not a trusted proxy")]
    UntrustedPeer,
    #[error("the proxy's shared secret is missing or wrong")]
    BadProxySecret,
    #[error("the identity header {0} appears more than once")]
    Duplicated(&'static str),
    #[error("the identity header {0} is not a plain ASCII value")]
    Malformed(&'static str),
    #[error("{0} is not an email address")]
    NotAnEmail(String),
    #[error("{0} is not in a domain allowed to sign in here")]
    DomainNotAllowed(String),
    #[error("the Google ID token from the proxy was refused: {0}")]
    IdToken(id_token::IdTokenError),
}

impl IdentityError {
    /// Not the person's fault: the issuer's keys are not loaded yet, so a
    /// retry later may succeed.
    pub(crate) fn is_temporary(&self) -> bool {
        matches!(
            self,
            IdentityError::IdToken(id_token::IdTokenError::KeysUnavailable)
        )
    }

    /// The person is known but may not sign in here.
    pub(crate) fn is_denied(&self) -> bool {
        matches!(
            self,
            IdentityError::DomainNotAllowed(_) | IdentityError::NotAnEmail(_)
        )
    }
}

/// At most this many characters in an identity header value (a code
/// carries two: `settings::redirect::MAX_CODE_REDIRECT_URI` counts on it).
pub(crate) const MAX_IDENTITY_LEN: usize = 320;

/// What an identity value (a header's, or the ID token's `sub`) may be:
/// bounded, visible ASCII and spaces. Codes seal these values, and their
/// worst case (each byte a JSON escape of two) is what fits a code.
pub(crate) fn is_identity_text(s: &str) -> bool {
    s.len() <= MAX_IDENTITY_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b) || b == b' ')
}

/// The single value of `name`, refusing duplicates and anything but
/// visible ASCII (no CR/LF smuggling, no look-alike characters).
fn single<'a>(
    headers: &'a HeaderMap,
    name: &http::HeaderName,
    label: &'static str,
) -> Result<Option<&'a str>, IdentityError> {
    let Some(first) =
        crate::http::single_header(headers, name).map_err(|_| IdentityError::Duplicated(label))?
    else {
        return Ok(None);
    };
    let s = first
        .to_str()
        .map_err(|_| IdentityError::Malformed(label))?
        .trim();
    if !is_identity_text(s) {
        return Err(IdentityError::Malformed(label));
    }
    Ok((!s.is_empty()).then_some(s))
}

/// The identity oauth2-proxy forwarded, or why there is none.
fn from_proxy(
    settings: &IdentitySettings,
    id_token: Option<&IdTokenVerifier>,
    peer: IpAddr,
    headers: &HeaderMap,
) -> Result<Identity, IdentityError> {
    let email = single(headers, &settings.email_header, "email")?;
    let user = single(headers, &settings.user_header, "user")?;
    if email.is_none() && user.is_none() {
        return Err(IdentityError::Missing);
    }
    if !settings.is_trusted_proxy(peer) {
        return Err(IdentityError::UntrustedPeer);
    }
    if let Some((name, secret)) = &settings.proxy_secret {
        let sent = single(headers, name, "proxy secret")?.unwrap_or("");
        // Constant time: the comparison must not leak how much matched.
        if !bool::from(sent.as_bytes().ct_eq(secret)) {
            return Err(IdentityError::BadProxySecret);
        }
    }
    // With `prefer_email_to_user` oauth2-proxy sends the email as the user.
    let email = match (email, user) {
        (Some(e), _) => e,
        (None, Some(u)) if u.contains('@') => u,
        _ => return Err(IdentityError::Missing),
    };
    let email = checked_email(settings, email)?;
    // With the ID token checked, the subject is the token's `sub`: the
    // user header is as unproven as the email header was, and a token's
    // `sub` is what resource servers and the deny file key on.
    let verified_sub = match id_token {
        Some(verifier) => Some(verifier.verify(
            headers,
            Some(&email),
            &settings.allowed_domains,
            crate::clock::unix_now(),
        )?),
        None => None,
    };
    let groups = match single(headers, &settings.groups_header, "groups")? {
        Some(g) => bounded_groups(g),
        None => Vec::new(),
    };
    Ok(Identity {
        subject: verified_sub.unwrap_or_else(|| user.unwrap_or(&email).to_owned()),
        email,
        groups,
    })
}

/// The groups of oauth2-proxy's comma-separated header, as many as an
/// access token carries (`tokens::access::MAX_GROUPS`, `MAX_GROUPS_BYTES`
/// in all, in the header's order). The rest are left out and the sign-in
/// says so: a group left out can only narrow what upstream policies grant.
fn bounded_groups(header: &str) -> Vec<String> {
    use crate::tokens::access::{MAX_GROUPS, MAX_GROUPS_BYTES};
    let mut kept = Vec::new();
    let mut bytes = 0;
    let mut dropped = 0usize;
    for g in header.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if kept.len() < MAX_GROUPS && bytes + g.len() <= MAX_GROUPS_BYTES {
            bytes += g.len();
            kept.push(g.to_owned());
        } else {
            dropped += 1;
        }
    }
    if dropped > 0 {
        tracing::warn!(
            kept = kept.len(),
            dropped,
            "more groups than an access token carries; the rest are left out"
        );
    }
    kept
}

/// A person an operator names on the command line (`mcpgate token mint`):
/// checked exactly as an email typed into the dev sign-in form, so the
/// token is one that form could have led to.
pub(crate) fn named_by_operator(
    settings: &IdentitySettings,
    email: &str,
) -> Result<Identity, IdentityError> {
    from_dev_form(settings, email)
}

/// An email typed into the dev sign-in form.
fn from_dev_form(settings: &IdentitySettings, email: &str) -> Result<Identity, IdentityError> {
    let email = checked_email(settings, email.trim())?;
    Ok(Identity {
        subject: email.clone(),
        email,
        groups: Vec::new(),
    })
}

/// Lowercases `email` and checks its domain is exactly one of
/// `allowed_domains` (not a subdomain: `evil.example.com` is not
/// `example.com`).
fn checked_email(settings: &IdentitySettings, email: &str) -> Result<String, IdentityError> {
    let email = email.to_ascii_lowercase();
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(IdentityError::NotAnEmail(email));
    };
    if local.is_empty() || domain.is_empty() || local.contains('@') || email.contains(' ') {
        return Err(IdentityError::NotAnEmail(email));
    }
    if !settings.allowed_domains.iter().any(|d| d == domain) {
        return Err(IdentityError::DomainNotAllowed(email));
    }
    Ok(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from_proxy(
        settings: &IdentitySettings,
        peer: IpAddr,
        headers: &HeaderMap,
    ) -> Result<Identity, IdentityError> {
        super::from_proxy(settings, None, peer, headers)
    }
    use crate::config::IdentitySource;
    use http::HeaderValue;

    fn settings() -> IdentitySettings {
        IdentitySettings {
            source: IdentitySource::Proxy,
            email_header: "x-forwarded-email".parse().unwrap(),
            user_header: "x-forwarded-user".parse().unwrap(),
            groups_header: "x-forwarded-groups".parse().unwrap(),
            allowed_domains: vec!["example.com".into()],
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            proxy_secret: None,
            consent: crate::config::ConsentPolicy::DynamicClients,
            consent_ttl: std::time::Duration::from_secs(3600),
            id_token: None,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        h
    }

    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn proxy_headers_from_a_trusted_peer_sign_in() {
        let id = from_proxy(
            &settings(),
            LOCAL,
            &headers(&[
                ("x-forwarded-email", "Alice@Example.com"),
                ("x-forwarded-user", "1234567890"),
                ("x-forwarded-groups", "eng, ops"),
            ]),
        )
        .unwrap();
        assert_eq!(id.email, "alice@example.com");
        assert_eq!(id.subject, "1234567890");
        assert_eq!(id.groups, vec!["eng", "ops"]);
    }

    #[test]
    fn refusals() {
        let s = settings();
        let other: IpAddr = "10.1.2.3".parse().unwrap();
        let email = [("x-forwarded-email", "alice@example.com")];
        assert_eq!(
            from_proxy(&s, LOCAL, &headers(&[])),
            Err(IdentityError::Missing)
        );
        assert_eq!(
            from_proxy(&s, other, &headers(&email)),
            Err(IdentityError::UntrustedPeer)
        );
        assert_eq!(
            from_proxy(
                &s,
                LOCAL,
                &headers(&[
                    ("x-forwarded-email", "alice@example.com"),
                    ("x-forwarded-email", "mallory@example.com")
                ])
            ),
            Err(IdentityError::Duplicated("email"))
        );
        assert!(matches!(
            from_proxy(
                &s,
                LOCAL,
                &headers(&[("x-forwarded-email", "a@evil.example.com")])
            ),
            Err(IdentityError::DomainNotAllowed(_))
        ));
        assert!(matches!(
            from_proxy(
                &s,
                LOCAL,
                &headers(&[("x-forwarded-email", "a@example.com.evil")])
            ),
            Err(IdentityError::DomainNotAllowed(_))
        ));
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-email",
            HeaderValue::from_bytes("ä@example.com".as_bytes()).unwrap(),
        );
        assert_eq!(
            from_proxy(&s, LOCAL, &h),
            Err(IdentityError::Malformed("email"))
        );
    }

    #[test]
    fn the_proxy_secret_is_required_when_configured() {
        let mut s = settings();
        s.proxy_secret = Some((
            "x-proxy-secret".parse().unwrap(),
            b"0123456789abcdef".to_vec(),
        ));
        let ok = headers(&[
            ("x-forwarded-email", "alice@example.com"),
            ("x-proxy-secret", "0123456789abcdef"),
        ]);
        assert!(from_proxy(&s, LOCAL, &ok).is_ok());
        let wrong = headers(&[
            ("x-forwarded-email", "alice@example.com"),
            ("x-proxy-secret", "0123456789abcdeX"),
        ]);
        assert_eq!(
            from_proxy(&s, LOCAL, &wrong),
            Err(IdentityError::BadProxySecret)
        );
    }
}

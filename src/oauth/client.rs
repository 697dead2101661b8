//! Clients: who a `client_id` is, and how a client proves it at the token
//! endpoint (RFC 6749 §2.3).
//!
//! What a `client_id` is follows from its form alone ([`ClientKind::of`]),
//! decided once where it is opened: the three namespaces cannot collide.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::HeaderMap;
use subtle::ConstantTimeEq as _;

use super::error::OAuthError;
use crate::cimd::document::{ClientDocument, DocumentAuth};
use crate::cimd::{ClientIdUrl, Resolver};
use crate::keys::KeyRing;
use crate::settings::redirect;
use crate::settings::{ConfiguredClient, Settings, Site};
use crate::tokens::grants::{ClientBinding, ClientRegistration};
use crate::tokens::sealed;

/// The RFC 6749 grants the token endpoint serves, named as in
/// `grant_type` and RFC 7591 §2 `grant_types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantType {
    AuthorizationCode,
    RefreshToken,
}

impl GrantType {
    /// The grant a `grant_type` value names: exact, case-sensitive
    /// (RFC 6749 §3.2: parameter values are case-sensitive).
    pub(crate) fn parse(s: &str) -> Option<GrantType> {
        match s {
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }
}

/// The kinds of `client_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientKind {
    /// An `https://` URL naming a Client ID Metadata Document. A sealed id
    /// starts with a base64url JWE header (`eyJ`), a configured one has
    /// no `:` (the settings refuse one that does).
    Document,
    /// A sealed [`ClientRegistration`] (RFC 7591): a compact JWE, which
    /// always contains `.`.
    Registered,
    /// A `[[clients]]` entry, whose id never contains `.` (the settings
    /// refuse one that does).
    Configured,
}

impl ClientKind {
    pub(crate) fn of(client_id: &str) -> ClientKind {
        if ClientIdUrl::is_url_form(client_id) {
            ClientKind::Document
        } else if client_id.contains('.') {
            ClientKind::Registered
        } else {
            ClientKind::Configured
        }
    }

    /// The label of `mcpgate_tokens_issued_total{client}`.
    pub(crate) fn metric_label(self) -> &'static str {
        match self {
            ClientKind::Document => "metadata_document",
            ClientKind::Registered => "dynamic",
            ClientKind::Configured => "configured",
        }
    }
}

/// A redirect URI an authorize request named (or, when it named none, the
/// client's only one), checked against the client's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RedirectUri {
    uri: String,
    /// The request named it: the token request must repeat it (RFC 6749
    /// §4.1.3).
    pub sent: bool,
}

impl RedirectUri {
    pub(crate) fn as_str(&self) -> &str {
        &self.uri
    }
}

/// A client known to this server.
#[derive(Debug, Clone)]
pub(crate) enum Client<'a> {
    /// Registered at runtime (RFC 7591): public, PKCE-bound.
    Registered {
        client_id: &'a str,
        registration: ClientRegistration,
    },
    /// Provisioned in `[[clients]]`.
    Configured(&'a ConfiguredClient),
    /// A URL client id whose document was found and checked.
    Document {
        url: ClientIdUrl,
        document: Arc<ClientDocument>,
    },
}

/// The client_id URL of a request on `site`, checked without fetching
/// anything: the form (draft-ietf-oauth-client-id-metadata-document §3)
/// and the host's trust policy (`client_id_hosts`).
pub(crate) fn document_url(
    settings: &Settings,
    site: &Site,
    client_id: &str,
) -> Result<ClientIdUrl, OAuthError> {
    if !settings.cimd.enabled {
        return Err(OAuthError::invalid_client(
            "URL client ids (client metadata documents) are not accepted here",
        ));
    }
    let url = ClientIdUrl::parse(client_id)
        .map_err(|e| OAuthError::invalid_client(format!("the client_id URL {e}")))?;
    if !url.allowed_on(site) {
        return Err(OAuthError::invalid_client(format!(
            "clients from {} are not accepted on this host",
            url.host()
        )));
    }
    Ok(url)
}

impl<'a> Client<'a> {
    /// Resolves a `client_id` of a request on `site`. Unknown, tampered,
    /// or sealed with a retired registration key → `invalid_client` (the
    /// client registers again). A URL client id is checked
    /// ([`document_url`]) and its document found, fetched if need be
    /// (at authorize, only once the person has signed in).
    pub(crate) async fn resolve(
        settings: &'a Settings,
        ring: &KeyRing,
        documents: &Resolver,
        site: &Site,
        client_id: &'a str,
        now: u64,
    ) -> Result<Client<'a>, OAuthError> {
        match ClientKind::of(client_id) {
            ClientKind::Document => {
                let url = document_url(settings, site, client_id)?;
                let document = documents
                    .document(&url)
                    .await
                    .map_err(|e| OAuthError::client_document(e, ""))?;
                Ok(Client::Document { url, document })
            }
            ClientKind::Registered => {
                let registration = sealed::open::<ClientRegistration>(ring, client_id, now)
                    .map_err(|e| {
                        OAuthError::invalid_client(format!(
                            "client_id is not valid here ({e}); register the client again"
                        ))
                    })?;
                Ok(Client::Registered {
                    client_id,
                    registration,
                })
            }
            ClientKind::Configured => settings
                .clients
                .get(client_id)
                .map(Client::Configured)
                .ok_or_else(|| OAuthError::invalid_client("unknown client_id")),
        }
    }

    pub(crate) fn client_id(&self) -> &str {
        match self {
            Client::Registered { client_id, .. } => client_id,
            Client::Configured(c) => &c.client_id,
            Client::Document { url, .. } => url.as_str(),
        }
    }

    pub(crate) fn redirect_uris(&self) -> &[String] {
        match self {
            Client::Registered { registration, .. } => &registration.redirect_uris,
            Client::Configured(c) => &c.redirect_uris,
            Client::Document { document, .. } => &document.redirect_uris,
        }
    }

    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Client::Registered { registration, .. } => registration.client_name.as_deref(),
            Client::Configured(c) => c.client_name.as_deref(),
            Client::Document { document, .. } => document.client_name.as_deref(),
        }
    }

    pub(crate) fn kind(&self) -> ClientKind {
        match self {
            Client::Registered { .. } => ClientKind::Registered,
            Client::Configured(_) => ClientKind::Configured,
            Client::Document { .. } => ClientKind::Document,
        }
    }

    /// What codes and refresh tokens issued to this client bind.
    pub(crate) fn binding(&self) -> ClientBinding {
        ClientBinding::of(self.client_id())
    }

    /// OAuth 2.1 §7.5.1: public clients must use PKCE; confidential ones
    /// when their entry says so.
    pub(crate) fn requires_pkce(&self) -> bool {
        match self {
            // A document client authenticated by private_key_jwt uses
            // PKCE too: the MCP spec requires it of every client.
            Client::Registered { .. } | Client::Document { .. } => true,
            Client::Configured(c) => c.secret_sha256.is_none() || c.require_pkce,
        }
    }

    /// Whether this client may use `grant` at the token endpoint, and so
    /// (for `refresh_token`) whether it is handed refresh tokens at all.
    ///
    /// A registered client may refresh only when it registered the
    /// `refresh_token` grant: that is what the registration response told
    /// it (RFC 7591 §2), and RFC 6749 §5.2 `unauthorized_client` is the
    /// answer to a grant it did not register. Every registration includes
    /// `authorization_code`. A `[[clients]]` entry has no `grant_types`:
    /// an admin provisions it as a code client that keeps its session
    /// (Gemini Enterprise refreshes), so it may use both; an operator who
    /// wants no refresh tokens at all sets `tokens.refresh_ttl = "0s"`.
    pub(crate) fn may_use(&self, grant: GrantType) -> bool {
        match (grant, self) {
            (GrantType::AuthorizationCode, _) => true,
            (GrantType::RefreshToken, Client::Registered { registration, .. }) => {
                registration.refresh
            }
            (GrantType::RefreshToken, Client::Configured(_)) => true,
            (GrantType::RefreshToken, Client::Document { document, .. }) => document.refresh,
        }
    }

    /// The redirect URI of an authorize request: `requested` when it
    /// matches a registered one, the only registered one when the request
    /// named none (RFC 6749 §3.1.2.3). Loopback URIs match with any port
    /// (RFC 8252 §7.3). A dynamic client's URI must also still be allowed
    /// by some host's current policy, so removing a callback from the
    /// config takes effect for existing registrations. A document's URI
    /// must be allowed by the policy of `site`, the host the request came
    /// to: the document is the client's word, the policy the operator's.
    pub(crate) fn redirect_uri(
        &self,
        settings: &Settings,
        site: &Site,
        requested: Option<&str>,
    ) -> Result<RedirectUri, OAuthError> {
        let refused_by_policy = || {
            OAuthError::invalid_client(
                "this host's redirect policy does not allow the client metadata document's redirect_uri",
            )
        };
        let Some(requested) = requested else {
            return match self.redirect_uris() {
                [only] => {
                    if matches!(self, Client::Document { .. })
                        && site.redirect_policy.check(only).is_err()
                    {
                        return Err(refused_by_policy());
                    }
                    Ok(RedirectUri {
                        uri: only.clone(),
                        sent: false,
                    })
                }
                _ => Err(OAuthError::invalid_request("redirect_uri is required")),
            };
        };
        let registered = self
            .redirect_uris()
            .iter()
            .any(|r| redirect::matches_registered(r, requested));
        if !registered || redirect::check_uri(requested).is_err() {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            ));
        }
        let allowed = match self {
            Client::Registered { .. } => settings.any_policy_allows(requested),
            Client::Configured(_) => true,
            Client::Document { .. } => {
                if site.redirect_policy.check(requested).is_err() {
                    return Err(refused_by_policy());
                }
                true
            }
        };
        if !allowed {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not registered for this client",
            ));
        }
        Ok(RedirectUri {
            uri: requested.to_owned(),
            sent: true,
        })
    }
}

/// How the token request authenticated its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// `client_id` only (public client).
    None { client_id: String },
    /// RFC 6749 §2.3.1 HTTP Basic.
    Basic { client_id: String, secret: String },
    /// RFC 6749 §2.3.1 `client_secret` in the body.
    Post { client_id: String, secret: String },
    /// RFC 7523 §2.2 `client_assertion` (`private_key_jwt`), checked by
    /// `oauth::client_assertion::verify` once the client is resolved.
    Assertion {
        client_id: String,
        assertion: String,
    },
}

impl Credentials {
    pub fn client_id(&self) -> &str {
        match self {
            Credentials::None { client_id }
            | Credentials::Basic { client_id, .. }
            | Credentials::Post { client_id, .. }
            | Credentials::Assertion { client_id, .. } => client_id,
        }
    }

    pub fn is_basic(&self) -> bool {
        matches!(self, Credentials::Basic { .. })
    }

    /// Reads the credentials from the `Authorization` header and the form
    /// fields `client_id` / `client_secret`. RFC 6749 §2.3: one method only.
    pub fn from_request(
        headers: &HeaderMap,
        body_client_id: Option<&str>,
        body_secret: Option<&str>,
    ) -> Result<Credentials, OAuthError> {
        let basic = match crate::http::single_header(headers, http::header::AUTHORIZATION) {
            Err(_) => {
                return Err(OAuthError::invalid_request(
                    "more than one Authorization header",
                ))
            }
            Ok(None) => None,
            Ok(Some(v)) => Some(parse_basic(v.as_bytes()).map_err(|e| e.with_basic(true))?),
        };
        match (basic, body_secret) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(
                "use one client authentication method, not both Basic and client_secret",
            )
            .with_basic(true)),
            (Some((id, secret)), None) => {
                if body_client_id.is_some_and(|b| b != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the Basic credentials",
                    ));
                }
                Ok(Credentials::Basic {
                    client_id: id,
                    secret,
                })
            }
            (None, secret) => {
                let client_id = body_client_id
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| OAuthError::invalid_client("client_id is required"))?
                    .to_owned();
                Ok(match secret {
                    Some(s) if !s.is_empty() => Credentials::Post {
                        client_id,
                        secret: s.to_owned(),
                    },
                    _ => Credentials::None { client_id },
                })
            }
        }
    }

    /// RFC 7523 §2.2 credentials: a `client_assertion` of type
    /// `client_assertion_type`, alone (no Basic header, no secret). The
    /// client is `client_id` when sent, else the assertion's `sub`.
    pub fn from_assertion(
        headers: &HeaderMap,
        body_client_id: Option<&str>,
        body_secret: Option<&str>,
        assertion_type: Option<&str>,
        assertion: Option<&str>,
    ) -> Result<Credentials, OAuthError> {
        if headers.contains_key(http::header::AUTHORIZATION) || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method: client_assertion alone",
            ));
        }
        if assertion_type != Some(JWT_BEARER) {
            return Err(OAuthError::invalid_request(
                "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ));
        }
        let assertion = assertion
            .filter(|a| !a.is_empty())
            .ok_or_else(|| OAuthError::invalid_request("client_assertion is required"))?;
        let claimed = claimed_client_id(assertion);
        let client_id = match (body_client_id.filter(|c| !c.is_empty()), claimed) {
            (Some(id), Some(sub)) if id != sub => {
                return Err(OAuthError::invalid_client(
                    "client_id differs from the client assertion's sub",
                ))
            }
            (Some(id), _) => id.to_owned(),
            (None, Some(sub)) => sub,
            (None, None) => {
                return Err(OAuthError::invalid_client(
                    "the client assertion names no client (sub)",
                ))
            }
        };
        Ok(Credentials::Assertion {
            client_id,
            assertion: assertion.to_owned(),
        })
    }

    /// Checks these credentials against `client`. An assertion is only
    /// accepted here for a client whose document uses `private_key_jwt`;
    /// its signature and claims are checked by
    /// `oauth::client_assertion::verify`.
    pub(crate) fn authenticate(&self, client: &Client<'_>) -> Result<(), OAuthError> {
        let basic = self.is_basic();
        let uses_key = matches!(
            client,
            Client::Document { document, .. } if matches!(document.auth, DocumentAuth::PrivateKeyJwt(_))
        );
        match (self, uses_key) {
            (Credentials::Assertion { .. }, true) => return Ok(()),
            (Credentials::Assertion { .. }, false) => {
                return Err(OAuthError::invalid_client(
                    "this client does not authenticate with private_key_jwt",
                ))
            }
            (_, true) => {
                return Err(OAuthError::invalid_client(
                    "this client authenticates with private_key_jwt: send client_assertion",
                )
                .with_basic(basic))
            }
            (_, false) => {}
        }
        let secret = match self {
            Credentials::Basic { secret, .. } | Credentials::Post { secret, .. } => Some(secret),
            Credentials::None { .. } | Credentials::Assertion { .. } => None,
        };
        let expected = match client {
            Client::Configured(c) => c.secret_sha256,
            Client::Registered { .. } => None,
            Client::Document { .. } => None,
        };
        match (expected, secret) {
            (None, None) => Ok(()),
            // RFC 6749 §2.3.1 lets a public client send an empty secret.
            (None, Some(s)) if s.is_empty() => Ok(()),
            (None, Some(_)) => Err(OAuthError::invalid_client(
                "this is a public client: it has no secret to send",
            )
            .with_basic(basic)),
            (Some(_), None) => Err(OAuthError::invalid_client(
                "client authentication is required (client_secret_basic or client_secret_post)",
            )),
            (Some(hash), Some(s)) => {
                let got = ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
                if bool::from(got.as_ref().ct_eq(&hash)) {
                    Ok(())
                } else {
                    Err(OAuthError::invalid_client("client authentication failed")
                        .with_basic(basic))
                }
            }
        }
    }
}

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The `sub` of an assertion, unverified: which client it claims to be,
/// for a request that names no `client_id` (RFC 7523 §3: `iss` and `sub`
/// are the client_id). Verified later by `oauth::client_assertion::verify`.
fn claimed_client_id(assertion: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("sub")?.as_str().map(str::to_owned)
}

/// RFC 6749 §2.3.1 / RFC 7617: `Basic base64(urlencode(id) ":" urlencode(secret))`.
fn parse_basic(value: &[u8]) -> Result<(String, String), OAuthError> {
    let bad = || OAuthError::invalid_client("malformed Basic credentials");
    let s = std::str::from_utf8(value).map_err(|_| bad())?;
    let (scheme, rest) = s.split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "the Authorization header must use the Basic scheme here",
        ));
    }
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let unescape = |x: &str| -> String {
        form_urlencoded::parse(format!("v={x}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let id = unescape(id);
    if id.is_empty() {
        return Err(bad());
    }
    Ok((id, unescape(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let v = format!("Basic {}", STANDARD.encode("gemini%20x:s%3Acret+1"));
        assert_eq!(
            parse_basic(v.as_bytes()).unwrap(),
            ("gemini x".to_string(), "s:cret 1".to_string())
        );
        assert!(parse_basic(b"Bearer abc").is_err());
        assert!(parse_basic(b"Basic !!!").is_err());
    }

    #[test]
    fn two_authentication_methods_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            format!("Basic {}", STANDARD.encode("a:b")).parse().unwrap(),
        );
        let e = Credentials::from_request(&h, Some("a"), Some("b")).unwrap_err();
        assert_eq!(e.code, super::super::error::ErrorCode::InvalidRequest);
        assert_eq!(
            Credentials::from_request(&h, None, None).unwrap(),
            Credentials::Basic {
                client_id: "a".into(),
                secret: "b".into()
            }
        );
    }
}

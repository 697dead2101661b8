//! The payloads of the sealed kinds. Each is its own type with its own
//! `typ`, so the type system and the cryptography agree on what a string is.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::pkce::CodeChallenge;
use super::scope::Scope;
use super::sealed::Sealable;
use crate::keys::SealClass;

/// A dynamically registered client (RFC 7591), sealed into its `client_id`.
/// Short field names keep the client id, sent on every request, short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    #[serde(rename = "r")]
    pub redirect_uris: Vec<String>,
    /// Whether the client registered the `refresh_token` grant.
    #[serde(rename = "rt", default, skip_serializing_if = "std::ops::Not::not")]
    pub refresh: bool,
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub application_type: Option<String>,
    #[serde(rename = "sw", default, skip_serializing_if = "Option::is_none")]
    pub software_id: Option<String>,
    #[serde(rename = "sv", default, skip_serializing_if = "Option::is_none")]
    pub software_version: Option<String>,
    /// `client_id_issued_at`.
    #[serde(rename = "i")]
    pub issued_at: u64,
}

impl Sealable for ClientRegistration {
    const TYP: &'static str = "client";
    const CLASS: SealClass = SealClass::Registration;
    fn expires_at(&self) -> Option<u64> {
        // Lives as long as its registration key does.
        None
    }
}

/// An authorization code's content: everything the token endpoint must
/// check, bound at authorize time (RFC 6749 §4.1.3, RFC 7636 §4.6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// Unique id, remembered once redeemed so a code works only once.
    pub jti: String,
    /// The client the code was issued to.
    pub client: ClientBinding,
    pub redirect_uri: String,
    /// Whether the authorize request named `redirect_uri` (then the token
    /// request must repeat it, RFC 6749 §4.1.3).
    pub redirect_uri_sent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge: Option<CodeChallenge>,
    pub sub: String,
    pub email: String,
    /// The person's groups at sign-in (bounded as access tokens carry them).
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub scope: Scope,
    pub resource: String,
    /// When the person signed in (the code was issued).
    pub iat: u64,
    pub exp: u64,
}

impl Sealable for CodeGrant {
    const TYP: &'static str = "code";
    const CLASS: SealClass = SealClass::Tokens;
    fn expires_at(&self) -> Option<u64> {
        Some(self.exp)
    }
}

/// A refresh token's content. Rotated on every use: same family, next
/// generation, same family expiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshGrant {
    /// The client the token was issued to.
    pub client: ClientBinding,
    pub sub: String,
    pub email: String,
    /// The person's groups at sign-in: a refreshed token keeps them.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub scope: Scope,
    pub resource: String,
    /// Family id: stays the same across rotations.
    pub fam: String,
    /// Generation within the family, from 1.
    pub gen: u32,
    /// When this token was issued.
    pub iat: u64,
    /// When the person signed in: what a deny-file cut-off compares with.
    pub auth_time: u64,
    /// When the whole family ends (`tokens.refresh_ttl` after sign-in).
    pub exp: u64,
}

impl Sealable for RefreshGrant {
    const TYP: &'static str = "refresh";
    const CLASS: SealClass = SealClass::Tokens;
    fn expires_at(&self) -> Option<u64> {
        Some(self.exp)
    }
}

/// The CSRF token of the consent form: binds an Allow or Deny to the
/// authorize request the page was shown for and to the person it was shown
/// to. A token from another request, host or person does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRequest {
    /// The client asking.
    pub client: ClientBinding,
    /// The redirect URI the answer goes to.
    pub redirect_uri: String,
    /// SHA-256 (base64url) of the issuer and the canonical authorize
    /// parameters (see `oauth::consent`).
    pub req: String,
    /// The signed-in person the page was shown to.
    pub email: String,
    /// Random: the form is answered once (`store::Once::ConsentForm`).
    pub jti: String,
    pub exp: u64,
}

impl Sealable for ConsentRequest {
    const TYP: &'static str = "consent-request";
    const CLASS: SealClass = SealClass::Tokens;
    fn expires_at(&self) -> Option<u64> {
        Some(self.exp)
    }
}

/// An Allow remembered in a cookie: this person already let this client in,
/// so the consent page is skipped until `exp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRemembered {
    /// The client allowed.
    pub client: ClientBinding,
    pub email: String,
    /// When the person clicked Allow.
    pub iat: u64,
    pub exp: u64,
}

impl Sealable for ConsentRemembered {
    const TYP: &'static str = "consent";
    const CLASS: SealClass = SealClass::Tokens;
    fn expires_at(&self) -> Option<u64> {
        Some(self.exp)
    }
}

/// A short, fixed-size stand-in for a client id inside codes, refresh
/// tokens and consent blobs: 128 bits of its SHA-256, base64url. Dynamic
/// client ids are long; the request names the client anyway, so a blob
/// only needs to bind it. Compared whole, never by prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientBinding(String);

impl ClientBinding {
    /// The binding of `client_id`.
    pub fn of(client_id: &str) -> ClientBinding {
        let d = ring::digest::digest(&ring::digest::SHA256, client_id.as_bytes());
        ClientBinding(URL_SAFE_NO_PAD.encode(&d.as_ref()[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A binding with exactly this text, for tests that need two with a
    /// common prefix.
    #[cfg(test)]
    pub(crate) fn from_raw(s: &str) -> ClientBinding {
        ClientBinding(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::MAX_IDENTITY_LEN;
    use crate::keys::file::generate_set;
    use crate::keys::KeyRing;
    use crate::settings::redirect::{json_len, MAX_CODE_REDIRECT_URI};
    use crate::tokens::sealed::{self, MAX_SEALED_LEN};

    #[test]
    fn json_len_counts_escapes() {
        assert_eq!(json_len("http://127.0.0.1/cb"), 19);
        assert_eq!(json_len("a\"b"), 4);
        assert_eq!(json_len("é"), 2);
    }

    #[test]
    fn the_longest_code_still_opens() {
        // The longest kid a key file may have (keys::file::parse_jwk).
        let files = generate_set(0, "t")
            .into_iter()
            .map(|mut f| {
                f.kid = format!("{:x<128}", f.kid);
                f
            })
            .collect();
        let ring = KeyRing::build(files, 1, 100).unwrap();
        // Identity headers are visible ASCII; `"` escapes to two bytes.
        let identity = "\"".repeat(MAX_IDENTITY_LEN);
        // A registered `http://localhost/…` used with `:65535` at authorize.
        let path = "\"".repeat((MAX_CODE_REDIRECT_URI - json_len("http://localhost/")) / 2);
        let redirect_uri = format!("http://localhost:65535/{path}");
        assert!(json_len(&redirect_uri) <= MAX_CODE_REDIRECT_URI + ":65535".len());
        let grant = CodeGrant {
            jti: "j".repeat(22),
            client: ClientBinding::of("c"),
            redirect_uri,
            redirect_uri_sent: true,
            code_challenge: Some(
                serde_json::from_value(serde_json::json!("A".repeat(43))).unwrap(),
            ),
            sub: identity.clone(),
            email: identity,
            groups: vec![],
            scope: Scope::all(),
            resource: format!("https://{}/mcp", "h".repeat(300 - "https:///mcp".len())),
            iat: u64::MAX,
            exp: u64::MAX,
        };
        let code = sealed::seal(&ring, &grant, 100);
        assert!(
            code.as_str().len() <= MAX_SEALED_LEN,
            "{} > {MAX_SEALED_LEN}",
            code.as_str().len()
        );
        assert_eq!(
            sealed::open::<CodeGrant>(&ring, code.as_str(), 100),
            Ok(grant)
        );
    }
}

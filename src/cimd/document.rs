//! A Client ID Metadata Document: the client's RFC 7591 metadata, served
//! at its `client_id` URL, and what this server accepts in one
//! (draft-ietf-oauth-client-id-metadata-document §4, MCP authorization
//! "Client ID Metadata Documents").

use std::sync::Arc;

use serde_json::{Map, Value};

use super::url::ClientIdUrl;
use crate::settings::redirect;

/// Most redirect URIs one document may list.
const MAX_REDIRECT_URIS: usize = 20;

/// How a document's client authenticates at the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DocumentAuth {
    /// `none`: a public client, PKCE-bound (the default for documents).
    None,
    /// `private_key_jwt` (RFC 7523 §2.2): a client assertion signed by a
    /// key of the document's JWKS.
    PrivateKeyJwt(KeySource),
}

/// Where a `private_key_jwt` client's public keys are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `jwks`: in the document (shared, as a fetched `jwks_uri` is).
    Inline(Arc<Value>),
    /// `jwks_uri`: fetched under the same guard as the document.
    Uri(ClientIdUrl),
}

/// A document that passed every check. Only [`ClientDocument::parse`]
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientDocument {
    /// Equal to the URL it was fetched from.
    pub client_id: String,
    /// Self-asserted: shown as a claim, never trusted.
    pub client_name: Option<String>,
    /// Non-empty; each a usable redirect URI that a code can carry
    /// (`redirect::check_registrable`).
    pub redirect_uris: Vec<String>,
    pub auth: DocumentAuth,
    /// `grant_types` includes `refresh_token` (or is absent: documents are
    /// written for MCP clients, which keep their sessions).
    pub refresh: bool,
    /// The document's size, what the cache weighs.
    pub bytes: usize,
}

/// Why a document is refused. The text is the description the client
/// gets with `invalid_client`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum DocumentError {
    #[error("the client metadata document is not a JSON object")]
    NotJsonObject,
    #[error("the client metadata document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    #[error("the client metadata document has no redirect_uris")]
    NoRedirectUris,
    #[error("the client metadata document's redirect_uris[{0}] {1}")]
    BadRedirectUri(usize, redirect::UriError),
    #[error("the client metadata document lists more than {MAX_REDIRECT_URIS} redirect_uris")]
    TooManyRedirectUris,
    #[error("a client metadata document must not contain `{0}` (no shared secrets)")]
    Secret(String),
    #[error("token_endpoint_auth_method `{0}` is not supported for client metadata documents (none or private_key_jwt)")]
    AuthMethod(String),
    #[error("private_key_jwt needs exactly one of jwks or jwks_uri")]
    Keys,
    #[error("the client metadata document's jwks must hold public keys only (keys[{0}] is private or symmetric)")]
    PrivateKey(usize),
    #[error("the client's jwks holds more than {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
    #[error("the client metadata document's `{0}` is malformed")]
    Malformed(&'static str),
    #[error("grant_types must include authorization_code")]
    NoCodeGrant,
}

/// JWK members that hold private or symmetric key material (RFC 7518
/// §6.2.2, §6.3.2, §6.4; RFC 8037 §2). A document is public: a key with
/// one of them is a published secret that lets anyone sign as the client
/// (draft §4.1 refuses shared secrets; `oct` with `k` is one, and would
/// also invite HMAC algorithm confusion).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// Most keys a client's JWKS may hold. Real clients publish a few.
const MAX_JWKS_KEYS: usize = 16;

/// What is kept of a client's JWKS (inline `jwks`, or what `jwks_uri`
/// serves): `{"keys": [...]}`, at most [`MAX_JWKS_KEYS`] keys, each a
/// public key, each with its string members only (the JWK parameters a
/// verifier reads are strings; `key_ops` and `x5c` are not used). A JWKS
/// is kept parsed per cached client, and parsed JSON can take many times
/// its bytes (`{}` is 2 bytes, a map more than 20): keeping only this
/// bounds a document's memory by its size, whatever else it carries.
pub(crate) fn public_jwks(jwks: &Value) -> Result<Value, DocumentError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(DocumentError::Malformed("jwks"))?;
    if keys.len() > MAX_JWKS_KEYS {
        return Err(DocumentError::TooManyKeys);
    }
    let mut kept = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let k = k.as_object().ok_or(DocumentError::Malformed("jwks"))?;
        if k.get("kty").and_then(Value::as_str) == Some("oct")
            || PRIVATE_JWK_MEMBERS.iter().any(|m| k.contains_key(*m))
        {
            return Err(DocumentError::PrivateKey(i));
        }
        let strings: Map<String, Value> = k
            .iter()
            .filter(|(_, v)| v.is_string())
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect();
        kept.push(Value::Object(strings));
    }
    Ok(serde_json::json!({ "keys": kept }))
}

impl ClientDocument {
    /// Checks `body`, served at `url`.
    pub(crate) fn parse(body: &[u8], url: &ClientIdUrl) -> Result<ClientDocument, DocumentError> {
        let doc: Map<String, Value> =
            serde_json::from_slice(body).map_err(|_| DocumentError::NotJsonObject)?;
        if doc.get("client_id").and_then(Value::as_str) != Some(url.as_str()) {
            return Err(DocumentError::ClientIdMismatch);
        }
        // draft §4.1: no symmetric secrets, whatever their member name.
        if let Some(k) = doc.keys().find(|k| k.starts_with("client_secret")) {
            return Err(DocumentError::Secret(k.clone()));
        }
        let strings = |name: &'static str| -> Result<Option<Vec<String>>, DocumentError> {
            match doc.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<_>>>()
                    .map(Some)
                    .ok_or(DocumentError::Malformed(name)),
                Some(_) => Err(DocumentError::Malformed(name)),
            }
        };
        let redirect_uris = strings("redirect_uris")?.unwrap_or_default();
        if redirect_uris.is_empty() {
            return Err(DocumentError::NoRedirectUris);
        }
        if redirect_uris.len() > MAX_REDIRECT_URIS {
            return Err(DocumentError::TooManyRedirectUris);
        }
        for (i, uri) in redirect_uris.iter().enumerate() {
            // As at registration: short enough for every code sent to it
            // to be redeemed (`redirect::MAX_CODE_REDIRECT_URI`).
            redirect::check_registrable(uri).map_err(|e| DocumentError::BadRedirectUri(i, e))?;
        }
        let refresh = match strings("grant_types")? {
            None => true,
            Some(g) => {
                if !g.iter().any(|g| g == "authorization_code") {
                    return Err(DocumentError::NoCodeGrant);
                }
                g.iter().any(|g| g == "refresh_token")
            }
        };
        if let Some(r) = strings("response_types")? {
            if !r.iter().any(|r| r == "code") {
                return Err(DocumentError::Malformed("response_types"));
            }
        }
        let client_name = match doc.get("client_name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(DocumentError::Malformed("client_name")),
        };
        let auth = match doc.get("token_endpoint_auth_method") {
            None | Some(Value::Null) => DocumentAuth::None,
            Some(Value::String(m)) if m == "none" => DocumentAuth::None,
            Some(Value::String(m)) if m == "private_key_jwt" => {
                let keys = match (doc.get("jwks"), doc.get("jwks_uri")) {
                    (Some(jwks @ Value::Object(_)), None) => {
                        KeySource::Inline(Arc::new(public_jwks(jwks)?))
                    }
                    (None, Some(Value::String(u))) => KeySource::Uri(
                        ClientIdUrl::parse(u).map_err(|_| DocumentError::Malformed("jwks_uri"))?,
                    ),
                    _ => return Err(DocumentError::Keys),
                };
                DocumentAuth::PrivateKeyJwt(keys)
            }
            Some(Value::String(m)) => return Err(DocumentError::AuthMethod(m.clone())),
            Some(_) => return Err(DocumentError::Malformed("token_endpoint_auth_method")),
        };
        Ok(ClientDocument {
            client_id: url.as_str().to_owned(),
            client_name,
            redirect_uris,
            auth,
            refresh,
            bytes: body.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const URL: &str = "https://claude.ai/oauth/claude-code-client-metadata";

    fn parse(v: Value) -> Result<ClientDocument, DocumentError> {
        ClientDocument::parse(
            &serde_json::to_vec(&v).unwrap(),
            &ClientIdUrl::parse(URL).unwrap(),
        )
    }

    #[test]
    fn a_claude_code_document_is_a_public_loopback_client() {
        let d = parse(json!({
            "client_id": URL,
            "client_name": "Claude Code",
            "redirect_uris": ["http://localhost/callback", "http://127.0.0.1/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none"
        }))
        .unwrap();
        assert_eq!(d.auth, DocumentAuth::None);
        assert!(d.refresh);
        assert_eq!(d.client_name.as_deref(), Some("Claude Code"));
    }

    #[test]
    fn documents_that_break_the_rules_are_refused() {
        let base = || json!({"client_id": URL, "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"]});
        assert!(parse(base()).is_ok());
        let with = |k: &str, v: Value| {
            let mut d = base();
            d[k] = v;
            parse(d).unwrap_err()
        };
        assert_eq!(
            with("client_id", json!(format!("{URL}/"))),
            DocumentError::ClientIdMismatch
        );
        assert_eq!(
            with("client_secret", json!("s")),
            DocumentError::Secret("client_secret".into())
        );
        assert!(matches!(
            with("client_secret_expires_at", json!(0)),
            DocumentError::Secret(_)
        ));
        assert!(matches!(
            with("token_endpoint_auth_method", json!("client_secret_basic")),
            DocumentError::AuthMethod(_)
        ));
        assert!(matches!(
            with("token_endpoint_auth_method", json!("client_secret_post")),
            DocumentError::AuthMethod(_)
        ));
        assert_eq!(
            with("redirect_uris", json!([])),
            DocumentError::NoRedirectUris
        );
        assert!(matches!(
            with("redirect_uris", json!(["http://evil.example/cb"])),
            DocumentError::BadRedirectUri(0, _)
        ));
        assert!(matches!(
            with("redirect_uris", json!(["javascript:alert(1)"])),
            DocumentError::BadRedirectUri(0, _)
        ));
        assert_eq!(
            with("grant_types", json!(["client_credentials"])),
            DocumentError::NoCodeGrant
        );
        assert_eq!(
            with("token_endpoint_auth_method", json!("private_key_jwt")),
            DocumentError::Keys
        );
        let mut d = base();
        d.as_object_mut().unwrap().remove("redirect_uris");
        assert_eq!(parse(d).unwrap_err(), DocumentError::NoRedirectUris);
        assert_eq!(
            ClientDocument::parse(b"[1]", &ClientIdUrl::parse(URL).unwrap()).unwrap_err(),
            DocumentError::NotJsonObject
        );
        assert_eq!(
            ClientDocument::parse(b"<html>", &ClientIdUrl::parse(URL).unwrap()).unwrap_err(),
            DocumentError::NotJsonObject
        );
    }

    #[test]
    fn a_jwks_with_private_or_symmetric_keys_is_refused() {
        let pair = josekit::jws::ES256.generate_key_pair().unwrap();
        let public: Value = serde_json::to_value(pair.to_jwk_public_key().as_ref()).unwrap();
        let private: Value = serde_json::to_value(pair.to_jwk_private_key().as_ref()).unwrap();
        let doc = |keys: Value| {
            parse(
                json!({"client_id": URL, "redirect_uris": ["https://claude.ai/cb"],
                "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": keys}}),
            )
        };
        assert!(doc(json!([public.clone()])).is_ok());
        assert_eq!(
            doc(json!([public.clone(), private])).unwrap_err(),
            DocumentError::PrivateKey(1)
        );
        assert_eq!(
            doc(json!([{"kty": "oct", "k": "c2VjcmV0"}])).unwrap_err(),
            DocumentError::PrivateKey(0)
        );
        assert_eq!(
            doc(json!([{"kty": "oct", "kid": "no k, still symmetric"}])).unwrap_err(),
            DocumentError::PrivateKey(0)
        );
        assert_eq!(
            doc(json!("not an array")).unwrap_err(),
            DocumentError::Malformed("jwks")
        );
        assert!(doc(json!(vec![public.clone(); MAX_JWKS_KEYS])).is_ok());
        // Only the keys' string members are kept.
        let mut padded = public.clone();
        padded["x5c"] = json!(vec![json!({}); 500]);
        let d = parse(
            json!({"client_id": URL, "redirect_uris": ["https://claude.ai/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [padded], "junk": vec![json!({}); 500]}}),
        )
        .unwrap();
        assert_eq!(
            d.auth,
            DocumentAuth::PrivateKeyJwt(KeySource::Inline(Arc::new(
                json!({"keys": [public.clone()]})
            )))
        );
        assert_eq!(
            doc(json!(vec![public; MAX_JWKS_KEYS + 1])).unwrap_err(),
            DocumentError::TooManyKeys
        );
    }

    #[test]
    fn grant_types_decide_refresh() {
        let d = parse(
            json!({"client_id": URL, "redirect_uris": ["http://127.0.0.1/cb"],
            "grant_types": ["authorization_code"]}),
        )
        .unwrap();
        assert!(!d.refresh);
    }
}

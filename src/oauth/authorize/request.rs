//! Parsing an authorize request into typed values, in two steps: the
//! [`Target`] (client and redirect URI: refusals are pages) and the
//! [`AuthorizeRequest`] (everything else: refusals go back to the client).

use super::super::client::{self, Client, GrantType, RedirectUri};
use super::super::error::{ErrorCode, OAuthError};
use super::super::params::{Params, Repeated};
use super::super::resource;
use crate::cimd::{ClientIdUrl, Resolver};
use crate::keys::KeyRing;
use crate::settings::{Settings, Site};
use crate::tokens::pkce::CodeChallenge;
use crate::tokens::scope::Scope;

/// Who asks and where the answer goes, both checked: without them there
/// is nowhere safe to send an error (RFC 6749 §4.1.2.1).
pub(super) struct Target<'a> {
    pub client: Client<'a>,
    pub redirect_uri: RedirectUri,
}

impl<'a> Target<'a> {
    /// What can be checked of a URL client id before anyone signs in,
    /// without fetching its document: the parameters are single, the URL
    /// has the right form and the host accepts clients from its host.
    pub(super) fn check_document_url(
        settings: &Settings,
        site: &Site,
        params: &Params<'_>,
        repeated: Option<&Repeated>,
    ) -> Result<ClientIdUrl, OAuthError> {
        client::document_url(settings, site, client_id(params, repeated)?)
    }

    /// `site`: the host the request arrived on.
    pub(super) async fn parse(
        settings: &'a Settings,
        ring: &KeyRing,
        documents: &Resolver,
        site: &Site,
        params: &'a Params<'_>,
        repeated: Option<&Repeated>,
        now: u64,
    ) -> Result<Target<'a>, OAuthError> {
        let client_id = client_id(params, repeated)?;
        let client = Client::resolve(settings, ring, documents, site, client_id, now).await?;
        let redirect_uri = client.redirect_uri(settings, site, params.get("redirect_uri"))?;
        Ok(Target {
            client,
            redirect_uri,
        })
    }
}

/// The rest of a valid authorize request.
pub(super) struct AuthorizeRequest {
    pub code_challenge: Option<CodeChallenge>,
    pub scope: Scope,
    /// RFC 8707: the resource the code is for.
    pub resource: String,
    /// The client will get a refresh token (and so `offline_access`).
    pub offline: bool,
}

impl AuthorizeRequest {
    /// `site`: the host the request arrived on.
    pub(super) fn parse(
        settings: &Settings,
        site: &Site,
        target: &Target<'_>,
        params: &Params<'_>,
        repeated: Option<Repeated>,
    ) -> Result<AuthorizeRequest, OAuthError> {
        // RFC 6749 §3.1: a repeated parameter first. If `state` is the one
        // repeated, its first value is echoed.
        if let Some(r) = repeated {
            return Err(r.into_error());
        }
        match params.get("response_type") {
            Some("code") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedResponseType,
                    "only response_type=code is supported",
                ))
            }
            None => return Err(OAuthError::invalid_request("response_type is required")),
        }
        let code_challenge = match (
            params.get("code_challenge"),
            params.get("code_challenge_method"),
        ) {
            (Some(c), m) => Some(
                CodeChallenge::from_request(c, m)
                    .map_err(|e| OAuthError::invalid_request(e.to_string()))?,
            ),
            (None, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "code_challenge_method without code_challenge",
                ))
            }
            (None, None) if target.client.requires_pkce() => {
                return Err(OAuthError::invalid_request(
                    "PKCE is required: send code_challenge with code_challenge_method=S256",
                ))
            }
            (None, None) => None,
        };
        // `offline_access` asks for a refresh token; a client that will not
        // get one is not granted the scope either, so the token response's
        // `scope` and the consent page say what is really given.
        let offline = target.client.may_use(GrantType::RefreshToken)
            && !settings.tokens.refresh_ttl.is_zero();
        let scope = Scope::granted(params.get("scope"), offline).map_err(|unknown| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                format!("scope {} is not supported", unknown.0),
            )
        })?;
        // RFC 8707: the resource must be ours; absent means this host's.
        let resource = match resource::requested(settings, params)? {
            Some(r) => r.to_owned(),
            None => site.resource.clone(),
        };
        Ok(AuthorizeRequest {
            code_challenge,
            scope,
            resource,
            offline,
        })
    }
}

/// The request's `client_id`. It and `redirect_uri` must each come once:
/// sent twice, which value would the client have meant?
fn client_id<'p>(
    params: &'p Params<'_>,
    repeated: Option<&Repeated>,
) -> Result<&'p str, OAuthError> {
    if let Some(e) = repeated.and_then(|r| {
        r.error_for("client_id")
            .or_else(|| r.error_for("redirect_uri"))
    }) {
        return Err(e);
    }
    params
        .get("client_id")
        .ok_or_else(|| OAuthError::invalid_request("client_id is required"))
}

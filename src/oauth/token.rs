//! `POST /oauth/token` (RFC 6749 §3.2, §4.1.3, §6; OAuth 2.1 §4.1.3, §4.3).
//!
//! Client authentication first, then the grant: a sealed code (PKCE and/or
//! secret, redeemed once) or a sealed refresh token (rotated on every use).
//! Success is a signed RFC 9068 access token. Single use is the store's
//! (`crate::store`): per replica, or exact across replicas with Redis; one
//! store round trip per request, after every other check.

use http::{Request, StatusCode};
use hyper::body::Incoming;
use serde::Serialize;

use super::client::{Client, ClientKind, Credentials, GrantType};
use super::client_assertion;
use super::error::{Delivery, ErrorCode, OAuthError};
use super::params::Params;
use super::resource;
use crate::cimd::Resolver;
use crate::clock::unix_now;
use crate::http::response::{self, Resp};
use crate::http::Ctx;
use crate::keys::deny::Subject as DenySubject;
use crate::keys::KeyRing;
use crate::random::random_id;
use crate::store::{Once, Store};
use crate::tokens::access::{self, AccessClaims, Grantee};
use crate::tokens::grants::{ClientBinding, CodeGrant, RefreshGrant};
use crate::tokens::scope::Scope;
use crate::tokens::sealed::{self, OpenError};

pub(crate) const MAX_BODY: usize = 16 * 1024;

/// RFC 6749 §5.1 successful response.
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    store: &Store,
    documents: &Resolver,
    req: Request<Incoming>,
) -> Resp {
    match token(ctx, store, documents, req).await {
        Ok(r) => r,
        Err(e) => e.respond("token", Delivery::Json),
    }
}

async fn token(
    ctx: &Ctx<'_>,
    store: &Store,
    documents: &Resolver,
    req: Request<Incoming>,
) -> Result<Resp, OAuthError> {
    let (parts, body) = req.into_parts();
    if let Some(ct) = parts.headers.get(http::header::CONTENT_TYPE) {
        let form = ct
            .to_str()
            .map(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            })
            .unwrap_or(false);
        if !form {
            return Err(OAuthError::invalid_request(
                "the token request must be application/x-www-form-urlencoded",
            ));
        }
    }
    let body = match ctx.read_body(&parts.headers, body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return Err(OAuthError::body(e)),
    };
    let params = Params::parse(&body)?;
    if parts.uri.query().is_some_and(|q| !q.is_empty()) {
        // RFC 6749 §3.2: parameters travel in the body, never the URL.
        return Err(OAuthError::invalid_request(
            "token request parameters belong in the body, not the query string",
        ));
    }
    let grant_type = GrantType::parse(params.require("grant_type")?).ok_or_else(|| {
        OAuthError::new(
            ErrorCode::UnsupportedGrantType,
            "grant_type must be authorization_code or refresh_token",
        )
    })?;

    let settings = &ctx.settings;
    let now = unix_now();
    let ring = ctx.keys.load();
    let credentials = match (
        params.get("client_assertion_type"),
        params.get("client_assertion"),
    ) {
        (None, None) => Credentials::from_request(
            &parts.headers,
            params.get("client_id"),
            params.get("client_secret"),
        )?,
        (assertion_type, assertion) => Credentials::from_assertion(
            &parts.headers,
            params.get("client_id"),
            params.get("client_secret"),
            assertion_type,
            assertion,
        )?,
    };
    let basic = credentials.is_basic();
    if ClientKind::of(credentials.client_id()) == ClientKind::Document
        && !presents_own_grant(&ring, grant_type, &params, credentials.client_id(), now)
    {
        return Err(OAuthError::invalid_client(
            "no code or refresh token of this client was presented",
        )
        .with_basic(basic));
    }
    let client = Client::resolve(
        settings,
        &ring,
        documents,
        &ctx.host.site,
        credentials.client_id(),
        now,
    )
    .await
    .map_err(|e| e.with_basic(basic))?;
    credentials.authenticate(&client)?;
    if let Credentials::Assertion { assertion, .. } = &credentials {
        client_assertion::verify(&client, assertion, documents, store, &ctx.host.site, now).await?;
    }
    // RFC 6749 §5.2: an authenticated client using a grant it was not
    // registered for (RFC 7591 §2 `grant_types`). Checked before the
    // presented code or token is even opened.
    if !client.may_use(grant_type) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!(
                "this client is not registered for the {0} grant; register it again with grant_types including {0}",
                grant_type.as_str()
            ),
        ));
    }

    let issued = match grant_type {
        GrantType::AuthorizationCode => {
            exchange_code(ctx, store, &ring, &client, &params, now).await?
        }
        GrantType::RefreshToken => refresh(ctx, store, &ring, &client, &params, now).await?,
    };
    Ok(response::json_no_store(StatusCode::OK, &issued))
}

/// Whether the request carries a code or refresh token this server issued
/// to `client_id`. A URL client id's document is fetched here only then:
/// without it, anyone could make this server fetch any URL by posting to
/// the token endpoint, which needs no sign-in. (At authorize, only a
/// signed-in person can.) The grant is opened again, and fully checked,
/// by the grant's own step.
fn presents_own_grant(
    ring: &KeyRing,
    grant_type: GrantType,
    params: &Params<'_>,
    client_id: &str,
    now: u64,
) -> bool {
    let binding = ClientBinding::of(client_id);
    match grant_type {
        GrantType::AuthorizationCode => params
            .get("code")
            .and_then(|c| sealed::open::<CodeGrant>(ring, c, now).ok())
            .is_some_and(|g| g.client == binding),
        GrantType::RefreshToken => params
            .get("refresh_token")
            .and_then(|t| sealed::open::<RefreshGrant>(ring, t, now).ok())
            .is_some_and(|g| g.client == binding),
    }
}

fn open_error(what: &str, e: OpenError) -> OAuthError {
    let why = match e {
        OpenError::Expired => "has expired",
        OpenError::UnknownKey => "was sealed with a retired key",
        _ => "is not valid",
    };
    OAuthError::invalid_grant(format!("the {what} {why}"))
}

/// The requested `resource`, if any, must be the one the grant is for
/// (RFC 8707 §2.2); repeated, as at authorize, it must name that one only.
fn check_resource(ctx: &Ctx<'_>, params: &Params<'_>, granted: &str) -> Result<(), OAuthError> {
    match resource::requested(ctx.settings, params)? {
        None => Ok(()),
        Some(resource) if resource == granted => Ok(()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource does not match the resource this grant is for",
        )),
    }
}

async fn exchange_code(
    ctx: &Ctx<'_>,
    store: &Store,
    ring: &KeyRing,
    client: &Client<'_>,
    params: &Params<'_>,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    let code = params.require("code")?;
    let grant = sealed::open::<CodeGrant>(ring, code, now).map_err(|e| open_error("code", e))?;
    if grant.client != client.binding() {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    match params.get("redirect_uri") {
        Some(r) if r != grant.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri does not match the authorization request",
            ))
        }
        None if grant.redirect_uri_sent => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is required: the authorization request included it",
            ))
        }
        _ => {}
    }
    match (&grant.code_challenge, params.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => challenge
            .verify(verifier)
            .map_err(|e| OAuthError::invalid_grant(e.to_string()))?,
        (Some(_), None) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier is required: the authorization request used PKCE",
            ))
        }
        // RFC 9700 §2.1.1: a verifier for a code issued without a
        // challenge is a downgrade attempt.
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge",
            ))
        }
        (None, None) => {}
    }
    check_resource(ctx, params, &grant.resource)?;
    refuse_revoked(
        ring,
        &DenySubject {
            sub: &grant.sub,
            email: &grant.email,
            client_id: client.client_id(),
            jti: None,
            family: None,
            issued_at: grant.iat,
        },
    )?;
    // Last: a request that failed any check above does not burn the code.
    let first = store
        .first_use(Once::Code, &grant.jti, grant.exp, now)
        .await
        .map_err(OAuthError::store)?;
    if !first {
        return Err(OAuthError::invalid_grant("the code was already used"));
    }
    // Only a client registered for the refresh_token grant gets a refresh
    // token: `offline_access` cannot widen its grant types (authorize
    // already left that scope out for such a client, RFC 6749 §3.3).
    let refresh = client
        .may_use(GrantType::RefreshToken)
        .then(|| RefreshGrant {
            client: grant.client.clone(),
            sub: grant.sub.clone(),
            email: grant.email.clone(),
            groups: grant.groups.clone(),
            scope: grant.scope.clone(),
            resource: grant.resource.clone(),
            fam: random_id(),
            gen: 1,
            iat: now,
            auth_time: grant.iat,
            exp: now + ctx.settings.tokens.refresh_ttl.as_secs(),
        });
    tracing::info!(client = client.name().unwrap_or("-"), email = %grant.email, grant = "authorization_code", "access token issued");
    Ok(mint(
        ctx,
        ring,
        client,
        Subject {
            sub: grant.sub,
            email: grant.email,
            groups: grant.groups,
            scope: grant.scope,
            resource: grant.resource,
        },
        refresh,
        GrantType::AuthorizationCode,
        now,
    ))
}

async fn refresh(
    ctx: &Ctx<'_>,
    store: &Store,
    ring: &KeyRing,
    client: &Client<'_>,
    params: &Params<'_>,
    now: u64,
) -> Result<TokenResponse, OAuthError> {
    let presented = params.require("refresh_token")?;
    let grant = sealed::open::<RefreshGrant>(ring, presented, now)
        .map_err(|e| open_error("refresh token", e))?;
    if grant.client != client.binding() {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    // RFC 6749 §6: a narrower scope may be asked for, never a wider one.
    let scope = match params.get("scope") {
        None => grant.scope.clone(),
        Some(s) => grant.scope.narrowed(s).ok_or_else(|| {
            OAuthError::new(
                ErrorCode::InvalidScope,
                "scope exceeds what was originally granted",
            )
        })?,
    };
    check_resource(ctx, params, &grant.resource)?;
    refuse_revoked(
        ring,
        &DenySubject {
            sub: &grant.sub,
            email: &grant.email,
            client_id: client.client_id(),
            jti: None,
            family: Some(&grant.fam),
            issued_at: grant.auth_time,
        },
    )?;
    // Rotation (OAuth 2.1 §4.3.1): each generation is honoured once, but
    // for a retry within the grace window.
    let grace = ctx.settings.tokens.refresh_grace.as_secs();
    let rotated = store
        .rotate(&grant.fam, grant.gen, grant.exp, now, grace)
        .await
        .map_err(OAuthError::store)?;
    if rotated.is_err() {
        tracing::warn!(email = %grant.email, generation = grant.gen, shared = store.is_shared(), "refresh token reuse detected; family revoked");
        return Err(OAuthError::invalid_grant(
            "the refresh token was already used",
        ));
    }
    let next = RefreshGrant {
        gen: grant.gen.saturating_add(1),
        iat: now,
        ..grant.clone()
    };
    tracing::info!(client = client.name().unwrap_or("-"), email = %grant.email, generation = next.gen, grant = "refresh_token", "access token issued");
    Ok(mint(
        ctx,
        ring,
        client,
        Subject {
            sub: grant.sub,
            email: grant.email,
            groups: grant.groups,
            scope,
            resource: grant.resource,
        },
        Some(next),
        GrantType::RefreshToken,
        now,
    ))
}

/// The deny file names this person, client or family.
fn refuse_revoked(ring: &KeyRing, s: &DenySubject<'_>) -> Result<(), OAuthError> {
    if ring.deny.denies(s) {
        tracing::info!(email = %s.email, "grant refused: revoked");
        return Err(OAuthError::invalid_grant("this grant has been revoked"));
    }
    Ok(())
}

/// Who and what the access token is for.
struct Subject {
    sub: String,
    email: String,
    groups: Vec<String>,
    scope: Scope,
    resource: String,
}

fn mint(
    ctx: &Ctx<'_>,
    ring: &KeyRing,
    client: &Client<'_>,
    subject: Subject,
    refresh: Option<RefreshGrant>,
    grant_type: GrantType,
    now: u64,
) -> TokenResponse {
    let ttl = ctx.settings.tokens.access_ttl.as_secs();
    let claims = AccessClaims::new(
        &ctx.host.site.issuer,
        subject.resource,
        Grantee {
            sub: subject.sub,
            email: subject.email,
            client_id: client.client_id().to_owned(),
            scope: subject.scope,
            groups: subject.groups,
        },
        now,
        ttl,
    );
    crate::metrics::token_issued(client.kind().metric_label(), grant_type.as_str());
    let refresh_token = refresh
        .filter(|_| !ctx.settings.tokens.refresh_ttl.is_zero())
        .map(|r| sealed::seal(ring, &r, now).into_string());
    TokenResponse {
        access_token: access::issue(ring, &claims, now),
        token_type: "Bearer",
        expires_in: ttl,
        scope: claims.scope,
        refresh_token,
    }
}

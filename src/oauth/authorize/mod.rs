//! `GET /oauth/authorize` (RFC 6749 §4.1.1, OAuth 2.1 §4.1): behind
//! oauth2-proxy, so the person has already signed in with Google.
//!
//! Parse → decide → render, in the order RFC 6749 §4.1.2.1 requires:
//!
//! 1. [`request::Target`]: the client and its redirect URI. Until both are
//!    known good, a refusal is a page, never a redirect to an unchecked URI.
//!    A URL client id (a Client ID Metadata Document) is checked for form
//!    and trust policy first, and its document fetched only once the
//!    person has signed in (step 3 comes first for it): no one who has
//!    not signed in can make this server fetch a URL.
//! 2. [`request::AuthorizeRequest`]: the rest of the request; from here a
//!    refusal goes back to the client with `state` and `iss`.
//! 3. The person: [`SignIn::person`] (or the dev sign-in form, [`dev_form`]).
//! 4. Consent: [`consent::decide`].
//! 5. The code: everything the token endpoint must check, sealed.
//!
//! The consent page's answer and the dev sign-in form come back as a
//! `POST` to this same path, are validated exactly like the `GET`, and are
//! answered with a `303`. Every refusal becomes a response in
//! [`OAuthError::respond`], with the delivery this module chose.

mod dev_form;
mod request;

use http::{Method, Request};
use hyper::body::Incoming;

use super::client::ClientKind;
use super::consent::{self, Decision};
use super::error::{Delivery, ErrorCode, OAuthError};
use super::params::{Params, CONSENT_FIELD, DEV_EMAIL_FIELD};
use super::redirect::ClientRedirect;
use crate::cimd::Resolver;
use crate::clock::unix_now;
use crate::http::error::HttpError;
use crate::http::response::Resp;
use crate::http::Ctx;
use crate::identity::{Evidence, Identity, IdentityError, SignIn};
use crate::random::random_id;
use crate::settings::IdentitySource;
use crate::store::Store;
use crate::tokens::grants::CodeGrant;
use crate::tokens::sealed;
use request::{AuthorizeRequest, Target};

/// The dev sign-in and consent forms post back here; their bodies are small.
const MAX_FORM_BODY: usize = 16 * 1024;

/// The name this endpoint's refusals are counted and logged under.
const ENDPOINT: &str = "authorize";

/// How this request is answered: as a page to a browser (or JSON to a
/// script), and with a 303 when it is a form's POST.
#[derive(Debug, Clone, Copy)]
struct Answering<'a> {
    wants_html: bool,
    form_post: bool,
    request_id: &'a str,
}

impl<'a> Answering<'a> {
    fn page(self) -> Delivery<'a> {
        Delivery::Page {
            wants_html: self.wants_html,
            request_id: self.request_id,
        }
    }
}

/// Who the dev sign-in form says is asking.
struct Asking<'a> {
    client: &'a str,
    redirect_uri: Option<&'a str>,
}

/// Step 3: the signed-in person, or the response that answers instead
/// (the dev sign-in form, or a refusal page).
fn person(
    ctx: &Ctx<'_>,
    sign_in: &SignIn,
    headers: &http::HeaderMap,
    params: &Params<'_>,
    answering: Answering<'_>,
    asking: Asking<'_>,
) -> Result<Identity, Box<Resp>> {
    let evidence = match ctx.settings.identity.source {
        IdentitySource::Proxy => Evidence::Proxy {
            peer: ctx.peer.ip(),
            headers,
        },
        IdentitySource::Dev => {
            let posted = params.get(DEV_EMAIL_FIELD).filter(|_| answering.form_post);
            match dev_form::evidence(ctx, headers, posted) {
                Ok(Some(evidence)) => evidence,
                Ok(None) => {
                    return Err(Box::new(dev_form::render(
                        ctx,
                        params,
                        asking.client,
                        asking.redirect_uri,
                    )))
                }
                Err(e) => return Err(Box::new(e.respond(ENDPOINT, answering.page()))),
            }
        }
    };
    sign_in.person(evidence).map_err(|e| {
        tracing::warn!(reason = %e, peer = %ctx.peer.ip(), "authorize refused: identity");
        Box::new(
            identity_refusal(&e)
                .logged()
                .respond(ENDPOINT, answering.page()),
        )
    })
}

pub(crate) async fn handle(
    ctx: &Ctx<'_>,
    sign_in: &SignIn,
    store: &Store,
    documents: &Resolver,
    req: Request<Incoming>,
) -> Resp {
    let wants_html = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let (parts, body) = req.into_parts();
    let answering = Answering {
        wants_html,
        form_post: parts.method == Method::POST,
        // Ids are checked visible ASCII (`server::request_id`).
        request_id: ctx.request_id.to_str().unwrap_or("-"),
    };
    let raw = if answering.form_post {
        match ctx.read_body(&parts.headers, body, MAX_FORM_BODY).await {
            Ok(b) => b.to_vec(),
            Err(e) => return OAuthError::body(e).respond(ENDPOINT, answering.page()),
        }
    } else {
        parts.uri.query().unwrap_or("").as_bytes().to_vec()
    };
    // A repeated parameter is not answered yet: where its error goes
    // depends on whether the client and redirect URI check out.
    let (params, repeated) = match Params::parse_noting_repeats(&raw) {
        Ok(p) => p,
        Err(e) => return e.respond(ENDPOINT, answering.page()),
    };
    // A POST is the consent form's answer (any mode) or the dev sign-in.
    let dev = ctx.settings.identity.source == IdentitySource::Dev;
    if answering.form_post && !dev && params.get(CONSENT_FIELD).is_none() {
        return HttpError::MethodNotAllowed { allow: "GET" }.respond();
    }

    // 1. Client and redirect URI; for a URL client id, the person first.
    let now = unix_now();
    let ring = ctx.keys.load();
    let by_document = params
        .get("client_id")
        .is_some_and(|c| ClientKind::of(c) == ClientKind::Document);
    let signed_in_first = if by_document {
        let site = &ctx.host.site;
        let url = match Target::check_document_url(ctx.settings, site, &params, repeated.as_ref()) {
            Ok(url) => url,
            Err(e) => return e.respond(ENDPOINT, answering.page()),
        };
        let asking = Asking {
            client: &format!("An app from {}", url.host()),
            redirect_uri: params.get("redirect_uri"),
        };
        match person(ctx, sign_in, &parts.headers, &params, answering, asking) {
            Ok(identity) => Some(identity),
            Err(resp) => return *resp,
        }
    } else {
        None
    };
    let target = match Target::parse(
        ctx.settings,
        &ring,
        documents,
        &ctx.host.site,
        &params,
        repeated.as_ref(),
        now,
    )
    .await
    {
        Ok(t) => t,
        Err(e) => return e.respond(ENDPOINT, answering.page()),
    };
    let to_client = ClientRedirect {
        redirect_uri: target.redirect_uri.as_str(),
        state: params.get("state"),
        issuer: &ctx.host.site.issuer,
        see_other: answering.form_post,
    };
    let back_to_client = Delivery::Redirect(to_client);

    // 2. The rest of the request.
    let request =
        match AuthorizeRequest::parse(ctx.settings, &ctx.host.site, &target, &params, repeated) {
            Ok(r) => r,
            Err(e) => return e.respond(ENDPOINT, back_to_client),
        };

    // 3. The person (already known for a URL client id).
    let identity: Identity = match signed_in_first {
        Some(identity) => identity,
        None => {
            let asking = Asking {
                client: target.client.name().unwrap_or("An MCP client"),
                redirect_uri: Some(target.redirect_uri.as_str()),
            };
            match person(ctx, sign_in, &parts.headers, &params, answering, asking) {
                Ok(identity) => identity,
                Err(resp) => return *resp,
            }
        }
    };

    // 4. Consent. Only a POST carries an answer; on a GET a `consent`
    //    parameter is the client's and is ignored.
    let binding = target.client.binding();
    let question = consent::Question {
        client: &target.client,
        binding: &binding,
        redirect_uri: target.redirect_uri.as_str(),
        site: &ctx.host.site,
        email: &identity.email,
        params: &params,
        headers: &parts.headers,
        answer: params.get(CONSENT_FIELD).filter(|_| answering.form_post),
        stays_connected: request.offline,
    };
    let set_cookies = match consent::decide(&ctx.settings.identity, &ring, store, &question, now)
        .await
    {
        Decision::Proceed { set_cookies } => set_cookies,
        Decision::Ask(page) => return page,
        Decision::Denied => {
            return OAuthError::new(ErrorCode::AccessDenied, "the person denied access")
                .logged()
                .respond(ENDPOINT, back_to_client)
        }
        Decision::Refused(consent::Refusal::NotThisRequest) => return OAuthError::invalid_request(
            "this consent form is not for this sign-in, or it expired; start again from your app",
        )
        .logged()
        .respond(ENDPOINT, answering.page()),
        Decision::Refused(consent::Refusal::NotAnAnswer) => {
            return OAuthError::invalid_request("consent must be allow or deny")
                .respond(ENDPOINT, answering.page())
        }
        Decision::Refused(consent::Refusal::CrossSite) => {
            return OAuthError::new(
                ErrorCode::AccessDenied,
                "the consent form must be answered from its own page",
            )
            .logged()
            .respond(ENDPOINT, answering.page())
        }
        Decision::Refused(consent::Refusal::AlreadyAnswered) => {
            return OAuthError::invalid_request(
                "this consent form was already answered; start again from your app",
            )
            .logged()
            .respond(ENDPOINT, answering.page())
        }
        Decision::Unavailable(e) => {
            return OAuthError::store(e).respond(ENDPOINT, answering.page())
        }
    };

    // 5. The code: everything the token endpoint must check, sealed.
    let redirect_uri = target.redirect_uri.as_str();
    let grant = CodeGrant {
        jti: random_id(),
        client: binding,
        redirect_uri: redirect_uri.to_owned(),
        redirect_uri_sent: target.redirect_uri.sent,
        code_challenge: request.code_challenge,
        sub: identity.subject,
        email: identity.email,
        groups: identity.groups,
        scope: request.scope,
        resource: request.resource,
        iat: now,
        exp: now + ctx.settings.tokens.code_ttl.as_secs(),
    };
    let client = target.client.name().unwrap_or("-");
    let code = sealed::seal(&ring, &grant, now);
    // Registration keeps redirect URIs short enough for any code to open
    // (`redirect::MAX_CODE_REDIRECT_URI`); a client registered before that
    // rule, or a configured one, may still get here. A code the token
    // endpoint would refuse is never handed out: the client hears why.
    if code.as_str().len() > sealed::MAX_SEALED_LEN {
        tracing::warn!(
            client,
            code_len = code.as_str().len(),
            redirect_uri_len = redirect_uri.len(),
            "authorization code too long to redeem; not issued"
        );
        return OAuthError::new(
            ErrorCode::ServerError,
            "the authorization code for this redirect_uri would be too long to redeem; register a shorter redirect_uri",
        )
        .respond(ENDPOINT, back_to_client);
    }
    tracing::info!(client, email = %grant.email, "authorization code issued");
    crate::metrics::code_issued();
    let mut r = to_client.with(&[("code", code.as_str())]);
    for cookie in set_cookies {
        r.headers_mut().append(http::header::SET_COOKIE, cookie);
    }
    r
}

/// The refusal for a sign-in that established no identity.
fn identity_refusal(e: &IdentityError) -> OAuthError {
    let code = if e.is_denied() {
        ErrorCode::AccessDenied
    } else if e.is_temporary() {
        ErrorCode::TemporarilyUnavailable
    } else {
        ErrorCode::LoginRequired
    };
    OAuthError::new(code, e.to_string())
}

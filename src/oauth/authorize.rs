//! `GET /oauth/authorize` (RFC 6749 §4.1.1, OAuth 2.1 §4.1): behind
//! oauth2-proxy, so the person has already signed in with Google.
//!
//! Order matters: until the client and its redirect URI are known good,
//! errors are pages (never a redirect to an unchecked URI); after that,
//! errors go back to the client with `state` and `iss`.
//!
//! Where the code would be minted, a client that must ask (see
//! [`consent`]) gets the consent page instead, unless a remember-cookie
//! says this person already allowed it. The page's answer comes back as a
//! `POST` to this same path, is validated exactly like the `GET`, and is
//! answered with a `303`.

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;

use super::client::{Client, GrantType};
use super::consent::{self, Answer};
use super::error::{append_query, ErrorCode, OAuthError};
use super::params::{Params, Repeated};
use super::resource;
use crate::clock::unix_now;
use crate::config::IdentitySource;
use crate::http::response::{self, escape_html, Resp};
use crate::http::Ctx;
use crate::identity::{Evidence, Identity, IdentityError, SignIn};
use crate::random::random_id;
use crate::settings::{DEFAULT_SCOPE, SCOPES_SUPPORTED};
use crate::tokens::grants::{client_binding, CodeGrant};
use crate::tokens::pkce::CodeChallenge;
use crate::tokens::sealed;

/// The dev sign-in and consent forms post back here; their bodies are small.
const MAX_FORM_BODY: usize = 16 * 1024;
/// The field of the dev sign-in form that carries the email.
pub const DEV_EMAIL_FIELD: &str = "mcpgate_dev_email";

pub async fn handle(ctx: &Ctx<'_>, sign_in: &SignIn, req: Request<Incoming>) -> Resp {
    let wants_html = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let dev = ctx.settings.identity.source == IdentitySource::Dev;
    let (parts, body) = req.into_parts();
    let post = parts.method == Method::POST;
    let raw = if post {
        match ctx.read_body(&parts.headers, body, MAX_FORM_BODY).await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                let refusal = OAuthError::invalid_request(e.to_string());
                refusal.refused(ENDPOINT);
                let mut page = refusal.into_page(wants_html);
                *page.status_mut() = e.status();
                return page;
            }
        }
    } else {
        parts.uri.query().unwrap_or("").as_bytes().to_vec()
    };
    // A repeated parameter is not answered yet: where its error goes
    // depends on whether the client and redirect URI check out.
    let (params, repeated) = match Params::parse_noting_repeats(&raw) {
        Ok(p) => p,
        Err(e) => return page_error(e, wants_html),
    };
    // A POST is the consent form's answer (any mode) or the dev sign-in.
    if post && !dev && params.get(consent::CONSENT_FIELD).is_none() {
        return response::method_not_allowed("GET");
    }
    authorize(
        ctx,
        sign_in,
        &parts.headers,
        &params,
        repeated,
        wants_html,
        post,
    )
}

/// The name this endpoint's refusals are counted and logged under.
const ENDPOINT: &str = "authorize";

/// A refusal shown to the person, logged.
fn page_error(e: OAuthError, wants_html: bool) -> Resp {
    e.refused(ENDPOINT);
    page(e, wants_html)
}

/// A refusal shown to the person, for a caller that logged it already.
fn page(e: OAuthError, wants_html: bool) -> Resp {
    let code = e.code;
    let mut r = e.into_page(wants_html);
    // A client or redirect URI problem is the request's fault: 400.
    if matches!(code, ErrorCode::InvalidClient | ErrorCode::InvalidRequest) {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    r
}

fn authorize(
    ctx: &Ctx<'_>,
    sign_in: &SignIn,
    headers: &http::HeaderMap,
    params: &Params<'_>,
    repeated: Option<Repeated>,
    wants_html: bool,
    post: bool,
) -> Resp {
    let settings = &ctx.settings;
    let site = &ctx.host.site;
    let now = unix_now();
    let ring = ctx.keys.load();

    // 1. Client and redirect URI: without both, there is nowhere safe to
    //    send an error. Either one sent twice cannot be trusted (which
    //    value would the client have meant?), so it is answered here too.
    let untrusted = repeated.as_ref().and_then(|r| {
        r.error_for("client_id")
            .or_else(|| r.error_for("redirect_uri"))
    });
    if let Some(e) = untrusted {
        return page_error(e, wants_html);
    }
    let Some(client_id) = params.get("client_id") else {
        return page_error(
            OAuthError::invalid_request("client_id is required"),
            wants_html,
        );
    };
    let client = match Client::resolve(settings, &ring, client_id, now) {
        Ok(c) => c,
        Err(e) => return page_error(e, wants_html),
    };
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(r) => match client.match_redirect_uri(settings, r) {
            Some(()) => (r, true),
            None => {
                return page_error(
                    OAuthError::invalid_request("redirect_uri is not registered for this client"),
                    wants_html,
                )
            }
        },
        // RFC 6749 §3.1.2.3: optional when exactly one is registered.
        None => match client.redirect_uris() {
            [only] => (only.as_str(), false),
            _ => {
                return page_error(
                    OAuthError::invalid_request("redirect_uri is required"),
                    wants_html,
                )
            }
        },
    };
    let state = params.get("state");
    // The answer to a form POST is a 303: the browser follows it with a GET.
    let respond = |r: Resp| if post { consent::see_other(r) } else { r };
    let redirect = |e: OAuthError| respond(e.into_redirect(redirect_uri, state, &site.issuer));
    let fail = |e: OAuthError| {
        e.refused(ENDPOINT);
        redirect(e)
    };

    // 2. The request itself. RFC 6749 §4.1.2.1: from here on, errors go
    //    back to the client, a repeated parameter first (RFC 6749 §3.1).
    //    If `state` is the one repeated, its first value is echoed.
    if let Some(r) = repeated {
        return fail(r.into_error());
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return fail(OAuthError::new(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ))
        }
        None => return fail(OAuthError::invalid_request("response_type is required")),
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(c), m) => match CodeChallenge::from_request(c, m) {
            Ok(c) => Some(c),
            Err(e) => return fail(OAuthError::invalid_request(e.to_string())),
        },
        (None, Some(_)) => {
            return fail(OAuthError::invalid_request(
                "code_challenge_method without code_challenge",
            ))
        }
        (None, None) if client.requires_pkce() => {
            return fail(OAuthError::invalid_request(
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ))
        }
        (None, None) => None,
    };
    // `offline_access` asks for a refresh token; a client that will not
    // get one is not granted the scope either, so the token response's
    // `scope` and the consent page say what is really given.
    let offline = client.may_use(GrantType::RefreshToken) && !settings.tokens.refresh_ttl.is_zero();
    let scope = match granted_scope(params.get("scope"), offline) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    // RFC 8707: the resource must be ours; absent means this host's.
    let resource = match resource::requested(settings, params) {
        Ok(Some(s)) => s.resource.clone(),
        Ok(None) => site.resource.clone(),
        Err(e) => return fail(e),
    };

    // 3. The person.
    let identity = match settings.identity.source {
        IdentitySource::Proxy => sign_in.person(Evidence::Proxy {
            peer: ctx.peer.ip(),
            headers,
        }),
        IdentitySource::Dev => {
            if !ctx.peer.ip().is_loopback() {
                return page_error(
                    OAuthError::new(
                        ErrorCode::AccessDenied,
                        "the dev sign-in form answers loopback clients only",
                    ),
                    wants_html,
                );
            }
            // Only the form's own POST signs in: a link or another site's
            // form could otherwise sign the browser in as anyone and, with
            // no consent to ask, send a code on (login CSRF).
            match params.get(DEV_EMAIL_FIELD).filter(|_| post) {
                Some(_) if !consent::posted_from(headers, &site.issuer) => {
                    return page_error(
                        OAuthError::new(
                            ErrorCode::AccessDenied,
                            "the dev sign-in form must be sent from its own page",
                        ),
                        wants_html,
                    )
                }
                Some(email) => sign_in.person(Evidence::DevForm { email }),
                None => return dev_sign_in_form(ctx, params, &client, redirect_uri),
            }
        }
    };
    let identity: Identity = match identity {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(reason = %e, peer = %ctx.peer.ip(), "authorize refused: identity");
            let code = match e {
                IdentityError::DomainNotAllowed(_) | IdentityError::NotAnEmail(_) => {
                    ErrorCode::AccessDenied
                }
                // Google's keys are not loaded yet: not the person's fault.
                IdentityError::IdToken(
                    crate::identity::id_token::IdTokenError::KeysUnavailable,
                ) => ErrorCode::TemporarilyUnavailable,
                _ => ErrorCode::LoginRequired,
            };
            let refusal = OAuthError::new(code, e.to_string());
            refusal.count(ENDPOINT);
            return page(refusal, wants_html);
        }
    };

    // 4. Consent. Only a POST carries an answer; on a GET a `consent`
    //    parameter is the client's and is ignored.
    let binding = client_binding(client.client_id());
    let answer = if post {
        params.get(consent::CONSENT_FIELD)
    } else {
        None
    };
    let bound = consent::Binding::new(
        &site.issuer,
        &binding,
        redirect_uri,
        params,
        &identity.email,
    );
    let mut remember = None;
    if let Some(answer) = answer {
        if let Err(e) = bound.check(&ring, params.get(consent::CSRF_FIELD), now) {
            tracing::warn!(reason = %e, client = client.name().unwrap_or("-"), email = %identity.email,
                "consent answer refused");
            let refusal = OAuthError::invalid_request(
                "this consent form is not for this sign-in, or it expired; start again from your app",
            );
            refusal.count(ENDPOINT);
            return page(refusal, wants_html);
        }
        match Answer::parse(answer) {
            Some(Answer::Allow) => {
                tracing::info!(client = client.name().unwrap_or("-"), email = %identity.email, "consent allowed");
                remember = consent::may_remember(redirect_uri)
                    .then(|| {
                        consent::remember_cookie(
                            &ring,
                            &binding,
                            &identity.email,
                            settings.identity.consent_ttl,
                            &site.issuer,
                            now,
                        )
                    })
                    .flatten()
                    .map(|cookie| {
                        let name = consent::cookie_name(&binding);
                        let expired =
                            consent::expire_oldest(&ring, headers, &name, &site.issuer, now);
                        (cookie, expired)
                    });
            }
            Some(Answer::Deny) => {
                tracing::info!(client = client.name().unwrap_or("-"), email = %identity.email, "consent denied");
                let refusal = OAuthError::new(ErrorCode::AccessDenied, "the person denied access");
                refusal.count(ENDPOINT);
                return redirect(refusal);
            }
            None => {
                return page_error(
                    OAuthError::invalid_request("consent must be allow or deny"),
                    wants_html,
                )
            }
        }
    } else if consent::required(settings.identity.consent, &client)
        && !(consent::may_remember(redirect_uri)
            && consent::remembered(&ring, headers, &binding, &identity.email, now))
    {
        let csrf = bound.csrf_token(&ring, now);
        tracing::info!(client = client.name().unwrap_or("-"), email = %identity.email, "consent page shown");
        return consent::page(&consent::Page {
            client: &client,
            redirect_uri,
            issuer: &site.issuer,
            email: &identity.email,
            stays_connected: offline,
            params,
            csrf: &csrf,
        });
    }

    // 5. The code: everything the token endpoint must check, sealed.
    let grant = CodeGrant {
        jti: random_id(),
        client: binding,
        redirect_uri: redirect_uri.to_owned(),
        redirect_uri_sent,
        code_challenge,
        sub: identity.subject,
        email: identity.email,
        scope,
        resource,
        iat: now,
        exp: now + settings.tokens.code_ttl.as_secs(),
    };
    let code = sealed::seal(&ring, &grant, now);
    // Registration keeps redirect URIs short enough for any code to open
    // (`redirect::MAX_CODE_REDIRECT_URI`); a client registered before that
    // rule, or a configured one, may still get here. A code the token
    // endpoint would refuse is never handed out: the client hears why.
    if code.as_str().len() > sealed::MAX_SEALED_LEN {
        tracing::warn!(
            client = client.name().unwrap_or("-"),
            code_len = code.as_str().len(),
            redirect_uri_len = redirect_uri.len(),
            "authorization code too long to redeem; not issued"
        );
        return fail(OAuthError::new(
            ErrorCode::ServerError,
            "the authorization code for this redirect_uri would be too long to redeem; register a shorter redirect_uri",
        ));
    }
    tracing::info!(client = client.name().unwrap_or("-"), email = %grant.email, "authorization code issued");
    crate::metrics::code_issued();
    let mut q = vec![("code", code.as_str())];
    if let Some(s) = state {
        q.push(("state", s));
    }
    // RFC 9207 §2: `iss` is exactly the metadata's issuer.
    q.push(("iss", &site.issuer));
    let mut r = respond(response::found(&append_query(redirect_uri, &q)));
    if let Some((cookie, expired)) = remember {
        let h = r.headers_mut();
        h.insert(http::header::SET_COOKIE, cookie);
        for old in expired {
            h.append(http::header::SET_COOKIE, old);
        }
    }
    r
}

/// The scope to grant: the requested tokens (each one we know), or the
/// default when none were asked for. Without `offline`, `offline_access`
/// is left out rather than refused: RFC 6749 §3.3 lets the server grant
/// less than asked and say so in the token response's `scope`, and
/// clients that always ask for it still sign in.
fn granted_scope(requested: Option<&str>, offline: bool) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(DEFAULT_SCOPE.to_owned());
    };
    let mut out: Vec<&str> = Vec::new();
    for t in requested.split(' ').filter(|t| !t.is_empty()) {
        if !SCOPES_SUPPORTED.contains(&t) {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!(
                    "scope {} is not supported",
                    t.chars().take(60).collect::<String>()
                ),
            ));
        }
        if !out.contains(&t) && (offline || t != "offline_access") {
            out.push(t);
        }
    }
    if !out.contains(&DEFAULT_SCOPE) {
        out.insert(0, DEFAULT_SCOPE);
    }
    Ok(out.join(" "))
}

/// Dev mode only: a form asking who you are, posting the authorize request
/// back with the email added.
fn dev_sign_in_form(
    ctx: &Ctx<'_>,
    params: &Params<'_>,
    client: &Client<'_>,
    redirect_uri: &str,
) -> Resp {
    let hidden =
        response::hidden_inputs(params.pairs().filter(|(k, _)| !consent::is_form_field(k)));
    let domain = ctx
        .settings
        .identity
        .allowed_domains
        .first()
        .cloned()
        .unwrap_or_default();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mcpgate dev sign-in</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem}}\
         input[type=email]{{width:100%;padding:.5rem;font-size:1rem}}button{{margin-top:1rem;padding:.5rem 1rem}}</style>\
         </head><body><h1>Dev sign-in</h1>\
         <p><strong>{}</strong> wants to use your MCP tools on <code>{}</code>.</p>\
         <p>This development server trusts the email you type. In production oauth2-proxy signs you in with Google.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <label>Email<br><input type=\"email\" name=\"{DEV_EMAIL_FIELD}\" value=\"dev@{}\" required></label>\
         <br><button type=\"submit\">Sign in</button></form></body></html>",
        escape_html(client.name().unwrap_or("An MCP client")),
        escape_html(&ctx.host.site.issuer),
        escape_html(&domain),
    );
    // Without consent to ask, the form's answer is a redirect to the client.
    consent::with_form_action(response::html(StatusCode::OK, page), redirect_uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_defaults_to_mcp_and_unknown_scopes_are_refused() {
        assert_eq!(granted_scope(None, true).unwrap(), "mcp");
        assert_eq!(granted_scope(Some(""), true).unwrap(), "mcp");
        assert_eq!(
            granted_scope(Some("offline_access"), true).unwrap(),
            "mcp offline_access"
        );
        assert_eq!(granted_scope(Some("mcp mcp"), true).unwrap(), "mcp");
        assert_eq!(
            granted_scope(Some("openid"), true).unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn offline_access_is_left_out_for_a_client_that_gets_no_refresh_token() {
        assert_eq!(
            granted_scope(Some("mcp offline_access"), false).unwrap(),
            "mcp"
        );
        assert_eq!(granted_scope(Some("offline_access"), false).unwrap(), "mcp");
        // Still refused when unknown, whatever else is left out.
        assert_eq!(
            granted_scope(Some("offline_access admin"), false)
                .unwrap_err()
                .code,
            ErrorCode::InvalidScope
        );
    }
}

//! `identity.source = "dev"`: a sign-in form that trusts the email typed
//! into it. Served to loopback clients only (the settings also refuse a
//! dev config that listens elsewhere).

use http::header::HeaderMap;
use http::StatusCode;

use super::super::error::{ErrorCode, OAuthError};
use super::super::params::{is_own_form_field, Params, DEV_EMAIL_FIELD};
use crate::http::page::{self, escape_html, hidden_inputs};
use crate::http::response::Resp;
use crate::http::Ctx;
use crate::identity::Evidence;

/// The person's evidence: the email the form posted (`posted`), `None`
/// when the form must be shown first, or why the form cannot be used.
pub(super) fn evidence<'a>(
    ctx: &Ctx<'_>,
    headers: &HeaderMap,
    posted: Option<&'a str>,
) -> Result<Option<Evidence<'a>>, OAuthError> {
    if !ctx.peer.ip().is_loopback() {
        return Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the dev sign-in form answers loopback clients only",
        ));
    }
    // Only the form's own POST signs in: a link or another site's form
    // could otherwise sign the browser in as anyone and, with no consent
    // to ask, send a code on (login CSRF).
    match posted {
        Some(_) if !page::posted_from(headers, &ctx.host.site.issuer) => Err(OAuthError::new(
            ErrorCode::AccessDenied,
            "the dev sign-in form must be sent from its own page",
        )),
        Some(email) => Ok(Some(Evidence::DevForm { email })),
        None => Ok(None),
    }
}

/// The form: who is asking, and an email field, posting the authorize
/// request back with the email added. Without consent to ask, its answer
/// is a redirect to the client, which the page's CSP allows.
///
/// `client`: what to call the client; `redirect_uri`: where the answer may
/// go (for the page's CSP), when known.
pub(super) fn render(
    ctx: &Ctx<'_>,
    params: &Params<'_>,
    client: &str,
    redirect_uri: Option<&str>,
) -> Resp {
    let hidden = hidden_inputs(params.pairs().filter(|(k, _)| !is_own_form_field(k)));
    let domains = &ctx.settings.identity.allowed_domains;
    let domain = domains.first().cloned().unwrap_or_default();
    let allowed = domains
        .iter()
        .map(|d| format!("<code>@{}</code>", escape_html(d)))
        .collect::<Vec<_>>()
        .join(", ");
    let body = format!(
        "<h1>Dev sign-in</h1>\
         <p><strong>{}</strong> wants to use your MCP tools on <code>{}</code>.</p>\
         <p>This development server trusts the email you type. In production oauth2-proxy signs you in with Google.</p>\
         <p>Addresses allowed to sign in here: {allowed}.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <label>Email<br><input type=\"email\" name=\"{DEV_EMAIL_FIELD}\" value=\"dev@{}\" required></label>\
         <br><button type=\"submit\">Sign in</button></form>",
        escape_html(client),
        escape_html(&ctx.host.site.issuer),
        escape_html(&domain),
    );
    page::render(StatusCode::OK, "mcpgate dev sign-in", &body, redirect_uri)
}

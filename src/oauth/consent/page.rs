//! The consent page: who is asking, as whom, and where the answer goes.

use http::StatusCode;

use super::Question;
use crate::http::page::{self, escape_html, hidden_inputs};
use crate::http::response::Resp;
use crate::oauth::client::Client;
use crate::oauth::params::{CONSENT_FIELD, CSRF_FIELD};

/// Characters of a client's self-chosen name shown on the page.
const MAX_NAME_CHARS: usize = 80;

/// Text for the person: where the answer goes. The host is what a person
/// can judge; a loopback or app scheme is said to be on this computer.
pub(super) fn redirect_label(redirect_uri: &str) -> String {
    let Ok(u) = url::Url::parse(redirect_uri) else {
        return redirect_uri.chars().take(100).collect();
    };
    match u.scheme() {
        "http" | "https" => {
            let host = u.host_str().unwrap_or("");
            let host = match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.to_owned(),
            };
            if crate::settings::redirect::is_loopback(redirect_uri) {
                format!("{host} (a program on this computer)")
            } else {
                host
            }
        }
        s => format!("{s}: (an app on this computer)"),
    }
}

/// A client's self-chosen name, made safe to show: no control or
/// bidirectional-override characters (they can make text read backwards),
/// and not too long. Still to be HTML-escaped.
fn display_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
        .collect();
    let clean = clean.trim();
    if clean.chars().count() > MAX_NAME_CHARS {
        let mut s: String = clean.chars().take(MAX_NAME_CHARS).collect();
        s.push('…');
        s
    } else {
        clean.to_owned()
    }
}

/// HTML naming the client. A registered client's name is whatever it
/// registered, so it is labelled as a claim. A client metadata document's
/// client is named first by the host its client_id URL is on: the one
/// thing about it that its author cannot choose (draft-ietf-oauth-client-
/// id-metadata-document §6: show the client_id's host prominently).
pub(super) fn client_html(client: &Client<'_>) -> String {
    match client {
        Client::Document { url, .. } => {
            let host = format!(
                "<strong class=\"origin\">{}</strong>",
                escape_html(url.host())
            );
            match client.name().map(display_name) {
                Some(n) if !n.is_empty() => {
                    format!("An app from {host} that calls itself “{}”", escape_html(&n))
                }
                _ => format!("An app from {host}"),
            }
        }
        Client::Registered { .. } => match client.name().map(display_name) {
            Some(n) if !n.is_empty() => {
                format!(
                    "An app that calls itself <strong>“{}”</strong>",
                    escape_html(&n)
                )
            }
            _ => "An unnamed client".to_owned(),
        },
        Client::Configured(c) => format!(
            "<strong>{}</strong> (set up by your administrators)",
            escape_html(&display_name(
                c.client_name.as_deref().unwrap_or(&c.client_id)
            ))
        ),
    }
}

/// The consent page for `q`, whose form carries the CSRF token `csrf`:
/// 200, HTML, no script, not frameable, not cached. The authorize request
/// is re-posted as hidden fields (the dev sign-in's email among them).
pub(super) fn render(q: &Question<'_>, csrf: &str) -> Resp {
    let hidden = hidden_inputs(
        q.params
            .pairs()
            .filter(|(k, _)| *k != CONSENT_FIELD && *k != CSRF_FIELD)
            .chain(std::iter::once((CSRF_FIELD, csrf))),
    );
    let target = escape_html(&redirect_label(q.redirect_uri));
    // The answer goes to the person's own computer: nothing ties the
    // program listening there to the client_id's host (draft-ietf-oauth-
    // client-id-metadata-document, security considerations on loopback
    // redirect URIs). Decided by this request's redirect_uri, not by the
    // document's list: a document that also lists an https callback must
    // not silence the warning for a loopback one.
    let loopback_warning = match q.client {
        Client::Document { .. } if crate::settings::redirect::is_loopback(q.redirect_uri) => {
            "<p class=\"warning\"><strong>Warning:</strong> this app receives its answer on \
             this computer (a loopback address), so any program running here could be \
             answering in its name. Allow only if you just started it yourself.</p>"
        }
        _ => "",
    };
    let offline = if q.stays_connected {
        "<li>stay connected without asking you again, until the access expires or is revoked</li>"
    } else {
        ""
    };
    let body = format!(
        "<h1>Allow access?</h1>\
         <p class=\"who\">{client} wants to use your MCP tools on <code>{issuer}</code>.</p>\
         <p>Signed in as <strong>{email}</strong>. If you allow, it will be able to:</p>\
         <ul><li>call the tools available to you, as you</li>{offline}</ul>\
         <p>Your answer is sent to <strong>{target}</strong>.</p>{loopback_warning}\
         <p class=\"note\">Allow only if you just asked an app to connect. The name above is \
         chosen by the app itself and proves nothing; where your answer is sent is what counts.</p>\
         <form class=\"choice\" method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <button type=\"submit\" name=\"{CONSENT_FIELD}\" value=\"deny\">Deny</button>\
         <button type=\"submit\" name=\"{CONSENT_FIELD}\" value=\"allow\" class=\"allow\">Allow</button>\
         </form>",
        client = client_html(q.client),
        issuer = escape_html(&q.site.issuer),
        email = escape_html(q.email),
    );
    page::render(StatusCode::OK, "Allow access?", &body, Some(q.redirect_uri))
}

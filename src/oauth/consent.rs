//! The consent page of `/oauth/authorize`: before a code goes to a client
//! that registered itself, the signed-in person sees who is asking (the
//! name the client gave itself, and the host the answer goes to) and
//! answers Allow or Deny.
//!
//! Stateless like everything else here:
//!
//! - The page posts the whole authorize request back to `/oauth/authorize`
//!   (the same path, so behind oauth2-proxy the POST carries the identity
//!   headers too) with `consent=allow|deny` and a sealed CSRF token
//!   ([`ConsentRequest`]) bound to the client, the redirect URI, a SHA-256
//!   of the canonical authorize parameters, the host and the person. The
//!   POST is validated exactly like the GET, then the token must match.
//! - An Allow is remembered per client in a sealed, `HttpOnly` cookie
//!   ([`ConsentRemembered`]) bound to the client and the person, for
//!   `identity.consent_ttl`, except when the answer goes to a loopback
//!   redirect URI ([`may_remember`]).
//!
//! The page runs no script. Its CSP adds the redirect URI's origin to
//! `form-action`, because browsers apply `form-action` to the redirect
//! that answers the form too.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::authorize::DEV_EMAIL_FIELD;
use super::client::Client;
use super::params::Params;
use crate::config::ConsentPolicy;
use crate::http::response::{self, escape_html, Resp};
use crate::keys::KeyRing;
use crate::tokens::grants::{ConsentRemembered, ConsentRequest};
use crate::tokens::sealed::{self, OpenError};

/// The form field with the person's answer: `allow` or `deny`.
pub const CONSENT_FIELD: &str = "consent";
/// The form field with the sealed [`ConsentRequest`].
pub const CSRF_FIELD: &str = "csrf";
/// How long a consent page may be left open before its answer is refused.
pub const CSRF_TTL_SECS: u64 = 600;
/// Remember-cookies are named this plus 16 characters of the client binding.
pub const COOKIE_PREFIX: &str = "mcpgate_consent_";

/// `Cookie` header bytes looked at, all headers together; the rest is
/// ignored (an oversized header only costs a consent page).
const MAX_COOKIE_BYTES: usize = 16 * 1024;
/// Cookies of the right name opened at most (each is a decryption).
const MAX_COOKIE_CANDIDATES: usize = 4;
/// Characters of a client's self-chosen name shown on the page.
const MAX_NAME_CHARS: usize = 80;

/// Parameters that belong to mcpgate's own forms, never to the client's
/// request: left out of the request hash, and out of re-posted fields.
pub fn is_form_field(name: &str) -> bool {
    matches!(name, CONSENT_FIELD | CSRF_FIELD | DEV_EMAIL_FIELD)
}

/// Whether `client` must be asked under `policy`.
pub fn required(policy: ConsentPolicy, client: &Client<'_>) -> bool {
    match policy {
        ConsentPolicy::Never => false,
        ConsentPolicy::Always => true,
        ConsentPolicy::DynamicClients => matches!(client, Client::Registered { .. }),
    }
}

/// The person's answer on the consent form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Allow,
    Deny,
}

impl Answer {
    pub fn parse(s: &str) -> Option<Answer> {
        match s {
            "allow" => Some(Answer::Allow),
            "deny" => Some(Answer::Deny),
            _ => None,
        }
    }
}

/// Why a consent answer was refused. Logged, never shown in detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("no csrf token")]
    Missing,
    #[error("csrf token does not open: {0}")]
    Open(OpenError),
    #[error("csrf token belongs to another {0}")]
    Mismatch(&'static str),
}

/// What a consent answer is bound to: one authorize request, on one host,
/// by one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding<'a> {
    /// `tokens::grants::client_binding` of the client.
    pub client: &'a str,
    pub redirect_uri: &'a str,
    /// [`request_hash`] of the request.
    pub request: String,
    pub email: &'a str,
}

impl<'a> Binding<'a> {
    pub fn new(
        issuer: &str,
        client: &'a str,
        redirect_uri: &'a str,
        params: &Params<'_>,
        email: &'a str,
    ) -> Binding<'a> {
        Binding {
            client,
            redirect_uri,
            request: request_hash(issuer, params),
            email,
        }
    }

    /// The sealed CSRF token for the consent page.
    pub fn csrf_token(&self, ring: &KeyRing, now: u64) -> String {
        let value = ConsentRequest {
            client: self.client.to_owned(),
            redirect_uri: self.redirect_uri.to_owned(),
            req: self.request.clone(),
            email: self.email.to_owned(),
            exp: now + CSRF_TTL_SECS,
        };
        sealed::seal(ring, &value, now).into_string()
    }

    /// Whether `token` was issued for exactly this request and person.
    pub fn check(&self, ring: &KeyRing, token: Option<&str>, now: u64) -> Result<(), CsrfError> {
        let token = token.ok_or(CsrfError::Missing)?;
        let t = sealed::open::<ConsentRequest>(ring, token, now).map_err(CsrfError::Open)?;
        if t.client != self.client {
            return Err(CsrfError::Mismatch("client"));
        }
        if t.redirect_uri != self.redirect_uri {
            return Err(CsrfError::Mismatch("redirect_uri"));
        }
        if t.req != self.request {
            return Err(CsrfError::Mismatch("authorize request"));
        }
        if t.email != self.email {
            return Err(CsrfError::Mismatch("person"));
        }
        Ok(())
    }
}

/// SHA-256 (base64url) of the issuer and the authorize parameters, minus
/// mcpgate's own form fields, sorted by name and value (a name repeats only
/// for `resource`: other repeats never reach the consent page).
pub fn request_hash(issuer: &str, params: &Params<'_>) -> String {
    let mut pairs: Vec<(&str, &str)> = params.pairs().filter(|(k, _)| !is_form_field(k)).collect();
    pairs.sort_unstable();
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    // An issuer is a URL without whitespace: the newline separates.
    let input = format!("{issuer}\n{}", ser.finish());
    URL_SAFE_NO_PAD.encode(ring::digest::digest(
        &ring::digest::SHA256,
        input.as_bytes(),
    ))
}

/// Whether an Allow for an answer sent to `redirect_uri` may be
/// remembered. RFC 8252 §8.6: unless the client's identity can be assured,
/// a request is handled as if nothing had been approved before. A loopback
/// redirect URI (any port, RFC 8252 §7.3) proves nothing: any program on
/// the machine can listen there with the same public client_id and drive
/// the browser, where a remembered Allow would hand it a code with no one
/// looking. An `https` redirect URI is the client's own.
pub fn may_remember(redirect_uri: &str) -> bool {
    !crate::settings::redirect::is_loopback(redirect_uri)
}

/// The name of the remember-cookie of the client with `client_binding`.
pub fn cookie_name(client_binding: &str) -> String {
    let short: String = client_binding.chars().take(16).collect();
    format!("{COOKIE_PREFIX}{short}")
}

/// The `Set-Cookie` value remembering an Allow, or `None` when remembering
/// is off (`consent_ttl = "0s"`). `Secure` unless the issuer is `http://`
/// (a loopback dev server, where a browser would drop a Secure cookie).
pub fn remember_cookie(
    ring: &KeyRing,
    client_binding: &str,
    email: &str,
    ttl: Duration,
    issuer: &str,
    now: u64,
) -> Option<HeaderValue> {
    let ttl = ttl.as_secs();
    if ttl == 0 {
        return None;
    }
    let value = ConsentRemembered {
        client: client_binding.to_owned(),
        email: email.to_owned(),
        iat: now,
        exp: now + ttl,
    };
    let sealed = sealed::seal(ring, &value, now);
    HeaderValue::from_str(&format!(
        "{}={}; Max-Age={ttl}; Path=/oauth/; HttpOnly; SameSite=Lax{}",
        cookie_name(client_binding),
        sealed.as_str(),
        secure_attribute(issuer)
    ))
    .ok()
}

/// Whether a remember-cookie in `headers` says this person already allowed
/// this client. A cookie that does not open or names someone else is
/// ignored.
pub fn remembered(
    ring: &KeyRing,
    headers: &HeaderMap,
    client_binding: &str,
    email: &str,
    now: u64,
) -> bool {
    let name = cookie_name(client_binding);
    cookie_values(headers, &name)
        .into_iter()
        .take(MAX_COOKIE_CANDIDATES)
        .any(|v| {
            matches!(
                sealed::open::<ConsentRemembered>(ring, v, now),
                Ok(c) if c.client == client_binding && c.email == email
            )
        })
}

/// The values of every cookie called `name`, from every `Cookie` header
/// (RFC 6265 §5.4: `a=1; b=2`; HTTP/2 may split them over several
/// headers), looking at no more than [`MAX_COOKIE_BYTES`] in all. Values
/// that are not visible ASCII are skipped.
pub fn cookie_values<'h>(headers: &'h HeaderMap, name: &str) -> Vec<&'h str> {
    cookies(headers)
        .filter(|(n, _)| *n == name)
        .map(|(_, v)| v)
        .collect()
}

/// Every `name=value` cookie pair in `headers`, within
/// [`MAX_COOKIE_BYTES`] in all, values unquoted; pairs whose name or value
/// is not visible ASCII are skipped.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    let mut budget = MAX_COOKIE_BYTES;
    headers
        .get_all(header::COOKIE)
        .into_iter()
        .map_while(move |h| {
            let bytes = h.as_bytes();
            if budget == 0 {
                return None;
            }
            let bytes = &bytes[..bytes.len().min(budget)];
            budget -= bytes.len();
            Some(bytes)
        })
        .flat_map(|bytes| bytes.split(|b| *b == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            let (n, v) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            let visible = |s: &[u8]| !s.is_empty() && s.iter().all(|b| (0x21..=0x7e).contains(b));
            if !visible(n) || !visible(v) {
                return None;
            }
            Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?))
        })
}

/// Remember-cookies one browser keeps at most. Each is ~300 bytes on every
/// `/oauth/` request: without a bound, a person who allowed many cloud
/// clients would send a `Cookie` header past the server's (or a proxy's)
/// header limit and be refused every sign-in until the cookies expired.
pub const MAX_REMEMBERED: usize = 16;

/// `Set-Cookie` values expiring this browser's oldest remember-cookies, so
/// that with the one named `keeping` (being set) at most
/// [`MAX_REMEMBERED`] remain. Cookies that no longer open (expired, from a
/// retired key, tampered) go first, then the oldest Allows.
pub fn expire_oldest(
    ring: &KeyRing,
    headers: &HeaderMap,
    keeping: &str,
    issuer: &str,
    now: u64,
) -> Vec<HeaderValue> {
    let mut others: Vec<(u64, &str)> = cookies(headers)
        .filter(|(n, _)| n.starts_with(COOKIE_PREFIX) && *n != keeping)
        .map(|(n, v)| {
            let iat = sealed::open::<ConsentRemembered>(ring, v, now).map_or(0, |c| c.iat);
            (iat, n)
        })
        .collect();
    others.sort_unstable();
    let surplus = (others.len() + 1).saturating_sub(MAX_REMEMBERED);
    others
        .iter()
        .take(surplus)
        .filter_map(|(_, name)| {
            HeaderValue::from_str(&format!(
                "{name}=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax{}",
                secure_attribute(issuer)
            ))
            .ok()
        })
        .collect()
}

/// `; Secure` unless the issuer is `http://` (a loopback dev server, where
/// a browser would drop a Secure cookie).
fn secure_attribute(issuer: &str) -> &'static str {
    if issuer.starts_with("http://") {
        ""
    } else {
        "; Secure"
    }
}

/// Whether a form POST was sent from a page of `issuer` (login CSRF, RFC
/// 6749 §10.12): by `Sec-Fetch-Site` when the browser sends it, else by
/// `Origin` (every current browser sends one on a form POST). A request
/// with neither comes from no browser form, so no other site can forge it.
pub fn posted_from(headers: &HeaderMap, issuer: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(o) => o.as_bytes().eq_ignore_ascii_case(issuer.as_bytes()),
    }
}

/// A 302 turned into a 303: the answer to a form POST, which the browser
/// must follow with a GET.
pub fn see_other(mut r: Resp) -> Resp {
    if r.status() == StatusCode::FOUND {
        *r.status_mut() = StatusCode::SEE_OTHER;
    }
    r
}

/// The CSP source that lets a form on our page end in a redirect to
/// `redirect_uri`: its origin for http(s) (a scheme for an IPv6 literal,
/// which CSP host sources cannot spell), its scheme for a private-use
/// scheme such as `cursor:`.
pub fn form_action_source(redirect_uri: &str) -> Option<String> {
    let u = url::Url::parse(redirect_uri).ok()?;
    let scheme = u.scheme();
    match scheme {
        "http" | "https" => match u.host()? {
            url::Host::Ipv6(_) => Some(format!("{scheme}:")),
            _ => Some(u.origin().ascii_serialization()),
        },
        _ => Some(format!("{scheme}:")),
    }
}

/// `page` with its CSP's `form-action` widened to `redirect_uri`'s origin
/// (otherwise the same policy as every page: no scripts, no framing).
pub fn with_form_action(mut page: Resp, redirect_uri: &str) -> Resp {
    let Some(source) = form_action_source(redirect_uri) else {
        return page;
    };
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {source}; frame-ancestors 'none'"
    );
    match HeaderValue::from_str(&csp) {
        Ok(v) => {
            page.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, v);
        }
        Err(_) => tracing::warn!("consent: redirect origin does not fit a CSP header"),
    }
    page
}

/// Text for the person: where the answer goes. The host is what a person
/// can judge; a loopback or app scheme is said to be on this computer.
pub fn redirect_label(redirect_uri: &str) -> String {
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
/// registered, so it is labelled as a claim.
fn client_html(client: &Client<'_>) -> String {
    match client {
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

/// What the page shows and posts back.
pub struct Page<'a> {
    pub client: &'a Client<'a>,
    pub redirect_uri: &'a str,
    pub issuer: &'a str,
    pub email: &'a str,
    /// The client will get a refresh token: it can stay connected.
    pub stays_connected: bool,
    /// The authorize request, re-posted as hidden fields.
    pub params: &'a Params<'a>,
    pub csrf: &'a str,
}

/// The consent page: 200, HTML, no script, not frameable, not cached.
pub fn page(p: &Page<'_>) -> Resp {
    let hidden = response::hidden_inputs(
        p.params
            .pairs()
            .filter(|(k, _)| *k != CONSENT_FIELD && *k != CSRF_FIELD)
            .chain(std::iter::once((CSRF_FIELD, p.csrf))),
    );
    let target = escape_html(&redirect_label(p.redirect_uri));
    let offline = if p.stays_connected {
        "<li>stay connected without asking you again, until the access expires or is revoked</li>"
    } else {
        ""
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>Allow access?</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222;line-height:1.45}}\
         code{{background:#f2f2f2;padding:.1rem .3rem}}.who{{font-size:1.1rem}}\
         .note{{color:#555;font-size:.9rem}}form{{margin-top:1.5rem;display:flex;gap:1rem}}\
         button{{padding:.6rem 1.4rem;font-size:1rem;border-radius:.3rem;border:1px solid #888;background:#fff;cursor:pointer}}\
         button.allow{{background:#1a56db;border-color:#1a56db;color:#fff}}</style>\
         </head><body><h1>Allow access?</h1>\
         <p class=\"who\">{client} wants to use your MCP tools on <code>{issuer}</code>.</p>\
         <p>Signed in as <strong>{email}</strong>. If you allow, it will be able to:</p>\
         <ul><li>call the tools available to you, as you</li>{offline}</ul>\
         <p>Your answer is sent to <strong>{target}</strong>.</p>\
         <p class=\"note\">Allow only if you just asked an app to connect. The name above is \
         chosen by the app itself and proves nothing; where your answer is sent is what counts.</p>\
         <form method=\"post\" action=\"/oauth/authorize\">{hidden}\
         <button type=\"submit\" name=\"{CONSENT_FIELD}\" value=\"deny\">Deny</button>\
         <button type=\"submit\" name=\"{CONSENT_FIELD}\" value=\"allow\" class=\"allow\">Allow</button>\
         </form></body></html>",
        client = client_html(p.client),
        issuer = escape_html(p.issuer),
        email = escape_html(p.email),
    );
    with_form_action(response::html(StatusCode::OK, body), p.redirect_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::file::generate_set;
    use crate::tokens::grants::ClientRegistration;

    fn ring() -> KeyRing {
        KeyRing::build(generate_set(0, "t"), 1, 100).unwrap()
    }

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_in_any_header_and_position() {
        let h = headers(&[
            "a=1; mcpgate_consent_x=v1;b=2",
            "c=3",
            " mcpgate_consent_x = \"v2\" ",
        ]);
        assert_eq!(cookie_values(&h, "mcpgate_consent_x"), vec!["v1", "v2"]);
        assert!(cookie_values(&h, "mcpgate_consent_").is_empty());
        let h = headers(&["mcpgate_consent_x=; junk; =x; mcpgate_consent_x=a b"]);
        assert!(cookie_values(&h, "mcpgate_consent_x").is_empty());
        let big = format!(
            "pad={}; mcpgate_consent_x=late",
            "p".repeat(MAX_COOKIE_BYTES)
        );
        assert!(cookie_values(&headers(&[&big]), "mcpgate_consent_x").is_empty());
    }

    #[test]
    fn the_oldest_remember_cookies_are_expired_beyond_the_bound() {
        let ring = ring();
        let pair = |binding: &str, iat: u64| {
            let v = remember_cookie(
                &ring,
                binding,
                "alice@example.com",
                Duration::from_secs(10_000),
                "https://mcp.example.com",
                iat,
            )
            .unwrap();
            v.to_str().unwrap().split(';').next().unwrap().to_owned()
        };
        // Up to the bound, with the one being set, nothing goes.
        let some: Vec<String> = (0..MAX_REMEMBERED - 1)
            .map(|i| pair(&format!("client{i:02}AAAAAAAAAAAAAA"), 100 + i as u64))
            .collect();
        let refs: Vec<&str> = some.iter().map(String::as_str).collect();
        let h = headers(&[&refs.join("; ")]);
        assert!(expire_oldest(&ring, &h, "mcpgate_consent_new", "https://x", 200).is_empty());
        // Three more and a junk one: the junk and the three oldest go.
        let mut more = some.clone();
        for i in MAX_REMEMBERED - 1..MAX_REMEMBERED + 2 {
            more.push(pair(&format!("client{i:02}AAAAAAAAAAAAAA"), 100 + i as u64));
        }
        more.push("mcpgate_consent_junkjunkjunkjunk=garbage".into());
        let refs: Vec<&str> = more.iter().map(String::as_str).collect();
        // Over two headers, with other cookies between.
        let (a, b) = refs.split_at(7);
        let h = headers(&[&a.join("; "), &format!("theme=dark; {}", b.join("; "))]);
        let expired: Vec<String> =
            expire_oldest(&ring, &h, "mcpgate_consent_new", "https://x", 200)
                .iter()
                .map(|v| v.to_str().unwrap().to_owned())
                .collect();
        assert_eq!(
            expired,
            [
                "mcpgate_consent_junkjunkjunkjunk=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
                "mcpgate_consent_client00AAAAAAAA=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
                "mcpgate_consent_client01AAAAAAAA=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
                "mcpgate_consent_client02AAAAAAAA=; Max-Age=0; Path=/oauth/; HttpOnly; SameSite=Lax; Secure",
            ]
        );
        // The cookie being set is never among them, and http keeps no Secure.
        let expired = expire_oldest(
            &ring,
            &h,
            "mcpgate_consent_client00AAAAAAAA",
            "http://x",
            200,
        );
        assert_eq!(expired.len(), 3);
        assert!(expired.iter().all(|v| {
            let v = v.to_str().unwrap();
            !v.starts_with("mcpgate_consent_client00") && !v.contains("Secure")
        }));
    }

    #[test]
    fn remembered_consent_is_per_client_and_person() {
        let ring = ring();
        let v = remember_cookie(
            &ring,
            "clientbindingAAAAAAAAA",
            "alice@example.com",
            Duration::from_secs(60),
            "https://mcp.example.com",
            100,
        )
        .unwrap();
        let s = v.to_str().unwrap();
        assert!(s.starts_with("mcpgate_consent_clientbindingAAA="), "{s}");
        assert!(s.ends_with("; Max-Age=60; Path=/oauth/; HttpOnly; SameSite=Lax; Secure"));
        let pair = s.split(';').next().unwrap();
        let h = headers(&["other=1", pair]);
        assert!(remembered(
            &ring,
            &h,
            "clientbindingAAAAAAAAA",
            "alice@example.com",
            120
        ));
        assert!(!remembered(
            &ring,
            &h,
            "clientbindingAAAAAAAAA",
            "bob@example.com",
            120
        ));
        assert!(!remembered(
            &ring,
            &h,
            "clientbindingAAAAAAAAA",
            "alice@example.com",
            160
        ));
        // Same 16-character prefix, another client: the payload decides.
        assert!(!remembered(
            &ring,
            &h,
            "clientbindingAAAAAAAAB",
            "alice@example.com",
            120
        ));
        let dev = remember_cookie(
            &ring,
            "c",
            "a@b",
            Duration::from_secs(1),
            "http://127.0.0.1:8080",
            0,
        )
        .unwrap();
        assert!(!dev.to_str().unwrap().contains("Secure"));
        assert!(remember_cookie(&ring, "c", "a@b", Duration::ZERO, "https://x", 0).is_none());
    }

    #[test]
    fn csrf_tokens_bind_request_host_and_person() {
        let ring = ring();
        let p = Params::parse(b"client_id=c&state=s1&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb")
            .unwrap();
        let b = Binding::new(
            "https://a",
            "cb",
            "http://127.0.0.1:9/cb",
            &p,
            "alice@example.com",
        );
        let t = b.csrf_token(&ring, 100);
        assert_eq!(b.check(&ring, Some(&t), 200), Ok(()));
        // Our own form fields do not change the request.
        let with_fields = Params::parse(
            b"state=s1&consent=allow&csrf=x&client_id=c&mcpgate_dev_email=a&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb",
        )
        .unwrap();
        assert_eq!(request_hash("https://a", &with_fields), b.request);
        let other_state =
            Params::parse(b"client_id=c&state=s2&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb")
                .unwrap();
        let b2 = Binding::new(
            "https://a",
            "cb",
            "http://127.0.0.1:9/cb",
            &other_state,
            "alice@example.com",
        );
        assert_eq!(
            b2.check(&ring, Some(&t), 200),
            Err(CsrfError::Mismatch("authorize request"))
        );
        let other_host = Binding::new(
            "https://b",
            "cb",
            "http://127.0.0.1:9/cb",
            &p,
            "alice@example.com",
        );
        assert!(other_host.check(&ring, Some(&t), 200).is_err());
        let bob = Binding::new(
            "https://a",
            "cb",
            "http://127.0.0.1:9/cb",
            &p,
            "bob@example.com",
        );
        assert_eq!(
            bob.check(&ring, Some(&t), 200),
            Err(CsrfError::Mismatch("person"))
        );
        assert_eq!(b.check(&ring, None, 200), Err(CsrfError::Missing));
        assert_eq!(
            b.check(&ring, Some(&t), 100 + CSRF_TTL_SECS),
            Err(CsrfError::Open(OpenError::Expired))
        );
        // A remember-cookie is not a CSRF token.
        let cookie = sealed::seal(
            &ring,
            &ConsentRemembered {
                client: "cb".into(),
                email: "alice@example.com".into(),
                iat: 100,
                exp: 900,
            },
            100,
        );
        assert_eq!(
            b.check(&ring, Some(cookie.as_str()), 200),
            Err(CsrfError::Open(OpenError::WrongKind))
        );
    }

    #[test]
    fn form_action_names_the_redirect_origin() {
        assert_eq!(
            form_action_source("http://127.0.0.1:33418/callback").as_deref(),
            Some("http://127.0.0.1:33418")
        );
        assert_eq!(
            form_action_source("https://claude.ai/api/mcp/auth_callback?x=1").as_deref(),
            Some("https://claude.ai")
        );
        assert_eq!(
            form_action_source("cursor://anysphere.cursor-mcp/oauth/callback").as_deref(),
            Some("cursor:")
        );
        assert_eq!(
            form_action_source("http://[::1]:9/cb").as_deref(),
            Some("http:")
        );
        assert_eq!(
            redirect_label("https://claude.ai/api/mcp/auth_callback"),
            "claude.ai"
        );
        assert_eq!(
            redirect_label("http://localhost:4000/cb"),
            "localhost:4000 (a program on this computer)"
        );
    }

    #[test]
    fn client_names_are_labelled_cleaned_and_escaped() {
        let reg = |name: Option<&str>| Client::Registered {
            client_id: "x.y",
            registration: ClientRegistration {
                redirect_uris: vec![],
                refresh: false,
                client_name: name.map(str::to_owned),
                client_uri: None,
                scope: None,
                application_type: None,
                software_id: None,
                software_version: None,
                issued_at: 0,
            },
        };
        assert_eq!(client_html(&reg(None)), "An unnamed client");
        assert_eq!(client_html(&reg(Some("\u{202e} "))), "An unnamed client");
        assert_eq!(
            client_html(&reg(Some("<b>Evil\u{202e}</b>"))),
            "An app that calls itself <strong>“&lt;b&gt;Evil&lt;/b&gt;”</strong>"
        );
    }
}

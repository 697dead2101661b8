//! HTML pages: the sign-in error page, the consent page and the dev
//! sign-in form share one document shell, one stylesheet and one Content
//! Security Policy. Pages run no script, cannot be framed (clickjacking on
//! sign-in and consent) and are never cached.

use http::header::{self, HeaderMap, HeaderValue};
use http::StatusCode;

use super::response::{self, Resp, NO_STORE};

/// Every page's stylesheet. Inline (`style-src 'unsafe-inline'`): a page
/// loads nothing else. Inputs are sized with their padding so that they
/// fit a phone-width screen.
const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222;line-height:1.45}\
code{background:#f2f2f2;padding:.1rem .3rem;overflow-wrap:anywhere}.who{font-size:1.1rem}.note{color:#555;font-size:.9rem}\
form.choice{margin-top:1.5rem;display:flex;gap:1rem}\
input[type=email]{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}\
button{margin-top:1rem;padding:.6rem 1.4rem;font-size:1rem;border-radius:.3rem;border:1px solid #888;background:#fff;cursor:pointer}\
button.allow{background:#1a56db;border-color:#1a56db;color:#fff}";

/// The policy of every page: nothing loads, nothing frames it, and its
/// forms post to this server only, or (see [`render`]) also to the one
/// place the form's answer is redirected.
fn csp(form_action: Option<&str>) -> Option<HeaderValue> {
    let extra = form_action.map(|s| format!(" {s}")).unwrap_or_default();
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'{extra}; frame-ancestors 'none'"
    ))
    .ok()
}

/// A page titled `title` whose body is `body_html` (already escaped).
/// `redirects_to`: the redirect URI the page's form ends in, when it does
/// (browsers apply `form-action` to the redirect that answers a form too).
pub(crate) fn render(
    status: StatusCode,
    title: &str,
    body_html: &str,
    redirects_to: Option<&str>,
) -> Resp {
    let doc = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body>{body_html}</body></html>",
        escape_html(title)
    );
    let mut r = response::bytes(status, "text/html; charset=utf-8", doc);
    let source = redirects_to.and_then(form_action_source);
    let policy = match csp(source.as_deref()) {
        Some(p) => p,
        None => {
            tracing::warn!("page: the redirect origin does not fit a CSP header");
            csp(None).expect("a static policy is a header value")
        }
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, policy);
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, NO_STORE);
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// The CSP source that lets a form on our page end in a redirect to
/// `redirect_uri`: its origin for http(s) (a scheme for an IPv6 literal,
/// which CSP host sources cannot spell), its scheme for a private-use
/// scheme such as `cursor:`.
pub(crate) fn form_action_source(redirect_uri: &str) -> Option<String> {
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

/// `<input type="hidden">` for each pair: a form that re-posts a request.
pub(crate) fn hidden_inputs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    pairs
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape_html(k),
                escape_html(v)
            )
        })
        .collect()
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Whether a form POST was sent from a page of `issuer` (login CSRF, RFC
/// 6749 §10.12): by `Sec-Fetch-Site` when the browser sends it, else by
/// `Origin` (every current browser sends one on a form POST). A request
/// with neither comes from no browser form, so no other site can forge it.
pub(crate) fn posted_from(headers: &HeaderMap, issuer: &str) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    match headers.get(header::ORIGIN) {
        None => true,
        Some(o) => o.as_bytes().eq_ignore_ascii_case(issuer.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping_covers_attribute_quotes() {
        assert_eq!(
            escape_html(r#"<a href="x" onclick='y'>&"#),
            "&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;"
        );
    }

    #[test]
    fn a_page_widens_form_action_to_where_its_form_redirects() {
        let csp = |r: &Resp| {
            r.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .to_owned()
        };
        let plain = render(StatusCode::OK, "t", "", None);
        assert!(csp(&plain).contains("form-action 'self';"));
        let cb = render(StatusCode::OK, "t", "", Some("https://claude.ai/api/cb"));
        assert!(csp(&cb).contains("form-action 'self' https://claude.ai;"));
        let v6 = render(StatusCode::OK, "t", "", Some("http://[::1]:9/cb"));
        assert!(csp(&v6).contains("form-action 'self' http:;"));
    }
}

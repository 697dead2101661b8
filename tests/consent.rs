//! The consent page of `/oauth/authorize`, against the real binary over
//! real HTTP: who sees it (policy), what it shows and how it is protected,
//! what Allow and Deny answer, the remember-cookie, and every way a forged
//! or mismatched answer is refused without a code.

mod common;

use std::path::Path;

use common::*;

const BOB: &str = "bob@example.com";
const CB: &str = "http://127.0.0.1:33418/callback";
/// A client name that tries to be HTML.
const EVIL_NAME: &str = "<script>alert(1)</script> \"Trusted\" & Co";

/// The standard harness config with `consent = <policy>` in `[identity]`
/// (whether or not the standard one already sets a policy).
fn config_with_consent(keys: &Path, policy: &str) -> String {
    let standard = config(keys, "");
    let mut lines: Vec<String> = standard
        .lines()
        .filter(|l| !l.trim_start().starts_with("consent"))
        .map(str::to_owned)
        .collect();
    let at = lines
        .iter()
        .position(|l| l.trim() == "[identity]")
        .expect("an [identity] block");
    lines.insert(at + 1, format!("consent = \"{policy}\""));
    lines.join("\n") + "\n"
}

fn start(policy: &str) -> Server {
    Server::start_custom(|keys| config_with_consent(keys, policy))
}

/// Form fields or query parameters, in order.
type Form = Vec<(String, String)>;

impl Answer {
    fn location(&self) -> &str {
        self.header("location").expect("a Location header")
    }

    /// No code anywhere: not in a redirect, not in the body.
    fn no_code(&self, case: &str) {
        if let Some(loc) = self.header("location") {
            assert!(query_param(loc, "code").is_none(), "{case}: code in {loc}");
        }
        assert!(!self.text.contains("code="), "{case}: {}", self.text);
        assert!(self.header("set-cookie").is_none(), "{case}: cookie set");
    }

    /// The hidden fields of the consent form, HTML-unescaped.
    fn form_fields(&self) -> Vec<(String, String)> {
        hidden_fields(&self.text)
    }
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<input type=\"hidden\" name=\"") {
        rest = &rest[i + "<input type=\"hidden\" name=\"".len()..];
        let (name, after) = rest.split_once("\" value=\"").unwrap();
        let (value, after) = after.split_once("\">").unwrap();
        out.push((unescape(name), unescape(value)));
        rest = after;
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// `fields` with `name` set to `value` (added, replaced, or removed on `None`).
fn with(fields: &[(String, String)], name: &str, value: Option<&str>) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = fields.iter().filter(|(k, _)| k != name).cloned().collect();
    if let Some(v) = value {
        f.push((name.to_owned(), v.to_owned()));
    }
    f
}

fn authorize_params(client_id: &str, redirect_uri: &str, state: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", &challenge(VERIFIER)),
        ("code_challenge_method", "S256"),
        ("state", state),
        ("scope", "mcp offline_access"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `GET /oauth/authorize` as oauth2-proxy forwards it, with `cookie`.
async fn get_authorize(
    s: &Server,
    host: &str,
    params: &[(String, String)],
    email: &str,
    cookie: Option<&str>,
) -> Answer {
    let mut req = s
        .get(host, "/oauth/authorize")
        .query(params)
        .header("x-forwarded-email", email)
        .header("accept", "text/html,application/xhtml+xml");
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    send(req).await
}

/// The consent form's POST, as oauth2-proxy forwards it.
async fn post_authorize(s: &Server, host: &str, form: &[(String, String)], email: &str) -> Answer {
    send(
        s.post(host, "/oauth/authorize")
            .header("x-forwarded-email", email)
            .form(form),
    )
    .await
}

/// Registers a public client on the internal host named `name`.
async fn register(s: &Server, name: Option<&str>) -> String {
    register_on(s, INTERNAL, CB, name).await
}

/// Registers a public client for `redirect_uri` on `host`, named `name`.
async fn register_on(s: &Server, host: &str, redirect_uri: &str, name: Option<&str>) -> String {
    let mut body = serde_json::json!({
        "redirect_uris": [redirect_uri],
        "grant_types": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_method": "none",
    });
    if let Some(n) = name {
        body["client_name"] = n.into();
    }
    let (status, body) = s.register(host, body).await;
    assert_eq!(status, 201, "{body}");
    body["client_id"].as_str().unwrap().to_owned()
}

/// Shows the consent page and checks it; returns its form fields.
async fn consent_page(
    s: &Server,
    host: &str,
    params: &[(String, String)],
    email: &str,
) -> Vec<(String, String)> {
    let a = get_authorize(s, host, params, email, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.no_code("consent page");
    let fields = a.form_fields();
    assert!(field(&fields, "csrf").is_some(), "{}", a.text);
    fields
}

fn assert_page_headers(a: &Answer, redirect_origin: &str) {
    assert!(a.header("content-type").unwrap().starts_with("text/html"));
    let csp = a.header("content-security-policy").unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "{csp}");
    assert!(
        csp.contains(&format!("form-action 'self' {redirect_origin};")),
        "{csp}"
    );
    assert_eq!(a.header("x-frame-options"), Some("DENY"));
    assert_eq!(a.header("cache-control"), Some("no-store"));
}

/// A 303 to `redirect_uri` with a code, the state and `iss`; returns the code.
fn code_of(a: &Answer, redirect_uri: &str, state: &str, host: &str) -> String {
    let loc = a.location();
    assert!(loc.starts_with(redirect_uri), "{loc}");
    assert_eq!(query_param(loc, "state").as_deref(), Some(state));
    assert_eq!(query_param(loc, "iss"), Some(format!("https://{host}")));
    assert!(query_param(loc, "error").is_none(), "{loc}");
    query_param(loc, "code").expect("a code")
}

/// The `name=value` part of a Set-Cookie header.
fn cookie_pair(set_cookie: &str) -> &str {
    set_cookie.split(';').next().unwrap().trim()
}

#[tokio::test]
async fn a_dynamic_client_asks_once_then_the_allow_is_remembered() {
    let s = start("dynamic-clients");
    // A cloud client: its https callback is its own, so an Allow may be
    // remembered (RFC 8252 §8.6; loopback clients are asked every time).
    let client_id = register_on(&s, PUBLIC, CLAUDE_CALLBACK, Some(EVIL_NAME)).await;
    let params = authorize_params(&client_id, CLAUDE_CALLBACK, "st-1");

    // The page: who asks (escaped, labelled as a claim), where the answer
    // goes, who is signed in; no code; no framing; no scripts.
    let page = get_authorize(&s, PUBLIC, &params, ALICE, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_page_headers(&page, "https://claude.ai");
    page.no_code("page");
    assert!(page.header("location").is_none());
    assert!(!page.text.contains("<script"), "{}", page.text);
    assert!(
        page.text.contains(
            "calls itself <strong>“&lt;script&gt;alert(1)&lt;/script&gt; &quot;Trusted&quot; &amp; Co”</strong>"
        ),
        "{}",
        page.text
    );
    assert!(page.text.contains("claude.ai"), "{}", page.text);
    assert!(page.text.contains("stay connected"), "{}", page.text);
    assert!(page.text.contains(ALICE));
    assert!(page
        .text
        .contains("method=\"post\" action=\"/oauth/authorize\""));
    assert!(page.text.contains("name=\"consent\" value=\"allow\""));
    assert!(page.text.contains("name=\"consent\" value=\"deny\""));
    let fields = page.form_fields();
    for (k, v) in &params {
        assert_eq!(field(&fields, k), Some(v.as_str()), "hidden {k}");
    }

    // Allow: 303 with code, state, iss and a remember-cookie.
    let a = post_authorize(&s, PUBLIC, &with(&fields, "consent", Some("allow")), ALICE).await;
    assert_eq!(a.status, 303, "{}", a.text);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let code = code_of(&a, CLAUDE_CALLBACK, "st-1", PUBLIC);
    let set_cookie = a
        .header("set-cookie")
        .expect("a remember-cookie")
        .to_owned();
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/oauth/",
        "Max-Age=2592000",
    ] {
        assert!(
            set_cookie.split("; ").any(|p| p == attr),
            "{attr} in {set_cookie}"
        );
    }
    assert!(set_cookie.starts_with("mcpgate_consent_"), "{set_cookie}");
    let tokens = s.exchange(PUBLIC, &client_id, &code, CLAUDE_CALLBACK).await;
    assert_eq!(tokens["scope"], "mcp offline_access");
    let (status, who) = s.whoami(PUBLIC, access_token(&tokens)).await;
    assert_eq!(status, 200, "{who}");
    assert_eq!(who["result"]["structuredContent"]["email"], ALICE);

    // Later, with the cookie (among others, over two headers): no page.
    let cookie = cookie_pair(&set_cookie);
    let params2 = authorize_params(&client_id, CLAUDE_CALLBACK, "st-2");
    let mut req = s
        .get(PUBLIC, "/oauth/authorize")
        .query(&params2)
        .header("x-forwarded-email", ALICE)
        .header(
            "cookie",
            "theme=dark; mcpgate_consent_AAAAAAAAAAAAAAAA=junk",
        )
        .header("cookie", format!("other=1; {cookie}"));
    req = req.header("accept", "text/html");
    let again = send(req).await;
    assert_eq!(again.status, 302, "{}", again.text);
    let code = code_of(&again, CLAUDE_CALLBACK, "st-2", PUBLIC);
    s.exchange(PUBLIC, &client_id, &code, CLAUDE_CALLBACK).await;

    // The cookie is Alice's: Bob is asked.
    let bob = get_authorize(&s, PUBLIC, &params2, BOB, Some(cookie)).await;
    assert_eq!(bob.status, 200, "{}", bob.text);
    bob.no_code("bob with alice's cookie");
    // And it is this client's: another client is asked.
    let other = register_on(&s, PUBLIC, CLAUDE_CALLBACK, None).await;
    let other_params = authorize_params(&other, CLAUDE_CALLBACK, "st-3");
    let renamed = cookie.replacen(
        &cookie[..cookie.find('=').unwrap()],
        &format!("mcpgate_consent_{}", &client_binding_of(&other)[..16]),
        1,
    );
    let a = get_authorize(&s, PUBLIC, &other_params, ALICE, Some(&renamed)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(a.text.contains("An unnamed client"), "{}", a.text);
    // A tampered cookie is ignored, not an error.
    let tampered = format!("{}x", cookie);
    let a = get_authorize(&s, PUBLIC, &params2, ALICE, Some(&tampered)).await;
    assert_eq!(a.status, 200, "{}", a.text);

    // Nothing secret reached the log: no csrf token, cookie or code.
    let log = std::fs::read_to_string(s.log_path()).unwrap();
    let csrf = field(&fields, "csrf").unwrap();
    let cookie_value = &cookie[cookie.find('=').unwrap() + 1..];
    for (what, secret) in [("csrf", csrf), ("cookie", cookie_value), ("code", &code)] {
        assert!(!log.contains(secret), "{what} in the log:\n{log}");
    }
    assert!(log.contains("consent page shown"), "{log}");
}

/// One remember-cookie per allowed client would, past ~50 clients, push
/// the `Cookie` header over the header limit and lock the browser out of
/// every sign-in; the oldest are expired beyond 16.
#[tokio::test]
async fn a_browser_keeps_at_most_sixteen_remember_cookies() {
    let s = start("dynamic-clients");
    let mut jar: Vec<String> = Vec::new();
    for i in 0..17 {
        let client_id = register_on(&s, PUBLIC, CLAUDE_CALLBACK, None).await;
        let params = authorize_params(&client_id, CLAUDE_CALLBACK, "st");
        let fields = consent_page(&s, PUBLIC, &params, ALICE).await;
        let mut req = s
            .post(PUBLIC, "/oauth/authorize")
            .header("x-forwarded-email", ALICE)
            .form(&with(&fields, "consent", Some("allow")));
        if !jar.is_empty() {
            req = req.header("cookie", jar.join("; "));
        }
        let a = send(req).await;
        assert_eq!(a.status, 303, "{}", a.text);
        let set: Vec<&str> = a
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        if i < 16 {
            assert_eq!(set.len(), 1, "allow {i}: {set:?}");
        } else {
            // The 17th: its own cookie, and one of the earlier ones
            // expired (the oldest; here all were set in the same second).
            assert_eq!(set.len(), 2, "{set:?}");
            let (name, rest) = set[1].split_once('=').unwrap();
            assert!(rest.starts_with("; Max-Age=0;"), "{set:?}");
            assert!(
                jar.iter().any(|c| c.starts_with(&format!("{name}="))),
                "{set:?}"
            );
            assert!(!set[0].starts_with(&format!("{name}=")), "{set:?}");
        }
        jar.push(cookie_pair(set[0]).to_owned());
    }
}

/// RFC 8252 §8.6: a loopback redirect URI does not prove which program
/// asks (any process can listen on a port and send the same public
/// client_id), so an Allow for one is never remembered: each sign-in asks.
#[tokio::test]
async fn a_loopback_client_is_asked_every_time() {
    let s = start("dynamic-clients");
    let client_id = register(&s, Some("Claude Code")).await;
    for (round, port) in [(1, 33418), (2, 51234)] {
        let cb = format!("http://127.0.0.1:{port}/callback");
        let state = format!("st-{round}");
        let params = authorize_params(&client_id, &cb, &state);
        let fields = consent_page(&s, INTERNAL, &params, ALICE).await;
        let a = post_authorize(
            &s,
            INTERNAL,
            &with(&fields, "consent", Some("allow")),
            ALICE,
        )
        .await;
        assert_eq!(a.status, 303, "{}", a.text);
        code_of(&a, &cb, &state, INTERNAL);
        assert!(
            a.header("set-cookie").is_none(),
            "round {round}: a remember-cookie"
        );
    }
}

/// The page says the client can stay connected exactly when it will get a
/// refresh token: when it registered the grant, whatever scope it asks.
#[tokio::test]
async fn the_page_says_stay_connected_only_when_a_refresh_token_follows() {
    let s = start("dynamic-clients");
    let refreshing = register(&s, None).await;
    let mut params = authorize_params(&refreshing, CB, "st");
    params.retain(|(k, _)| k != "scope");
    let page = get_authorize(&s, INTERNAL, &params, ALICE, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("stay connected"), "{}", page.text);

    let (status, body) = s
        .register(
            INTERNAL,
            serde_json::json!({"redirect_uris": [CB], "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let code_only = body["client_id"].as_str().unwrap();
    // It asks for offline_access; it will not get a refresh token.
    let params = authorize_params(code_only, CB, "st");
    let page = get_authorize(&s, INTERNAL, &params, ALICE, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(!page.text.contains("stay connected"), "{}", page.text);
}

/// `tokens::grants::ClientBinding::of`, recomputed.
fn client_binding_of(client_id: &str) -> String {
    use base64::Engine as _;
    let d = ring::digest::digest(&ring::digest::SHA256, client_id.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

#[tokio::test]
async fn deny_sends_access_denied_back_without_a_code() {
    let s = start("dynamic-clients");
    let client_id = register(&s, Some("Some app")).await;
    let fields = consent_page(&s, PUBLIC, &authorize_params(&client_id, CB, "st-d"), ALICE).await;
    let a = post_authorize(&s, PUBLIC, &with(&fields, "consent", Some("deny")), ALICE).await;
    assert_eq!(a.status, 303, "{}", a.text);
    a.no_code("deny");
    let loc = a.location();
    assert!(loc.starts_with(CB), "{loc}");
    assert_eq!(query_param(loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(loc, "state").as_deref(), Some("st-d"));
    assert_eq!(query_param(loc, "iss"), Some(format!("https://{PUBLIC}")));
    // Nothing remembered: the next request asks again.
    let a = get_authorize(
        &s,
        PUBLIC,
        &authorize_params(&client_id, CB, "st-e"),
        ALICE,
        None,
    )
    .await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn forged_or_mismatched_answers_are_refused_without_a_code() {
    let s = start("dynamic-clients");
    let client_id = register(&s, Some("App")).await;
    let fields = consent_page(
        &s,
        INTERNAL,
        &authorize_params(&client_id, CB, "st-a"),
        ALICE,
    )
    .await;
    let csrf = field(&fields, "csrf").unwrap().to_owned();
    let allow = with(&fields, "consent", Some("allow"));

    // Tokens of other requests: another state, another redirect URI (same
    // registered loopback URI, another port), another client, another host.
    let other_state = consent_page(
        &s,
        INTERNAL,
        &authorize_params(&client_id, CB, "st-b"),
        ALICE,
    )
    .await;
    let other_port = "http://127.0.0.1:40000/callback";
    let other_redirect = consent_page(
        &s,
        INTERNAL,
        &authorize_params(&client_id, other_port, "st-a"),
        ALICE,
    )
    .await;
    let other_client_id = register(&s, Some("App")).await;
    let other_client = consent_page(
        &s,
        INTERNAL,
        &authorize_params(&other_client_id, CB, "st-a"),
        ALICE,
    )
    .await;
    let other_host =
        consent_page(&s, PUBLIC, &authorize_params(&client_id, CB, "st-a"), ALICE).await;
    let mut tampered = csrf.clone().into_bytes();
    let i = tampered.len() - 30;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let cases: Vec<(&str, Form, &str)> = vec![
        (
            "csrf of another state",
            with(&allow, "csrf", field(&other_state, "csrf")),
            ALICE,
        ),
        (
            "csrf of another redirect_uri",
            with(&allow, "csrf", field(&other_redirect, "csrf")),
            ALICE,
        ),
        (
            "csrf of another client",
            with(&allow, "csrf", field(&other_client, "csrf")),
            ALICE,
        ),
        (
            "csrf of another host",
            with(&allow, "csrf", field(&other_host, "csrf")),
            ALICE,
        ),
        ("another person", allow.clone(), BOB),
        (
            "tampered csrf",
            with(&allow, "csrf", Some(&tampered)),
            ALICE,
        ),
        ("missing csrf", with(&allow, "csrf", None), ALICE),
        (
            "garbage csrf",
            with(&allow, "csrf", Some("a.b.c.d.e")),
            ALICE,
        ),
        (
            "state changed after the page",
            with(&allow, "state", Some("st-z")),
            ALICE,
        ),
        (
            "scope changed after the page",
            with(&allow, "scope", Some("mcp")),
            ALICE,
        ),
        (
            "code_challenge swapped after the page",
            with(
                &allow,
                "code_challenge",
                Some(&challenge("attacker-verifier-attacker-verifier-attacker")),
            ),
            ALICE,
        ),
        (
            "answer neither allow nor deny",
            with(&fields, "consent", Some("yes")),
            ALICE,
        ),
    ];
    for (case, form, email) in cases {
        let a = post_authorize(&s, INTERNAL, &form, email).await;
        assert_eq!(a.status, 400, "{case}: {}", a.text);
        assert!(a.header("location").is_none(), "{case}");
        a.no_code(case);
        let body: serde_json::Value = serde_json::from_str(&a.text).unwrap();
        assert_eq!(body["error"], "invalid_request", "{case}");
    }

    // A deny with a forged token is refused too (no error redirect either).
    let a = post_authorize(
        &s,
        INTERNAL,
        &with(
            &with(&fields, "consent", Some("deny")),
            "csrf",
            field(&other_state, "csrf"),
        ),
        ALICE,
    )
    .await;
    assert_eq!(a.status, 400, "{}", a.text);

    // The answer travels only by POST: on a GET it is the client's own
    // parameter, ignored (the page again, no code).
    let a = get_authorize(&s, INTERNAL, &allow, ALICE, None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.no_code("answer on a GET");

    // Without identity headers the POST is refused like the GET.
    let a = send(s.post(INTERNAL, "/oauth/authorize").form(&allow)).await;
    assert_eq!(a.status, 401, "{}", a.text);
    a.no_code("no identity");

    // A POST without an answer is not an authorize request outside dev.
    let a = post_authorize(&s, INTERNAL, &with(&fields, "consent", None), ALICE).await;
    assert_eq!(a.status, 405, "{}", a.text);

    // After all that, the genuine answer still works (and only once per code).
    let a = post_authorize(&s, INTERNAL, &allow, ALICE).await;
    assert_eq!(a.status, 303, "{}", a.text);
    let code = code_of(&a, CB, "st-a", INTERNAL);
    s.exchange(INTERNAL, &client_id, &code, CB).await;
}

async fn gemini_authorize(s: &Server) -> Answer {
    let params: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", GEMINI_ID),
        ("redirect_uri", GEMINI_CALLBACK),
        ("state", "g"),
        ("scope", "mcp"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    get_authorize(s, PUBLIC, &params, BOB, None).await
}

async fn gemini_token(s: &Server, code: &str) -> u16 {
    let (status, _, body) = s
        .token(
            PUBLIC,
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", GEMINI_CALLBACK),
            ],
            Some((GEMINI_ID, GEMINI_SECRET)),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    status
}

#[tokio::test]
async fn pre_provisioned_clients_skip_the_page_by_default() {
    let s = start("dynamic-clients");
    let a = gemini_authorize(&s).await;
    assert_eq!(a.status, 302, "{}", a.text);
    let code = code_of(&a, GEMINI_CALLBACK, "g", PUBLIC);
    gemini_token(&s, &code).await;
}

#[tokio::test]
async fn the_default_policy_is_dynamic_clients() {
    // No `consent` key at all.
    let s = Server::start_custom(|keys| {
        config(keys, "")
            .lines()
            .filter(|l| !l.trim_start().starts_with("consent"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    let client_id = register(&s, None).await;
    consent_page(&s, INTERNAL, &authorize_params(&client_id, CB, "s"), ALICE).await;
    assert_eq!(gemini_authorize(&s).await.status, 302);
}

#[tokio::test]
async fn consent_always_asks_pre_provisioned_clients_too() {
    let s = start("always");
    let a = gemini_authorize(&s).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_page_headers(&a, "https://vertexaisearch.cloud.google.com");
    assert!(
        a.text
            .contains("<strong>gemini-enterprise</strong> (set up by your administrators)"),
        "{}",
        a.text
    );
    assert!(a.text.contains("vertexaisearch.cloud.google.com"));
    let allow = with(&a.form_fields(), "consent", Some("allow"));
    let r = post_authorize(&s, PUBLIC, &allow, BOB).await;
    assert_eq!(r.status, 303, "{}", r.text);
    let code = code_of(&r, GEMINI_CALLBACK, "g", PUBLIC);
    gemini_token(&s, &code).await;
}

#[tokio::test]
async fn consent_never_asks_nobody() {
    let s = start("never");
    let client_id = register(&s, Some("App")).await;
    let a = get_authorize(
        &s,
        INTERNAL,
        &authorize_params(&client_id, CB, "n"),
        ALICE,
        None,
    )
    .await;
    assert_eq!(a.status, 302, "{}", a.text);
    let code = code_of(&a, CB, "n", INTERNAL);
    s.exchange(INTERNAL, &client_id, &code, CB).await;
    assert_eq!(gemini_authorize(&s).await.status, 302);
}

#[tokio::test]
async fn dev_sign_in_then_consent_then_a_code() {
    const DEV: &str = "127.0.0.1:8080";
    let s = Server::start_custom(|keys| {
        format!(
            r#"listen = "127.0.0.1:0"

[[hosts]]
issuer = "http://{DEV}"
redirect_uris = ["loopback"]

[identity]
source = "dev"
allowed_domains = ["example.com"]

[keys]
dir = "{}"
"#,
            keys.display()
        )
    });
    let (status, body) = s
        .register(
            DEV,
            serde_json::json!({"redirect_uris": [CB], "client_name": "Dev app",
                               "token_endpoint_auth_method": "none"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let client_id = body["client_id"].as_str().unwrap().to_owned();
    let params = authorize_params(&client_id, CB, "dv");

    // 1. The sign-in form, whose answer may end in a redirect to the client.
    let a = send(s.get(DEV, "/oauth/authorize").query(&params)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_page_headers(&a, "http://127.0.0.1:33418");
    assert!(
        a.text
            .contains("Addresses allowed to sign in here: <code>@example.com</code>."),
        "the form names the allowed domains: {}",
        a.text
    );
    let sign_in = with(&a.form_fields(), "mcpgate_dev_email", Some(ALICE));

    // Login CSRF: the email in a link, or posted from another site (or a
    // sandboxed page), signs no one in.
    let a = send(s.get(DEV, "/oauth/authorize").query(&sign_in)).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.no_code("dev email in a link");
    assert!(a.text.contains("Dev sign-in"), "{}", a.text);
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("origin", "null"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ] {
        let a = send(
            s.post(DEV, "/oauth/authorize")
                .header(name, value)
                .form(&sign_in),
        )
        .await;
        assert_eq!(a.status, 403, "{name}: {value}: {}", a.text);
        a.no_code("cross-site dev sign-in");
    }

    // 2. The consent page, carrying the email (the form's own POST).
    let a = send(
        s.post(DEV, "/oauth/authorize")
            .header("origin", format!("http://{DEV}"))
            .header("sec-fetch-site", "same-origin")
            .form(&sign_in),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.no_code("dev consent page");
    assert!(a.text.contains("calls itself <strong>“Dev app”</strong>"));
    let fields = a.form_fields();
    assert_eq!(field(&fields, "mcpgate_dev_email"), Some(ALICE));

    // 3. Another email typed into the consent form does not match.
    let forged = with(
        &with(&fields, "consent", Some("allow")),
        "mcpgate_dev_email",
        Some(BOB),
    );
    let a = send(s.post(DEV, "/oauth/authorize").form(&forged)).await;
    assert_eq!(a.status, 400, "{}", a.text);

    // 4. Allow: 303 with a code, and no remember-cookie: the answer goes
    //    to a loopback URI (RFC 8252 §8.6).
    let a = send(
        s.post(DEV, "/oauth/authorize")
            .form(&with(&fields, "consent", Some("allow"))),
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.text);
    let loc = a.location();
    assert!(loc.starts_with(CB), "{loc}");
    assert_eq!(
        query_param(loc, "iss").as_deref(),
        Some("http://127.0.0.1:8080")
    );
    let code = query_param(loc, "code").expect("a code");
    assert!(a.header("set-cookie").is_none());
    s.exchange(DEV, &client_id, &code, CB).await;

    // 5. Next time: sign in, and the consent page again.
    let a = send(
        s.post(DEV, "/oauth/authorize")
            .form(&with(&sign_in, "state", Some("dv2"))),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.no_code("second dev sign-in");
}

/// An Allow posted from another site (a page that got hold of a consent
/// form's fields) is refused without a code, by `Sec-Fetch-Site` or, from
/// a browser that sends none, by `Origin`; the page's own POST passes.
#[tokio::test]
async fn an_answer_posted_from_another_site_is_refused() {
    let s = start("dynamic-clients");
    let client_id = register(&s, Some("Claude Code")).await;
    let params = authorize_params(&client_id, CB, "st-x");
    for (header, value) in [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "https://evil.example"),
        ("origin", "null"),
    ] {
        let fields = consent_page(&s, INTERNAL, &params, ALICE).await;
        let a = send(
            s.post(INTERNAL, "/oauth/authorize")
                .header("x-forwarded-email", ALICE)
                .header(header, value)
                .form(&with(&fields, "consent", Some("allow"))),
        )
        .await;
        let case = format!("{header}: {value}");
        assert_eq!(a.status, 403, "{case}: {}", a.text);
        assert!(a.text.contains("access_denied"), "{case}: {}", a.text);
        a.no_code(&case);
        // The refused post did not use the form up: the page's own post
        // of the same form still answers.
        let a = send(
            s.post(INTERNAL, "/oauth/authorize")
                .header("x-forwarded-email", ALICE)
                .header("sec-fetch-site", "same-origin")
                .header("origin", format!("https://{INTERNAL}"))
                .form(&with(&fields, "consent", Some("allow"))),
        )
        .await;
        assert_eq!(a.status, 303, "{case}: {}", a.text);
        code_of(&a, CB, "st-x", INTERNAL);
    }
}

/// A consent form answers once: posted again (a double click, a replay),
/// it mints no second code.
#[tokio::test]
async fn a_consent_form_is_answered_once() {
    let s = start("dynamic-clients");
    let client_id = register(&s, Some("Claude Code")).await;
    let params = authorize_params(&client_id, CB, "st-once");
    let fields = consent_page(&s, INTERNAL, &params, ALICE).await;
    let allow = with(&fields, "consent", Some("allow"));
    let a = post_authorize(&s, INTERNAL, &allow, ALICE).await;
    assert_eq!(a.status, 303, "{}", a.text);
    code_of(&a, CB, "st-once", INTERNAL);
    for answer in ["allow", "deny"] {
        let again =
            post_authorize(&s, INTERNAL, &with(&fields, "consent", Some(answer)), ALICE).await;
        assert_eq!(again.status, 400, "{answer}: {}", again.text);
        assert!(again.text.contains("already answered"), "{}", again.text);
        again.no_code(answer);
    }
    // A new page is a new form.
    let fields = consent_page(&s, INTERNAL, &params, ALICE).await;
    let a = post_authorize(
        &s,
        INTERNAL,
        &with(&fields, "consent", Some("allow")),
        ALICE,
    )
    .await;
    assert_eq!(a.status, 303, "{}", a.text);
}

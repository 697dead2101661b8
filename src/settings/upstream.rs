//! `[[upstreams]]`: existing MCP servers mounted behind the sign-in,
//! validated into what the proxy runs on. Each mount is its own protected
//! resource (RFC 9728, RFC 8707): `issuer + path` on every host.

use std::time::Duration;

use rustls::pki_types::CertificateDer;

use globset::{GlobSet, GlobSetBuilder};

pub(crate) use crate::config::ForwardIdentity;
use crate::config::UpstreamConfig;

/// Paths mcpgate answers itself: no mount may take them or sit below them.
const RESERVED: &[&str] = &["/.well-known", "/oauth", "/healthz", "/readyz", "/metrics"];

/// Longest `timeout`: a request that waits longer for its answer to start
/// is not waiting for an MCP server.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// One mounted upstream.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// Its name: the metrics label and the audit line's `upstream`.
    pub(crate) name: String,
    /// Its Streamable HTTP endpoint, as written (the identity JWT's `aud`).
    pub(crate) url: String,
    /// The same, parsed for the client.
    pub(crate) uri: http::Uri,
    /// Where it is mounted: `/mcp/<name>` or the configured `path`;
    /// starts with `/`, never ends with one.
    pub(crate) path: String,
    /// Its resource on each host, in `[[hosts]]` order: issuer + `path`.
    pub(crate) resources: Vec<String>,
    pub(crate) forward_identity: ForwardIdentity,
    /// Who may use it at all; `None`: anyone signed in.
    pub(crate) allow: Option<Audience>,
    /// The tool policy.
    pub(crate) tools: ToolPolicy,
    pub(crate) timeout: Duration,
    /// `ca_file`: certificates trusted for this upstream besides the
    /// system's (or Mozilla's) roots.
    pub(crate) extra_roots: Vec<CertificateDer<'static>>,
}

/// Emails or groups, lowercased. A person is in it when their email or
/// one of their groups is (Google groups are named by email address, so
/// the two are written alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Audience(Vec<String>);

impl Audience {
    fn new(entries: &[String]) -> Option<Audience> {
        (!entries.is_empty()).then(|| {
            Audience(
                entries
                    .iter()
                    .map(|e| e.trim().to_ascii_lowercase())
                    .collect(),
            )
        })
    }

    pub(crate) fn contains<'g>(
        &self,
        email: &str,
        mut groups: impl Iterator<Item = &'g str>,
    ) -> bool {
        self.0.iter().any(|e| e.eq_ignore_ascii_case(email))
            || groups.any(|g| self.0.iter().any(|e| e.eq_ignore_ascii_case(g)))
    }
}

/// Which tools a person may see and call on one upstream.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolPolicy {
    /// `deny_tools`: hidden from and refused to everyone.
    deny: Option<GlobSet>,
    /// `tool_rules`, in order: the first whose globs match decides.
    rules: Vec<(GlobSet, Audience)>,
}

impl ToolPolicy {
    /// Whether the policy can hide anything from anyone: when not, answers
    /// pass through untouched.
    pub(crate) fn restricts(&self) -> bool {
        self.deny.is_some() || !self.rules.is_empty()
    }

    /// Whether a person (`email`, `groups`) may see and call `tool`.
    ///
    /// Decided on the name as written and on its [`folded`] form, and
    /// allowed only when both are (globs match either case): a server
    /// that trims, ignores case or drops invisible characters in tool
    /// names reaches no tool the policy refuses under another spelling.
    pub(crate) fn allows<'g>(
        &self,
        tool: &str,
        email: &str,
        groups: impl Iterator<Item = &'g str> + Clone,
    ) -> bool {
        let folded = folded(tool);
        self.decides(tool, email, groups.clone())
            && (folded == tool || self.decides(&folded, email, groups))
    }

    fn decides<'g>(&self, tool: &str, email: &str, groups: impl Iterator<Item = &'g str>) -> bool {
        if self.deny.as_ref().is_some_and(|d| d.is_match(tool)) {
            return false;
        }
        match self.rules.iter().find(|(globs, _)| globs.is_match(tool)) {
            Some((_, audience)) => audience.contains(email, groups),
            None => true,
        }
    }
}

/// `tool` as a lenient server might read it: without whitespace, control
/// characters or invisible format characters (zero-width spaces and
/// joiners, soft hyphens, bidi marks, the BOM), in lowercase.
fn folded(tool: &str) -> std::borrow::Cow<'_, str> {
    let invisible = |c: char| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '\u{ad}' | '\u{34f}' | '\u{61c}' | '\u{180e}' | '\u{200b}'..='\u{200f}'
                | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fe00}'..='\u{fe0f}')
    };
    if tool.chars().all(|c| !invisible(c) && !c.is_uppercase()) {
        return std::borrow::Cow::Borrowed(tool);
    }
    std::borrow::Cow::Owned(
        tool.chars()
            .filter(|c| !invisible(*c))
            .flat_map(char::to_lowercase)
            .collect(),
    )
}

fn glob_set(key: &str, globs: &[String]) -> Result<GlobSet, String> {
    let mut b = GlobSetBuilder::new();
    for (j, g) in globs.iter().enumerate() {
        // Either case: a tool is matched in its folded form too (see
        // `ToolPolicy::allows`).
        let glob = globset::GlobBuilder::new(g)
            .case_insensitive(true)
            .build()
            .map_err(|e| format!("{key}[{j}]: `{g}` is not a glob: {e}"))?;
        b.add(glob);
    }
    b.build().map_err(|e| format!("{key}: {e}"))
}

/// `upstreams[i]`, for hosts with these issuers.
pub(crate) fn parse(i: usize, u: &UpstreamConfig, issuers: &[&str]) -> Result<Upstream, String> {
    let key = format!("upstreams[{i}]");
    let name_ok = !u.name.is_empty()
        && u.name.len() <= 64
        && u.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !name_ok {
        return Err(format!(
            "{key}.name: `{}` must be 1 to 64 letters, digits, `-`, `_` or `.`",
            u.name
        ));
    }
    let url = url::Url::parse(&u.url).map_err(|e| format!("{key}.url: `{}`: {e}", u.url))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "{key}.url: `{}` must be an http or https URL",
            u.url
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{key}.url: `{}` must carry no user information or fragment",
            u.url
        ));
    }
    let uri: http::Uri = u
        .url
        .parse()
        .map_err(|e| format!("{key}.url: `{}`: {e}", u.url))?;
    let path = match &u.path {
        Some(p) => p.clone(),
        None => format!("/mcp/{}", u.name),
    };
    let path_ok = path.starts_with('/')
        && path.len() > 1
        && !path.ends_with('/')
        && !path.contains("//")
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-_.~".contains(&b));
    if !path_ok {
        return Err(format!(
            "{key}.path: `{path}` must start with `/`, not end with one, and hold only letters, digits, `/-_.~`"
        ));
    }
    // RFC 3986 §5.2.4: a client removes `.` and `..` segments before it
    // sends a request, so `/mcp/../oauth/token` would reach mcpgate's own
    // endpoint and never this mount.
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(format!(
            "{key}.path: `{path}` must hold no `.` or `..` segment"
        ));
    }
    if let Some(r) = RESERVED
        .iter()
        .find(|r| path == **r || path.starts_with(&format!("{r}/")))
    {
        return Err(format!("{key}.path: `{path}` is mcpgate's own (`{r}`)"));
    }
    if u.timeout.is_zero() || u.timeout > MAX_TIMEOUT {
        return Err(format!("{key}.timeout: must be between 1s and 1h"));
    }
    no_empty_entry(&format!("{key}.allow"), &u.allow)?;
    no_empty_entry(&format!("{key}.deny_tools"), &u.deny_tools)?;
    let deny = if u.deny_tools.is_empty() {
        None
    } else {
        Some(glob_set(&format!("{key}.deny_tools"), &u.deny_tools)?)
    };
    let mut rules = Vec::new();
    for (j, r) in u.tool_rules.iter().enumerate() {
        let rkey = format!("{key}.tool_rules[{j}]");
        if r.tools.is_empty() {
            return Err(format!("{rkey}.tools: at least one glob is required"));
        }
        no_empty_entry(&format!("{rkey}.tools"), &r.tools)?;
        no_empty_entry(&format!("{rkey}.allow"), &r.allow)?;
        let audience = Audience::new(&r.allow).ok_or_else(|| {
            format!("{rkey}.allow: at least one email or group is required (use deny_tools to hide tools from everyone)")
        })?;
        rules.push((glob_set(&format!("{rkey}.tools"), &r.tools)?, audience));
    }
    let extra_roots = match &u.ca_file {
        None => Vec::new(),
        Some(_) if url.scheme() != "https" => {
            return Err(format!("{key}.ca_file: only for an https url"))
        }
        Some(ca) => super::ca_file::read(&format!("{key}.ca_file"), ca)?.1,
    };
    Ok(Upstream {
        name: u.name.clone(),
        url: u.url.clone(),
        uri,
        resources: issuers.iter().map(|i| format!("{i}{path}")).collect(),
        path,
        forward_identity: u.forward_identity,
        allow: Audience::new(&u.allow),
        tools: ToolPolicy { deny, rules },
        timeout: u.timeout,
        extra_roots,
    })
}

/// An empty (or blank) entry is a mistake, never a person or a tool.
fn no_empty_entry(key: &str, entries: &[String]) -> Result<(), String> {
    match entries.iter().position(|e| e.trim().is_empty()) {
        Some(j) => Err(format!("{key}[{j}]: empty")),
        None => Ok(()),
    }
}

/// Every `[[upstreams]]` entry, checked against each other: names and
/// paths are unique.
pub(crate) fn parse_all(
    list: &[UpstreamConfig],
    issuers: &[&str],
) -> Result<Vec<Upstream>, String> {
    let mut out: Vec<Upstream> = Vec::new();
    for (i, u) in list.iter().enumerate() {
        let up = parse(i, u, issuers)?;
        if out.iter().any(|o| o.name == up.name) {
            return Err(format!(
                "upstreams[{i}].name: `{}` is listed twice",
                up.name
            ));
        }
        if let Some(o) = out.iter().find(|o| o.path == up.path) {
            return Err(format!(
                "upstreams[{i}].path: `{}` is already upstream `{}`'s",
                up.path, o.name
            ));
        }
        out.push(up);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ToolRuleConfig;

    fn config(name: &str) -> UpstreamConfig {
        UpstreamConfig {
            name: name.into(),
            url: "http://127.0.0.1:3001/mcp".into(),
            path: None,
            forward_identity: ForwardIdentity::Jwt,
            allow: vec![],
            deny_tools: vec![],
            timeout: Duration::from_secs(60),
            ca_file: None,
            tool_rules: vec![],
        }
    }

    const ISSUERS: &[&str] = &["https://a.example", "https://b.example"];

    #[test]
    fn a_mount_is_a_resource_on_every_host() {
        let u = parse(0, &config("jira"), ISSUERS).unwrap();
        assert_eq!(u.path, "/mcp/jira");
        assert_eq!(
            u.resources,
            ["https://a.example/mcp/jira", "https://b.example/mcp/jira"]
        );
        let mut c = config("root");
        c.path = Some("/mcp".into());
        assert_eq!(parse(0, &c, ISSUERS).unwrap().path, "/mcp");
    }

    #[test]
    fn bad_entries_name_their_key() {
        type Change = Box<dyn Fn(&mut UpstreamConfig)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|c| c.name = "a b".into()), "upstreams[0].name"),
            (
                Box::new(|c| c.url = "ftp://x/mcp".into()),
                "upstreams[0].url",
            ),
            (
                Box::new(|c| c.url = "http://u:p@x/mcp".into()),
                "upstreams[0].url",
            ),
            (
                Box::new(|c| c.path = Some("/oauth/x".into())),
                "upstreams[0].path",
            ),
            (
                Box::new(|c| c.path = Some("/.well-known".into())),
                "upstreams[0].path",
            ),
            (
                Box::new(|c| c.path = Some("/mcp/".into())),
                "upstreams[0].path",
            ),
            (
                Box::new(|c| c.path = Some("mcp".into())),
                "upstreams[0].path",
            ),
            (
                Box::new(|c| c.path = Some("/mcp/../oauth/token".into())),
                "upstreams[0].path",
            ),
            (
                Box::new(|c| c.path = Some("/./healthz".into())),
                "upstreams[0].path",
            ),
            (
                Box::new(|c| c.allow = vec!["a@example.com".into(), " ".into()]),
                "upstreams[0].allow[1]",
            ),
            (
                Box::new(|c| c.deny_tools = vec!["".into()]),
                "upstreams[0].deny_tools[0]",
            ),
            (
                Box::new(|c| {
                    c.tool_rules = vec![ToolRuleConfig {
                        tools: vec!["".into()],
                        allow: vec!["a@example.com".into()],
                    }]
                }),
                "upstreams[0].tool_rules[0].tools[0]",
            ),
            (
                Box::new(|c| c.timeout = Duration::ZERO),
                "upstreams[0].timeout",
            ),
            (
                Box::new(|c| c.deny_tools = vec!["[".into()]),
                "upstreams[0].deny_tools[0]",
            ),
            (
                Box::new(|c| {
                    c.tool_rules = vec![ToolRuleConfig {
                        tools: vec!["a*".into()],
                        allow: vec![],
                    }]
                }),
                "upstreams[0].tool_rules[0].allow",
            ),
        ];
        for (change, key) in cases {
            let mut c = config("x");
            change(&mut c);
            let e = parse(0, &c, ISSUERS).unwrap_err();
            assert!(e.starts_with(key), "{key}: {e}");
        }
        let e = parse_all(&[config("x"), config("x")], ISSUERS).unwrap_err();
        assert!(e.starts_with("upstreams[1].name"), "{e}");
        let mut y = config("y");
        y.path = Some("/mcp/x".into());
        let e = parse_all(&[config("x"), y], ISSUERS).unwrap_err();
        assert!(e.starts_with("upstreams[1].path"), "{e}");
    }

    #[test]
    fn deny_hides_from_everyone_and_the_first_matching_rule_decides() {
        let mut c = config("x");
        c.deny_tools = vec!["danger_*".into()];
        c.tool_rules = vec![
            ToolRuleConfig {
                tools: vec!["admin_*".into()],
                allow: vec!["Admins@example.com".into()],
            },
            ToolRuleConfig {
                tools: vec!["admin_read".into(), "*".into()],
                allow: vec!["bob@example.com".into()],
            },
        ];
        let p = parse(0, &c, ISSUERS).unwrap().tools;
        let none = || std::iter::empty::<&str>();
        assert!(p.restricts());
        assert!(!p.allows("danger_x", "admins@example.com", none()));
        assert!(p.allows(
            "admin_read",
            "alice@example.com",
            ["admins@example.com"].into_iter()
        ));
        assert!(p.allows("admin_read", "ADMINS@example.com", none()));
        // The first rule matched and refused: the second is not asked.
        assert!(!p.allows("admin_read", "bob@example.com", none()));
        assert!(p.allows("echo", "bob@example.com", none()));
        assert!(!p.allows("echo", "alice@example.com", none()));
        // Other spellings of a refused name are refused too.
        for odd in [
            "DANGER_x",
            "danger_x ",
            " danger_x",
            "danger\u{200b}_x",
            "\u{feff}danger_x",
            "danger_x\n",
            "Admin_Read",
            "ADMIN_READ\t",
        ] {
            assert!(!p.allows(odd, "bob@example.com", none()), "{odd:?}");
        }
        assert!(p.allows("Echo", "bob@example.com", none()));
        assert!(!ToolPolicy::default().restricts());
        assert!(ToolPolicy::default().allows("anything", "a@b", none()));
    }
}

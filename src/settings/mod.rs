//! The configuration, validated once at start into the types the server
//! runs on. Every error names the key it is about.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;

use crate::config::Config;
pub(crate) use crate::config::{ConsentPolicy, IdentitySource, LogFormat};
mod ca_file;
pub(crate) mod id_token;
pub mod redirect;
pub(crate) mod store;
pub(crate) mod upstream;
pub(crate) mod warnings;

use redirect::{PolicyEntry, RedirectPolicy};
pub(crate) use store::{RedisSettings, StoreSettings};

/// One name the service is reached by.
#[derive(Debug, Clone)]
pub struct Site {
    /// Exact issuer, e.g. `https://mcp.example.com`.
    pub issuer: String,
    /// `issuer` + `/mcp`: the protected resource (RFC 8707, RFC 9728).
    pub resource: String,
    /// Where the resource's metadata lives (RFC 9728 §3.1), for the 401
    /// challenge's `resource_metadata`.
    pub resource_metadata: String,
    pub scheme: Scheme,
    /// `host[:port]` as written in the issuer, lowercased.
    pub authority: String,
    /// What `POST /oauth/register` accepts on this host.
    pub redirect_policy: RedirectPolicy,
    /// `client_id_hosts`: the lowercased hosts whose URL client ids this
    /// host accepts; `None`: any.
    pub client_id_hosts: Option<Vec<String>>,
}

/// An issuer's scheme: `https`, or `http` for local testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Https,
    Http,
}

impl Scheme {
    /// The port a URL of this scheme means when it names none.
    pub const fn default_port(self) -> &'static str {
        match self {
            Scheme::Https => "443",
            Scheme::Http => "80",
        }
    }
}

impl Site {
    /// The site whose issuer is `issuer`: an exact `https` (or `http`)
    /// origin without path, query, fragment or user information. The
    /// error names what is wrong with `issuer`, not the config key.
    pub fn new(issuer: &str, redirect_policy: RedirectPolicy) -> Result<Site, String> {
        let url = url::Url::parse(issuer).map_err(|e| format!("`{issuer}` is not a URL: {e}"))?;
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            _ => {
                return Err(format!(
                    "`{issuer}` must be https (or http for local testing)"
                ))
            }
        };
        if issuer.ends_with('/') {
            return Err(format!("`{issuer}` must not end with `/`"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{issuer}` must be an origin (scheme://host[:port]) without path, query or fragment"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{issuer}` must not contain user information"));
        }
        let authority = issuer
            .split_once("://")
            .map(|(_, a)| a.to_ascii_lowercase())
            .unwrap_or_default();
        Ok(Site {
            issuer: issuer.to_owned(),
            resource: format!("{issuer}/mcp"),
            resource_metadata: format!("{issuer}/.well-known/oauth-protected-resource/mcp"),
            scheme,
            authority,
            redirect_policy,
            client_id_hosts: None,
        })
    }
}

/// A client provisioned in `[[clients]]`.
#[derive(Debug, Clone)]
pub struct ConfiguredClient {
    pub client_id: String,
    /// SHA-256 of the secret; `None` for a pre-provisioned public client.
    pub secret_sha256: Option<[u8; 32]>,
    pub redirect_uris: Vec<String>,
    pub require_pkce: bool,
    pub client_name: Option<String>,
}

#[derive(Debug, Clone)]
pub struct IdentitySettings {
    pub source: IdentitySource,
    pub email_header: HeaderName,
    pub user_header: HeaderName,
    pub groups_header: HeaderName,
    /// Lowercased domains a signed-in email must belong to.
    pub allowed_domains: Vec<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The header oauth2-proxy injects with a shared secret, and its value.
    pub proxy_secret: Option<(HeaderName, Vec<u8>)>,
    pub consent: crate::config::ConsentPolicy,
    pub consent_ttl: Duration,
    /// The Google ID token the proxy injects, checked when configured.
    pub id_token: Option<id_token::IdTokenSettings>,
}

impl IdentitySettings {
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        let peer = canonical_ip(peer);
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

/// Whether `url` names this machine: `localhost` or a loopback address
/// (where `http` is acceptable for a local mirror, and where a listener's
/// port must match the issuer's).
pub(crate) fn is_loopback_url(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// `::ffff:127.0.0.1` is 127.0.0.1 for trust decisions.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[derive(Debug, Clone)]
pub struct TokenSettings {
    pub access_ttl: Duration,
    pub code_ttl: Duration,
    /// Zero: no refresh tokens.
    pub refresh_ttl: Duration,
    pub refresh_grace: Duration,
}

impl TokenSettings {
    /// The lifetimes `[tokens]` sets (its defaults too: `keys list` falls
    /// back to them when no config loads).
    pub(crate) fn from_config(t: &crate::config::TokensConfig) -> TokenSettings {
        TokenSettings {
            access_ttl: t.access_ttl,
            code_ttl: t.code_ttl,
            refresh_ttl: t.refresh_ttl,
            refresh_grace: t.refresh_grace,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub sites: Vec<Site>,
    /// Every site's issuer: tokens from any of them are accepted.
    pub issuers: Vec<String>,
    /// Every site's resource.
    pub resources: Vec<String>,
    /// `mcp.one_resource`: `/mcp` on any host accepts a token for any
    /// host's resource; otherwise only for its own.
    pub one_resource: bool,
    pub identity: IdentitySettings,
    pub keys_dir: PathBuf,
    pub keys_rescan: Duration,
    /// The deny file, watched with the keys.
    pub deny_path: PathBuf,
    pub tokens: TokenSettings,
    pub clients: HashMap<String, ConfiguredClient>,
    pub verified_cache_size: usize,
    /// Browser origins allowed on `/mcp`, the issuers' own included.
    pub mcp_allowed_origins: Vec<String>,
    pub log_format: LogFormat,
    /// `log.access`: a line per request.
    pub log_access: bool,
    pub limits: Limits,
    pub metrics_listen: Option<SocketAddr>,
    /// Where single use is enforced.
    pub store: StoreSettings,
    pub cimd: CimdSettings,
    /// `[[upstreams]]`: MCP servers mounted behind the sign-in.
    pub(crate) upstreams: Vec<upstream::Upstream>,
}

/// `[cimd]`, validated.
#[derive(Debug, Clone)]
pub struct CimdSettings {
    pub enabled: bool,
    pub documents_dir: Option<PathBuf>,
    pub max_document_bytes: usize,
    pub fetch_timeout: Duration,
    pub cache_entries: usize,
    pub fetches_per_host_per_minute: u32,
    pub max_concurrent_fetches: usize,
    /// Test-only: loopback addresses pass the SSRF guard.
    pub insecure_test_only_allow_loopback: bool,
    /// Test-only: CA certificates trusted besides the public roots.
    pub insecure_test_only_roots: Vec<rustls_pki_types::CertificateDer<'static>>,
}

/// Bounds of `[cimd]` values: a document is small (the draft suggests
/// 5 KB), a fetch is quick, and the cache's memory is bounded by
/// `cache_entries × max_document_bytes` (plus per-entry overhead).
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
const MAX_FETCH_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_CACHE_ENTRIES: usize = 100_000;

impl CimdSettings {
    pub(crate) fn from_config(c: &crate::config::CimdConfig) -> Result<CimdSettings, String> {
        if !(256..=MAX_DOCUMENT_BYTES).contains(&c.max_document_bytes) {
            return Err(format!(
                "cimd.max_document_bytes: must be between 256 and {MAX_DOCUMENT_BYTES}"
            ));
        }
        if c.fetch_timeout < Duration::from_millis(100) || c.fetch_timeout > MAX_FETCH_TIMEOUT {
            return Err("cimd.fetch_timeout: must be between 100ms and 30s".into());
        }
        if !(1..=MAX_CACHE_ENTRIES).contains(&c.cache_entries) {
            return Err(format!(
                "cimd.cache_entries: must be between 1 and {MAX_CACHE_ENTRIES}"
            ));
        }
        if c.fetches_per_host_per_minute == 0 || c.fetches_per_host_per_minute > 6000 {
            return Err("cimd.fetches_per_host_per_minute: must be between 1 and 6000".into());
        }
        if !(1..=1024).contains(&c.max_concurrent_fetches) {
            return Err("cimd.max_concurrent_fetches: must be between 1 and 1024".into());
        }
        let insecure_test_only_roots = match &c.insecure_test_only_ca_file {
            None => Vec::new(),
            Some(path) => {
                let key = "cimd.insecure_test_only_ca_file";
                let (_, certs) = ca_file::read(key, path)?;
                // Each must also be usable as a trust anchor.
                let mut store = rustls::RootCertStore::empty();
                for cert in &certs {
                    store.add(cert.clone()).map_err(|e| {
                        format!("{key}: {} is not a usable CA: {e}", path.display())
                    })?;
                }
                certs
            }
        };
        Ok(CimdSettings {
            enabled: c.enabled,
            documents_dir: c.documents_dir.clone(),
            max_document_bytes: c.max_document_bytes,
            fetch_timeout: c.fetch_timeout,
            cache_entries: c.cache_entries,
            fetches_per_host_per_minute: c.fetches_per_host_per_minute,
            max_concurrent_fetches: c.max_concurrent_fetches,
            insecure_test_only_allow_loopback: c.insecure_test_only_allow_loopback,
            insecure_test_only_roots,
        })
    }
}

/// Limits on what one client can hold.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to send a whole request head (slow-loris); also how long a new
    /// connection may stay silent.
    pub header_read_timeout: Duration,
    /// Time to send a whole request body, once the head is in.
    pub body_read_timeout: Duration,
    /// Largest request head (HTTP/1.1 buffer; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Open connections at once; more wait in the kernel's backlog.
    pub max_connections: usize,
    /// Concurrent streams per HTTP/2 connection.
    pub max_h2_streams: u32,
    /// After the shutdown signal, how long to keep accepting while
    /// `/readyz` fails, so load balancers stop sending first.
    pub drain_delay: Duration,
    /// Then how long in-flight requests get to finish.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
            max_h2_streams: 100,
            drain_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

fn header_name(key: &str, value: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(value.as_bytes())
        .map_err(|_| format!("{key}: `{value}` is not a header name"))
}

fn parse_site(i: usize, issuer: &str, entries: &[String]) -> Result<Site, String> {
    let mut site = Site::new(issuer, RedirectPolicy::default())
        .map_err(|e| format!("hosts[{i}].issuer: {e}"))?;
    let mut policy = Vec::new();
    for (j, e) in entries.iter().enumerate() {
        policy.push(
            PolicyEntry::parse(e).map_err(|m| format!("hosts[{i}].redirect_uris[{j}]: {m}"))?,
        );
    }
    site.redirect_policy = RedirectPolicy::new(policy);
    Ok(site)
}

fn parse_client(i: usize, c: &crate::config::ClientConfig) -> Result<ConfiguredClient, String> {
    let key = format!("clients[{i}]");
    if c.client_id.is_empty()
        || c.client_id.len() > 200
        || c.client_id.contains('.')
        || c.client_id.contains(':')
    {
        // Sealed client ids contain dots and URL client ids a colon;
        // configured ones never do, so the three can never collide.
        return Err(format!(
            "{key}.client_id: `{}` must be 1 to 200 characters without `.` or `:`",
            c.client_id
        ));
    }
    let secret_sha256 =
        match &c.client_secret_sha256 {
            None => None,
            Some(hex) => {
                let bytes = decode_hex(hex.trim()).filter(|b| b.len() == 32).ok_or_else(|| {
                format!("{key}.client_secret_sha256: must be 64 hex digits (SHA-256 of the secret)")
            })?;
                let mut out = [0u8; 32];
                out.copy_from_slice(&bytes);
                Some(out)
            }
        };
    if c.redirect_uris.is_empty() {
        return Err(format!("{key}.redirect_uris: at least one is required"));
    }
    for (j, uri) in c.redirect_uris.iter().enumerate() {
        redirect::check_registrable(uri)
            .map_err(|e| format!("{key}.redirect_uris[{j}]: `{uri}` {e}"))?;
    }
    Ok(ConfiguredClient {
        client_id: c.client_id.clone(),
        secret_sha256,
        redirect_uris: c.redirect_uris.clone(),
        require_pkce: c.require_pkce,
        client_name: c.client_name.clone(),
    })
}

pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Settings {
    /// Validates `config`. Reads the proxy secret file, if one is named.
    pub fn from_config(config: &Config) -> Result<Settings, String> {
        if config.hosts.is_empty() {
            return Err("hosts: at least one [[hosts]] entry is required".into());
        }
        let mut sites = Vec::new();
        for (i, h) in config.hosts.iter().enumerate() {
            let mut site = parse_site(i, &h.issuer, &h.redirect_uris)?;
            if let Some(hosts) = &h.client_id_hosts {
                let mut list = Vec::new();
                for (j, host) in hosts.iter().enumerate() {
                    let host = host.trim().to_ascii_lowercase();
                    let ok = !host.is_empty()
                        && host.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'-' | b'.' | b':' | b'[' | b']')
                        });
                    if !ok {
                        return Err(format!(
                            "hosts[{i}].client_id_hosts[{j}]: `{host}` is not a host name"
                        ));
                    }
                    list.push(host);
                }
                site.client_id_hosts = Some(list);
            }
            if sites.iter().any(|s: &Site| s.authority == site.authority) {
                return Err(format!("hosts[{i}].issuer: `{}` is listed twice", h.issuer));
            }
            sites.push(site);
        }

        let id = &config.identity;
        if id.allowed_domains.is_empty() {
            return Err("identity.allowed_domains: at least one domain is required".into());
        }
        let allowed_domains: Vec<String> = id
            .allowed_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
            .collect();
        // A domain name (RFC 1035 §2.3.1 letters, digits, hyphens; dots
        // between labels). No wildcard: an email's domain must equal one of
        // these exactly, so `*.example.com` would match no one.
        let is_domain = |d: &str| {
            !d.is_empty()
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        if let Some(bad) = allowed_domains.iter().find(|d| !is_domain(d)) {
            return Err(format!(
                "identity.allowed_domains: `{bad}` is not a domain name (letters, digits, `-` and `.`; \
                 each one matches exactly, not its subdomains)"
            ));
        }
        if id.source == IdentitySource::Dev && !config.listen.ip().is_loopback() {
            return Err(format!(
                "identity.source: \"dev\" trusts any typed email and is refused unless listen is a loopback address (listen = {})",
                config.listen
            ));
        }
        let proxy_secret = match (&id.proxy_secret_header, &id.proxy_secret_file) {
            (None, None) => None,
            (Some(h), Some(f)) => {
                let name = header_name("identity.proxy_secret_header", h)?;
                let secret = std::fs::read(f).map_err(|e| {
                    format!(
                        "identity.proxy_secret_file: cannot read {}: {e}",
                        f.display()
                    )
                })?;
                let secret = secret.trim_ascii().to_vec();
                if secret.len() < 16 {
                    return Err(
                        "identity.proxy_secret_file: the secret must be at least 16 bytes".into(),
                    );
                }
                Some((name, secret))
            }
            _ => {
                return Err(
                    "identity.proxy_secret_header and identity.proxy_secret_file go together"
                        .into(),
                )
            }
        };
        let identity = IdentitySettings {
            source: id.source,
            email_header: header_name("identity.email_header", &id.email_header)?,
            user_header: header_name("identity.user_header", &id.user_header)?,
            groups_header: header_name("identity.groups_header", &id.groups_header)?,
            allowed_domains,
            trusted_proxies: id.trusted_proxies.clone(),
            proxy_secret,
            consent: id.consent,
            consent_ttl: id.consent_ttl,
            id_token: id_token::IdTokenSettings::from_config(id)?,
        };

        let t = &config.tokens;
        if t.access_ttl.is_zero() || t.access_ttl > Duration::from_secs(24 * 3600) {
            return Err("tokens.access_ttl: must be between 1s and 24h".into());
        }
        if t.code_ttl.is_zero() || t.code_ttl > Duration::from_secs(600) {
            return Err("tokens.code_ttl: must be between 1s and 10m (RFC 6749 §4.1.2)".into());
        }
        if config.server.max_connections == 0 {
            return Err("server.max_connections: must be at least 1".into());
        }
        if config.server.header_read_timeout.is_zero() {
            return Err("server.header_read_timeout: must be more than 0s".into());
        }
        if config.server.body_read_timeout.is_zero() {
            return Err("server.body_read_timeout: must be more than 0s".into());
        }
        if config.keys.rescan.is_zero() {
            return Err("keys.rescan: must be more than 0s".into());
        }

        let mut clients = HashMap::new();
        for (i, c) in config.clients.iter().enumerate() {
            let client = parse_client(i, c)?;
            if clients.insert(client.client_id.clone(), client).is_some() {
                return Err(format!(
                    "clients[{i}].client_id: `{}` is listed twice",
                    c.client_id
                ));
            }
        }

        let mut origins: Vec<String> = sites.iter().map(|s| s.issuer.clone()).collect();
        for (i, o) in config.mcp.allowed_origins.iter().enumerate() {
            let o = o.trim_end_matches('/');
            if url::Url::parse(o).map(|u| u.path() != "/").unwrap_or(true) {
                return Err(format!("mcp.allowed_origins[{i}]: `{o}` is not an origin"));
            }
            origins.push(o.to_owned());
        }

        let issuers: Vec<&str> = sites.iter().map(|s| s.issuer.as_str()).collect();
        let upstreams = upstream::parse_all(&config.upstreams, &issuers)?;

        Ok(Settings {
            listen: config.listen,
            issuers: sites.iter().map(|s| s.issuer.clone()).collect(),
            resources: sites.iter().map(|s| s.resource.clone()).collect(),
            one_resource: config.mcp.one_resource,
            sites,
            identity,
            keys_dir: config.keys.dir.clone(),
            keys_rescan: config.keys.rescan,
            deny_path: config
                .keys
                .deny_file
                .clone()
                .unwrap_or_else(|| config.keys.dir.join(crate::config::DENY_FILE_NAME)),
            tokens: TokenSettings::from_config(t),
            clients,
            verified_cache_size: t.verified_cache_size,
            mcp_allowed_origins: origins,
            log_format: config.log.format,
            log_access: config.log.access,
            limits: Limits {
                header_read_timeout: config.server.header_read_timeout,
                body_read_timeout: config.server.body_read_timeout,
                max_connections: config.server.max_connections,
                drain_delay: config.server.drain_delay,
                shutdown_grace: config.server.shutdown_grace,
                ..Default::default()
            },
            metrics_listen: config.server.metrics_listen,
            store: StoreSettings::from_config(&config.store)?,
            cimd: CimdSettings::from_config(&config.cimd)?,
            upstreams,
        })
    }

    /// The resource a resource URI names: a host's `/mcp` or a mount's,
    /// in the one spelling tokens carry as `aud`. RFC 8707 resources are
    /// compared exactly, except that a trailing `/` is tolerated (clients
    /// add it), and a host's root URL names the host's `/mcp`: clients
    /// found in the field send the URL the person typed (`https://host`
    /// or `https://host/`) rather than the protected resource metadata's.
    pub fn resource_named(&self, resource: &str) -> Option<&str> {
        let r = resource.strip_suffix('/').unwrap_or(resource);
        if let Some(site) = self.sites.iter().find(|s| s.issuer == r) {
            return Some(&site.resource);
        }
        self.sites
            .iter()
            .map(|s| &s.resource)
            .chain(self.upstreams.iter().flat_map(|u| &u.resources))
            .find(|known| *known == r)
            .map(String::as_str)
    }

    /// Whether `uri` is allowed by any host's current policy.
    pub fn any_policy_allows(&self, uri: &str) -> bool {
        self.sites
            .iter()
            .any(|s| s.redirect_policy.check(uri).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HostConfig;

    fn config() -> Config {
        let mut c = Config::default();
        c.hosts.push(HostConfig {
            issuer: "https://mcp.example.com".into(),
            redirect_uris: vec!["https://claude.ai/api/mcp/auth_callback".into()],
            client_id_hosts: None,
        });
        c.identity.allowed_domains = vec!["Example.com".into()];
        c
    }

    #[test]
    fn a_valid_config_becomes_settings() {
        let s = Settings::from_config(&config()).unwrap();
        assert_eq!(s.sites[0].resource, "https://mcp.example.com/mcp");
        assert_eq!(s.identity.allowed_domains, vec!["example.com"]);
        assert!(s.resource_named("https://mcp.example.com/mcp/").is_some());
        assert!(s
            .resource_named("https://mcp.example.com/mcp-other")
            .is_none());
        for root in ["https://mcp.example.com", "https://mcp.example.com/"] {
            assert_eq!(s.resource_named(root), Some("https://mcp.example.com/mcp"));
        }
        for other in [
            "https://mcp.example.com//",
            "https://mcp.example.com.evil.example/",
            "http://mcp.example.com/",
            "https://mcp.example.com/other",
        ] {
            assert!(s.resource_named(other).is_none(), "{other}");
        }
    }

    #[test]
    fn issuers_must_be_exact_origins() {
        for bad in [
            "https://mcp.example.com/",
            "https://mcp.example.com/tenant",
            "ftp://mcp.example.com",
            "https://u@mcp.example.com",
        ] {
            let mut c = config();
            c.hosts[0].issuer = bad.into();
            let err = Settings::from_config(&c).unwrap_err();
            assert!(err.starts_with("hosts[0].issuer"), "{bad}: {err}");
        }
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = config();
        c.identity.allowed_domains.clear();
        assert!(Settings::from_config(&c)
            .unwrap_err()
            .starts_with("identity.allowed_domains"));
        let mut c = config();
        c.hosts[0]
            .redirect_uris
            .push("http://evil.example/cb".into());
        assert!(Settings::from_config(&c)
            .unwrap_err()
            .starts_with("hosts[0].redirect_uris[1]"));
        let mut c = config();
        c.identity.source = IdentitySource::Dev;
        assert!(Settings::from_config(&c)
            .unwrap_err()
            .starts_with("identity.source"));
        for bad in ["*.example.com", "example..com", "-x.com", "a b.com", ""] {
            let mut c = config();
            c.identity.allowed_domains = vec![bad.into()];
            assert!(
                Settings::from_config(&c)
                    .unwrap_err()
                    .starts_with("identity.allowed_domains"),
                "{bad}"
            );
        }
    }

    #[test]
    fn ipv4_mapped_peers_are_matched_as_ipv4() {
        let s = Settings::from_config(&config()).unwrap();
        assert!(s
            .identity
            .is_trusted_proxy("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!s.identity.is_trusted_proxy("10.0.0.1".parse().unwrap()));
    }
}

//! Configuration: figment layers built-in defaults < a TOML file (or the
//! embedded dev config) < `MCPGATE_*` environment variables.
//!
//! [`Config`] is the raw, serde-shaped file. [`Config::load`] extracts it and
//! `settings::Settings::from_config` validates it into the types the
//! server runs on, so a bad value is reported once, at start, naming its key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The deny list's name inside the key directory, as `keys.deny_file`
/// defaults to.
pub(crate) const DENY_FILE_NAME: &str = "revoked";
/// Google's issuer, as `identity.id_token_issuer` defaults to.
pub(crate) const GOOGLE_ISSUER: &str = "https://accounts.google.com";
/// Google's signing keys, as `identity.id_token_jwks` defaults to.
pub(crate) const GOOGLE_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// The config `cargo run` serves with when no config file exists: one
/// loopback host, dev sign-in form, keys generated into `keys/`.
pub(crate) const DEV_CONFIG: &str = include_str!("../config/dev.toml");

/// The file `mcpgate serve` reads when `--config` is not given.
pub(crate) const DEFAULT_CONFIG_PATH: &str = "config/mcpgate.toml";

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Socket address to accept connections on.
    pub listen: SocketAddr,
    /// One entry per name the service is reached by.
    pub hosts: Vec<HostConfig>,
    pub identity: IdentityConfig,
    pub keys: KeysConfig,
    pub tokens: TokensConfig,
    /// Pre-provisioned clients (confidential when they have a secret).
    pub clients: Vec<ClientConfig>,
    pub mcp: McpConfig,
    pub log: LogConfig,
    pub server: ServerConfig,
    /// Where single use is enforced: this process, or a shared Redis.
    pub store: StoreConfig,
    /// Client ID Metadata Documents: `client_id`s that are https URLs.
    pub cimd: CimdConfig,
    /// Existing MCP servers mounted behind the sign-in.
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
}

/// What the upstream is told about the caller (never the caller's own
/// token: MCP authorization, "Token Passthrough").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardIdentity {
    /// `Authorization: Bearer <JWT>` minted by mcpgate for the upstream.
    Jwt,
    /// `X-MCP-Subject`, `X-MCP-Email`, `X-MCP-Groups`, `X-MCP-Client-Id`.
    Headers,
    /// Nothing.
    None,
}

/// An existing MCP server (Streamable HTTP) mounted behind the sign-in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Mounted at `/mcp/<name>` unless `path` says otherwise.
    pub name: String,
    /// The server's Streamable HTTP endpoint (http or https).
    pub url: String,
    /// Where it is mounted; `/mcp` replaces the built-in server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default = "default_forward_identity")]
    pub forward_identity: ForwardIdentity,
    /// Emails or groups who may use it; empty: anyone signed in.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Tool name globs hidden from and refused to everyone.
    #[serde(default)]
    pub deny_tools: Vec<String>,
    /// Per request (a response must start within it; a stream may then
    /// stay open longer).
    #[serde(default = "default_upstream_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra CA certificates (PEM) trusted for this upstream's https.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Who may call which tools; the first rule whose `tools` match decides.
    #[serde(default)]
    pub tool_rules: Vec<ToolRuleConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRuleConfig {
    /// Tool name globs.
    pub tools: Vec<String>,
    /// Emails or groups who may call them.
    pub allow: Vec<String>,
}

fn default_forward_identity() -> ForwardIdentity {
    ForwardIdentity::Jwt
}

fn default_upstream_timeout() -> Duration {
    Duration::from_secs(60)
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Exact issuer URL (an origin: scheme, host, optional port).
    pub issuer: String,
    /// Redirect URI policy: `"loopback"`, `"prefix:<uri>"` or an exact URI.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The hosts whose URL `client_id`s (Client ID Metadata Documents) are
    /// accepted on this host, e.g. `["claude.ai", "chatgpt.com"]`; absent:
    /// any host, still subject to `redirect_uris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id_hosts: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentitySource {
    /// oauth2-proxy headers from trusted peers.
    Proxy,
    /// A sign-in form that trusts whatever email is typed; loopback only.
    Dev,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    pub source: IdentitySource,
    pub email_header: String,
    pub user_header: String,
    pub groups_header: String,
    pub allowed_domains: Vec<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub proxy_secret_header: Option<String>,
    pub proxy_secret_file: Option<PathBuf>,
    /// Who sees the consent page at `/oauth/authorize`.
    pub consent: ConsentPolicy,
    /// How long an Allow is remembered (per client, in a sealed cookie).
    #[serde(with = "humantime_serde")]
    pub consent_ttl: Duration,
    /// The header oauth2-proxy injects the Google ID token in; unset: not checked.
    pub id_token_header: Option<String>,
    /// The `aud` the ID token must carry: the proxy's Google OAuth client id.
    pub id_token_audience: Option<String>,
    /// The ID token's `iss` (Google's default also accepts `accounts.google.com`).
    pub id_token_issuer: String,
    /// The issuer's keys: a JWKS file path or an `https://` URL.
    pub id_token_jwks: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentPolicy {
    /// Dynamically registered clients ask; pre-provisioned ones do not.
    DynamicClients,
    Always,
    Never,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            source: IdentitySource::Proxy,
            email_header: "X-Forwarded-Email".into(),
            user_header: "X-Forwarded-User".into(),
            groups_header: "X-Forwarded-Groups".into(),
            allowed_domains: Vec::new(),
            trusted_proxies: vec![
                "127.0.0.1/32".parse().expect("static CIDR"),
                "::1/128".parse().expect("static CIDR"),
            ],
            proxy_secret_header: None,
            proxy_secret_file: None,
            consent: ConsentPolicy::DynamicClients,
            consent_ttl: Duration::from_secs(30 * 24 * 3600),
            id_token_header: None,
            id_token_audience: None,
            id_token_issuer: GOOGLE_ISSUER.into(),
            id_token_jwks: GOOGLE_JWKS.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    pub dir: PathBuf,
    /// Periodic rescan of `dir`, for events the watcher misses.
    #[serde(with = "humantime_serde")]
    pub rescan: Duration,
    /// The deny file (revocations); default `<dir>/revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_file: Option<PathBuf>,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            dir: PathBuf::from("keys"),
            rescan: Duration::from_secs(30),
            deny_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    #[serde(with = "humantime_serde")]
    pub access_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    /// Lifetime of a refresh token family; `0s` issues none.
    #[serde(with = "humantime_serde")]
    pub refresh_ttl: Duration,
    /// Verified access tokens remembered (0: verify every time).
    pub verified_cache_size: usize,
    /// How long the previous refresh token of a family stays usable after
    /// rotation, for a client that lost the response.
    #[serde(with = "humantime_serde")]
    pub refresh_grace: Duration,
}

impl Default for TokensConfig {
    fn default() -> Self {
        TokensConfig {
            access_ttl: Duration::from_secs(3600),
            code_ttl: Duration::from_secs(60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            verified_cache_size: 16_384,
            refresh_grace: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    /// Hex SHA-256 of the secret; absent for a pre-provisioned public client.
    #[serde(default)]
    pub client_secret_sha256: Option<String>,
    pub redirect_uris: Vec<String>,
    /// Demand PKCE even though the client authenticates with a secret.
    #[serde(default)]
    pub require_pkce: bool,
    #[serde(default)]
    pub client_name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpConfig {
    /// Browser origins allowed to call `/mcp` (besides the issuers' own).
    pub allowed_origins: Vec<String>,
    /// The hosts are one resource: a token minted for any host's `/mcp`
    /// is accepted on every host, so a client that reaches both (a laptop
    /// on and off the VPN) signs in once. `false`: each host accepts only
    /// tokens whose `aud` is its own resource.
    pub one_resource: bool,
}

impl Default for McpConfig {
    fn default() -> McpConfig {
        McpConfig {
            allowed_origins: Vec::new(),
            one_resource: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// One line per request. Off by default: it is a large share of a
    /// cached `/mcp` call's CPU (PERFORMANCE.md), the load balancer and the
    /// metrics already count requests, and every refusal, sign-in and
    /// issued token is logged regardless.
    pub access: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "0.0.0.0:8080".parse().expect("static address"),
            hosts: Vec::new(),
            identity: IdentityConfig::default(),
            keys: KeysConfig::default(),
            tokens: TokensConfig::default(),
            clients: Vec::new(),
            mcp: McpConfig::default(),
            log: LogConfig::default(),
            server: ServerConfig::default(),
            store: StoreConfig::default(),
            cimd: CimdConfig::default(),
            upstreams: Vec::new(),
        }
    }
}

/// `[cimd]`: Client ID Metadata Documents
/// (draft-ietf-oauth-client-id-metadata-document), fetched from the URL
/// that is the `client_id`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CimdConfig {
    /// Accept URL client ids and advertise
    /// `client_id_metadata_document_supported`.
    pub enabled: bool,
    /// Operator-provided documents, one JSON file each, used instead of
    /// fetching their `client_id` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documents_dir: Option<PathBuf>,
    /// Largest document fetched (bytes; at most 64 KiB).
    pub max_document_bytes: usize,
    /// The whole fetch of one document (or JWKS).
    #[serde(with = "humantime_serde")]
    pub fetch_timeout: Duration,
    /// Documents kept per replica.
    pub cache_entries: usize,
    /// Fetches per client_id host and minute, per replica.
    pub fetches_per_host_per_minute: u32,
    /// Fetches in flight at once, per replica.
    pub max_concurrent_fetches: usize,
    /// TESTS ONLY: documents may be fetched from loopback addresses.
    pub insecure_test_only_allow_loopback: bool,
    /// TESTS ONLY: a PEM file of CA certificates trusted besides the
    /// public roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure_test_only_ca_file: Option<PathBuf>,
}

impl Default for CimdConfig {
    fn default() -> Self {
        CimdConfig {
            enabled: true,
            documents_dir: None,
            max_document_bytes: 5 * 1024,
            fetch_timeout: Duration::from_secs(5),
            cache_entries: 1024,
            fetches_per_host_per_minute: 30,
            max_concurrent_fetches: 16,
            insecure_test_only_allow_loopback: false,
            insecure_test_only_ca_file: None,
        }
    }
}

/// Connection limits and shutdown timing.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Open connections at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Time a client gets to send a whole request head (slow-loris). hyper
    /// runs this clock while a keep-alive connection waits for its next
    /// request too, so it is also the idle keep-alive timeout; and a new
    /// connection that sends nothing at all is closed after it as well.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Time a client gets to send a whole request body once its head is
    /// in (a slow-loris on the body).
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// After SIGTERM: keep accepting (while /readyz fails) this long, so
    /// load balancers notice before the listener closes.
    #[serde(with = "humantime_serde")]
    pub drain_delay: Duration,
    /// Then in-flight requests get this long to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Where Prometheus scrapes `/metrics`: a port of its own, not behind
    /// the proxy. Unset: no metrics listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            drain_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            metrics_listen: None,
        }
    }
}

/// `[store]`: the single-use memory shared by replicas. Unset `url`: each
/// replica remembers on its own (`crate::store`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// `redis://host:port/db` or `rediss://…` (TLS); Valkey speaks the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file holding the password (a Kubernetes Secret), instead of one
    /// in the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// `url` is one node of a Redis (or Valkey) Cluster; the others are
    /// found from it.
    pub cluster: bool,
    /// For `rediss://`: the CA certificates (PEM) that sign the store's
    /// certificate, trusted instead of the system's (a managed Redis with
    /// a private CA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Prepended to every key, so that several deployments can share one
    /// database.
    pub key_prefix: String,
    /// The longest a token request waits on the store before it answers
    /// 503 `temporarily_unavailable`.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: None,
            password_file: None,
            cluster: false,
            ca_file: None,
            key_prefix: "mcpgate:".into(),
            timeout: Duration::from_millis(500),
        }
    }
}

/// Where the config came from, for logs and `config check`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    EmbeddedDev,
}

impl std::fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigSource::File(p) => write!(f, "{}", p.display()),
            ConfigSource::EmbeddedDev => f.write_str("the embedded dev config"),
        }
    }
}

impl Config {
    /// Resolves which file to read: the explicit `--config`, else
    /// `config/mcpgate.toml` when present, else the embedded dev config.
    pub fn source_for(explicit: Option<&Path>) -> ConfigSource {
        match explicit {
            Some(p) => ConfigSource::File(p.to_path_buf()),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
                ConfigSource::File(PathBuf::from(DEFAULT_CONFIG_PATH))
            }
            None => ConfigSource::EmbeddedDev,
        }
    }

    pub fn load(source: &ConfigSource) -> Result<Config, String> {
        Effective::load(source).map(|e| e.config)
    }
}

/// The prefix of the environment variables that override the config.
const ENV_PREFIX: &str = "MCPGATE_";

/// A loaded config and the layers it came from, which remember what
/// operators wrote: `config check` echoes durations as written (`30d`,
/// not humantime's `30days`).
pub(crate) struct Effective {
    pub(crate) config: Config,
    figment: Figment,
    env_prefix: String,
}

impl Effective {
    pub(crate) fn load(source: &ConfigSource) -> Result<Effective, String> {
        Self::load_with_env(source, ENV_PREFIX)
    }

    fn load_with_env(source: &ConfigSource, env_prefix: &str) -> Result<Effective, String> {
        let base = Figment::from(Serialized::defaults(Config::default()));
        let figment = match source {
            ConfigSource::File(path) => {
                if !path.is_file() {
                    return Err(format!("config file {} does not exist", path.display()));
                }
                base.merge(Toml::file_exact(path))
            }
            ConfigSource::EmbeddedDev => base.merge(Toml::string(DEV_CONFIG)),
        };
        let env = Env::prefixed(env_prefix)
            .filter(|k| !is_kubernetes_service_link(k.as_str()))
            .split("__");
        let figment = figment.merge(env);
        let config = figment
            .extract::<Config>()
            .map_err(|e| describe_figment_error(e, source, env_prefix))?;
        Ok(Effective {
            config,
            figment,
            env_prefix: env_prefix.to_owned(),
        })
    }

    /// A validation error (`key: what`), naming the environment variable
    /// too when the key's value came from one.
    pub(crate) fn locate(&self, error: &str) -> String {
        let Some((key, what)) = error.split_once(": ") else {
            return error.to_owned();
        };
        if key.contains(' ') {
            return error.to_owned();
        }
        // A list comes from one place as a whole: look its key up.
        let path: Vec<&str> = key.split('[').next().unwrap_or(key).split('.').collect();
        let from_env = self
            .figment
            .find_metadata(&path.join("."))
            .is_some_and(is_environment);
        if from_env {
            format!("{} ({key}): {what}", env_var_name(&self.env_prefix, &path))
        } else {
            error.to_owned()
        }
    }

    /// `config` (a possibly redacted copy of this one) as TOML, each
    /// duration as the operator wrote it.
    pub(crate) fn render(&self, config: &Config) -> Result<String, String> {
        let rendered = toml::to_string_pretty(config).map_err(|e| e.to_string())?;
        let mut table = String::new();
        let mut out = String::with_capacity(rendered.len());
        for line in rendered.lines() {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                // `[[hosts]]` entries hold no durations: no path into them.
                table = if name.starts_with('[') {
                    String::new()
                } else {
                    format!("{name}.")
                };
            } else if let Some(written) = self.written_duration(&table, line) {
                out.push_str(&written);
                out.push('\n');
                continue;
            }
            out.push_str(line);
            out.push('\n');
        }
        Ok(out)
    }

    /// `line` (`key = "…"` inside `table`) with the duration as written,
    /// when its value is a duration written another way.
    fn written_duration(&self, table: &str, line: &str) -> Option<String> {
        let (key, value) = line.split_once(" = ")?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let shown = value.strip_prefix('"')?.strip_suffix('"')?;
        let figment::value::Value::String(_, written) =
            self.figment.find_value(&format!("{table}{key}")).ok()?
        else {
            return None;
        };
        let same = humantime::parse_duration(written.trim()).ok()?
            == humantime::parse_duration(shown).ok()?;
        (same && written != shown)
            .then(|| format!("{key} = {}", toml::Value::String(written.trim().to_owned())))
    }
}

/// Kubernetes injects `MCPGATE_SERVICE_HOST`, `MCPGATE_PORT_8080_TCP`…
/// into pods next to a Service named `mcpgate`: they are not config.
fn is_kubernetes_service_link(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k == "port"
        || k.starts_with("port_")
        || k.starts_with("service_host")
        || k.starts_with("service_port")
}

/// A key path in the notation the settings errors use: `hosts[1].issuer`.
pub(crate) fn key_path<S: AsRef<str>>(path: &[S]) -> String {
    let mut out = String::new();
    for seg in path {
        let seg = seg.as_ref();
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

/// The environment variable that sets `path`: `MCPGATE_TOKENS__ACCESS_TTL`.
/// A list is set whole, so the variable stops at the first index.
fn env_var_name<S: AsRef<str>>(prefix: &str, path: &[S]) -> String {
    let levels: Vec<String> = path
        .iter()
        .map(AsRef::as_ref)
        .take_while(|seg| seg.parse::<usize>().is_err())
        .map(str::to_ascii_uppercase)
        .collect();
    format!("{prefix}{}", levels.join("__"))
}

/// The candidate nearest to `word` when it is a plausible misspelling
/// (an edit distance of at most a third of its length, and at least 1),
/// or else the one it abbreviates (`redirect` for `redirect_uris`).
pub(crate) fn did_you_mean<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let near = candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c);
    near.or_else(|| {
        let word = word.to_ascii_lowercase();
        let mut longer = candidates
            .iter()
            .filter(|c| word.len() >= 4 && c.starts_with(word.as_str()));
        match (longer.next(), longer.next()) {
            (Some(one), None) => Some(*one),
            _ => None,
        }
    })
}

/// Whether a value came from the `MCPGATE_*` environment variables.
fn is_environment(m: &figment::Metadata) -> bool {
    m.source.is_none() && m.name.contains("environment variable")
}

/// Levenshtein distance, by characters, case-insensitively.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn describe_figment_error(err: figment::Error, source: &ConfigSource, env_prefix: &str) -> String {
    let lines: Vec<String> = err
        .into_iter()
        .map(|e| describe_one(&e, env_prefix))
        .collect();
    match lines.as_slice() {
        [one] => format!("invalid config ({source}): {one}"),
        _ => format!("invalid config ({source}):\n  {}", lines.join("\n  ")),
    }
}

/// One error: where (the key, and the variable when the value came from
/// the environment), then what is wrong.
fn describe_one(e: &figment::Error, env_prefix: &str) -> String {
    use figment::error::Kind;
    let from_env = e.metadata.as_ref().is_some_and(is_environment);
    let name = |path: &[&str]| {
        if from_env {
            format!("{} ({})", env_var_name(env_prefix, path), key_path(path))
        } else {
            key_path(path)
        }
    };
    let path: Vec<&str> = e.path.iter().map(String::as_str).collect();
    let list = |names: &[&str]| {
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let place = if path.is_empty() {
        String::new()
    } else {
        name(&path)
    };
    let what = match &e.kind {
        Kind::UnknownField(field, expected) => {
            // The path ends with the unknown key itself.
            let parent = &path[..path.len().saturating_sub(1)];
            let suggestion = match did_you_mean(field, expected) {
                // A variable names the key itself, unless the key is
                // inside a list (`MCPGATE_HOSTS` sets all of them).
                Some(near) if from_env && parent.iter().all(|p| p.parse::<usize>().is_err()) => {
                    let mut p = parent.to_vec();
                    p.push(near);
                    format!("; did you mean {}?", env_var_name(env_prefix, &p))
                }
                Some(near) => format!("; did you mean `{near}`?"),
                None => String::new(),
            };
            let within = if parent.is_empty() {
                String::from("the top level")
            } else {
                format!("`{}`", key_path(parent))
            };
            format!(
                "unknown key{suggestion} ({within} takes {})",
                list(expected)
            )
        }
        Kind::UnknownVariant(value, expected) => {
            let suggestion = did_you_mean(value, expected)
                .map(|near| format!("; did you mean \"{near}\"?"))
                .unwrap_or_default();
            format!(
                "\"{value}\" is not one of {}{suggestion}",
                expected
                    .iter()
                    .map(|n| format!("\"{n}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        Kind::MissingField(field) => {
            let mut p = path.clone();
            p.push(field);
            return format!("{}: missing", name(&p));
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    };
    if place.is_empty() {
        what
    } else {
        format!("{place}: {what}")
    }
}

/// Serde adapter for durations written as `"60s"`, `"1h"`, `"30d"`.
pub(crate) mod humantime_serde {
    use serde::de::{Error, Visitor};
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    /// In the largest whole unit, as operators write them (`"30d"`, not
    /// humantime's `"30days"`); a written value is echoed as written
    /// (`Effective::render`).
    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::clock::duration_text(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        d.deserialize_any(DurationVisitor)
    }

    struct DurationVisitor;

    /// A number is the likeliest mistake (`rescan = 30`): say what to write.
    fn unitless<E: Error>(n: impl std::fmt::Display) -> E {
        E::custom(crate::clock::unitless(n))
    }

    impl Visitor<'_> for DurationVisitor {
        type Value = Duration;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a duration such as \"30s\"")
        }

        fn visit_str<E: Error>(self, s: &str) -> Result<Duration, E> {
            crate::clock::parse_duration(s).map_err(E::custom)
        }

        fn visit_u64<E: Error>(self, n: u64) -> Result<Duration, E> {
            Err(unitless(n))
        }

        fn visit_i64<E: Error>(self, n: i64) -> Result<Duration, E> {
            Err(unitless(n))
        }

        fn visit_f64<E: Error>(self, n: f64) -> Result<Duration, E> {
            Err(unitless(n))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Effective::load_with_env(&ConfigSource::EmbeddedDev, "MCPGATE_TEST_NOTHING_")
            .map(|_| ());
        assert!(err.is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[identity]\nallowed_domain = [\"x\"]\n").unwrap();
        let err = Effective::load_with_env(&ConfigSource::File(path), "MCPGATE_TEST_NOTHING_")
            .map(|_| ())
            .unwrap_err();
        assert!(err.contains("allowed_domain"), "{err}");
    }

    #[test]
    fn durations_parse_from_strings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[tokens]\naccess_ttl = \"15m\"\nrefresh_ttl = \"30d\"\n",
        )
        .unwrap();
        let c = Effective::load_with_env(&ConfigSource::File(path), "MCPGATE_TEST_NOTHING_")
            .unwrap()
            .config;
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(c.tokens.refresh_ttl, Duration::from_secs(30 * 86400));
        assert_eq!(c.tokens.code_ttl, Duration::from_secs(60));
    }

    #[test]
    fn environment_overrides_the_file_with_double_underscore_levels() {
        // A prefix of its own, so parallel tests never see this variable.
        std::env::set_var(
            "MCPGATE_T_ENV_IDENTITY__ALLOWED_DOMAINS",
            "[\"corp.example\"]",
        );
        std::env::set_var("MCPGATE_T_ENV_TOKENS__ACCESS_TTL", "5m");
        let c = Effective::load_with_env(&ConfigSource::EmbeddedDev, "MCPGATE_T_ENV_")
            .unwrap()
            .config;
        assert_eq!(c.identity.allowed_domains, vec!["corp.example".to_string()]);
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(300));
    }
    /// The dev config with `edit` applied, loaded from a file.
    fn load_file(edit: impl FnOnce(&str) -> String, env_prefix: &str) -> Result<Effective, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, edit(DEV_CONFIG)).unwrap();
        Effective::load_with_env(&ConfigSource::File(path), env_prefix)
    }

    #[test]
    fn near_misses_get_a_suggestion_and_far_ones_none() {
        let near = did_you_mean("acess_ttl", &["access_ttl", "code_ttl"]);
        assert_eq!(near, Some("access_ttl"));
        assert_eq!(
            did_you_mean("rotation", &["dir", "rescan", "deny_file"]),
            None
        );
        let host_keys = ["issuer", "redirect_uris"];
        assert_eq!(did_you_mean("redirect", &host_keys), Some("redirect_uris"));
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            key_path(&["hosts", "1", "redirect_uris", "0"]),
            "hosts[1].redirect_uris[0]"
        );
        assert_eq!(
            env_var_name("MCPGATE_", &["hosts", "0", "issuer"]),
            "MCPGATE_HOSTS"
        );
    }

    #[test]
    fn errors_name_the_key_in_one_notation_and_suggest() {
        let err = load_file(
            |c| format!("{c}\n[tokens]\nacess_ttl = \"1h\"\n"),
            "MCPGATE_T_NONE_",
        )
        .map(|_| ())
        .unwrap_err();
        assert!(
            err.contains("tokens.acess_ttl: unknown key; did you mean `access_ttl`?"),
            "{err}"
        );
        assert!(!err.contains("`one of"), "{err}");
        let err = load_file(
            |c| format!("{c}\n[[hosts]]\nissuer = 3\n"),
            "MCPGATE_T_NONE_",
        )
        .map(|_| ())
        .unwrap_err();
        assert!(
            err.contains("): hosts[2].issuer: expected a string"),
            "{err}"
        );
        let err = load_file(
            |c| c.replace("[keys]\n", "[keys]\nrescan = 30\n"),
            "MCPGATE_T_NONE_",
        )
        .map(|_| ())
        .unwrap_err();
        assert!(
            err.contains("): keys.rescan: ") && err.contains("a duration such as \"30s\""),
            "{err}"
        );
    }

    #[test]
    fn errors_from_the_environment_name_the_variable() {
        std::env::set_var("MCPGATE_T_BAD_TOKENS__CODE_TTL", "soon");
        let err = Effective::load_with_env(&ConfigSource::EmbeddedDev, "MCPGATE_T_BAD_")
            .map(|_| ())
            .unwrap_err();
        assert!(
            err.contains("MCPGATE_T_BAD_TOKENS__CODE_TTL (tokens.code_ttl): `soon`"),
            "{err}"
        );
    }

    #[test]
    fn durations_are_echoed_as_written() {
        let e = load_file(
            |c| format!("{c}\n[tokens]\naccess_ttl = \"120m\"\nrefresh_ttl = \"2 days\"\n"),
            "MCPGATE_T_NONE_",
        )
        .unwrap();
        let text = e.render(&e.config).unwrap();
        assert!(text.contains("access_ttl = \"120m\"\n"), "{text}");
        assert!(text.contains("refresh_ttl = \"2 days\"\n"), "{text}");
        // Not written: the largest whole unit.
        assert!(text.contains("code_ttl = \"1m\"\n"), "{text}");
        assert!(text.contains("consent_ttl = \"30d\"\n"), "{text}");
    }
}

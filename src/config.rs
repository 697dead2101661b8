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
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Exact issuer URL (an origin: scheme, host, optional port).
    pub issuer: String,
    /// Redirect URI policy: `"loopback"`, `"prefix:<uri>"` or an exact URI.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
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
            ConfigSource::EmbeddedDev => f.write_str("embedded dev config"),
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
        Self::load_with_env(
            source,
            Env::prefixed("MCPGATE_")
                .filter(|k| !is_kubernetes_service_link(k.as_str()))
                .split("__"),
        )
    }

    fn load_with_env(source: &ConfigSource, env: Env) -> Result<Config, String> {
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
        figment
            .merge(env)
            .extract::<Config>()
            .map_err(|e| describe_figment_error(e, source))
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

fn describe_figment_error(err: figment::Error, source: &ConfigSource) -> String {
    let mut out = Vec::new();
    for e in err {
        let key = if e.path.is_empty() {
            String::new()
        } else {
            format!(" (key `{}`)", e.path.join("."))
        };
        let origin = e
            .metadata
            .as_ref()
            .map(|m| format!(" in {}", m.name))
            .unwrap_or_default();
        out.push(format!("{}{key}{origin}", e.kind));
    }
    format!("invalid config ({source}): {}", out.join("; "))
}

/// Serde adapter for durations written as `"60s"`, `"1h"`, `"30d"`.
pub(crate) mod humantime_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration like \"60s\", \"1h\" or \"30d\": {e}"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_an_error_naming_the_key() {
        let err = Config::load_with_env(
            &ConfigSource::EmbeddedDev,
            Env::prefixed("MCPGATE_TEST_NOTHING_").split("__"),
        )
        .map(|_| ());
        assert!(err.is_ok());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[identity]\nallowed_domain = [\"x\"]\n").unwrap();
        let err = Config::load_with_env(
            &ConfigSource::File(path),
            Env::prefixed("MCPGATE_TEST_NOTHING_").split("__"),
        )
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
        let c = Config::load_with_env(
            &ConfigSource::File(path),
            Env::prefixed("MCPGATE_TEST_NOTHING_").split("__"),
        )
        .unwrap();
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
        let c = Config::load_with_env(
            &ConfigSource::EmbeddedDev,
            Env::prefixed("MCPGATE_T_ENV_").split("__"),
        )
        .unwrap();
        assert_eq!(c.identity.allowed_domains, vec!["corp.example".to_string()]);
        assert_eq!(c.tokens.access_ttl, Duration::from_secs(300));
    }
}

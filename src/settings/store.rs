//! `[store]` validated: where single use is enforced.

use std::time::Duration;

use crate::config::StoreConfig;

/// Shortest and longest `store.timeout`: below 10 ms a healthy store on
/// another machine would time out; above 10 s a token request would
/// outwait every client.
const TIMEOUT_RANGE: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(10));

#[derive(Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// Each replica remembers on its own (`crate::store::memory`).
    Memory,
    /// Every replica shares one Redis or Valkey database.
    Redis(RedisSettings),
}

/// A shared store. `url` may hold a password: never logged or shown
/// (`Debug` leaves it out).
#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub url: String,
    /// From `store.password_file`; overrides one in the URL.
    pub password: Option<String>,
    /// From `store.ca_file` (PEM): the only roots trusted for `rediss://`.
    pub ca_pem: Option<Vec<u8>>,
    /// `store.cluster`: `url` is a seed node of a Redis Cluster.
    pub cluster: bool,
    pub key_prefix: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSettings::Memory => f.write_str("Memory"),
            StoreSettings::Redis(r) => f
                .debug_struct("Redis")
                .field("endpoint", &r.endpoint())
                .field("cluster", &r.cluster)
                .field("key_prefix", &r.key_prefix)
                .field("timeout", &r.timeout)
                .finish_non_exhaustive(),
        }
    }
}

impl RedisSettings {
    /// The URL without its credentials (user and password, and the query,
    /// where a `unix://` URL carries them), for logs and `config check`.
    pub fn endpoint(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => "<invalid url>".into(),
        }
    }
}

impl StoreSettings {
    pub(crate) fn from_config(c: &StoreConfig) -> Result<StoreSettings, String> {
        let Some(url) = c.url.as_deref() else {
            // The other keys mean nothing without a store: a forgotten or
            // misspelt url must not silently leave each replica on its own.
            let defaults = StoreConfig::default();
            let given = [
                ("password_file", c.password_file.is_some()),
                ("ca_file", c.ca_file.is_some()),
                ("cluster", c.cluster),
                ("key_prefix", c.key_prefix != defaults.key_prefix),
                ("timeout", c.timeout != defaults.timeout),
            ];
            if let Some((key, _)) = given.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "store.{key}: set store.url too (without it each replica remembers on its own, and store.{key} means nothing)"
                ));
            }
            return Ok(StoreSettings::Memory);
        };
        let url = url.trim();
        if url.is_empty() {
            return Err(
                "store.url: is empty; write redis://host:6379/0, or leave the key out for per-replica memory"
                    .into(),
            );
        }
        // Never echo the URL: it may carry a password.
        let parsed = url::Url::parse(url)
            .map_err(|e| format!("store.url: not a URL ({e}); write redis://host:6379/0"))?;
        match parsed.scheme() {
            "redis" | "rediss" | "valkey" | "valkeys" => {
                if parsed.host_str().map_or(true, str::is_empty) {
                    return Err("store.url: names no host; write redis://host:6379/0".into());
                }
            }
            "unix" | "redis+unix" | "valkey+unix" => {}
            other => {
                return Err(format!(
                    "store.url: scheme `{other}` is not redis://, rediss:// (TLS), valkey://, valkeys:// or unix://"
                ))
            }
        }
        // What the Redis client will make of it, checked now, so that
        // `config check` refuses what `serve` would. Its error may quote
        // the URL: say what is wrong without it.
        if redis::IntoConnectionInfo::into_connection_info(url).is_err() {
            return Err(
                "store.url: the Redis client does not take it: the database after the host must be a number (redis://host:6379/0), credentials go before the host (redis://user:password@host) or in store.password_file"
                    .into(),
            );
        }
        // A cluster has database 0 only (and no unix sockets).
        if c.cluster {
            if !matches!(parsed.scheme(), "redis" | "rediss" | "valkey" | "valkeys") {
                return Err("store.cluster: a cluster's seed node is redis://host:port".into());
            }
            if !matches!(parsed.path(), "" | "/" | "/0") {
                return Err("store.cluster: a Redis Cluster has database 0 only; write redis://host:port or redis://host:port/0".into());
            }
        }
        let password = match &c.password_file {
            None => None,
            Some(f) => {
                let raw = std::fs::read_to_string(f).map_err(|e| {
                    format!("store.password_file: cannot read {}: {e}", f.display())
                })?;
                let p = raw.trim_end_matches(['\r', '\n']);
                if p.is_empty() {
                    return Err(format!("store.password_file: {} is empty", f.display()));
                }
                Some(p.to_owned())
            }
        };
        // `{` and `}` would change which part of a key Redis Cluster
        // hashes (`crate::store::redis` tags the id).
        if c.key_prefix.contains(['{', '}']) {
            return Err(format!(
                "store.key_prefix: `{}` must not contain `{{` or `}}` (Redis Cluster hash tags)",
                c.key_prefix
            ));
        }
        let ca_pem = match &c.ca_file {
            None => None,
            Some(_) if !matches!(parsed.scheme(), "rediss" | "valkeys") => {
                return Err("store.ca_file: only for TLS (rediss:// or valkeys://)".into())
            }
            Some(f) => Some(super::ca_file::read("store.ca_file", f)?.0),
        };
        let (min, max) = TIMEOUT_RANGE;
        if c.timeout < min || c.timeout > max {
            return Err(format!(
                "store.timeout: {} is outside {}..={}",
                crate::clock::duration_text(c.timeout),
                crate::clock::duration_text(min),
                crate::clock::duration_text(max)
            ));
        }
        Ok(StoreSettings::Redis(RedisSettings {
            url: url.to_owned(),
            password,
            ca_pem,
            cluster: c.cluster,
            key_prefix: c.key_prefix.clone(),
            timeout: c.timeout,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> StoreConfig {
        StoreConfig {
            url: Some(url.into()),
            ..StoreConfig::default()
        }
    }

    #[test]
    fn unset_url_is_the_memory_store() {
        assert_eq!(
            StoreSettings::from_config(&StoreConfig::default()),
            Ok(StoreSettings::Memory)
        );
    }

    #[test]
    fn a_redis_url_is_taken_and_its_password_never_shown() {
        let s = StoreSettings::from_config(&config("redis://:hunter2@10.0.0.5:6379/2")).unwrap();
        let StoreSettings::Redis(r) = &s else {
            panic!("not redis")
        };
        assert_eq!(r.endpoint(), "redis://10.0.0.5:6379/2");
        let s = StoreSettings::from_config(&config("unix:///run/redis.sock?pass=LeakMe123&db=0"))
            .unwrap();
        let StoreSettings::Redis(r) = &s else {
            panic!("not redis")
        };
        assert_eq!(r.endpoint(), "unix:///run/redis.sock");
        assert!(!format!("{s:?}").contains("LeakMe"));
        assert_eq!(r.timeout, Duration::from_millis(500));
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn bad_values_name_their_key_and_never_echo_the_url() {
        for (url, want) in [
            ("http://10.0.0.5:6379", "store.url: scheme `http`"),
            ("redis:secret@host", "store.url"),
            ("not a url :pw@", "store.url: not a URL"),
        ] {
            let e = StoreSettings::from_config(&config(url)).unwrap_err();
            assert!(e.starts_with(want), "{url}: {e}");
            assert!(!e.contains("secret") && !e.contains(":pw"), "{e}");
        }
        let e = StoreSettings::from_config(&StoreConfig {
            key_prefix: "{x}".into(),
            ..config("redis://h")
        })
        .unwrap_err();
        assert!(e.starts_with("store.key_prefix"), "{e}");
        let e = StoreSettings::from_config(&StoreConfig {
            timeout: Duration::from_secs(60),
            ..config("redis://h")
        })
        .unwrap_err();
        assert_eq!(e, "store.timeout: 1m is outside 10ms..=10s");
        let e = StoreSettings::from_config(&StoreConfig {
            password_file: Some("/nonexistent/pw".into()),
            ..StoreConfig::default()
        })
        .unwrap_err();
        assert!(e.starts_with("store.password_file: set store.url"), "{e}");
        for (c, key) in [
            (
                StoreConfig {
                    key_prefix: "x{".into(),
                    ..StoreConfig::default()
                },
                "store.key_prefix",
            ),
            (
                StoreConfig {
                    timeout: Duration::from_secs(5),
                    ..StoreConfig::default()
                },
                "store.timeout",
            ),
        ] {
            let e = StoreSettings::from_config(&c).unwrap_err();
            assert!(e.starts_with(&format!("{key}: set store.url")), "{e}");
        }
        for empty in ["", "   "] {
            let e = StoreSettings::from_config(&config(empty)).unwrap_err();
            assert!(e.starts_with("store.url: is empty"), "{e}");
        }
        let e = StoreSettings::from_config(&StoreConfig {
            cluster: true,
            ..config("redis://h:6379/2")
        })
        .unwrap_err();
        assert!(
            e.starts_with("store.cluster: a Redis Cluster has database 0 only"),
            "{e}"
        );
        let e = StoreSettings::from_config(&StoreConfig {
            cluster: true,
            ..StoreConfig::default()
        })
        .unwrap_err();
        assert!(e.starts_with("store.cluster: set store.url too"), "{e}");
        for bad in ["redis://h:6379/abc", "redis://h:6379/0/1"] {
            let e = StoreSettings::from_config(&config(bad)).unwrap_err();
            assert!(
                e.starts_with("store.url: the Redis client does not take it"),
                "{bad}: {e}"
            );
        }
        let e = StoreSettings::from_config(&StoreConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..config("redis://h")
        })
        .unwrap_err();
        assert_eq!(e, "store.ca_file: only for TLS (rediss:// or valkeys://)");
        let e = StoreSettings::from_config(&StoreConfig {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..config("rediss://h")
        })
        .unwrap_err();
        assert!(
            e.starts_with("store.ca_file: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        let not_pem = std::env::temp_dir().join(format!("mcpgate-not-pem-{}", std::process::id()));
        std::fs::write(&not_pem, "not a certificate").unwrap();
        let e = StoreSettings::from_config(&StoreConfig {
            ca_file: Some(not_pem.clone()),
            ..config("rediss://h")
        })
        .unwrap_err();
        std::fs::remove_file(&not_pem).unwrap();
        assert!(e.ends_with("holds no certificate"), "{e}");
    }
}

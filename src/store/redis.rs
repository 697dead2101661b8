//! The shared store: Redis or Valkey (`[store] url`).
//!
//! Every replica asks the same database, so single use is exact across
//! replicas:
//!
//! - a code or consent form is claimed with `SET key 1 NX PX ttl`: the one
//!   request that creates the key wins, every other sees it exists;
//! - a refresh family is a hash `{gen, at, revoked}` read and written by
//!   one Lua script ([`ROTATE`]), which Redis runs atomically: exactly one
//!   rotation of a generation wins, the replaced one is honoured again
//!   within `tokens.refresh_grace`, and reuse after that marks the family
//!   revoked for every replica.
//!
//! One round trip per token request (the script is sent by its SHA; its
//! body only once per connection that has not seen it). Keys are
//! `<key_prefix><kind>:{<id>}`: the id is a hash tag, so each key (and the
//! script's one key) lives in one Redis Cluster slot. Every key expires on
//! its own, [`SKEW`] after what it guards can no longer be presented.
//!
//! Failures never block: each call gives up after `store.timeout` and the
//! caller answers 503. The connection is made on first use and remade
//! after a failure by redis-rs' `ConnectionManager`, so a replica starts
//! while the store is down and recovers without a restart.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::io::tcp::TcpSettings;
use redis::{IntoConnectionInfo, RedisResult};
use tokio::sync::OnceCell;

use super::outage::Health;
use super::{Once, Reused, StoreError};
use crate::settings::RedisSettings;

/// Kept past a key's last use: a replica whose clock runs behind may still
/// accept a code or refresh token this long after the others refuse it.
const SKEW: u64 = 30;

/// How often an idle replica checks the store, so that `/readyz` and
/// `mcpgate_store_up` are current without token traffic.
const PING_EVERY: Duration = Duration::from_secs(2);

/// Unacknowledged data this long ends a connection (`TCP_USER_TIMEOUT`).
const DEAD_CONNECTION: Duration = Duration::from_secs(10);

/// KEYS[1]: the family. ARGV: presented generation, now (s), grace (s),
/// the key's lifetime (ms). Returns 1: rotate; 0: reuse (family revoked).
/// The same rules as `refresh_ledger::RefreshLedger::rotate`.
const ROTATE: &str = r"
local f = redis.call('HMGET', KEYS[1], 'gen', 'at', 'revoked')
local presented = tonumber(ARGV[1])
local now = tonumber(ARGV[2])
if f[3] == '1' then return 0 end
if f[1] then
  local gen = tonumber(f[1])
  if presented < gen then
    local since = now - tonumber(f[2])
    if since < 0 then since = 0 end
    if presented + 1 == gen and since < tonumber(ARGV[3]) then return 1 end
    redis.call('HSET', KEYS[1], 'revoked', '1')
    return 0
  end
end
redis.call('HSET', KEYS[1], 'gen', presented + 1, 'at', now)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

pub(crate) struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    /// Made on first use; `ConnectionManager` reconnects by itself after.
    manager: OnceCell<ConnectionManager>,
    key_prefix: String,
    timeout: Duration,
    rotate: redis::Script,
    health: Health,
    endpoint: String,
}

impl RedisStore {
    /// Opens no connection yet (see the module doc).
    pub(super) fn new(settings: &RedisSettings) -> Result<RedisStore, String> {
        let endpoint = settings.endpoint();
        // The error is the crate's; it may quote the URL, which may hold
        // a password: say what is wrong without it.
        let mut info = settings
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("store.url: not a Redis URL ({:?})", e.kind()))?;
        if let Some(p) = &settings.password {
            info.redis.password = Some(p.clone());
        }
        let client = match &settings.ca_pem {
            None => redis::Client::open(info),
            Some(pem) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            ),
        }
        .map_err(|e| format!("store.url, store.ca_file: cannot use them ({:?})", e.kind()))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                manager: OnceCell::new(),
                key_prefix: settings.key_prefix.clone(),
                timeout: settings.timeout,
                rotate: redis::Script::new(ROTATE),
                health: Health::new(endpoint.clone()),
                endpoint,
            }),
        })
    }

    pub(super) fn health(&self) -> &Health {
        &self.inner.health
    }

    /// The URL without credentials.
    pub(super) fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    pub(super) async fn first_use(
        &self,
        kind: Once,
        id: &str,
        exp: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        let key = self.inner.key(kind.label(), id);
        let ttl_ms = (exp.saturating_sub(now) + SKEW) * 1000;
        let created: Option<String> = self
            .inner
            .call(kind.label(), |mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(created.is_some())
    }

    pub(super) async fn rotate(
        &self,
        family: &str,
        presented: u32,
        family_exp: u64,
        now: u64,
        grace: u64,
    ) -> Result<Result<(), Reused>, StoreError> {
        let key = self.inner.key("refresh", family);
        let ttl_ms = (family_exp.saturating_sub(now) + SKEW) * 1000;
        let inner = &self.inner;
        let rotated: i64 = inner
            .call("refresh", |mut c| async move {
                inner
                    .rotate
                    .key(&key)
                    .arg(presented)
                    .arg(now)
                    .arg(grace)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(if rotated == 1 { Ok(()) } else { Err(Reused) })
    }

    /// Pings the store every [`PING_EVERY`], for ever.
    pub(super) fn monitor(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let mut tick = tokio::time::interval(PING_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut first = true;
            loop {
                tick.tick().await;
                let pong = inner
                    .call("ping", |mut c| async move {
                        redis::cmd("PING").query_async::<String>(&mut c).await
                    })
                    .await;
                if std::mem::take(&mut first) && pong.is_ok() {
                    tracing::info!(store = %inner.endpoint, "store reachable");
                }
            }
        }
    }
}

impl Inner {
    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{{{id}}}", self.key_prefix)
    }

    /// The connection, made now if there is none yet.
    async fn connection(&self) -> RedisResult<ConnectionManager> {
        self.manager
            .get_or_try_init(|| {
                // One attempt per call (the caller's timeout bounds it); a
                // later call tries again.
                let config = ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(self.timeout)
                    .set_response_timeout(self.timeout)
                    .set_tcp_settings(
                        TcpSettings::default()
                            // Commands from concurrent requests share the
                            // connection: none waits for an ACK (Nagle).
                            .set_nodelay(true)
                            // A store that vanished without a reset (a
                            // partition, a replaced host) fails the
                            // connection after this, rather than after the
                            // kernel's ~15 minutes of retransmissions; the
                            // manager then reconnects. The pings keep data
                            // in flight, so an idle replica notices too.
                            .set_user_timeout(DEAD_CONNECTION),
                    );
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
    }

    /// Runs `f` on the connection within `store.timeout`, keeping
    /// [`Health`] current. `op` names the call in metrics.
    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let attempt = async { f(self.connection().await?).await };
        match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok(v)) => {
                self.health.succeeded();
                Ok(v)
            }
            Ok(Err(e)) => {
                self.health.failed(op, &e);
                Err(StoreError::Unavailable)
            }
            Err(_) => {
                self.health
                    .failed(op, &format_args!("no answer within {:?}", self.timeout));
                Err(StoreError::Unavailable)
            }
        }
    }
}

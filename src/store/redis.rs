//! The shared store: Redis or Valkey (`[store] url`).
//!
//! Every replica asks the same database, so single use is exact across
//! replicas. Each request is one Lua script, which Redis runs atomically
//! (one round trip; the body is sent once per connection, then its SHA):
//!
//! - [`CLAIM`]: a code, consent form or client assertion is claimed by
//!   creating its key; the one request that creates it wins, every other
//!   sees it exists;
//! - [`ROTATE`]: a refresh family is a hash `{gen, at, revoked, by}`:
//!   exactly one rotation of a generation wins, the replaced one is
//!   honoured again within `tokens.refresh_grace`, and reuse after that
//!   marks the family revoked for every replica.
//!
//! # A request that gave up takes no effect
//!
//! A token request waits `store.timeout` and then answers 503, promising
//! the client that nothing was used. But a command already sent still runs
//! when a store that hung (not died) resumes: the code would be burnt, the
//! family rotated or revoked. So every script carries a deadline in the
//! store's own clock and does nothing past it ([`DEADLINE`]): the
//! request's start plus the timeout, less a tenth for the answer's way
//! back, translated by the offset between this replica's clock and the
//! store's, which every answer measures (each script returns the store's
//! `TIME`). Until the first answer the offset is unknown and no deadline
//! is sent. Time rules inside the scripts (the grace window) use the
//! store's clock too, so replicas' clocks need not agree.
//!
//! # Retried once, never applied twice
//!
//! A request whose connection broke (a store restart) is retried once on
//! the reconnected connection, within the same timeout. Each request
//! carries a random nonce that the script records (`SET key nonce`, the
//! family's `by`): a retry of a request that did run is recognized as
//! itself, not as a second use.
//!
//! Keys are `<key_prefix><kind>:{<id>}`: the id is a hash tag, so each
//! key (and the one key each script touches) has one Redis Cluster slot.
//! Every key expires on its own, [`SKEW`] after what it guards can no
//! longer be presented.
//!
//! Failures never block: each call gives up after `store.timeout` and the
//! caller answers 503. The connection is made on first use and remade
//! after a failure by redis-rs (its `ConnectionManager`, or its cluster
//! connection with `store.cluster`), so a replica starts
//! while the store is down and recovers without a restart.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use tokio::sync::OnceCell;

use super::outage::{Failure, Health};
use super::{Once, Reused, StoreError};
use crate::clock::unix_ms;
use crate::random::random_id;
use crate::settings::RedisSettings;

/// Kept past a key's last use: a replica whose clock runs behind may still
/// accept a code or refresh token this long after the others refuse it.
const SKEW: u64 = 30;

/// How often an idle replica checks the store with a write, so that
/// `/readyz` and `mcpgate_store_up` are current without token traffic, and
/// a store that answers but refuses writes (out of memory, read-only
/// after a failover, no permission) shows as down.
const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Unacknowledged data this long ends a connection (`TCP_USER_TIMEOUT`).
const DEAD_CONNECTION: Duration = Duration::from_secs(10);

/// The start of every script: effects replication (needed on Redis 5 and
/// 6 to write after `TIME`; the default, and a no-op, since 7), the
/// store's time in ms, and `ARGV[1]`, the deadline in that time (0: none).
/// Past it the script returns `{-1, now}` and writes nothing.
const DEADLINE: &str = r"
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = tonumber(ARGV[1])
if deadline > 0 and now_ms > deadline then return {-1, now_ms} end
";

/// KEYS[1]: the id's key. ARGV: deadline, nonce, the key's lifetime (ms).
/// Returns `{1, now}` for the first use (or this request's retry), `{0,
/// now}` when another request used it.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[2] then return {1, now_ms} end
if v then return {0, now_ms} end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return {1, now_ms}
";

/// KEYS[1]: the family. ARGV: deadline, nonce, presented generation,
/// grace (s), the key's lifetime (ms). Returns `{1, now}`: rotate; `{0,
/// now}`: reuse (the family is revoked). The rules of
/// `refresh_ledger::RefreshLedger::rotate`, in the store's clock.
const ROTATE: &str = r"
local now = math.floor(now_ms / 1000)
local f = redis.call('HMGET', KEYS[1], 'gen', 'at', 'revoked', 'by')
local presented = tonumber(ARGV[3])
if f[3] == '1' then return {0, now_ms} end
if f[1] then
  local gen = tonumber(f[1])
  if presented < gen then
    if presented + 1 == gen and (f[4] == ARGV[2] or now - tonumber(f[2]) < tonumber(ARGV[4])) then
      return {1, now_ms}
    end
    redis.call('HSET', KEYS[1], 'revoked', '1')
    return {0, now_ms}
  end
end
redis.call('HSET', KEYS[1], 'gen', presented + 1, 'at', now, 'by', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, now_ms}
";

/// KEYS[1]: this replica's probe key. Writes it (for 10 s), as a token
/// request would write.
const PROBE: &str = r"
redis.call('SET', KEYS[1], '1', 'PX', 10000)
return {1, now_ms}
";

pub(crate) struct RedisStore {
    inner: Arc<Inner>,
}

/// How this replica reaches the store.
enum Client {
    Single(redis::Client),
    /// `store.cluster`: a seed node; the client learns the slot map and
    /// follows MOVED/ASK redirections.
    Cluster(ClusterClient),
}

/// A connection to either: both reconnect by themselves after a failure
/// (`ConnectionManager`; the cluster connection per node).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

struct Inner {
    client: Client,
    /// Made on first use, then reconnecting by itself.
    conn: OnceCell<Conn>,
    key_prefix: String,
    timeout: Duration,
    claim: redis::Script,
    rotate: redis::Script,
    probe: redis::Script,
    /// This replica's probe key.
    probe_key: String,
    /// The store's clock minus this replica's, in ms, from the last answer.
    offset_ms: AtomicI64,
    offset_known: AtomicBool,
    health: Health,
    endpoint: String,
}

/// What a script answered: `{1 | 0 | -1, the store's time in ms}`.
type Answer = Vec<i64>;

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
        let certificates = settings.ca_pem.as_ref().map(|pem| redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        });
        let client = if settings.cluster {
            let mut b = ClusterClientBuilder::new(vec![info])
                // One attempt per call: the caller's timeout bounds it.
                .retries(0)
                .connection_timeout(settings.timeout)
                .response_timeout(settings.timeout)
                .tcp_settings(tcp_settings());
            if let Some(c) = certificates {
                b = b.certs(c);
            }
            b.build().map(Client::Cluster)
        } else {
            match certificates {
                None => redis::Client::open(info),
                Some(c) => redis::Client::build_with_tls(info, c),
            }
            .map(Client::Single)
        }
        .map_err(|e| format!("store.url, store.ca_file: cannot use them ({:?})", e.kind()))?;
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                conn: OnceCell::new(),
                key_prefix: settings.key_prefix.clone(),
                timeout: settings.timeout,
                claim: redis::Script::new(&format!("{DEADLINE}{CLAIM}")),
                rotate: redis::Script::new(&format!("{DEADLINE}{ROTATE}")),
                probe: redis::Script::new(&format!("{DEADLINE}{PROBE}")),
                probe_key: format!("{}probe:{{{}}}", settings.key_prefix, random_id()),
                offset_ms: AtomicI64::new(0),
                offset_known: AtomicBool::new(false),
                health: Health::new(endpoint.clone()),
                endpoint,
            }),
        })
    }

    pub(super) fn health(&self) -> &Health {
        &self.inner.health
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
        let nonce = random_id();
        let inner = &self.inner;
        let used = inner
            .call(kind.label(), |mut c, deadline| {
                let (key, nonce) = (&key, &nonce);
                async move {
                    inner
                        .claim
                        .key(key)
                        .arg(deadline)
                        .arg(nonce)
                        .arg(ttl_ms)
                        .invoke_async::<Answer>(&mut c)
                        .await
                }
            })
            .await?;
        Ok(used == 1)
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
        let nonce = random_id();
        let inner = &self.inner;
        let rotated = inner
            .call("refresh", |mut c, deadline| {
                let (key, nonce) = (&key, &nonce);
                async move {
                    inner
                        .rotate
                        .key(key)
                        .arg(deadline)
                        .arg(nonce)
                        .arg(presented)
                        .arg(grace)
                        .arg(ttl_ms)
                        .invoke_async::<Answer>(&mut c)
                        .await
                }
            })
            .await?;
        Ok(if rotated == 1 { Ok(()) } else { Err(Reused) })
    }

    /// Probes the store every [`PROBE_EVERY`], for ever; at the first
    /// answer, warns if the store may evict keys.
    pub(super) fn monitor(&self) -> impl Future<Output = ()> + Send + 'static {
        let inner = self.inner.clone();
        async move {
            let mut tick = tokio::time::interval(PROBE_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut first = true;
            loop {
                tick.tick().await;
                let probe = inner
                    .call("probe", |mut c, deadline| {
                        let inner = &inner;
                        async move {
                            inner
                                .probe
                                .key(&inner.probe_key)
                                .arg(deadline)
                                .invoke_async::<Answer>(&mut c)
                                .await
                        }
                    })
                    .await;
                if probe.is_ok() && std::mem::take(&mut first) {
                    tracing::info!(store = %inner.endpoint, "store reachable");
                    inner.check_eviction_policy().await;
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
    async fn connection(&self) -> RedisResult<Conn> {
        self.conn
            .get_or_try_init(|| async {
                match &self.client {
                    Client::Single(client) => {
                        // One attempt per call (the caller's timeout bounds
                        // it); a later call tries again.
                        let config = ConnectionManagerConfig::new()
                            .set_number_of_retries(0)
                            .set_connection_timeout(self.timeout)
                            .set_response_timeout(self.timeout)
                            .set_tcp_settings(tcp_settings());
                        ConnectionManager::new_with_config(client.clone(), config)
                            .await
                            .map(Conn::Single)
                    }
                    Client::Cluster(client) => {
                        client.get_async_connection().await.map(Conn::Cluster)
                    }
                }
            })
            .await
            .cloned()
    }

    /// Runs `f` (given the connection and the deadline for its script)
    /// within `store.timeout`, retrying once on a broken connection, and
    /// keeps [`Health`] and the clock offset current. `op` names the call
    /// in metrics. Returns the script's first number, 1 or 0.
    async fn call<F, Fut>(&self, op: &'static str, f: F) -> Result<i64, StoreError>
    where
        F: Fn(Conn, i64) -> Fut,
        Fut: Future<Output = RedisResult<Answer>>,
    {
        let started_ms = unix_ms();
        let deadline = self.deadline(started_ms);
        let attempt = async {
            let mut retried = false;
            loop {
                let sent_ms = unix_ms();
                let answer = match self.connection().await {
                    Ok(c) => f(c, deadline).await,
                    Err(e) => Err(e),
                };
                match answer {
                    Ok(a) => return Ok((a, sent_ms, unix_ms())),
                    // Safe to repeat: the nonce makes a second run of a
                    // script that did run answer as the first.
                    Err(e) if !retried && broke_connection(&e) => retried = true,
                    Err(e) => return Err(e),
                }
            }
        };
        let failure = match tokio::time::timeout(self.timeout, attempt).await {
            Ok(Ok((answer, sent_ms, received_ms))) => match answer[..] {
                [result, store_ms] => {
                    self.measured(store_ms, sent_ms, received_ms);
                    if result >= 0 {
                        self.health.succeeded();
                        return Ok(result);
                    }
                    Failure::Late
                }
                _ => Failure::Refused(format!("unexpected answer {answer:?}")),
            },
            Ok(Err(e)) if broke_connection(&e) || e.is_timeout() => {
                Failure::Unreachable(e.to_string())
            }
            Ok(Err(e)) => Failure::Refused(e.to_string()),
            Err(_) => Failure::Unreachable(format!("no answer within {:?}", self.timeout)),
        };
        self.health.failed(op, failure);
        Err(StoreError::Unavailable)
    }

    /// The deadline, in the store's clock, for a request that started at
    /// `started_ms` here: a tenth of the timeout before this replica gives
    /// up, so that an answer has time to arrive. 0 (none) until the
    /// store's clock has been read.
    fn deadline(&self, started_ms: i64) -> i64 {
        if !self.offset_known.load(Ordering::Relaxed) {
            return 0;
        }
        let timeout = self.timeout.as_millis() as i64;
        started_ms + self.offset_ms.load(Ordering::Relaxed) + timeout - timeout / 10
    }

    /// The store said its time was `store_ms` between `sent_ms` and
    /// `received_ms` here.
    fn measured(&self, store_ms: i64, sent_ms: i64, received_ms: i64) {
        let offset = store_ms - (sent_ms + received_ms) / 2;
        self.offset_ms.store(offset, Ordering::Relaxed);
        self.offset_known.store(true, Ordering::Relaxed);
    }

    /// Warns once if the store may evict keys: an evicted key is a
    /// forgotten use. Managed services often default to `volatile-lru`,
    /// which may evict every key here (each has a TTL).
    async fn check_eviction_policy(&self) {
        let Ok(mut c) = self.connection().await else {
            return;
        };
        let info = tokio::time::timeout(
            self.timeout,
            redis::cmd("INFO")
                .arg("memory")
                .query_async::<String>(&mut c),
        )
        .await;
        let Ok(Ok(info)) = info else {
            return;
        };
        let policy = info
            .lines()
            .find_map(|l| l.strip_prefix("maxmemory_policy:"))
            .map(str::trim);
        if let Some(policy) = policy.filter(|p| *p != "noeviction") {
            tracing::warn!(
                store = %self.endpoint,
                maxmemory_policy = policy,
                "the store may evict keys when full, and an evicted key is a forgotten use: set maxmemory-policy noeviction"
            );
        }
    }
}

/// TCP options of every connection to the store.
fn tcp_settings() -> TcpSettings {
    TcpSettings::default()
        // Commands from concurrent requests share a connection: none waits
        // for an ACK (Nagle).
        .set_nodelay(true)
        // A store that vanished without a reset (a partition, a replaced
        // host) fails the connection after this, rather than after the
        // kernel's ~15 minutes of retransmissions; it is then remade. The
        // probes keep data in flight, so an idle replica notices too.
        .set_user_timeout(DEAD_CONNECTION)
}

/// The connection broke (the store restarted or went away), as opposed to
/// the store answering with an error.
fn broke_connection(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal()
}

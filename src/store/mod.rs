//! Single use: which codes, consent forms and client assertions were
//! used, and which
//! refresh-token generation is current. Only the token endpoint and the
//! consent form touch it; `/mcp` never does.
//!
//! Two implementations behind one interface, [`Store`], chosen by
//! `[store] url`:
//!
//! - [`memory`]: each replica remembers on its own, bounded in bytes under
//!   any load. Exact on one replica; across replicas a code could be
//!   redeemed once per replica within its lifetime, and refresh reuse is
//!   seen only by the replica that rotated the family.
//! - [`redis`]: every replica shares one Redis or Valkey database, so both
//!   rules are exact across replicas. One round trip per token request.
//!   When it cannot be reached the token endpoint fails closed (503)
//!   while `/mcp` keeps serving ([`outage`]).

pub(crate) mod memory;
mod outage;
pub(crate) mod redis;
pub(crate) mod refresh_ledger;
pub(crate) mod replay;

use crate::settings::StoreSettings;

pub(crate) use refresh_ledger::Reused;

/// What may be used once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Once {
    /// An authorization code, by its `jti` (RFC 6749 §4.1.2).
    Code,
    /// A consent form's answer, by its CSRF token's `jti`.
    ConsentForm,
    /// A client's `private_key_jwt` assertion (RFC 7523 §3), by a digest
    /// of its client_id and `jti`.
    ClientAssertion,
}

impl Once {
    /// The name space in a shared store's keys.
    fn label(self) -> &'static str {
        match self {
            Once::Code => "code",
            Once::ConsentForm => "consent",
            Once::ClientAssertion => "assertion",
        }
    }
}

/// The store could not decide; the request is refused with 503
/// `temporarily_unavailable` (RFC 6749 §4.1.2.1) and nothing is issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StoreError {
    /// The memory store holds as many live ids as it may (`memory`).
    #[error("too many codes in flight")]
    Full,
    /// The shared store did not answer within `store.timeout`.
    #[error("the shared store is unreachable")]
    Unavailable,
}

/// The single-use memory every replica consults.
pub(crate) enum Store {
    Memory(memory::Memory),
    Redis(redis::RedisStore),
}

impl Store {
    /// Builds the store `settings` name. Connecting to a shared store
    /// happens on first use and again after every failure: a replica
    /// starts, and serves `/mcp`, while the store is down.
    pub(crate) fn new(settings: &StoreSettings) -> Result<Store, String> {
        Ok(match settings {
            StoreSettings::Memory => Store::Memory(memory::Memory::new()),
            StoreSettings::Redis(r) => Store::Redis(redis::RedisStore::new(r)?),
        })
    }

    /// `Ok(true)` the first time `id` of `kind` is used before `exp`,
    /// `Ok(false)` on every later use.
    pub(crate) async fn first_use(
        &self,
        kind: Once,
        id: &str,
        exp: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => m.first_use(kind, id, exp, now),
            Store::Redis(r) => r.first_use(kind, id, exp, now).await,
        }
    }

    /// Records that generation `presented` of refresh family `family`
    /// (valid until `family_exp`) is rotated into `presented + 1` at `now`.
    /// `Ok(Err(Reused))`: an older generation outside `grace`; the family is
    /// revoked (RFC 9700 §4.14.2).
    pub(crate) async fn rotate(
        &self,
        family: &str,
        presented: u32,
        family_exp: u64,
        now: u64,
        grace: u64,
    ) -> Result<Result<(), Reused>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.refresh_ledger.rotate(family, presented, now, grace)),
            Store::Redis(r) => r.rotate(family, presented, family_exp, now, grace).await,
        }
    }

    /// Whether every replica shares this store (a revocation is seen by
    /// all of them).
    pub(crate) fn is_shared(&self) -> bool {
        matches!(self, Store::Redis(_))
    }

    /// What `/readyz` says of the store.
    pub(crate) fn describe(&self) -> String {
        match self {
            Store::Memory(_) => "store: memory (this replica)".into(),
            // Not the endpoint: /readyz answers anyone who can reach the
            // listener; the logs name it.
            Store::Redis(r) => format!(
                "store: shared (redis) {}",
                if r.health().is_up() {
                    "reachable"
                } else {
                    "UNREACHABLE: token requests answer 503 until it is back; /mcp is unaffected"
                }
            ),
        }
    }

    /// Keeps the shared store's health current while no token request
    /// asks: probes it with a write now and then. `None` for the memory store.
    pub(crate) fn monitor(&self) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        match self {
            Store::Memory(_) => None,
            Store::Redis(r) => Some(r.monitor()),
        }
    }
}

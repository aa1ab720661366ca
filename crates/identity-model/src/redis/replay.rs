//! The Redis replay store: one-time uses recorded across every instance that shares a Redis.
//!
//! One `SET key 1 NX PX ttl` per record: Redis decides atomically whether the key was there,
//! so two instances can never both accept the same proof (a read then a write could). When
//! Redis is slow, unreachable or answers an error, the record fails closed with
//! `replay_store_unavailable` (503), unless fail-open was asked for by name
//! ([`RedisReplayStoreBuilder::dangerous_fail_open`]), which is then counted and logged on
//! every use.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use identity_model_core::{Error, ErrorKind, Secret, UnixTime};
use redis::Value;

use super::{RedisClient, StoreStatus};
use crate::clock::{Clock, SystemClock};
use crate::replay::{ReplayFuture, ReplayStore};

/// The default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "idm:replay";

/// Builds a [`RedisReplayStore`].
#[derive(Debug)]
pub struct RedisReplayStoreBuilder {
    client: Result<super::RedisClientBuilder, RedisClient>,
    prefix: String,
    fail_open: bool,
    clock: Arc<dyn Clock>,
}

/// A [`ReplayStore`] in Redis, shared by every instance that uses the same Redis and prefix.
///
/// ```no_run
/// use std::sync::Arc;
/// use std::time::Duration;
/// use identity_model::{RedisReplayStore, ReplayStore};
///
/// # async fn run() -> Result<(), identity_model::Error> {
/// let store = RedisReplayStore::builder("redis://127.0.0.1:6379/")
///     .prefix("my-api:replay")
///     .deadline(Duration::from_millis(50))
///     .build()?;
/// store.client().check_eviction_policy().await; // warns unless maxmemory-policy is noeviction
/// let store: Arc<dyn ReplayStore> = Arc::new(store);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    client: RedisClient,
    prefix: Arc<str>,
    fail_open: bool,
    clock: Arc<dyn Clock>,
    #[cfg(feature = "metrics")]
    fail_opens: metrics::Counter,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("deadline", &self.client.deadline())
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl RedisReplayStore {
    /// Starts building a store with its own connection to `url` (see [`RedisClient::builder`]).
    pub fn builder(url: impl Into<String>) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            client: Ok(RedisClient::builder(url)),
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            fail_open: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// Starts building a store on an existing connection (shared with a rate limiter).
    pub fn on(client: RedisClient) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            client: Err(client),
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            fail_open: false,
            clock: Arc::new(SystemClock),
        }
    }

    /// The connection (status, ping, eviction policy).
    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    /// Whether Redis answered the last command, and the last failure.
    pub fn status(&self) -> StoreStatus {
        self.client.status()
    }

    /// Logs a warning unless Redis' `maxmemory-policy` is `noeviction`
    /// ([`RedisClient::check_eviction_policy`]).
    pub async fn check_eviction_policy(&self) -> Option<String> {
        self.client.check_eviction_policy().await
    }

    /// The Redis key of a replay key.
    fn key_of(&self, key: &[u8; 32]) -> String {
        let mut name = String::with_capacity(self.prefix.len() + 1 + 64);
        name.push_str(&self.prefix);
        name.push(':');
        for byte in key {
            let _ = write!(name, "{byte:02x}");
        }
        name
    }

    async fn record(&self, key: &[u8; 32], expires_at: UnixTime) -> Result<bool, Error> {
        let now = self.clock.now().as_secs();
        let left = expires_at.as_secs().saturating_sub(now);
        if left <= 0 {
            // Already expired: nothing to remember (the same rule as the memory store).
            return Ok(true);
        }
        let ttl_ms = u64::try_from(left).unwrap_or(u64::MAX / 2_000).saturating_mul(1000);
        let mut command = redis::cmd("SET");
        command.arg(self.key_of(key)).arg(1).arg("NX").arg("PX").arg(ttl_ms);
        match self.client.run(&command).await {
            Ok(Value::Okay) => Ok(true),
            Ok(Value::SimpleString(s)) if s == "OK" => Ok(true),
            Ok(Value::Nil) => Ok(false),
            Ok(other) => Err(Error::new(
                ErrorKind::ReplayStoreUnavailable,
                format!("Redis answered SET NX with {other:?}"),
            )),
            Err(e) if self.fail_open => {
                #[cfg(feature = "metrics")]
                self.fail_opens.increment(1);
                tracing::warn!(error = %e, "replay store unavailable: the use is let through UNRECORDED (fail-open configured)");
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

impl ReplayStore for RedisReplayStore {
    fn insert_once<'a>(&'a self, key: &'a [u8; 32], expires_at: UnixTime) -> ReplayFuture<'a> {
        Box::pin(self.record(key, expires_at))
    }
}

impl RedisReplayStoreBuilder {
    /// The key prefix (default `idm:replay`): keys are `prefix:` and the replay key in hex.
    /// Instances that must see each other's records use the same prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The most any command may take (default 50 ms); past it the record fails. Ignored for
    /// a store built [`RedisReplayStore::on`] an existing connection (it has its own).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.client = self.client.map(|c| c.deadline(deadline));
        self
    }

    /// The password (see [`super::RedisClientBuilder::password`]).
    pub fn password(mut self, password: Secret) -> Self {
        self.client = self.client.map(|c| c.password(password));
        self
    }

    /// The CA certificate (PEM) of a `rediss://` server signed by a private CA (see
    /// [`super::RedisClientBuilder::ca_certificate`]).
    pub fn ca_certificate(mut self, pem: Vec<u8>) -> Self {
        self.client = self.client.map(|c| c.ca_certificate(pem));
        self
    }

    /// Lets a use through unrecorded when Redis cannot be asked, instead of refusing it
    /// (503). Every such decision is logged and counted
    /// (`identity_model_replay_store_fail_open_total`). An outage an attacker can cause then
    /// unlocks replay: only for deployments that prefer availability, knowingly.
    pub fn dangerous_fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// The wall clock that turns expiry times into TTLs (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Checks the settings and builds the store (connecting lazily: see
    /// [`super::RedisClientBuilder::build`]).
    pub fn build(self) -> Result<RedisReplayStore, Error> {
        if self.prefix.is_empty() || self.prefix.len() > 200 || self.prefix.chars().any(char::is_control) {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "the Redis key prefix must be 1 to 200 printable characters",
            ));
        }
        let client = match self.client {
            Ok(builder) => builder.build()?,
            Err(client) => client,
        };
        Ok(RedisReplayStore {
            client,
            prefix: self.prefix.into(),
            fail_open: self.fail_open,
            clock: self.clock,
            #[cfg(feature = "metrics")]
            fail_opens: metrics::counter!("identity_model_replay_store_fail_open_total"),
        })
    }
}

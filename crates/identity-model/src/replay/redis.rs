//! The Redis replay store: one-time uses recorded across every instance that shares a Redis.
//!
//! One `SET key 1 NX PX ttl` per record: Redis decides atomically whether the key was there,
//! so two instances can never both accept the same proof (a read then a write could). Every
//! command runs under our own deadline (default 50 ms) whatever the client's timeouts: when
//! Redis is slow, unreachable or answers an error, the record fails closed with
//! `replay_store_unavailable` (503), unless fail-open was asked for by name
//! ([`RedisReplayStoreBuilder::dangerous_fail_open`]), which is then counted and logged on
//! every use. The connection is re-established in the background ([`ConnectionManager`]); no
//! record waits for it longer than the deadline.
//!
//! Why the `redis` crate and not `fred`: `redis` is the most used Rust client, its
//! `ConnectionManager` reconnects by itself behind a cheap clonable handle, it speaks TLS
//! through rustls (the TLS stack this project already uses), Cluster (`cluster-async`) and
//! scripts with `EVALSHA` and `NOSCRIPT` reloads. `fred` does as much but brings its own
//! runtime-level pooling and reconnect policies that we would have to bound again with our
//! deadline anyway; one fewer moving part wins.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_model_core::{Error, ErrorKind, Secret, UnixTime};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, Value};

use super::{ReplayFuture, ReplayStore};
use crate::clock::{Clock, SystemClock};

/// The default per-command deadline.
pub const DEFAULT_REDIS_DEADLINE: Duration = Duration::from_millis(50);
/// The default key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "idm:replay";

/// Builds a [`RedisReplayStore`].
#[derive(Debug)]
pub struct RedisReplayStoreBuilder {
    url: String,
    prefix: String,
    deadline: Duration,
    fail_open: bool,
    password: Option<Secret>,
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
/// store.check_eviction_policy().await; // warns unless maxmemory-policy is noeviction
/// let store: Arc<dyn ReplayStore> = Arc::new(store);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisReplayStore {
    manager: ConnectionManager,
    prefix: Arc<str>,
    deadline: Duration,
    fail_open: bool,
    clock: Arc<dyn Clock>,
    status: Arc<Mutex<StoreStatus>>,
    #[cfg(feature = "metrics")]
    meters: Arc<Meters>,
}

#[cfg(feature = "metrics")]
struct Meters {
    failures: metrics::Counter,
    fail_open: metrics::Counter,
}

impl std::fmt::Debug for RedisReplayStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplayStore")
            .field("prefix", &self.prefix)
            .field("deadline", &self.deadline)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

/// Whether the store answered lately ([`RedisReplayStore::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStatus {
    /// The last command (a record or a ping) got an answer within the deadline. `false`
    /// before the first one.
    pub reachable: bool,
    /// Why the last failing command failed (kept after a recovery, for diagnostics).
    pub last_error: Option<String>,
}

impl RedisReplayStore {
    /// Starts building a store for `url` (`redis://`, `rediss://` for TLS,
    /// `redis+unix://`; a password is better given with
    /// [`RedisReplayStoreBuilder::password`] than inside the URL).
    pub fn builder(url: impl Into<String>) -> RedisReplayStoreBuilder {
        RedisReplayStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_REDIS_PREFIX.to_owned(),
            deadline: DEFAULT_REDIS_DEADLINE,
            fail_open: false,
            password: None,
            clock: Arc::new(SystemClock),
        }
    }

    /// Whether Redis answered the last command, and the last failure.
    pub fn status(&self) -> StoreStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The per-command deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Sends `PING` under the deadline (for readiness checks); the answer updates
    /// [`RedisReplayStore::status`].
    pub async fn ping(&self) -> Result<(), Error> {
        self.run(redis::cmd("PING")).await.map(|_| ())
    }

    /// Reads `maxmemory-policy` (`CONFIG GET`); `Ok(None)` when the server does not allow
    /// `CONFIG` (managed services often do not).
    pub async fn eviction_policy(&self) -> Result<Option<String>, Error> {
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg("maxmemory-policy");
        match self.run(command).await {
            Ok(value) => Ok(policy_of(&value)),
            Err(e) if e.message().contains("answered an error") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Logs a warning unless Redis evicts nothing (`maxmemory-policy noeviction`): under
    /// memory pressure an evicting Redis drops replay records, and a dropped record lets its
    /// proof be replayed. Returns the policy when it could be read.
    pub async fn check_eviction_policy(&self) -> Option<String> {
        match self.eviction_policy().await {
            Ok(Some(policy)) if policy == "noeviction" => Some(policy),
            Ok(Some(policy)) => {
                tracing::warn!(
                    maxmemory_policy = %policy,
                    "Redis may evict replay records under memory pressure (set maxmemory-policy noeviction): \
                     an evicted record lets its proof be replayed"
                );
                Some(policy)
            }
            Ok(None) => {
                tracing::warn!(
                    "Redis does not allow CONFIG GET: cannot check that maxmemory-policy is noeviction"
                );
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read Redis' maxmemory-policy");
                None
            }
        }
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

    /// One command under the deadline; every outcome updates the status.
    async fn run(&self, command: redis::Cmd) -> Result<Value, Error> {
        let mut connection = self.manager.clone();
        let answer = tokio::time::timeout(self.deadline, command.query_async::<Value>(&mut connection)).await;
        let failure = match answer {
            Ok(Ok(Value::ServerError(e))) => format!("Redis answered an error: {e:?}"),
            Ok(Ok(value)) => {
                self.set_status(true, None);
                return Ok(value);
            }
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() => {
                format!("Redis cannot be reached: {e}")
            }
            Ok(Err(e)) if e.is_timeout() => format!("Redis did not answer in time: {e}"),
            Ok(Err(e)) => format!("Redis answered an error: {e}"),
            Err(_) => format!("Redis did not answer within {} ms", self.deadline.as_millis()),
        };
        self.set_status(false, Some(failure.clone()));
        #[cfg(feature = "metrics")]
        self.meters.failures.increment(1);
        Err(Error::new(ErrorKind::ReplayStoreUnavailable, failure))
    }

    fn set_status(&self, reachable: bool, error: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.reachable = reachable;
        if error.is_some() {
            status.last_error = error;
        }
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
        match self.run(command).await {
            Ok(Value::Okay) => Ok(true),
            Ok(Value::SimpleString(s)) if s == "OK" => Ok(true),
            Ok(Value::Nil) => Ok(false),
            Ok(other) => Err(Error::new(
                ErrorKind::ReplayStoreUnavailable,
                format!("Redis answered SET NX with {other:?}"),
            )),
            Err(e) if self.fail_open => {
                #[cfg(feature = "metrics")]
                self.meters.fail_open.increment(1);
                tracing::warn!(error = %e, "replay store unavailable: the use is let through UNRECORDED (fail-open configured)");
                Ok(true)
            }
            Err(e) => Err(e),
        }
    }
}

fn policy_of(value: &Value) -> Option<String> {
    let text = |v: &Value| match v {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match value {
        Value::Array(items) if items.len() == 2 => text(&items[1]),
        Value::Map(pairs) => pairs.first().and_then(|(_, v)| text(v)),
        _ => None,
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

    /// The most any command may take (default 50 ms); past it the record fails.
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The password (and the URL keeps none): from a file or the environment, never a
    /// command line.
    pub fn password(mut self, password: Secret) -> Self {
        self.password = Some(password);
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

    /// Checks the settings and builds the store without connecting (the first command
    /// connects; the connection is kept and re-established in the background). Must be
    /// called inside a tokio runtime.
    pub fn build(self) -> Result<RedisReplayStore, Error> {
        let invalid = |why: String| Error::new(ErrorKind::InvalidConfig, why);
        if self.deadline.is_zero() || self.deadline > Duration::from_secs(10) {
            return Err(invalid("the Redis deadline must be between 1 ms and 10 s".into()));
        }
        if self.prefix.is_empty() || self.prefix.len() > 200 || self.prefix.chars().any(char::is_control) {
            return Err(invalid("the Redis key prefix must be 1 to 200 printable characters".into()));
        }
        let mut info = self
            .url
            .as_str()
            .into_connection_info()
            // The error may quote the URL, password included: not shown.
            .map_err(|_| {
                invalid("the Redis URL cannot be used (redis://, rediss:// or redis+unix://)".into())
            })?;
        if let Some(password) = &self.password {
            let settings = info.redis_settings().clone().set_password(password.expose());
            info = info.set_redis_settings(settings);
        }
        let client = Client::open(info).map_err(|_| invalid("the Redis URL cannot be used".into()))?;
        // Reconnects quickly (the deadline, not the client, bounds what a request waits).
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(Duration::from_millis(250))
            .set_number_of_retries(4);
        let manager = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| invalid(format!("the Redis client cannot be set up: {e}")))?;
        Ok(RedisReplayStore {
            manager,
            prefix: self.prefix.into(),
            deadline: self.deadline,
            fail_open: self.fail_open,
            clock: self.clock,
            status: Arc::new(Mutex::new(StoreStatus::default())),
            #[cfg(feature = "metrics")]
            meters: Arc::new(Meters {
                failures: metrics::counter!("identity_model_replay_store_failures_total"),
                fail_open: metrics::counter!("identity_model_replay_store_fail_open_total"),
            }),
        })
    }
}

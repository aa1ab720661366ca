//! What several instances share through Redis (feature `redis`): one-time uses
//! ([`RedisReplayStore`], `replay.rs`) and rate limits ([`RedisRateLimiter`], `rate_limit.rs`),
//! both over one [`RedisClient`]: a connection re-established in the background, and every
//! command under our own deadline whatever the client's timeouts, its outcome kept for
//! readiness checks.
//!
//! Why the `redis` crate and not `fred`: `redis` is the most used Rust client, its
//! `ConnectionManager` reconnects by itself behind a cheap clonable handle, it speaks TLS
//! through rustls (the TLS stack this project already uses) and runs scripts with `EVALSHA`
//! and `NOSCRIPT` reloads. `fred` does as much but brings its own pooling and reconnect
//! policies that we would have to bound again with our deadline anyway; one fewer moving part
//! wins.

mod rate_limit;
mod replay;

pub use rate_limit::{Admission, RedisRateLimiter};
pub use replay::{DEFAULT_REDIS_PREFIX, RedisReplayStore, RedisReplayStoreBuilder};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use identity_model_core::{Error, ErrorKind, Secret};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, ConnectionInfo, IntoConnectionInfo, TlsCertificates, Value};

/// The default per-command deadline.
pub const DEFAULT_REDIS_DEADLINE: Duration = Duration::from_millis(50);

/// A Redis connection shared by the stores built on it. Cheap to clone.
#[derive(Clone)]
pub struct RedisClient {
    link: Link,
    deadline: Duration,
    status: Arc<Mutex<StoreStatus>>,
    #[cfg(feature = "metrics")]
    failures: metrics::Counter,
}

/// One server (re-established in the background by the `ConnectionManager`), or a Redis
/// Cluster (connected by a background task; the cluster connection then follows the
/// cluster's nodes and slots by itself).
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(Arc<ArcSwapOption<ClusterConnection>>),
}

/// One connection handle of either kind, so that every command is sent the same way.
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl redis::aio::ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(cmd, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

impl std::fmt::Debug for RedisClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClient").field("deadline", &self.deadline).finish_non_exhaustive()
    }
}

/// Builds a [`RedisClient`].
#[derive(Debug)]
pub struct RedisClientBuilder {
    url: String,
    deadline: Duration,
    password: Option<Secret>,
    ca: Option<Vec<u8>>,
}

/// Whether Redis answered lately ([`RedisClient::status`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreStatus {
    /// The last command (a record, a limit or a ping) got an answer within the deadline.
    /// `false` before the first one.
    pub reachable: bool,
    /// Why the last failing command failed (kept after a recovery, for diagnostics).
    pub last_error: Option<String>,
}

impl RedisClient {
    /// Starts building a client for `url` (`redis://`, `rediss://` for TLS, `redis+unix://`;
    /// a password is better given with [`RedisClientBuilder::password`] than in the URL).
    /// Several URLs separated by commas name the nodes of a Redis Cluster.
    pub fn builder(url: impl Into<String>) -> RedisClientBuilder {
        RedisClientBuilder { url: url.into(), deadline: DEFAULT_REDIS_DEADLINE, password: None, ca: None }
    }

    /// The per-command deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Whether Redis answered the last command, and the last failure.
    pub fn status(&self) -> StoreStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Sends `PING` under the deadline (for readiness checks); the answer updates
    /// [`RedisClient::status`].
    pub async fn ping(&self) -> Result<(), Error> {
        self.run(&redis::cmd("PING")).await.map(|_| ())
    }

    /// Reads `maxmemory-policy` (`CONFIG GET`); `Ok(None)` when the server does not allow
    /// `CONFIG` (managed services often do not).
    pub async fn eviction_policy(&self) -> Result<Option<String>, Error> {
        let mut command = redis::cmd("CONFIG");
        command.arg("GET").arg("maxmemory-policy");
        match self.run(&command).await {
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

    /// One command under the deadline; every outcome updates the status. An error is
    /// `replay_store_unavailable` (the kind of every shared-store failure).
    pub(crate) async fn run(&self, command: &redis::Cmd) -> Result<Value, Error> {
        let mut connection = self.connection()?;
        let answer = tokio::time::timeout(self.deadline, command.query_async::<Value>(&mut connection)).await;
        self.judge(answer)
    }

    /// The connection to send on: the single server's, or the cluster's once the background
    /// task made it.
    fn connection(&self) -> Result<Connection, Error> {
        match &self.link {
            Link::Single(manager) => Ok(Connection::Single(manager.clone())),
            Link::Cluster(cluster) => match cluster.load_full() {
                Some(connection) => Ok(Connection::Cluster((*connection).clone())),
                None => {
                    let failure = "the Redis Cluster is not connected yet".to_owned();
                    self.set_status(false, Some(failure.clone()));
                    Err(Error::new(ErrorKind::ReplayStoreUnavailable, failure))
                }
            },
        }
    }

    /// A script by its hash (`EVALSHA`), loaded again when Redis lost it (`NOSCRIPT`), all
    /// under one deadline.
    pub(crate) async fn run_script(
        &self,
        script: &redis::Script,
        keys: &[&str],
        args: &[u64],
    ) -> Result<Value, Error> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(*arg);
        }
        let mut connection = self.connection()?;
        let answer =
            tokio::time::timeout(self.deadline, invocation.invoke_async::<Value>(&mut connection)).await;
        self.judge(answer)
    }

    fn judge(
        &self,
        answer: Result<redis::RedisResult<Value>, tokio::time::error::Elapsed>,
    ) -> Result<Value, Error> {
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
        self.failures.increment(1);
        Err(Error::new(ErrorKind::ReplayStoreUnavailable, failure))
    }

    fn set_status(&self, reachable: bool, error: Option<String>) {
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.reachable = reachable;
        if error.is_some() {
            status.last_error = error;
        }
    }
}

fn invalid(why: &str) -> Error {
    Error::new(ErrorKind::InvalidConfig, why.to_owned())
}

/// One server, connected lazily and re-established in the background.
fn single(info: ConnectionInfo, ca: Option<Vec<u8>>) -> Result<ConnectionManager, Error> {
    let client = match ca {
        None => Client::open(info),
        Some(root_cert) => {
            Client::build_with_tls(info, TlsCertificates { client_tls: None, root_cert: Some(root_cert) })
        }
    }
    .map_err(|_| invalid("the Redis URL (or its CA certificate) cannot be used"))?;
    // Reconnects quickly (the deadline, not the client, bounds what a request waits).
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_min_delay(Duration::from_millis(20))
        .set_max_delay(Duration::from_millis(250))
        .set_number_of_retries(4);
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| invalid(&format!("the Redis client cannot be set up: {e}")))
}

/// A Redis Cluster: a task connects (again every 250 ms until it can) and hands the
/// connection over; commands before that fail at once, like any unreachable store.
fn cluster(
    nodes: Vec<ConnectionInfo>,
    ca: Option<Vec<u8>>,
) -> Result<Arc<ArcSwapOption<ClusterConnection>>, Error> {
    let mut builder = ClusterClient::builder(nodes);
    if let Some(root_cert) = ca {
        builder = builder.certs(TlsCertificates { client_tls: None, root_cert: Some(root_cert) });
    }
    let client = builder
        .connection_timeout(Duration::from_secs(1))
        .response_timeout(Duration::from_secs(2))
        .retries(2)
        .build()
        .map_err(|_| {
            invalid("the Redis Cluster URLs cannot be used (same password and TLS on every node)")
        })?;
    let slot = Arc::new(ArcSwapOption::empty());
    let target = Arc::downgrade(&slot);
    tokio::spawn(async move {
        loop {
            match client.get_async_connection().await {
                Ok(connection) => {
                    if let Some(slot) = target.upgrade() {
                        slot.store(Some(Arc::new(connection)));
                    }
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot connect to the Redis Cluster yet"),
            }
            if target.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    Ok(slot)
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

impl RedisClientBuilder {
    /// The most any command may take (default 50 ms); past it the command fails.
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

    /// The CA certificate (PEM) that signed the server's certificate, for `rediss://` with a
    /// private CA (instead of the system's roots).
    pub fn ca_certificate(mut self, pem: Vec<u8>) -> Self {
        self.ca = Some(pem);
        self
    }

    /// Checks the settings and builds the client without connecting (the first command
    /// connects; the connection is kept and re-established in the background). Must be
    /// called inside a tokio runtime.
    pub fn build(self) -> Result<RedisClient, Error> {
        if self.deadline.is_zero() || self.deadline > Duration::from_secs(10) {
            return Err(invalid("the Redis deadline must be between 1 ms and 10 s"));
        }
        let mut nodes = Vec::new();
        for url in self.url.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let mut info = url
                .into_connection_info()
                // The error may quote the URL, password included: not shown.
                .map_err(|_| {
                    invalid("the Redis URL cannot be used (redis://, rediss:// or redis+unix://)")
                })?;
            if let Some(password) = &self.password {
                let settings = info.redis_settings().clone().set_password(password.expose());
                info = info.set_redis_settings(settings);
            }
            nodes.push(info);
        }
        let link = match nodes.len() {
            0 => return Err(invalid("no Redis URL")),
            1 => Link::Single(single(nodes.remove(0), self.ca)?),
            _ => Link::Cluster(cluster(nodes, self.ca)?),
        };
        Ok(RedisClient {
            link,
            deadline: self.deadline,
            status: Arc::new(Mutex::new(StoreStatus::default())),
            #[cfg(feature = "metrics")]
            failures: metrics::counter!("identity_model_redis_failures_total"),
        })
    }
}

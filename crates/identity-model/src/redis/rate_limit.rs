//! A rate limit shared by every instance: GCRA (the generic cell rate algorithm, the one
//! `governor` runs in process) in one Lua script. Redis' own clock (`TIME`) stamps every
//! request, so the instances' clocks do not matter, and the script runs atomically, so two
//! instances never both take the last cell. The script is sent once (`EVALSHA`; loaded again
//! on `NOSCRIPT`, after a Redis restart or `SCRIPT FLUSH`).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use identity_model_core::{Error, ErrorKind, sha256};
use redis::{Script, Value};

use super::RedisClient;

/// KEYS[1]: the bucket. ARGV[1]: the emission interval in microseconds (one cell every T);
/// ARGV[2]: the burst (cells that may pass at once); ARGV[3], only in tests: the time in
/// microseconds instead of Redis' `TIME`. Answers `{1, 0}` when admitted, else
/// `{0, microseconds until a cell is free}`. The theoretical arrival time (TAT) is the only
/// state, kept no longer than it matters.
const GCRA: &str = r#"
local now
if ARGV[3] then
  now = tonumber(ARGV[3])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allowed_at = tat - tolerance
if now < allowed_at then
  return {0, allowed_at - now}
end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%d', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, 0}
"#;

/// A rate limit shared through Redis: `per_second` cells per second per key, `burst` at once.
#[derive(Clone)]
pub struct RedisRateLimiter {
    client: RedisClient,
    prefix: Arc<str>,
    interval_micros: u64,
    burst: u64,
    script: Arc<Script>,
}

impl std::fmt::Debug for RedisRateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRateLimiter")
            .field("prefix", &self.prefix)
            .field("interval_micros", &self.interval_micros)
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

/// What [`RedisRateLimiter::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A cell was taken.
    Admitted,
    /// None is free: the next one is this far away.
    Limited(Duration),
}

impl RedisRateLimiter {
    /// `per_second` requests per second per key, `burst` of them at once (both above 0),
    /// keys under `prefix:` on `client`.
    ///
    /// ```no_run
    /// use identity_model::{Admission, RedisClient, RedisRateLimiter};
    /// # async fn run() -> Result<(), identity_model::Error> {
    /// let client = RedisClient::builder("redis://127.0.0.1:6379/").build()?;
    /// let limiter = RedisRateLimiter::new(client, "my-api:limit", 100, 20)?;
    /// if let Admission::Limited(wait) = limiter.check("client-42").await? {
    ///     println!("retry in {wait:?}");
    /// }
    /// # Ok(()) }
    /// ```
    pub fn new(client: RedisClient, prefix: &str, per_second: u32, burst: u32) -> Result<Self, Error> {
        if per_second == 0 || burst == 0 {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "a rate limit needs a rate and a burst above 0",
            ));
        }
        Ok(RedisRateLimiter {
            client,
            prefix: prefix.into(),
            interval_micros: 1_000_000 / u64::from(per_second).max(1),
            burst: u64::from(burst),
            script: Arc::new(Script::new(GCRA)),
        })
    }

    /// The connection (status, ping).
    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    /// Takes a cell from `key`'s bucket (any text: it is hashed, so a caller's value never
    /// becomes a Redis key as it is). Errors are `replay_store_unavailable`: the caller
    /// decides between refusing and a local fallback.
    pub async fn check(&self, key: &str) -> Result<Admission, Error> {
        self.take(key, None).await
    }

    /// [`RedisRateLimiter::check`] at a given time (microseconds since the epoch) instead of
    /// Redis' clock: for tests of the script's arithmetic only.
    #[doc(hidden)]
    pub async fn check_at(&self, key: &str, now_micros: u64) -> Result<Admission, Error> {
        self.take(key, Some(now_micros)).await
    }

    async fn take(&self, key: &str, now_micros: Option<u64>) -> Result<Admission, Error> {
        let mut name = String::with_capacity(self.prefix.len() + 1 + 32);
        name.push_str(&self.prefix);
        name.push(':');
        for byte in &sha256(key.as_bytes())[..16] {
            let _ = write!(name, "{byte:02x}");
        }
        let mut args = vec![self.interval_micros, self.burst];
        args.extend(now_micros);
        let answer = self.client.run_script(&self.script, &[&name], &args).await?;
        let number = |v: &Value| match v {
            Value::Int(n) => Some(*n),
            _ => None,
        };
        match answer {
            Value::Array(items) if items.len() == 2 => match (number(&items[0]), number(&items[1])) {
                (Some(1), _) => Ok(Admission::Admitted),
                (Some(0), Some(wait)) => {
                    Ok(Admission::Limited(Duration::from_micros(u64::try_from(wait).unwrap_or(0))))
                }
                _ => Err(unexpected(&items)),
            },
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(answer: &impl std::fmt::Debug) -> Error {
    Error::new(ErrorKind::ReplayStoreUnavailable, format!("the rate-limit script answered {answer:?}"))
}

//! What several sidecars share: the Redis replay store (DPoP proofs recorded once across
//! every instance), its configuration (flags and the file's `[redis]` table), the pinger that
//! keeps its readiness current, and its part of `/readyz`.

use std::time::Duration;

use identity_model::{RedisClient, RedisReplayStore, Secret};
use serde::Deserialize;
use serde_json::{Value, json};

/// The environment variable a Redis password may come from.
pub(crate) const PASSWORD_ENV: &str = "IDM_REDIS_PASSWORD";
/// How often the pinger asks Redis while it answers, and while it does not.
const PING_EVERY: Duration = Duration::from_secs(1);
const PING_EVERY_WHILE_DOWN: Duration = Duration::from_millis(250);

/// The file's `[redis]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedisFile {
    url: Option<String>,
    prefix: Option<String>,
    deadline_ms: Option<u64>,
    fail_open: Option<bool>,
    password_file: Option<String>,
    /// The CA certificate (PEM) of a `rediss://` server with a private CA.
    ca_file: Option<String>,
}

/// The flags about Redis.
#[derive(Debug, Default, Clone)]
pub(crate) struct RedisFlags {
    pub(crate) url: Option<String>,
    pub(crate) prefix: Option<String>,
    pub(crate) deadline_ms: Option<u64>,
    pub(crate) fail_open: bool,
    pub(crate) password_file: Option<String>,
    pub(crate) ca_file: Option<String>,
}

/// The checked Redis settings.
#[derive(Debug, Clone)]
pub(crate) struct RedisPlan {
    pub(crate) url: String,
    pub(crate) prefix: String,
    pub(crate) deadline: Duration,
    pub(crate) fail_open: bool,
    pub(crate) password: Option<Secret>,
    pub(crate) ca: Option<Vec<u8>>,
}

/// Merges the flags over the file; `None` when no Redis is configured.
pub(crate) fn plan(
    flags: RedisFlags,
    file: Option<RedisFile>,
    problems: &mut Vec<String>,
) -> Option<RedisPlan> {
    let file = file.unwrap_or_default();
    let from_flag = flags.url.is_some();
    let url = flags.url.or(file.url)?;
    if from_flag && url_has_password(&url) {
        problems.push(format!(
            "--redis: a password on the command line is visible to every user of the machine; give it \
             with --redis-password-file or {PASSWORD_ENV}"
        ));
    }
    let password = match flags.password_file.or(file.password_file) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => Some(Secret::new(text.trim_end_matches(['\r', '\n']))),
            Ok(_) => {
                problems.push(format!("redis password file {path:?} is empty"));
                None
            }
            Err(e) => {
                problems.push(format!("redis password file {path:?}: {e}"));
                None
            }
        },
        None => std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty()).map(Secret::new),
    };
    let ca = match flags.ca_file.or(file.ca_file) {
        None => None,
        Some(path) => match std::fs::read(&path) {
            Ok(pem) if String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") => Some(pem),
            Ok(_) => {
                problems.push(format!("redis CA file {path:?} holds no PEM certificate"));
                None
            }
            Err(e) => {
                problems.push(format!("redis CA file {path:?}: {e}"));
                None
            }
        },
    };
    let deadline_ms = flags.deadline_ms.or(file.deadline_ms).unwrap_or(50);
    if deadline_ms == 0 || deadline_ms > 10_000 {
        problems.push(format!("redis deadline {deadline_ms} ms must be between 1 and 10000"));
    }
    Some(RedisPlan {
        url,
        prefix: flags.prefix.or(file.prefix).unwrap_or_else(|| identity_model::DEFAULT_REDIS_PREFIX.into()),
        deadline: Duration::from_millis(deadline_ms.clamp(1, 10_000)),
        fail_open: flags.fail_open || file.fail_open.unwrap_or(false),
        password,
        ca,
    })
}

/// Whether `url` (or one of a cluster's comma-separated URLs) carries a password
/// (`redis://user:password@host`).
fn url_has_password(url: &str) -> bool {
    url.split(',').any(|url| {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        authority.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'))
    })
}

/// The connection and the replay store on it (inside the runtime: it connects lazily).
pub(crate) fn connect(plan: &RedisPlan) -> Result<(RedisClient, RedisReplayStore), String> {
    let mut client = RedisClient::builder(plan.url.clone()).deadline(plan.deadline);
    if let Some(password) = &plan.password {
        client = client.password(password.clone());
    }
    if let Some(ca) = &plan.ca {
        client = client.ca_certificate(ca.clone());
    }
    let client = client.build().map_err(|e| format!("redis: {}", e.message()))?;
    let mut store = RedisReplayStore::on(client.clone()).prefix(plan.prefix.clone());
    if plan.fail_open {
        store = store.dangerous_fail_open();
    }
    let store = store.build().map_err(|e| format!("redis: {}", e.message()))?;
    Ok((client, store))
}

/// Checks the eviction policy once, then pings for as long as the sidecar runs, so that
/// `/readyz` follows Redis both ways without waiting for a check to need it.
pub(crate) async fn keep(client: RedisClient) {
    client.check_eviction_policy().await;
    loop {
        let wait = match client.ping().await {
            Ok(()) => PING_EVERY,
            Err(e) => {
                tracing::warn!(error = %e, "Redis unreachable: DPoP checks are refused until it answers");
                PING_EVERY_WHILE_DOWN
            }
        };
        tokio::time::sleep(wait).await;
    }
}

/// Redis' part of `/readyz`, and whether it is ready.
pub(crate) fn readiness(client: &RedisClient) -> (bool, Value) {
    let status = client.status();
    (status.reachable, json!({"ready": status.reachable, "last_error": status.last_error}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_seen() {
        assert!(url_has_password("redis://:secret@127.0.0.1:6379/0"));
        assert!(url_has_password("rediss://user:secret@redis.example/"));
        assert!(!url_has_password("redis://user@127.0.0.1:6379/"));
        assert!(!url_has_password("redis://127.0.0.1:6379/?x=a:b@c"));
        assert!(url_has_password("redis://127.0.0.1:7000/,redis://:secret@127.0.0.1:7001/"));
        let mut problems = Vec::new();
        let flags = RedisFlags { url: Some("redis://:pw@127.0.0.1/".into()), ..RedisFlags::default() };
        assert!(plan(flags, None, &mut problems).is_some());
        assert_eq!(problems.len(), 1, "{problems:?}");
        let mut problems = Vec::new();
        let flags = RedisFlags {
            url: Some("redis://127.0.0.1/".into()),
            deadline_ms: Some(0),
            ..RedisFlags::default()
        };
        plan(flags, None, &mut problems);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }
}

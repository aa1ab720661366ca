//! Live reload: on SIGHUP, and when the `--config` file changes (looked at every second), the
//! new configuration is checked in full (the same checks as at start) and swapped in
//! atomically; checks in flight finish under the configuration they started with. Issuers
//! whose settings did not change keep their authorities (their key caches: no refetch),
//! keeper tasks and introspectors (their cached answers) unless the client secret changed. A configuration with problems is refused, every problem logged, and the old
//! one keeps serving. What the listener or the shared store is made of (`listen`, the
//! connection limits, `[redis]`) needs a restart: a reload that changes it is refused.
//! `idm_serve_config_reloads_total{outcome}` counts the reloads, `/readyz` reports the last.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use identity_model::{Authority, RedisClient, RedisReplayStore, Settings};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};

use super::config::{self, Flags, IssuerPlan, Plan};
use super::introspect::Introspector;
use super::shared::RedisPlan;
use super::{App, health};

/// How often the configuration file is looked at (a `stat`).
const WATCH_EVERY: Duration = Duration::from_secs(1);

/// An issuer's authority and keeper, kept across reloads while its settings stay the same.
struct Kept {
    fingerprint: String,
    authority: Authority,
    keeper: Arc<health::Keeper>,
    /// Its introspector, kept too when the secret is the same (the rest of the introspection
    /// settings are part of the fingerprint).
    introspector: Option<Arc<Introspector>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The outcome of the last reload, for `/readyz`.
#[derive(Debug, Clone, Default)]
struct Outcome {
    at: Option<SystemTime>,
    ok: bool,
    problems: Vec<String>,
}

/// The configuration in use and what is needed to make the next one.
pub(crate) struct Live {
    app: ArcSwap<App>,
    config: Option<PathBuf>,
    flags: Flags,
    settings: Settings,
    redis: Option<(RedisClient, RedisReplayStore)>,
    metrics: Option<PrometheusHandle>,
    kept: Mutex<HashMap<String, Kept>>,
    last: Mutex<Option<Outcome>>,
    /// Serializes reloads (SIGHUP and the file watcher may ask at once).
    reloading: tokio::sync::Mutex<()>,
}

/// What identifies an issuer's authority: everything it is built from.
fn fingerprint(issuer: &IssuerPlan, plan: &Plan) -> String {
    format!("{issuer:?}|{:?}", plan.token_cache)
}

/// Whether two Redis settings are the same (the password compared, not its redacted form).
fn same_redis(a: Option<&RedisPlan>, b: Option<&RedisPlan>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.url == b.url
                && a.prefix == b.prefix
                && a.deadline == b.deadline
                && a.fail_open == b.fail_open
                && a.ca == b.ca
                && a.password.as_ref().map(|p| p.expose()) == b.password.as_ref().map(|p| p.expose())
        }
        _ => false,
    }
}

impl Live {
    /// The first configuration (already checked) and what reloads need.
    pub(crate) fn new(
        app: App,
        config: Option<PathBuf>,
        flags: Flags,
        settings: Settings,
        redis: Option<(RedisClient, RedisReplayStore)>,
        metrics: Option<PrometheusHandle>,
    ) -> Live {
        let kept = app
            .plan
            .issuers
            .iter()
            .zip(app.authorities.iter().zip(&app.keepers).zip(&app.introspectors))
            .map(|(issuer, ((authority, keeper), introspector))| {
                let kept = Kept {
                    fingerprint: fingerprint(issuer, &app.plan),
                    authority: authority.clone(),
                    keeper: Arc::clone(keeper),
                    introspector: introspector.clone(),
                    task: None,
                };
                (issuer.issuer.clone(), kept)
            })
            .collect();
        Live {
            app: ArcSwap::from_pointee(app),
            config,
            flags,
            settings,
            redis,
            metrics,
            kept: Mutex::new(kept),
            last: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The configuration checks are judged by now.
    pub(crate) fn app(&self) -> Arc<App> {
        self.app.load_full()
    }

    /// Starts the keeper of every issuer that has none (at start, and after a reload).
    pub(crate) fn start_keepers(&self) {
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        for entry in kept.values_mut().filter(|entry| entry.task.is_none()) {
            let task = tokio::spawn(health::keep(entry.authority.clone(), Arc::clone(&entry.keeper)));
            entry.task = Some(task);
        }
    }

    /// The last reload's outcome for `/readyz` (`null` before the first).
    pub(crate) fn report(&self) -> Value {
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        match last {
            None => Value::Null,
            Some(outcome) => json!({
                "ok": outcome.ok,
                "at_unix": outcome.at.and_then(|at| at.duration_since(SystemTime::UNIX_EPOCH).ok()).map(|d| d.as_secs()),
                "problems": outcome.problems,
            }),
        }
    }

    /// Checks the configuration again and swaps it in, or keeps the old one and says why.
    pub(crate) async fn reload(&self, why: &str) {
        let _one_at_a_time = self.reloading.lock().await;
        let outcome = match self.next() {
            Ok(app) => {
                self.app.store(Arc::new(app));
                self.start_keepers();
                tracing::info!(trigger = why, "configuration reloaded");
                metrics::counter!("idm_serve_config_reloads_total", "outcome" => "success").increment(1);
                Outcome { at: Some(SystemTime::now()), ok: true, problems: Vec::new() }
            }
            Err(problems) => {
                for problem in &problems {
                    tracing::error!(trigger = why, problem = %problem, "configuration refused");
                }
                tracing::error!(
                    trigger = why,
                    problems = problems.len(),
                    "configuration refused; the previous one keeps serving"
                );
                metrics::counter!("idm_serve_config_reloads_total", "outcome" => "failure").increment(1);
                Outcome { at: Some(SystemTime::now()), ok: false, problems }
            }
        };
        metrics::gauge!("idm_serve_config_last_reload_success").set(if outcome.ok { 1.0 } else { 0.0 });
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
    }

    /// The next application: the configuration checked in full, unchanged issuers kept.
    fn next(&self) -> Result<App, Vec<String>> {
        let mut problems = Vec::new();
        let plan = config::plan(self.config.as_deref(), self.flags.clone())?;
        let current = self.app.load();
        if plan.listen != current.plan.listen {
            problems.push("listen cannot change without a restart".into());
        }
        if plan.grpc_listen != current.plan.grpc_listen {
            problems.push("grpc_listen cannot change without a restart".into());
        }
        if plan.limits != current.plan.limits {
            problems.push("header_timeout_secs, max_connections and shutdown_timeout_secs cannot change without a restart".into());
        }
        if !same_redis(plan.redis.as_ref(), current.plan.redis.as_ref()) {
            problems.push("[redis] cannot change without a restart".into());
        }
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let mut next_kept = Vec::new();
        let mut pairs = Vec::new();
        let mut introspectors = Vec::new();
        for issuer in &plan.issuers {
            let print = fingerprint(issuer, &plan);
            let reuse = kept.get(&issuer.issuer).filter(|entry| entry.fingerprint == print);
            introspectors.push(reuse.and_then(|entry| entry.introspector.clone()));
            let (authority, keeper) = match reuse {
                Some(entry) => (entry.authority.clone(), Arc::clone(&entry.keeper)),
                None => match super::build_authority(issuer, &plan, &self.settings) {
                    Ok(authority) => (authority, Arc::new(health::Keeper::new())),
                    Err(problem) => {
                        problems.push(problem);
                        continue;
                    }
                },
            };
            pairs.push((authority.clone(), Arc::clone(&keeper)));
            next_kept.push((issuer.issuer.clone(), print, authority, keeper));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let app = App::new(plan, pairs, introspectors, self.metrics.clone(), self.redis.clone())
            .map_err(|p| vec![p])?;
        // Swap the registry: kept issuers keep their keeper task; the others' tasks stop.
        let mut old = std::mem::take(&mut *kept);
        for ((issuer, fingerprint, authority, keeper), introspector) in
            next_kept.into_iter().zip(&app.introspectors)
        {
            let task = old
                .remove(&issuer)
                .filter(|entry| entry.fingerprint == fingerprint)
                .and_then(|mut e| e.task.take());
            let introspector = introspector.clone();
            kept.insert(issuer, Kept { fingerprint, authority, keeper, introspector, task });
        }
        for (_, mut gone) in old {
            if let Some(task) = gone.task.take() {
                task.abort();
            }
        }
        Ok(app)
    }
}

/// Reloads on SIGHUP and when the configuration file changes, until the process stops.
pub(crate) async fn watch(live: Arc<Live>) {
    let stamp = |path: &PathBuf| std::fs::metadata(path).ok().map(|m| (m.len(), m.modified().ok()));
    let mut seen = live.config.as_ref().and_then(stamp);
    #[cfg(unix)]
    let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    let mut every = tokio::time::interval(WATCH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        #[cfg(unix)]
        let hup = async {
            match hangup.as_mut() {
                Some(signal) => signal.recv().await,
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let hup = std::future::pending::<Option<()>>();
        tokio::select! {
            _ = hup => live.reload("SIGHUP").await,
            _ = every.tick() => {
                let now = live.config.as_ref().and_then(stamp);
                if now != seen {
                    seen = now;
                    live.reload("file changed").await;
                }
            }
        }
    }
}

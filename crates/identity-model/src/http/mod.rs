//! Talking to providers: the transport trait and its reqwest implementation, and the one
//! fetch loop every request goes through (URL policy, body cap, per-attempt timeout, retry by
//! retry class with full-jitter backoff and `Retry-After`, per-host circuit breaker, counters).

mod circuit;
mod retry;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use identity_model_core::{DiscoveryPolicy, Error, ErrorKind, FormRequest, RetryClass};
use tokio::time::Instant;

pub use retry::{Backoff, RetryDecision, jitter_unit};

use crate::clock::Clock;
use crate::config::{CircuitConfig, HttpConfig};
use crate::telemetry;
use circuit::Breakers;
use transport::{HttpRequest, HttpResponse, HttpTransport, TransportError};

/// One request for the fetch loop.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// A document GET (discovery, key sets), with its body cap.
    Document(HttpRequest),
    /// A request to an OAuth endpoint as the core built it, with its body cap.
    Endpoint(FormRequest, usize),
}

impl Outgoing {
    fn url(&self) -> &str {
        match self {
            Outgoing::Document(request) => &request.url,
            Outgoing::Endpoint(form, _) => &form.url,
        }
    }
}

/// Where the loop counts what it did (the Authority's and the token client's counters).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tally<'a> {
    pub(crate) requests: &'a AtomicU64,
    pub(crate) retries: &'a AtomicU64,
    pub(crate) circuit_opens: &'a AtomicU64,
}

/// The transport with its settings, breakers and clock: shared by an Authority and the token
/// clients built on it.
#[derive(Debug)]
pub(crate) struct Fetcher {
    transport: Arc<dyn HttpTransport>,
    config: HttpConfig,
    circuit: CircuitConfig,
    breakers: Breakers,
    clock: Arc<dyn Clock>,
}

impl Fetcher {
    pub(crate) fn new(
        transport: Arc<dyn HttpTransport>,
        config: HttpConfig,
        circuit: CircuitConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let breakers = Breakers::new(circuit.failure_threshold, circuit.open_for);
        Fetcher { transport, config, circuit, breakers, clock }
    }

    pub(crate) fn circuit(&self) -> CircuitConfig {
        self.circuit
    }

    pub(crate) fn transport(&self) -> &Arc<dyn HttpTransport> {
        &self.transport
    }

    pub(crate) fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Whether requests to `url`'s host are held back by an open circuit right now.
    pub(crate) fn circuit_open(&self, url: &str) -> bool {
        host_of(url).is_some_and(|host| self.breakers.is_open(&host, Instant::now()))
    }

    /// Sends `request`: checks its URL against `policy`, then tries it once, or up to
    /// `retry_max_attempts` times when `class` is retryable, on connection errors, timeouts,
    /// 429 and 5xx (full-jitter backoff, `Retry-After` honoured up to a minute, longer gives
    /// up). The last response is returned whatever its status: the caller reads it. `Err` is
    /// a refused URL, an open circuit (`circuit_kind`: no request sent), or no response.
    pub(crate) async fn fetch(
        &self,
        request: Outgoing,
        class: RetryClass,
        policy: &DiscoveryPolicy,
        circuit_kind: ErrorKind,
        tally: Tally<'_>,
    ) -> Result<HttpResponse, Error> {
        let url = request.url().to_owned();
        let uri = policy.check_url(&url, "URL")?;
        let host = uri.authority().map_or_else(String::new, |a| a.as_str().to_ascii_lowercase());
        let config = &self.config;
        let backoff = Backoff { base: config.retry_base_delay, ..Backoff::default() };
        let attempts = match class {
            RetryClass::Retryable => config.retry_max_attempts.max(1),
            RetryClass::Never => 1,
        };
        let mut attempt = 0;
        loop {
            let permit = self.breakers.allow(&host, Instant::now()).map_err(|open_for| {
                Error::new(
                    circuit_kind,
                    format!(
                        "{host} is failing: circuit open for {} s more, no request sent",
                        open_for.as_secs()
                    ),
                )
            })?;
            if attempt > 0 {
                tally.retries.fetch_add(1, Ordering::Relaxed);
            }
            tally.requests.fetch_add(1, Ordering::Relaxed);
            let outcome = self.attempt(&request).await;
            let failed = outcome.as_ref().map_or(true, |r| r.status == 429 || r.status >= 500);
            let status = outcome.as_ref().ok().map(|r| r.status);
            telemetry::provider_request(&host, uri.path(), status, attempt > 0);
            let opened = permit.record(!failed, Instant::now());
            if opened {
                tally.circuit_opens.fetch_add(1, Ordering::Relaxed);
            }
            telemetry::circuit_state(&host, self.breakers.is_open(&host, Instant::now()), opened);
            let (last, retry_after) = match outcome {
                Ok(response) if !failed => return Ok(response),
                Ok(response) => {
                    let now = self.clock.now().as_system_time();
                    let wait = response
                        .retry_after
                        .as_deref()
                        .and_then(|v| identity_model_core::http::retry_after(v, now));
                    (Ok(response), wait)
                }
                Err(e) => {
                    if let Some(refusal) = transport::policy_refusal(&e) {
                        // The name resolved only to refused addresses: no request was sent.
                        return Err(Error::new(ErrorKind::PolicyViolation, refusal).with_source(e));
                    }
                    let timeout = e.timeout;
                    let error =
                        Error::new(ErrorKind::TransportError, format!("{url}: {}", e.message)).with_source(e);
                    (Err(if timeout { error.timed_out() } else { error }), None)
                }
            };
            match backoff.decide(attempt, attempts, retry_after, jitter_unit()) {
                RetryDecision::After(wait) => tokio::time::sleep(wait).await,
                RetryDecision::GiveUp => return last,
            }
            attempt += 1;
        }
    }

    /// One attempt, bounded by the configured timeout whatever the transport does.
    async fn attempt(&self, request: &Outgoing) -> Result<HttpResponse, TransportError> {
        let call = match request.clone() {
            Outgoing::Document(get) => self.transport.get(get),
            Outgoing::Endpoint(form, max_body) => self.transport.send(form, max_body),
        };
        match tokio::time::timeout(self.config.timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(TransportError {
                message: format!(
                    "request timed out: no response within {} ms",
                    self.config.timeout.as_millis()
                ),
                timeout: true,
                source: None,
            }),
        }
    }
}

fn host_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    Some(uri.authority()?.as_str().to_ascii_lowercase())
}

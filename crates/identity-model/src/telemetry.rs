//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): the
//! application installs a recorder (Prometheus, StatsD, OpenTelemetry...) and these counters,
//! gauges and histograms reach it. Without the feature every call here compiles to nothing.
//!
//! Handles for the per-issuer counters are registered once, when the [`Authority`] (or token
//! manager) is built, so the hot path increments an atomic and never builds a label set:
//! install the recorder before building them. The [`Stats`] snapshot counters stay the source
//! of truth for tests and `idm bench`; each event bumps both (the `tally!` macro).
//!
//! [`Authority`]: crate::Authority
//! [`Stats`]: crate::Stats

/// Counts `$field` in `$owner.stats` and, with feature `metrics`, in `$owner.meters`.
macro_rules! tally {
    ($owner:expr, $field:ident) => {{
        $owner.stats.$field.fetch_add(1, ::std::sync::atomic::Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        $owner.meters.$field.increment(1);
    }};
}
pub(crate) use tally;

/// Declares a struct of counter handles, one per field, each with its metric name and fixed
/// labels, all sharing the labels given to `new`.
macro_rules! meters {
    ($(#[$doc:meta])* $name:ident { $($field:ident => $metric:literal $(, $k:literal = $v:literal)*;)* }) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name {
            $(
                #[cfg(feature = "metrics")]
                pub(crate) $field: metrics::Counter,
            )*
        }

        impl $name {
            #[allow(unused_variables)]
            pub(crate) fn new(labels: &[(&'static str, &str)]) -> Self {
                #[cfg(feature = "metrics")]
                {
                    let base: Vec<metrics::Label> =
                        labels.iter().map(|(k, v)| metrics::Label::new(*k, (*v).to_owned())).collect();
                    $name {
                        $($field: {
                            #[allow(unused_mut)]
                            let mut labels = base.clone();
                            $(labels.push(metrics::Label::new($k, $v));)*
                            metrics::counter!($metric, labels)
                        },)*
                    }
                }
                #[cfg(not(feature = "metrics"))]
                $name {}
            }
        }
    };
}

meters! {
    /// An authority's counters (label `issuer`), mirroring [`crate::Stats`].
    AuthorityMeters {
        hits => "identity_model_key_cache_total", "result" = "hit";
        misses => "identity_model_key_cache_total", "result" = "miss";
        stale_serves => "identity_model_stale_serves_total";
        refreshes => "identity_model_key_refreshes_total", "outcome" = "started";
        fetch_errors => "identity_model_key_refreshes_total", "outcome" = "failed";
        coalesced => "identity_model_coalesced_waits_total";
        kid_misses => "identity_model_kid_miss_refetches_total";
        negative_kid_hits => "identity_model_negative_kid_hits_total";
        kid_miss_refusals => "identity_model_kid_miss_refusals_total";
        discovery_fetches => "identity_model_discovery_fetches_total";
        valid => "identity_model_validations_total", "outcome" = "valid", "kind" = "none";
    }
}

meters! {
    /// A validated-token cache's counters (label `issuer`).
    TokenCacheMeters {
        hits => "identity_model_token_cache_total", "result" = "hit";
        misses => "identity_model_token_cache_total", "result" = "miss";
        evictions => "identity_model_token_cache_total", "result" = "eviction";
        invalidations => "identity_model_token_cache_total", "result" = "invalidation";
    }
}

meters! {
    /// A token manager's counters (label `client_id`).
    TokenManagerMeters {
        requests => "identity_model_token_manager_total", "result" = "request";
        hits => "identity_model_token_manager_total", "result" = "hit";
        coalesced => "identity_model_token_manager_total", "result" = "coalesced";
        failures => "identity_model_token_manager_total", "result" = "failure";
        backoff_rejections => "identity_model_token_manager_total", "result" = "backoff_rejection";
    }
}

/// The validation-duration histogram, registered once when an authority is built (a lookup
/// per validation would cost the hot path more than the measurement).
#[derive(Debug)]
pub(crate) struct Durations {
    #[cfg(feature = "metrics")]
    histogram: metrics::Histogram,
}

impl Durations {
    pub(crate) fn new() -> Self {
        Durations {
            #[cfg(feature = "metrics")]
            histogram: metrics::histogram!("identity_model_validation_duration_seconds"),
        }
    }
}

/// When a validation started (only read with feature `metrics`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Started(#[cfg(feature = "metrics")] std::time::Instant);

impl Started {
    #[inline]
    pub(crate) fn now() -> Started {
        Started(
            #[cfg(feature = "metrics")]
            std::time::Instant::now(),
        )
    }
}

/// Records a finished validation: its outcome (and error kind) and how long it took.
#[inline]
#[allow(unused_variables)]
pub(crate) fn validated(
    meters: &AuthorityMeters,
    durations: &Durations,
    issuer: &str,
    started: Started,
    result: &Result<identity_model_core::ValidToken, identity_model_core::Error>,
) {
    #[cfg(feature = "metrics")]
    {
        durations.histogram.record(started.0.elapsed().as_secs_f64());
        match result {
            Ok(_) => meters.valid.increment(1),
            Err(e) => metrics::counter!(
                "identity_model_validations_total",
                "issuer" => issuer.to_owned(),
                "outcome" => outcome(e.kind()),
                "kind" => e.kind().as_str(),
            )
            .increment(1),
        }
    }
}

/// Records a validation refused before an issuer was chosen (unreadable token, untrusted
/// `iss`): label `issuer="unknown"`, never the token's own value.
#[allow(unused_variables)]
pub(crate) fn unattributed(result: &Result<identity_model_core::ValidToken, identity_model_core::Error>) {
    #[cfg(feature = "metrics")]
    if let Err(e) = result {
        metrics::counter!(
            "identity_model_validations_total",
            "issuer" => "unknown",
            "outcome" => outcome(e.kind()),
            "kind" => e.kind().as_str(),
        )
        .increment(1);
    }
}

/// The `outcome` label of a failed validation, by whose fault it is: `invalid` (the token's),
/// `unavailable` (the provider's or a shared store's), `error` (the configuration's).
#[cfg(feature = "metrics")]
fn outcome(kind: identity_model_core::ErrorKind) -> &'static str {
    use identity_model_core::Fault;
    match kind.fault() {
        Fault::Token => "invalid",
        Fault::Provider | Fault::Store => "unavailable",
        _ => "error",
    }
}

/// Records one request to a provider: host, URL path, and status (or `error`), and whether it
/// was a retry.
#[allow(unused_variables)]
pub(crate) fn provider_request(host: &str, path: &str, status: Option<u16>, retry: bool) {
    #[cfg(feature = "metrics")]
    {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        metrics::counter!(
            "identity_model_provider_requests_total",
            "host" => host.to_owned(),
            "endpoint" => path.to_owned(),
            "status" => status,
        )
        .increment(1);
        if retry {
            metrics::counter!("identity_model_retries_total", "host" => host.to_owned()).increment(1);
        }
    }
}

/// Records a host's circuit state after a request: 0 closed or probing, 1 open.
#[allow(unused_variables)]
pub(crate) fn circuit_state(host: &str, open: bool, just_opened: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("identity_model_circuit_open", "host" => host.to_owned())
            .set(f64::from(u8::from(open)));
        if just_opened {
            metrics::counter!("identity_model_circuit_opens_total", "host" => host.to_owned()).increment(1);
        }
    }
}

//! Issue 19, item 4: the blocking API runs the async API's pipeline, metrics included: its
//! validations are counted like the async ones (they were not counted at all).

#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use identity_model::blocking;
use identity_model_testkit::TestProvider;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

mod support;

/// A metric: name, labels, value.
type Metric = (String, Vec<(String, String)>, DebugValue);

/// The value of `identity_model_validations_total` with `outcome` in `snapshot`.
fn validations(snapshot: &[Metric], outcome: &str) -> u64 {
    snapshot
        .iter()
        .filter(|(name, labels, _)| {
            name == "identity_model_validations_total"
                && labels.iter().any(|(k, v)| k == "outcome" && v == outcome)
        })
        .map(|(_, _, value)| match value {
            DebugValue::Counter(n) => *n,
            _ => 0,
        })
        .sum()
}

#[test]
fn blocking_validations_are_counted_like_async_ones() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let provider = runtime.block_on(TestProvider::start()).unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        let authority = blocking::Authority::new(support::testkit::authority(&provider, true));
        let token = provider.token().sign();
        authority.validate(&token).unwrap(); // cold: the slow path
        authority.validate(&token).unwrap(); // warm: the hot path
        assert!(authority.validate(&provider.token().expired().sign()).is_err());
    });
    let snapshot: Vec<Metric> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    assert_eq!(validations(&snapshot, "valid"), 2, "{snapshot:?}");
    assert_eq!(validations(&snapshot, "invalid"), 1, "{snapshot:?}");
}

//! Authorities over the embedded test provider (`identity-model-testkit`), as the layer,
//! DPoP and token-client tests build them.

use std::time::Duration;

use identity_model::{Authority, DiscoveryPolicy, HttpConfig, Validation};
use identity_model_testkit::TestProvider;

/// An authority for `provider`: its default audience, `typ` `at+jwt` when `at_jwt`, HTTP on
/// loopback, one attempt per request with a 5 s timeout.
pub fn authority(provider: &TestProvider, at_jwt: bool) -> Authority {
    let mut rules = Validation::new(provider.issuer()).audience(provider.default_audience());
    if at_jwt {
        rules = rules.token_type("at+jwt");
    }
    Authority::builder(provider.issuer())
        .rules(rules)
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .config(HttpConfig {
            retry_max_attempts: 1,
            timeout: Duration::from_secs(5),
            ..HttpConfig::default()
        })
        .build()
        .unwrap()
}

//! Building an [`Authority`]: the issuer, its rules, and how its keys are fetched and kept.

use std::sync::Arc;
use std::time::Duration;

use identity_model_core::{DiscoveryPolicy, Error, ErrorKind, MetadataKind, Validation};

use super::keys::{self, KeySource};
use super::token_cache::{TokenCache, TokenCacheConfig};
use super::{Authority, Inner};
use crate::clock::{Clock, SystemClock};
use crate::config::{CacheConfig, CircuitConfig, HttpConfig, Settings};
use crate::http::Fetcher;
use crate::http::transport::{HttpTransport, ReqwestTransport};
use crate::telemetry;

/// Builds an [`Authority`].
#[derive(Debug)]
pub struct AuthorityBuilder {
    issuer: String,
    metadata: MetadataKind,
    rules: Validation,
    rules_given: bool,
    policy: DiscoveryPolicy,
    config: HttpConfig,
    cache: CacheConfig,
    circuit: CircuitConfig,
    max_staleness: Duration,
    transport: Option<Arc<dyn HttpTransport>>,
    clock: Arc<dyn Clock>,
    token_cache: Option<TokenCacheConfig>,
    keys_from: keys::KeysFrom,
}

impl Authority {
    /// Starts building an authority for `issuer` (`iss` must equal it exactly).
    pub fn builder(issuer: impl Into<String>) -> AuthorityBuilder {
        let issuer = issuer.into();
        AuthorityBuilder {
            metadata: MetadataKind::OpenId,
            rules: Validation::new(issuer.clone()),
            rules_given: false,
            issuer,
            policy: DiscoveryPolicy::default(),
            config: HttpConfig::default(),
            cache: CacheConfig::default(),
            circuit: CircuitConfig::default(),
            max_staleness: Duration::from_secs(24 * 3600),
            transport: None,
            clock: Arc::new(SystemClock),
            token_cache: None,
            keys_from: keys::KeysFrom::Discovery,
        }
    }
}

impl AuthorityBuilder {
    /// Validation rules for this issuer's tokens. They must pin exactly this authority's
    /// issuer (`Validation::new(issuer)`) and check an audience (or say
    /// `dangerous_any_audience()`): [`AuthorityBuilder::build`] refuses anything else with
    /// `invalid_config`. Without rules the authority serves metadata and keys (for token
    /// clients), and every `validate` fails with `invalid_config`.
    pub fn rules(mut self, rules: Validation) -> Self {
        self.rules = rules;
        self.rules_given = true;
        self
    }

    /// Which metadata document to read: OpenID Connect Discovery (default) or RFC 8414
    /// (`/.well-known/oauth-authorization-server`).
    pub fn metadata(mut self, kind: MetadataKind) -> Self {
        self.metadata = kind;
        self
    }

    /// The URL policy: it governs every URL this authority fetches (the issuer, discovery,
    /// `jwks_uri`) and every endpoint the token clients built on it call.
    pub fn policy(mut self, policy: DiscoveryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How requests are sent (timeouts, retries, TLS).
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = config;
        self
    }

    /// What is cached, for how long, and the kid-miss cooldown.
    pub fn cache(mut self, cache: CacheConfig) -> Self {
        self.cache = cache;
        self
    }

    /// The per-host circuit breaker.
    pub fn circuit(mut self, circuit: CircuitConfig) -> Self {
        self.circuit = circuit;
        self
    }

    /// All three at once (for example [`Settings::from_env`]).
    pub fn settings(self, settings: Settings) -> Self {
        self.config(settings.http).cache(settings.cache).circuit(settings.circuit)
    }

    /// How long the last good keys are served while the provider cannot be reached.
    pub fn max_staleness(mut self, max: Duration) -> Self {
        self.max_staleness = max;
        self
    }

    /// A transport other than the default reqwest one.
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Caches validated tokens: a token that validated before is answered by a hash lookup
    /// (see [`TokenCacheConfig`] for the bounds and when an entry stops being served). Off by
    /// default.
    pub fn token_cache(mut self, config: TokenCacheConfig) -> Self {
        self.token_cache = Some(config);
        self
    }

    /// The wall clock for `exp`/`nbf`/`iat` and HTTP dates.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where the keys come from (default: discovery). A `jwks_uri` must pass the URL policy;
    /// a file and inline keys need no network at all.
    pub fn keys_from(mut self, keys_from: keys::KeysFrom) -> Self {
        self.keys_from = keys_from;
        self
    }

    /// Checks the issuer URL against the policy ([`DiscoveryPolicy::check_issuer`]: no query
    /// or fragment either), the rules against the issuer and the
    /// audience requirement, and builds.
    pub fn build(self) -> Result<Authority, Error> {
        self.policy.check_issuer(&self.issuer)?;
        if let keys::KeysFrom::JwksUri(url) = &self.keys_from {
            self.policy.check_url(url, "jwks_uri")?;
        }
        if self.rules_given {
            let pinned = self.rules.issuers().is_some_and(|issuers| issuers == [self.issuer.as_str()]);
            if !pinned {
                return Err(Error::new(
                    ErrorKind::InvalidConfig,
                    format!(
                        "the rules must accept exactly this authority's issuer {:?} (build them with \
                         Validation::new(issuer)); use Issuers for several issuers",
                        self.issuer.chars().take(120).collect::<String>()
                    ),
                ));
            }
            if let Some(problem) = self.rules.config_problem() {
                return Err(problem);
            }
        }
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                ReqwestTransport::with_policy(&self.config, &self.policy)
                    .map_err(crate::http::transport::config_error)?,
            ),
        };
        let token_cache = self.token_cache.map(|config| TokenCache::new(config, &self.issuer));
        let fetcher = Arc::new(Fetcher::new(transport, self.config, self.circuit, Arc::clone(&self.clock)));
        let source = KeySource::new(keys::Settings {
            issuer: self.issuer,
            keys_from: self.keys_from,
            metadata: self.metadata,
            policy: self.policy,
            max_staleness: self.max_staleness,
            cache: self.cache,
            fetcher,
            clock: Arc::clone(&self.clock),
        });
        Ok(Authority {
            inner: Arc::new(Inner {
                rules: self.rules,
                clock: self.clock,
                source,
                token_cache,
                durations: telemetry::Durations::new(),
            }),
        })
    }
}

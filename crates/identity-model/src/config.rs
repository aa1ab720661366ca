//! Settings, with safe defaults: how requests are sent ([`HttpConfig`]), what is cached and
//! for how long ([`CacheConfig`]), and when a failing host is left alone ([`CircuitConfig`]).
//! [`Settings::from_env`] reads the variables py-identity-model users already set and reports
//! every problem at once.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How requests to providers are sent: timeouts, retries, TLS.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpConfig {
    /// Total time for one request (`HTTP_TIMEOUT`, seconds; default 30). The fetch loop also
    /// enforces it around any transport.
    pub timeout: Duration,
    /// Time to establish a connection (default 10 s).
    pub connect_timeout: Duration,
    /// Attempts per retryable request, the first included (`HTTP_RETRY_MAX_ATTEMPTS`, alias
    /// `HTTP_RETRY_COUNT`; default 3; 1 means no retry).
    pub retry_max_attempts: u32,
    /// Base of the exponential backoff between retries of one request: the first retry waits
    /// up to this, each next one up to twice as long (`HTTP_RETRY_BASE_DELAY`, seconds; default 1).
    pub retry_base_delay: Duration,
    /// Client certificate for mTLS (RFC 8705): a PEM file with the certificate chain and its
    /// private key (or the chain alone, with the key in [`HttpConfig::client_key`]). Used by
    /// every request of the transport built from this config.
    pub client_identity: Option<PathBuf>,
    /// The private key of [`HttpConfig::client_identity`] when it is a PEM file of its own
    /// (PKCS #8, PKCS #1 or SEC 1; not encrypted).
    pub client_key: Option<PathBuf>,
    /// Extra CA bundle (`SSL_CERT_FILE`, else `CURL_CA_BUNDLE`, else `REQUESTS_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry_max_attempts: 3,
            retry_base_delay: Duration::from_secs(1),
            client_identity: None,
            client_key: None,
            ca_bundle: None,
        }
    }
}

/// What an [`crate::Authority`] keeps, for how long, and when it looks again.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    /// Key set freshness when the provider sends no caching headers (`JWKS_CACHE_TTL`, seconds; default 3600).
    pub jwks_cache_ttl: Duration,
    /// Discovery freshness when the provider sends no caching headers (`DISCO_CACHE_TTL`, seconds; default 3600).
    pub disco_cache_ttl: Duration,
    /// Least time between refetches caused by unknown `kid`s (`KID_MISS_REFRESH_COOLDOWN`,
    /// seconds; default 5). Within it unknown kids are refused at once.
    pub kid_miss_refresh_cooldown: Duration,
    /// Largest key set accepted, in bytes (`MAX_JWKS_SIZE`; default 524288).
    pub max_jwks_size: usize,
    /// Most keys accepted in a key set (`MAX_JWKS_KEYS`; default 100).
    pub max_jwks_keys: usize,
    /// Least freshness given to any fetched document, whatever its headers say (default 60 s).
    pub min_freshness: Duration,
    /// Most freshness given to a key set (default 24 h).
    pub max_jwks_freshness: Duration,
    /// Most freshness given to a discovery document (default 1 h).
    pub max_disco_freshness: Duration,
    /// After a failed key or discovery refresh, how long callers get that failure without a
    /// new request (default 1 s).
    pub refresh_failure_backoff: Duration,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            jwks_cache_ttl: Duration::from_secs(3600),
            disco_cache_ttl: Duration::from_secs(3600),
            kid_miss_refresh_cooldown: Duration::from_secs(5),
            max_jwks_size: 512 * 1024,
            max_jwks_keys: 100,
            min_freshness: Duration::from_secs(60),
            max_jwks_freshness: Duration::from_secs(24 * 3600),
            max_disco_freshness: Duration::from_secs(3600),
            refresh_failure_backoff: Duration::from_secs(1),
        }
    }
}

/// The per-host circuit breaker: after `failure_threshold` consecutive failures (no response,
/// 429 or 5xx) a host gets no requests for `open_for`, then one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitConfig {
    /// Consecutive failures that open a host's circuit (default 5).
    pub failure_threshold: u32,
    /// How long an open circuit stays open before one probe (default 30 s).
    pub open_for: Duration,
}

impl Default for CircuitConfig {
    fn default() -> Self {
        CircuitConfig { failure_threshold: 5, open_for: Duration::from_secs(30) }
    }
}

/// Every setting read from the environment at once: [`Settings::from_env`] reports every
/// problem in one error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    /// Requests.
    pub http: HttpConfig,
    /// Caches.
    pub cache: CacheConfig,
    /// The circuit breaker.
    pub circuit: CircuitConfig,
}

/// One environment variable that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The variable.
    pub variable: &'static str,
    /// What was wrong with it.
    pub reason: String,
}

/// Every problem found in the configuration (error kind `invalid_config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The problems, in variable order.
    pub problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// The stable error kind.
    pub fn kind(&self) -> &'static str {
        "invalid_config"
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid_config: ")?;
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", p.variable, p.reason)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for identity_model_core::Error {
    fn from(e: ConfigError) -> Self {
        identity_model_core::Error::new(identity_model_core::ErrorKind::InvalidConfig, e.to_string())
            .with_source(e)
    }
}

impl HttpConfig {
    /// The HTTP settings of [`Settings::from_env`] (the cache variables are checked too).
    pub fn from_env() -> Result<HttpConfig, ConfigError> {
        Settings::from_env().map(|s| s.http)
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_vars(std::env::vars())
    }

    /// Reads the given variables (the environment, or a test's map). Unset variables keep
    /// their defaults; set ones must be valid, and every invalid one is reported.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Settings, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let vars: Vec<(String, String)> =
            vars.into_iter().map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned())).collect();
        let get = |name: &str| vars.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_owned());
        let mut config = HttpConfig::default();
        let mut cache = CacheConfig::default();
        let mut problems = Vec::new();
        let mut secs = |variable: &'static str, min: f64, max: f64, slot: &mut Duration| {
            if let Some(value) = get(variable) {
                match value.parse::<f64>() {
                    Ok(v) if v.is_finite() && v >= min && v <= max => *slot = Duration::from_secs_f64(v),
                    _ => problems.push(ConfigProblem {
                        variable,
                        reason: format!("{value:?} is not a number of seconds between {min} and {max}"),
                    }),
                }
            }
        };
        secs("HTTP_TIMEOUT", 0.001, 3600.0, &mut config.timeout);
        secs("HTTP_RETRY_BASE_DELAY", 0.0, 60.0, &mut config.retry_base_delay);
        secs("JWKS_CACHE_TTL", 1.0, 7.0 * 86_400.0, &mut cache.jwks_cache_ttl);
        secs("DISCO_CACHE_TTL", 1.0, 7.0 * 86_400.0, &mut cache.disco_cache_ttl);
        secs("KID_MISS_REFRESH_COOLDOWN", 0.0, 3600.0, &mut cache.kid_miss_refresh_cooldown);
        let mut count = |variable: &'static str, min: u64, max: u64| -> Option<u64> {
            let value = get(variable)?;
            match value.parse::<u64>() {
                Ok(v) if (min..=max).contains(&v) => Some(v),
                _ => {
                    problems.push(ConfigProblem {
                        variable,
                        reason: format!("{value:?} is not a whole number from {min} to {max}"),
                    });
                    None
                }
            }
        };
        let attempts = count("HTTP_RETRY_MAX_ATTEMPTS", 1, 10);
        let alias = count("HTTP_RETRY_COUNT", 1, 10);
        let size = count("MAX_JWKS_SIZE", 1024, 16 * 1024 * 1024);
        let keys = count("MAX_JWKS_KEYS", 1, 10_000);
        if let (Some(a), Some(b)) = (attempts, alias) {
            if a != b {
                problems.push(ConfigProblem {
                    variable: "HTTP_RETRY_COUNT",
                    reason: format!("disagrees with HTTP_RETRY_MAX_ATTEMPTS ({b} vs {a}); set one"),
                });
            }
        }
        if let Some(n) = attempts.or(alias) {
            config.retry_max_attempts = n as u32;
        }
        if let Some(n) = size {
            cache.max_jwks_size = n as usize;
        }
        if let Some(n) = keys {
            cache.max_jwks_keys = n as usize;
        }
        for variable in ["SSL_CERT_FILE", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"] {
            if let Some(path) = get(variable).filter(|p| !p.is_empty()) {
                let path = PathBuf::from(path);
                if !path.is_file() {
                    problems.push(ConfigProblem {
                        variable,
                        reason: format!("{} is not a readable file", path.display()),
                    });
                }
                config.ca_bundle = Some(path);
                break;
            }
        }
        if problems.is_empty() {
            Ok(Settings { http: config, cache, circuit: CircuitConfig::default() })
        } else {
            Err(ConfigError { problems })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_variables() {
        assert_eq!(Settings::from_vars(Vec::<(String, String)>::new()).unwrap(), Settings::default());
    }

    #[test]
    fn reads_every_variable() {
        let s = Settings::from_vars([
            ("HTTP_TIMEOUT", "2.5"),
            ("HTTP_RETRY_COUNT", "5"),
            ("HTTP_RETRY_BASE_DELAY", "0.25"),
            ("JWKS_CACHE_TTL", "600"),
            ("DISCO_CACHE_TTL", "60"),
            ("KID_MISS_REFRESH_COOLDOWN", "0"),
            ("MAX_JWKS_SIZE", "65536"),
            ("MAX_JWKS_KEYS", "20"),
            ("CURL_CA_BUNDLE", "/etc/hostname"),
            ("REQUESTS_CA_BUNDLE", "/nonexistent"),
        ])
        .unwrap();
        let (c, cache) = (s.http, s.cache);
        assert_eq!(c.timeout, Duration::from_millis(2500));
        assert_eq!(c.retry_max_attempts, 5);
        assert_eq!(c.retry_base_delay, Duration::from_millis(250));
        assert_eq!(
            (cache.jwks_cache_ttl, cache.disco_cache_ttl),
            (Duration::from_secs(600), Duration::from_secs(60))
        );
        assert_eq!(cache.kid_miss_refresh_cooldown, Duration::ZERO);
        assert_eq!((cache.max_jwks_size, cache.max_jwks_keys), (65536, 20));
        // CURL_CA_BUNDLE wins over REQUESTS_CA_BUNDLE, so the missing file there is never read.
        assert_eq!(c.ca_bundle, Some(PathBuf::from("/etc/hostname")));
    }

    #[test]
    fn reports_every_problem_at_once() {
        let err = Settings::from_vars([
            ("HTTP_TIMEOUT", "soon"),
            ("HTTP_RETRY_MAX_ATTEMPTS", "0"),
            ("HTTP_RETRY_BASE_DELAY", "-1"),
            ("JWKS_CACHE_TTL", "NaN"),
            ("MAX_JWKS_KEYS", "1e3"),
            ("SSL_CERT_FILE", "/nonexistent/ca.pem"),
        ])
        .unwrap_err();
        let variables: Vec<_> = err.problems.iter().map(|p| p.variable).collect();
        assert_eq!(
            variables,
            [
                "HTTP_TIMEOUT",
                "HTTP_RETRY_BASE_DELAY",
                "JWKS_CACHE_TTL",
                "HTTP_RETRY_MAX_ATTEMPTS",
                "MAX_JWKS_KEYS",
                "SSL_CERT_FILE"
            ]
        );
        assert!(err.to_string().starts_with("invalid_config: HTTP_TIMEOUT"));
        let clash =
            Settings::from_vars([("HTTP_RETRY_MAX_ATTEMPTS", "2"), ("HTTP_RETRY_COUNT", "4")]).unwrap_err();
        assert_eq!(clash.problems[0].variable, "HTTP_RETRY_COUNT");
    }
}

//! Validation against a key set the caller already holds (a file, a configured secret).

use std::fmt;
use std::sync::Arc;

use identity_model_core::{Error, KeySet, ValidToken, Validation};

use crate::clock::{Clock, SystemClock};

/// Validates tokens against a fixed [`KeySet`] with the given rules and clock. Cloning is cheap
/// and clones share the keys.
#[derive(Clone)]
pub struct StaticKeyValidator {
    keys: Arc<KeySet>,
    rules: Arc<Validation>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for StaticKeyValidator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticKeyValidator")
            .field("keys", &self.keys.len())
            .field("rules", &self.rules)
            .field("clock", &self.clock)
            .finish()
    }
}

impl StaticKeyValidator {
    /// Validates with the system clock. Refused (`invalid_config`) when the rules check no
    /// audience and do not say [`Validation::dangerous_any_audience`].
    pub fn new(keys: KeySet, rules: Validation) -> Result<Self, Error> {
        StaticKeyValidator::with_clock(keys, rules, Arc::new(SystemClock))
    }

    /// Validates with `clock`; refused like [`StaticKeyValidator::new`].
    pub fn with_clock(keys: KeySet, rules: Validation, clock: Arc<dyn Clock>) -> Result<Self, Error> {
        if let Some(problem) = rules.config_problem() {
            return Err(problem);
        }
        Ok(StaticKeyValidator { keys: Arc::new(keys), rules: Arc::new(rules), clock })
    }

    /// Validates `token` now.
    pub fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        self.rules.validate(token, &self.keys, self.clock.now())
    }

    /// The keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use identity_model_core::{Algorithm, ErrorKind, SigningKey, UnixTime};
    use serde_json::json;

    #[test]
    fn the_injected_clock_decides_expiry_and_clones_share_keys() {
        let key = SigningKey::generate(Algorithm::ES256).unwrap();
        let keys = KeySet::from_jwks([key.verification_jwk().into()]);
        let clock = FixedClock::new(UnixTime::from_secs(1_000));
        let unchecked = Validation::new("https://issuer.example");
        let e = StaticKeyValidator::with_clock(
            KeySet::from_jwks([key.verification_jwk().into()]),
            unchecked,
            Arc::new(clock.clone()),
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidConfig, "no audience: refused at build");
        let rules =
            Validation::new("https://issuer.example").audience("api").leeway(std::time::Duration::ZERO);
        let validator = StaticKeyValidator::with_clock(keys, rules, Arc::new(clock.clone())).unwrap();
        let token = key
            .sign_jwt(None, &json!({"iss": "https://issuer.example", "aud": "api", "exp": 1_100}))
            .unwrap();
        let copy = validator.clone();
        assert!(copy.validate(&token).is_ok());
        clock.advance(100);
        assert_eq!(validator.validate(&token).unwrap_err().kind(), ErrorKind::TokenExpired);
        assert_eq!(copy.validate(&token).unwrap_err().kind(), ErrorKind::TokenExpired);
        assert!(std::ptr::eq(copy.keys(), validator.keys()));
    }
}

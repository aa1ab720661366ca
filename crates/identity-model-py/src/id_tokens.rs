//! ID tokens (OpenID Connect Core section 3.1.3.7) and back-channel logout tokens, for both
//! native classes: the rules a call asks for, on top of the class's own (algorithms, leeway).

use std::time::Duration;

use identity_model::{Error, ErrorKind, IdTokenValidation, Validation};

/// What `validate_id_token` was asked to check beyond the class's rules.
pub(crate) struct IdTokenChecks {
    client_id: String,
    nonce: Option<String>,
    access_token: Option<String>,
    code: Option<String>,
    max_age: Option<f64>,
}

impl IdTokenChecks {
    pub(crate) fn new(
        client_id: String,
        nonce: Option<String>,
        access_token: Option<String>,
        code: Option<String>,
        max_age: Option<f64>,
    ) -> Self {
        IdTokenChecks { client_id, nonce, access_token, code, max_age }
    }

    /// The ID token rules: `base` (issuers, algorithms, leeway) with `aud` = the client id,
    /// `sub` and `iat` required, and the nonce, `max_age`, `at_hash` and `c_hash` checks asked for.
    pub(crate) fn rules(self, issuer: &str, base: &Validation) -> Result<IdTokenValidation, Error> {
        let mut rules = IdTokenValidation::new(issuer, self.client_id).rules(base.clone());
        if let Some(nonce) = self.nonce {
            rules = rules.nonce(nonce);
        }
        if let Some(token) = self.access_token {
            rules = rules.access_token(token);
        }
        if let Some(code) = self.code {
            rules = rules.code(code);
        }
        if let Some(secs) = self.max_age {
            if !secs.is_finite() || secs < 0.0 {
                return Err(Error::new(ErrorKind::InvalidConfig, "max_age must be 0 or more seconds"));
            }
            rules = rules.max_age(Duration::from_secs_f64(secs));
        }
        Ok(rules)
    }
}

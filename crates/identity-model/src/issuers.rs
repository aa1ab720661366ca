//! Several pinned issuers behind one `validate`: the token's `iss` (read before verification,
//! only to choose) selects the authority whose keys and rules then decide. An `iss` that is not
//! pinned is rejected without any request: unknown issuers are never discovered.

use std::collections::HashMap;

use identity_model_core::{Error, ErrorKind, ValidToken, jws};

use crate::authority::Authority;

/// A fixed set of pinned issuers.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    by_issuer: HashMap<String, Authority>,
}

impl Issuers {
    /// An empty set.
    pub fn new() -> Self {
        Issuers::default()
    }

    /// Pins `authority` under its issuer.
    pub fn with(mut self, authority: Authority) -> Self {
        self.by_issuer.insert(authority.issuer().to_owned(), authority);
        self
    }

    /// The authority for `issuer`, if pinned.
    pub fn get(&self, issuer: &str) -> Option<&Authority> {
        self.by_issuer.get(issuer)
    }

    /// Validates `token` with the authority its `iss` names.
    pub async fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        let issuer = jws::unverified_issuer(token).ok_or_else(|| {
            Error::new(ErrorKind::MalformedToken, "token has no readable \"iss\" to choose an issuer by")
        })?;
        match self.by_issuer.get(&issuer) {
            Some(authority) => authority.validate(token).await,
            None => {
                let shown: String = issuer.chars().take(80).collect();
                Err(Error::new(ErrorKind::InvalidIssuer, format!("issuer {shown:?} is not trusted"))
                    .with_claim("iss"))
            }
        }
    }
}

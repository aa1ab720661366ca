//! Several pinned issuers behind one `validate`: the token's `iss` (read before verification,
//! only to choose) selects the authority whose keys and rules then decide. An `iss` that is not
//! pinned is rejected without any request: unknown issuers are never discovered. The token is
//! parsed once, and that parse goes on to the chosen authority.

use std::collections::HashMap;

use identity_model_core::{Error, ErrorKind, UnverifiedToken, ValidToken};

use super::Authority;
use crate::telemetry;

/// A fixed set of pinned issuers.
#[derive(Debug, Clone, Default)]
pub struct Issuers {
    by_issuer: HashMap<String, Authority>,
    max_token_len: usize,
}

impl Issuers {
    /// An empty set.
    pub fn new() -> Self {
        Issuers::default()
    }

    /// The time on the clock of the issuer whose name sorts first (the system clock when
    /// there is none): the same issuer every time, whatever the map's order. Where the issuer
    /// of a token is known, use that authority's own clock ([`Issuers::get`]).
    pub fn now(&self) -> identity_model_core::UnixTime {
        use crate::clock::Clock as _;
        self.by_issuer
            .iter()
            .min_by(|a, b| a.0.cmp(b.0))
            .map_or_else(|| crate::clock::SystemClock.now(), |(_, authority)| authority.now())
    }

    /// The largest clock leeway among the issuers' rules (zero when there is none).
    pub fn clock_leeway(&self) -> std::time::Duration {
        self.by_issuer.values().map(|a| a.rules().clock_leeway()).max().unwrap_or_default()
    }

    /// Pins `authority` under its issuer.
    pub fn with(mut self, authority: Authority) -> Self {
        self.max_token_len = self.max_token_len.max(authority.rules().token_len_limit());
        self.by_issuer.insert(authority.issuer().to_owned(), authority);
        self
    }

    /// The authority for `issuer`, if pinned.
    pub fn get(&self, issuer: &str) -> Option<&Authority> {
        self.by_issuer.get(issuer)
    }

    /// Validates `token` with the authority its `iss` names.
    pub async fn validate(&self, token: &str) -> Result<ValidToken, Error> {
        let raw = token;
        let limit = self.max_token_len.max(identity_model_core::DEFAULT_MAX_TOKEN_LEN);
        let chosen = UnverifiedToken::parse(token, limit).and_then(|mut token| {
            let issuer = token.unverified_claims()?.iss().ok_or_else(|| {
                Error::new(ErrorKind::MalformedToken, "token has no readable \"iss\" to choose an issuer by")
            })?;
            match self.by_issuer.get(issuer) {
                Some(authority) => Ok((authority, token)),
                None => {
                    let shown: String = issuer.chars().take(80).collect();
                    Err(Error::new(ErrorKind::InvalidIssuer, format!("issuer {shown:?} is not trusted"))
                        .with_claim("iss"))
                }
            }
        });
        match chosen {
            Ok((authority, token)) => {
                authority.validate_with(raw, |authority| authority.check_parsed(token)).await
            }
            Err(e) => {
                let result = Err(e);
                telemetry::unattributed(&result);
                result
            }
        }
    }
}

//! JWT validation rules (RFC 7519, RFC 8725, RFC 9068) and the one call that applies them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, ErrorKind};
use crate::jose::algorithm::AlgorithmSet;
use crate::jose::jws::{self, Header};
use crate::jose::key_set::KeySet;
use crate::jwt::claims::{Claims, UnixTime};
use crate::jwt::unverified::UnverifiedToken;

/// Default clock leeway.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
/// Default longest token accepted, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 64 * 1024;

type CustomCheck = Arc<dyn Fn(&Header, &Claims) -> Result<(), Error> + Send + Sync>;

/// What a valid token must satisfy. Built once, shared, never changed by a validation.
///
/// Defaults: every asymmetric algorithm, `exp` required, 60 s leeway, issuer pinned (the
/// constructor takes it), audience required (validation fails with `invalid_config` until
/// one is given or [`Validation::dangerous_any_audience`] is called), any `typ`.
#[derive(Clone)]
pub struct Validation {
    algorithms: AlgorithmSet,
    issuers: Option<Vec<String>>,
    audiences: Vec<String>,
    any_audience: bool,
    leeway_secs: f64,
    require_exp: bool,
    required: Vec<String>,
    token_types: Vec<String>,
    max_token_len: usize,
    custom: Option<CustomCheck>,
}

impl fmt::Debug for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validation")
            .field("algorithms", &self.algorithms)
            .field("issuers", &self.issuers)
            .field("audiences", &self.audiences)
            .field("any_audience", &self.any_audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("require_exp", &self.require_exp)
            .field("required", &self.required)
            .field("token_types", &self.token_types)
            .field("max_token_len", &self.max_token_len)
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

/// A token that passed validation.
#[derive(Debug, Clone)]
pub struct ValidToken {
    /// The checked header.
    pub header: Header,
    /// The validated claims.
    pub claims: Claims,
}

impl Validation {
    /// Rules for tokens from `issuer` (`iss` must equal it exactly).
    pub fn new(issuer: impl Into<String>) -> Self {
        Validation::with_issuers([issuer])
    }

    /// Rules for tokens whose `iss` equals one of `issuers`.
    pub fn with_issuers<I, S>(issuers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Validation { issuers: Some(issuers.into_iter().map(Into::into).collect()), ..Validation::base() }
    }

    /// Rules that do not look at `iss`. Dangerous: any issuer whose keys are in the key set is
    /// trusted; use only when the key set itself pins the issuer.
    pub fn dangerous_any_issuer() -> Self {
        Validation::base()
    }

    fn base() -> Self {
        Validation {
            algorithms: AlgorithmSet::asymmetric(),
            issuers: None,
            audiences: Vec::new(),
            any_audience: false,
            leeway_secs: DEFAULT_LEEWAY.as_secs_f64(),
            require_exp: true,
            required: Vec::new(),
            token_types: Vec::new(),
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            custom: None,
        }
    }

    /// Accepts tokens whatever their `aud`. Dangerous: a token minted for any other API of the
    /// same issuer is then accepted here. Without it (or an [`Validation::audience`]) every
    /// validation fails with `invalid_config`: the audience is required by default.
    pub fn dangerous_any_audience(mut self) -> Self {
        self.any_audience = true;
        self
    }

    /// Adds an accepted audience: `aud` must contain at least one of the accepted audiences.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Replaces the allowed algorithms. HS* take effect only with an `oct` key in the key set.
    pub fn algorithms(mut self, algorithms: AlgorithmSet) -> Self {
        self.algorithms = algorithms;
        self
    }

    /// Sets the clock leeway applied to `exp`, `nbf` and `iat`.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway_secs = leeway.as_secs_f64();
        self
    }

    /// The clock leeway in force (for `exp`, `nbf`, `iat`; DPoP proofs inherit it).
    pub fn clock_leeway(&self) -> Duration {
        Duration::from_secs_f64(self.leeway_secs.max(0.0))
    }

    /// Requires a claim to be present.
    pub fn require(mut self, claim: impl Into<String>) -> Self {
        self.required.push(claim.into());
        self
    }

    /// Accepts tokens without `exp` (they never expire). Off by default.
    pub fn allow_missing_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// Requires the header `typ` to be this media type (compared case-insensitively, with or
    /// without `application/`): `at+jwt` accepts `application/at+jwt` (RFC 9068). Call again
    /// to accept several.
    pub fn token_type(mut self, typ: &str) -> Self {
        self.token_types.push(normalize_media_type(typ));
        self
    }

    /// Largest token accepted, in bytes.
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// Adds a check run after all others on a token whose signature and standard claims are
    /// valid. Return an error (usually [`ErrorKind::InvalidClaim`]) to reject.
    pub fn custom(
        mut self,
        check: impl Fn(&Header, &Claims) -> Result<(), Error> + Send + Sync + 'static,
    ) -> Self {
        self.custom = Some(Arc::new(check));
        self
    }

    /// The allowed algorithms.
    pub fn allowed_algorithms(&self) -> AlgorithmSet {
        self.algorithms
    }

    /// Whether an audience is checked.
    pub fn checks_audience(&self) -> bool {
        !self.audiences.is_empty()
    }

    /// The accepted issuers (`None` after [`Validation::dangerous_any_issuer`]).
    pub fn issuers(&self) -> Option<&[String]> {
        self.issuers.as_deref()
    }

    /// Why these rules cannot validate anything, if they cannot: no audience and no
    /// [`Validation::dangerous_any_audience`]. Builders call it to refuse at build time.
    pub fn config_problem(&self) -> Option<Error> {
        (self.audiences.is_empty() && !self.any_audience).then(no_audience)
    }

    /// Validates a compact JWT against `keys` at time `now`.
    ///
    /// Order: structure and header (`alg` allowed, no `crit`, `typ`), key, signature, then
    /// claims (`exp`, `nbf`, `iat`, `iss`, `aud`, required claims, custom check). The first
    /// failure is returned.
    pub fn validate(&self, token: &str, keys: &KeySet, now: UnixTime) -> Result<ValidToken, Error> {
        let token = UnverifiedToken::parse(token, self.max_token_len)?;
        self.check_signature(&token, keys)?;
        self.accept(token, now)
    }

    /// [`Validation::validate`] on a token already split: the header's `typ` and `cty`, the
    /// algorithm, the key and the signature. The claims are not looked at.
    #[inline]
    pub fn check_signature(&self, token: &UnverifiedToken<'_>, keys: &KeySet) -> Result<(), Error> {
        if self.audiences.is_empty() && !self.any_audience {
            return Err(no_audience()); // fail closed before looking at the token
        }
        self.check_type(&token.header)?;
        jws::verify_signature(&token.compact, &token.header, keys, self.algorithms)
    }

    /// The rest of [`Validation::validate`] for a token whose signature
    /// [`Validation::check_signature`] accepted: the claims and the custom check.
    #[inline]
    pub fn accept(&self, token: UnverifiedToken<'_>, now: UnixTime) -> Result<ValidToken, Error> {
        let UnverifiedToken { compact, header, claims } = token;
        let claims = match claims {
            Some(claims) => *claims,
            None => crate::jwt::unverified::decode_claims(&compact)?,
        };
        self.check_claims(&claims, now)?;
        if let Some(check) = &self.custom {
            check(&header, &claims)?;
        }
        Ok(ValidToken { header, claims })
    }

    /// The span of `now` (seconds since the epoch) in which `claims`' time checks pass:
    /// `[nbf - leeway, exp + leeway)`, open-ended where a claim is absent. For caches of
    /// validated tokens: an entry must not be served outside it.
    pub fn validity_window(&self, claims: &Claims) -> (f64, f64) {
        let from = claims.nbf().map_or(f64::NEG_INFINITY, |nbf| nbf.as_secs_f64() - self.leeway_secs);
        let until = claims.exp().map_or(f64::INFINITY, |exp| exp.as_secs_f64() + self.leeway_secs);
        (from, until)
    }

    /// The longest token accepted, in bytes (for [`UnverifiedToken::parse`]).
    pub fn token_len_limit(&self) -> usize {
        self.max_token_len
    }

    fn check_type(&self, header: &Header) -> Result<(), Error> {
        if let Some(cty) = header.cty() {
            if media_type_is(cty, "jwt") {
                return Err(Error::new(
                    ErrorKind::InvalidTokenType,
                    "nested JWTs (cty: JWT) are not accepted",
                )
                .with_claim("cty"));
            }
        }
        if self.token_types.is_empty() {
            return Ok(());
        }
        match header.typ() {
            Some(typ) if self.token_types.iter().any(|t| media_type_is(typ, t)) => Ok(()),
            found => Err(Error::new(
                ErrorKind::InvalidTokenType,
                format!(
                    "typ is {:?}, expected {}",
                    found.map(|t| t.chars().take(40).collect::<String>()),
                    self.token_types.join(" or ")
                ),
            )
            .with_claim("typ")),
        }
    }

    fn check_claims(&self, claims: &Claims, now: UnixTime) -> Result<(), Error> {
        let now = now.as_secs() as f64;
        let leeway = self.leeway_secs;
        match claims.exp() {
            Some(exp) if now >= exp.as_secs_f64() + leeway => {
                return Err(Error::new(ErrorKind::TokenExpired, "token has expired").with_claim("exp"));
            }
            None if self.require_exp => {
                return Err(Error::new(ErrorKind::MissingClaim, "token has no \"exp\"").with_claim("exp"));
            }
            _ => {}
        }
        if let Some(nbf) = claims.nbf() {
            if now < nbf.as_secs_f64() - leeway {
                return Err(
                    Error::new(ErrorKind::TokenNotYetValid, "token is not valid yet").with_claim("nbf")
                );
            }
        }
        if let Some(iat) = claims.iat() {
            if iat.as_secs_f64() > now + leeway {
                return Err(
                    Error::new(ErrorKind::IssuedInFuture, "token was issued in the future").with_claim("iat")
                );
            }
        }
        if let Some(issuers) = &self.issuers {
            match claims.iss() {
                None => {
                    return Err(Error::new(ErrorKind::MissingClaim, "token has no \"iss\"").with_claim("iss"));
                }
                Some(iss) if !issuers.iter().any(|i| i == iss) => {
                    let shown: String = iss.chars().take(80).collect();
                    return Err(Error::new(
                        ErrorKind::InvalidIssuer,
                        format!("issuer {shown:?} is not trusted"),
                    )
                    .with_claim("iss"));
                }
                Some(_) => {}
            }
        }
        if !self.audiences.is_empty() {
            match claims.aud() {
                None => {
                    return Err(Error::new(ErrorKind::MissingClaim, "token has no \"aud\"").with_claim("aud"));
                }
                Some(aud) if !aud.clone().any(|a| self.audiences.iter().any(|expected| expected == a)) => {
                    return Err(Error::new(
                        ErrorKind::InvalidAudience,
                        "token is not meant for this audience",
                    )
                    .with_claim("aud"));
                }
                Some(_) => {}
            }
        }
        if let Some(missing) = self.required.iter().find(|name| !claims.contains(name)) {
            return Err(Error::new(ErrorKind::MissingClaim, format!("token has no \"{missing}\""))
                .with_claim(missing.clone()));
        }
        Ok(())
    }
}

fn no_audience() -> Error {
    Error::new(
        ErrorKind::InvalidConfig,
        "the rules check no audience: add .audience(\"your-api\"), or call .dangerous_any_audience() \
         to accept tokens meant for any audience",
    )
}

/// Whether `typ` names the media type `normalized` (lower case, without `application/`).
fn media_type_is(typ: &str, normalized: &str) -> bool {
    let short = match typ.get(..12) {
        Some(prefix) if prefix.eq_ignore_ascii_case("application/") && !typ[12..].contains('/') => &typ[12..],
        _ => typ,
    };
    short.eq_ignore_ascii_case(normalized)
}

/// Lower-cases a media type and drops an `application/` prefix (RFC 7515 section 4.1.9).
fn normalize_media_type(typ: &str) -> String {
    let lower = typ.to_ascii_lowercase();
    match lower.strip_prefix("application/") {
        Some(rest) if !rest.contains('/') => rest.to_owned(),
        _ => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_like_rfc7515_says() {
        assert_eq!(normalize_media_type("application/at+jwt"), "at+jwt");
        assert_eq!(normalize_media_type("AT+JWT"), "at+jwt");
        assert_eq!(normalize_media_type("application/x/y"), "application/x/y");
        assert!(media_type_is("Application/AT+JWT", "at+jwt"));
        assert!(media_type_is("at+jwt", "at+jwt"));
        assert!(!media_type_is("application/jwt", "at+jwt"));
        assert!(!media_type_is("dpop+jwt", "at+jwt"));
        assert!(!media_type_is(" at+jwt", "at+jwt"), "exact: no whitespace trimming");
        assert!(!media_type_is("at+jwt\t", "at+jwt"));
        assert!(!media_type_is("application/ at+jwt", "at+jwt"));
    }
}

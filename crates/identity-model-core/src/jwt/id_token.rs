//! ID tokens (OpenID Connect Core section 3.1.3.7) and back-channel logout tokens (OpenID
//! Connect Back-Channel Logout 1.0 section 2.6): the JWT rules plus `nonce`, `at_hash`,
//! `c_hash`, `auth_time`/`max_age`, `azp`, and the logout token's `events`/`sid`/no-`nonce`.

use std::time::Duration;

use aws_lc_rs::digest;
use serde_json::Value;

use crate::error::{Error, ErrorKind};
use crate::jose::algorithm::Algorithm;
use crate::jose::base64url;
use crate::jose::key_set::KeySet;
use crate::jwt::claims::{Claims, UnixTime};
use crate::jwt::validation::{DEFAULT_LEEWAY, ValidToken, Validation};

/// The event member of a logout token.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

fn claim_error(claim: &'static str, message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidClaim, message.into()).with_claim(claim)
}

fn missing(claim: &'static str) -> Error {
    Error::new(ErrorKind::MissingClaim, format!("the token has no \"{claim}\"")).with_claim(claim)
}

/// `at_hash` / `c_hash`: the left half of the hash that goes with the signing algorithm
/// (SHA-512 for Ed25519, whether named `EdDSA` or, per RFC 9864, `Ed25519`, as the OpenID
/// Foundation's errata settled).
pub fn left_half_hash(alg: Algorithm, value: &str) -> String {
    let algorithm = match alg {
        Algorithm::RS384 | Algorithm::PS384 | Algorithm::ES384 | Algorithm::HS384 => &digest::SHA384,
        Algorithm::RS512
        | Algorithm::PS512
        | Algorithm::ES512
        | Algorithm::HS512
        | Algorithm::EdDSA
        | Algorithm::Ed25519 => &digest::SHA512,
        _ => &digest::SHA256,
    };
    let hash = digest::digest(algorithm, value.as_bytes());
    let bytes = hash.as_ref();
    base64url::encode(&bytes[..bytes.len() / 2])
}

/// Rules for an ID token from `issuer` for `client_id`.
#[derive(Debug, Clone)]
pub struct IdTokenValidation {
    rules: Validation,
    client_id: String,
    nonce: Option<String>,
    max_age: Option<Duration>,
    access_token: Option<String>,
    code: Option<String>,
    leeway: Duration,
}

impl IdTokenValidation {
    /// ID tokens of `issuer` for `client_id`: `aud` must contain it, `sub` and `iat` required.
    pub fn new(issuer: impl Into<String>, client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        IdTokenValidation {
            rules: Validation::new(issuer).audience(client_id.clone()).require("sub").require("iat"),
            client_id,
            nonce: None,
            max_age: None,
            access_token: None,
            code: None,
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// Replaces the JWT rules (algorithms, leeway...); the audience check stays the client id.
    pub fn rules(mut self, rules: Validation) -> Self {
        self.rules = rules.audience(self.client_id.clone()).require("sub").require("iat");
        self
    }

    /// The `nonce` sent in the authorization request: required and compared.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// The `max_age` sent: `auth_time` required and no older than it.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = Some(max_age);
        self
    }

    /// The access token issued with the ID token: `at_hash`, when present, must match it.
    pub fn access_token(mut self, access_token: impl Into<String>) -> Self {
        self.access_token = Some(access_token.into());
        self
    }

    /// The code of the callback: `c_hash`, when present, must match it.
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Validates `token` at `now`.
    pub fn validate(&self, token: &str, keys: &KeySet, now: UnixTime) -> Result<ValidToken, Error> {
        let valid = self.rules.validate(token, keys, now)?;
        let claims = &valid.claims;
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if let Some(expected) = &self.nonce {
            match text("nonce") {
                None => return Err(missing("nonce")),
                Some(found) if found != expected => return Err(claim_error("nonce", "nonce does not match")),
                _ => {}
            }
        }
        let audiences: Vec<&str> = claims.aud().map(Iterator::collect).unwrap_or_default();
        match text("azp") {
            Some(azp) if azp != self.client_id => {
                return Err(claim_error("azp", "azp is not this client"));
            }
            None if audiences.len() > 1 => {
                return Err(missing("azp"));
            }
            _ => {}
        }
        if let Some(max_age) = self.max_age {
            let auth_time =
                claims.get("auth_time").and_then(Value::as_f64).ok_or_else(|| missing("auth_time"))?;
            let limit = auth_time + max_age.as_secs_f64() + self.leeway.as_secs_f64();
            if (now.as_secs() as f64) > limit {
                return Err(claim_error("auth_time", "the authentication is older than max_age"));
            }
        }
        let alg = valid.header.alg();
        for (claim, value) in [("at_hash", &self.access_token), ("c_hash", &self.code)] {
            if let (Some(value), Some(found)) = (value, text(claim)) {
                if left_half_hash(alg, value) != found {
                    return Err(claim_error(claim, format!("{claim} does not match")));
                }
            }
        }
        Ok(valid)
    }
}

/// Validates a back-channel logout token from `issuer` for `client_id`: signature, `iss`,
/// `aud`, `iat`, `exp`, `jti`, the logout event, `sub` or `sid`, no `nonce`, and `typ`
/// `logout+jwt` when a `typ` is given. Replay (`jti` seen before) is the caller's to check.
pub fn validate_logout_token(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    client_id: &str,
    now: UnixTime,
) -> Result<ValidToken, Error> {
    let rules =
        Validation::new(issuer).audience(client_id).require("iat").require("jti").custom(|header, claims| {
            if let Some(typ) = header.typ() {
                let typ = typ.to_ascii_lowercase();
                if typ != "logout+jwt" && typ != "application/logout+jwt" {
                    return Err(Error::new(
                        ErrorKind::InvalidTokenType,
                        "a logout token's typ is logout+jwt",
                    ));
                }
            }
            check_logout_claims(claims)
        });
    rules.validate(token, keys, now)
}

fn check_logout_claims(claims: &Claims) -> Result<(), Error> {
    let event = claims.get("events").and_then(Value::as_object).ok_or_else(|| missing("events"))?;
    if !event.get(BACKCHANNEL_LOGOUT_EVENT).is_some_and(Value::is_object) {
        return Err(claim_error("events", "events has no back-channel logout event"));
    }
    if claims.sub().is_none() && claims.get("sid").and_then(Value::as_str).is_none() {
        return Err(missing("sid"));
    }
    if claims.contains("nonce") {
        return Err(claim_error("nonce", "a logout token must not have a nonce"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn left_half_hash_uses_sha512_for_ed25519_by_either_name() {
        let eddsa = left_half_hash(Algorithm::EdDSA, "token");
        assert_eq!(eddsa, left_half_hash(Algorithm::Ed25519, "token"));
        assert_eq!(eddsa, left_half_hash(Algorithm::ES512, "token"));
        assert_eq!(base64url::decode(eddsa.as_bytes()).unwrap().len(), 32, "half of SHA-512");
        assert_eq!(base64url::decode(left_half_hash(Algorithm::ES256, "t").as_bytes()).unwrap().len(), 16);
    }

    use serde_json::json;

    use super::*;
    use crate::jose::signing::SigningKey;

    const ISS: &str = "https://op.example";
    const NOW: i64 = 1_700_000_000;

    fn setup(alg: Algorithm) -> (SigningKey, KeySet) {
        let key = SigningKey::generate(alg).unwrap();
        let keys = KeySet::from_jwks([key.verification_jwk().into()]);
        (key, keys)
    }

    fn base() -> serde_json::Map<String, Value> {
        json!({"iss": ISS, "aud": "app", "sub": "alice", "iat": NOW, "exp": NOW + 300})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn nonce_hashes_auth_time_and_azp() {
        for alg in [Algorithm::RS256, Algorithm::ES384, Algorithm::EdDSA] {
            let (key, keys) = setup(alg);
            let mut claims = base();
            claims.insert("nonce".into(), "n1".into());
            claims.insert("at_hash".into(), left_half_hash(alg, "AT").into());
            claims.insert("c_hash".into(), left_half_hash(alg, "CODE").into());
            claims.insert("auth_time".into(), (NOW - 100).into());
            let token = key.sign_jwt(None, &Value::Object(claims)).unwrap();
            let rules = IdTokenValidation::new(ISS, "app").nonce("n1").access_token("AT").code("CODE");
            let now = UnixTime::from_secs(NOW);
            assert!(
                rules.clone().max_age(Duration::from_secs(600)).validate(&token, &keys, now).is_ok(),
                "{alg}"
            );
            let claim = |r: &IdTokenValidation| {
                r.validate(&token, &keys, now).unwrap_err().claim().map(str::to_owned)
            };
            assert_eq!(claim(&rules.clone().nonce("other")).as_deref(), Some("nonce"));
            assert_eq!(claim(&rules.clone().access_token("AT2")).as_deref(), Some("at_hash"));
            assert_eq!(claim(&rules.clone().code("C2")).as_deref(), Some("c_hash"));
            assert_eq!(claim(&rules.clone().max_age(Duration::from_secs(10))).as_deref(), Some("auth_time"));
        }
        let (key, keys) = setup(Algorithm::ES256);
        let mut claims = base();
        claims.insert("aud".into(), json!(["app", "other"]));
        let token = key.sign_jwt(None, &Value::Object(claims.clone())).unwrap();
        let now = UnixTime::from_secs(NOW);
        let e = IdTokenValidation::new(ISS, "app").validate(&token, &keys, now).unwrap_err();
        assert_eq!((e.kind(), e.claim()), (ErrorKind::MissingClaim, Some("azp")));
        claims.insert("azp".into(), "other".into());
        let token = key.sign_jwt(None, &Value::Object(claims)).unwrap();
        assert_eq!(
            IdTokenValidation::new(ISS, "app").validate(&token, &keys, now).unwrap_err().claim(),
            Some("azp")
        );
        let e = IdTokenValidation::new(ISS, "app")
            .nonce("n")
            .validate(&key.sign_jwt(None, &Value::Object(base())).unwrap(), &keys, now)
            .unwrap_err();
        assert_eq!((e.kind(), e.claim()), (ErrorKind::MissingClaim, Some("nonce")));
    }

    #[test]
    fn at_hash_matches_the_openid_example() {
        // OpenID Connect Core A.3 (RS256): at_hash of "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        assert_eq!(
            left_half_hash(Algorithm::RS256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }

    #[test]
    fn logout_tokens() {
        let (key, keys) = setup(Algorithm::ES256);
        let now = UnixTime::from_secs(NOW);
        let mut claims = base();
        claims.insert("jti".into(), "j1".into());
        claims.insert("events".into(), json!({BACKCHANNEL_LOGOUT_EVENT: {}}));
        let sign =
            |c: &serde_json::Map<String, Value>, typ| key.sign_jwt(typ, &Value::Object(c.clone())).unwrap();
        assert!(validate_logout_token(&sign(&claims, Some("logout+jwt")), &keys, ISS, "app", now).is_ok());
        assert!(validate_logout_token(&sign(&claims, None), &keys, ISS, "app", now).is_ok());
        let e = validate_logout_token(&sign(&claims, Some("JWT")), &keys, ISS, "app", now).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidTokenType);
        let mut with_nonce = claims.clone();
        with_nonce.insert("nonce".into(), "n".into());
        assert_eq!(
            validate_logout_token(&sign(&with_nonce, None), &keys, ISS, "app", now).unwrap_err().claim(),
            Some("nonce")
        );
        let mut no_event = claims.clone();
        no_event.insert("events".into(), json!({"other": {}}));
        assert_eq!(
            validate_logout_token(&sign(&no_event, None), &keys, ISS, "app", now).unwrap_err().claim(),
            Some("events")
        );
        let mut no_sub = claims.clone();
        no_sub.remove("sub");
        assert_eq!(
            validate_logout_token(&sign(&no_sub, None), &keys, ISS, "app", now).unwrap_err().claim(),
            Some("sid")
        );
        no_sub.insert("sid".into(), "s1".into());
        assert!(validate_logout_token(&sign(&no_sub, None), &keys, ISS, "app", now).is_ok());
        let mut no_jti = claims.clone();
        no_jti.remove("jti");
        assert_eq!(
            validate_logout_token(&sign(&no_jti, None), &keys, ISS, "app", now).unwrap_err().claim(),
            Some("jti")
        );
    }
}

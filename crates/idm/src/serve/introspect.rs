//! Opaque tokens through RFC 7662 introspection, per issuer (`[issuer.introspection]`), with
//! the sidecar's own client credentials. One request for any number of concurrent checks of
//! the same token; an active answer is cached until the earlier of its `exp` and a ceiling
//! (default 60 s: a revocation is seen within it), an inactive one for a short time (default
//! 5 s), at most `max_entries` of them (full: answers are not cached, never evicted early).
//!
//! An active answer must name this issuer (`iss`, when present) and one of its audiences
//! (`aud`, required: a token meant for another resource is refused), and not be expired. It is
//! then turned into a validated token the rest of the check treats as any other (scopes, claim
//! rules, the DPoP binding of an introspected `cnf.jkt`, identity headers): its claims are
//! signed with a key that lives only in this process and validated at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use identity_model::transport::BoxFuture;
use identity_model::{
    Algorithm, Authority, Client, ClientAuth, Clock, Endpoints, Error, ErrorKind, KeySet, OpaqueTokens,
    Secret, SigningKey, StaticKeyValidator, SystemClock, TokenClient, ValidToken, Validation, sha256,
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use tokio::time::Instant;

/// How an issuer's opaque tokens are introspected.
#[derive(Debug, Clone)]
pub(crate) struct IntrospectionPlan {
    pub(crate) client_id: String,
    pub(crate) secret: Secret,
    pub(crate) post: bool,
    pub(crate) endpoint: Option<String>,
    /// Every token, JWTs too (else only tokens that are not JWTs).
    pub(crate) all: bool,
    pub(crate) ceiling: Duration,
    pub(crate) inactive_for: Duration,
    pub(crate) max_entries: usize,
}

type Answer = Result<ValidToken, Arc<Error>>;

/// One issuer's introspection, its cache and its flights.
pub(crate) struct Introspector {
    issuer: String,
    audiences: Vec<String>,
    plan: IntrospectionPlan,
    client: TokenClient,
    signer: SigningKey,
    validator: StaticKeyValidator,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
    flights: Mutex<HashMap<[u8; 32], Arc<OnceCell<Answer>>>>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

/// Whether `token` has the shape of a JWS (three base64url parts): other tokens are opaque.
fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let shaped = |part: Option<&str>| {
        part.is_some_and(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    };
    shaped(parts.next()) && shaped(parts.next()) && shaped(parts.next()) && parts.next().is_none()
}

fn refused(kind: ErrorKind, message: impl Into<String>) -> Arc<Error> {
    Arc::new(Error::new(kind, message.into()))
}

impl Introspector {
    /// The introspector of `issuer` (its endpoint from `authority`'s discovery unless given).
    pub(crate) fn new(
        issuer: &str,
        audiences: &[String],
        plan: IntrospectionPlan,
        authority: &Authority,
    ) -> Result<Introspector, String> {
        let auth = if plan.post {
            ClientAuth::SecretPost(plan.secret.clone())
        } else {
            ClientAuth::SecretBasic(plan.secret.clone())
        };
        let mut builder =
            TokenClient::builder(Client::new(plan.client_id.clone(), auth)).authority(authority);
        if let Some(endpoint) = &plan.endpoint {
            builder = builder
                .endpoints(Endpoints { introspection: Some(endpoint.clone()), ..Endpoints::default() });
        }
        let client =
            builder.build().map_err(|e| format!("issuer {issuer:?}: introspection: {}", e.message()))?;
        let fail = |e: Error| format!("issuer {issuer:?}: introspection: {}", e.message());
        let signer = SigningKey::generate(Algorithm::ES256).map_err(fail)?.with_kid("idm-introspection");
        let jwks = serde_json::json!({"keys": [Value::Object(signer.verification_jwk())]});
        let keys = KeySet::from_json(jwks.to_string().as_bytes()).map_err(fail)?;
        let mut rules = Validation::new(issuer.to_owned());
        for audience in audiences {
            rules = rules.audience(audience.clone());
        }
        let validator = StaticKeyValidator::new(keys, rules).map_err(fail)?;
        Ok(Introspector {
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            plan,
            client,
            signer,
            validator,
            cache: Mutex::default(),
            flights: Mutex::default(),
        })
    }

    fn cached(&self, key: &[u8; 32]) -> Option<Answer> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (until, answer) = cache.get(key)?;
        (Instant::now() < *until).then(|| answer.clone())
    }

    fn remember(&self, key: [u8; 32], answer: &Answer, ttl: Duration) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= self.plan.max_entries {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= self.plan.max_entries {
                return;
            }
        }
        cache.insert(key, (Instant::now() + ttl, answer.clone()));
    }

    /// Asks the provider about `token` and judges the answer; how long the answer may be kept.
    async fn ask(&self, token: &str) -> (Answer, Option<Duration>) {
        let answer = match self.client.introspect(token, Some("access_token")).await {
            Ok(answer) => answer,
            // The provider's fault (503): not cached, the next check asks again.
            Err(e) => return (Err(Arc::new(e)), None),
        };
        if !answer.active {
            let inactive = refused(ErrorKind::TokenInactive, "introspection says the token is not active");
            return (Err(inactive), Some(self.plan.inactive_for));
        }
        let now = SystemClock.now().as_secs();
        match self.judge(answer.json(), now) {
            Ok((valid, exp)) => {
                let left = exp.map_or(self.plan.ceiling, |exp| {
                    Duration::from_secs(u64::try_from(exp.saturating_sub(now)).unwrap_or(0))
                });
                (Ok(valid), Some(left.min(self.plan.ceiling)))
            }
            Err(e) => (Err(e), Some(self.plan.inactive_for)),
        }
    }

    /// An active answer as a validated token, and its `exp`.
    fn judge(&self, answer: &Map<String, Value>, now: i64) -> Result<(ValidToken, Option<i64>), Arc<Error>> {
        let mut claims = answer.clone();
        claims.remove("active");
        match claims.get("iss").and_then(Value::as_str) {
            Some(iss) if iss != self.issuer => {
                return Err(refused(ErrorKind::InvalidIssuer, "introspection names another issuer"));
            }
            Some(_) => {}
            None => {
                claims.insert("iss".into(), Value::String(self.issuer.clone()));
            }
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| self.audiences.iter().any(|mine| mine == a)) {
            return Err(refused(
                ErrorKind::InvalidAudience,
                "introspection names no audience of this resource (aud is required)",
            ));
        }
        let exp = claims.get("exp").and_then(Value::as_i64);
        if exp.is_some_and(|exp| exp <= now) {
            return Err(refused(ErrorKind::TokenExpired, "the introspected token has expired"));
        }
        if exp.is_none() {
            // For the local validation only: the cache ceiling bounds its use.
            let until = now + i64::try_from(self.plan.ceiling.as_secs()).unwrap_or(60) + 60;
            claims.insert("exp".into(), Value::from(until));
        }
        let local =
            self.signer.sign_jwt(Some("introspected+jwt"), &Value::Object(claims)).map_err(Arc::new)?;
        let valid = self.validator.validate(&local).map_err(Arc::new)?;
        Ok((valid, exp))
    }
}

impl OpaqueTokens for Introspector {
    fn takes(&self, token: &str) -> bool {
        self.plan.all || !looks_like_jwt(token)
    }

    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<ValidToken, Error>> {
        Box::pin(async move {
            let key = sha256(token.as_bytes());
            if let Some(answer) = self.cached(&key) {
                return answer.map_err(|e| e.replicate());
            }
            let cell = {
                let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
                Arc::clone(flights.entry(key).or_default())
            };
            let answer = cell
                .get_or_init(|| async {
                    let (answer, keep) = self.ask(token).await;
                    if let Some(ttl) = keep {
                        self.remember(key, &answer, ttl);
                    }
                    answer
                })
                .await
                .clone();
            self.flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
            answer.map_err(|e| e.replicate())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::looks_like_jwt;

    #[test]
    fn opaque_tokens_are_told_from_jwts_by_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b+c.d"));
    }
}

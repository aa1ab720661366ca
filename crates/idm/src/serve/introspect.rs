//! Opaque tokens through RFC 7662 introspection, per issuer (`[issuer.introspection]`), with
//! the sidecar's own client credentials. One request for any number of concurrent checks of
//! the same token; an active answer is cached until the earlier of its `exp` and a ceiling
//! (default 60 s: a revocation is seen within it), an inactive one for a short time (default
//! 5 s), at most `max_entries` of them (full: answers are not cached, never evicted early).
//! Each request is a task of its own: checks that give up do not cancel it, a later check of
//! the same token joins it, and it leaves the flight table when it ends, however it ends. At
//! most `max_entries` tokens are in flight (more: 503 at once) and 32 requests reach the
//! provider at a time.
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
use tokio::sync::{Semaphore, watch};
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

/// At most this many introspection requests to one provider at a time; more wait their turn.
const MAX_CONCURRENT_REQUESTS: usize = 32;

/// One issuer's introspection, its cache and its flights.
pub(crate) struct Introspector {
    shared: Arc<Shared>,
}

struct Shared {
    issuer: String,
    audiences: Vec<String>,
    plan: IntrospectionPlan,
    client: TokenClient,
    signer: SigningKey,
    validator: StaticKeyValidator,
    cache: Mutex<HashMap<[u8; 32], (Instant, Answer)>>,
    /// The requests in flight, each a task of its own (it outlives every caller that waits on
    /// it, and removes itself when done): a caller that comes later joins it.
    flights: Mutex<HashMap<[u8; 32], watch::Receiver<Option<Answer>>>>,
    requests: Semaphore,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector").field("issuer", &self.shared.issuer).finish_non_exhaustive()
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
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
        let shared = Shared {
            issuer: issuer.to_owned(),
            audiences: audiences.to_vec(),
            plan,
            client,
            signer,
            validator,
            cache: Mutex::default(),
            flights: Mutex::default(),
            requests: Semaphore::new(MAX_CONCURRENT_REQUESTS),
        };
        Ok(Introspector { shared: Arc::new(shared) })
    }

    /// Whether this introspector was made from `plan` (its secret compared, not its redacted
    /// form), so a reload may keep it and its answers.
    pub(crate) fn has_plan(&self, plan: &IntrospectionPlan) -> bool {
        let mine = &self.shared.plan;
        format!("{mine:?}") == format!("{plan:?}") && mine.secret.expose() == plan.secret.expose()
    }

    #[cfg(test)]
    fn flights_in_progress(&self) -> usize {
        lock(&self.shared.flights).len()
    }

    #[cfg(test)]
    fn cached(&self, key: &[u8; 32]) -> Option<Answer> {
        self.shared.cached(key)
    }

    /// The flight for `key`: the one in progress, or a new one (a task of its own), or
    /// `None` when `max_entries` flights are already in progress.
    fn flight(&self, key: [u8; 32], token: &str) -> Option<watch::Receiver<Option<Answer>>> {
        let mut flights = lock(&self.shared.flights);
        if let Some(flight) = flights.get(&key) {
            return Some(flight.clone());
        }
        if flights.len() >= self.shared.plan.max_entries {
            return None;
        }
        let (answer_to, flight) = watch::channel(None);
        flights.insert(key, flight.clone());
        drop(flights);
        let shared = Arc::clone(&self.shared);
        let token = token.to_owned();
        tokio::spawn(async move {
            // Removes the flight however the task ends (a panic included), after the answer
            // is cached, so a caller never finds neither.
            let _landed = Landed { shared: &shared, key };
            let (answer, keep) = shared.ask(&token).await;
            if let Some(ttl) = keep {
                shared.remember(key, &answer, ttl);
            }
            answer_to.send_replace(Some(answer));
        });
        Some(flight)
    }
}

/// Takes a finished flight out of the map.
struct Landed<'a> {
    shared: &'a Shared,
    key: [u8; 32],
}

impl Drop for Landed<'_> {
    fn drop(&mut self) {
        lock(&self.shared.flights).remove(&self.key);
    }
}

impl Shared {
    fn cached(&self, key: &[u8; 32]) -> Option<Answer> {
        let cache = lock(&self.cache);
        let (until, answer) = cache.get(key)?;
        (Instant::now() < *until).then(|| answer.clone())
    }

    fn remember(&self, key: [u8; 32], answer: &Answer, ttl: Duration) {
        let mut cache = lock(&self.cache);
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
        let Ok(_turn) = self.requests.acquire().await else {
            return (Err(refused(ErrorKind::TransportError, "introspection is shutting down")), None);
        };
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
        self.shared.plan.all || !looks_like_jwt(token)
    }

    fn validate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Result<ValidToken, Error>> {
        Box::pin(async move {
            let key = sha256(token.as_bytes());
            if let Some(answer) = self.shared.cached(&key) {
                return answer.map_err(|e| e.replicate());
            }
            let Some(mut flight) = self.flight(key, token) else {
                return Err(Error::new(
                    ErrorKind::TransportError,
                    "too many introspections in flight: the provider is not keeping up",
                ));
            };
            let answer = match flight.wait_for(Option::is_some).await {
                Ok(answer) => answer.clone(),
                Err(_) => None,
            };
            match answer {
                Some(answer) => answer.map_err(|e| e.replicate()),
                None => {
                    Err(Error::new(ErrorKind::TransportError, "the introspection ended without an answer"))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use identity_model::{KeysFrom, Validation};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::watch;

    use super::*;

    /// A provider's introspection endpoint that answers "active" only when `release` says so,
    /// counting the requests it was sent.
    struct HeldProvider {
        url: String,
        requests: Arc<AtomicUsize>,
        release: watch::Sender<bool>,
    }

    async fn read_request(stream: &mut TcpStream) {
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    return;
                }
            }
        }
    }

    async fn held_provider() -> HeldProvider {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/introspect", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let (release, released) = watch::channel(false);
        let counter = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                let mut released = released.clone();
                tokio::spawn(async move {
                    read_request(&mut stream).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = released.wait_for(|go| *go).await;
                    let exp = SystemClock.now().as_secs() + 300;
                    let body = format!(r#"{{"active":true,"aud":"api","scope":"read","exp":{exp}}}"#);
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(reply.as_bytes()).await;
                });
            }
        });
        HeldProvider { url, requests, release }
    }

    fn introspector(endpoint: &str) -> Arc<Introspector> {
        introspector_of(endpoint, 100)
    }

    fn introspector_of(endpoint: &str, max_entries: usize) -> Arc<Introspector> {
        let issuer = "http://127.0.0.1:1";
        let keys = KeySet::from_json(br#"{"keys":[]}"#).unwrap();
        let authority = Authority::builder(issuer)
            .keys_from(KeysFrom::Inline(Arc::new(keys)))
            .rules(Validation::new(issuer).audience("api"))
            .policy(crate::remote::policy(true))
            .build()
            .unwrap();
        let plan = IntrospectionPlan {
            client_id: "idm".into(),
            secret: Secret::new("secret"),
            post: false,
            endpoint: Some(endpoint.to_owned()),
            all: false,
            ceiling: Duration::from_secs(60),
            inactive_for: Duration::from_secs(5),
            max_entries,
        };
        Arc::new(Introspector::new(issuer, &["api".to_owned()], plan, &authority).unwrap())
    }

    /// A check of `token` as a task of its own (aborted to drop it mid-request).
    fn check(
        introspector: &Arc<Introspector>,
        token: &'static str,
    ) -> tokio::task::JoinHandle<Result<(), Error>> {
        let introspector = Arc::clone(introspector);
        tokio::spawn(async move { introspector.validate(token).await.map(|_| ()) })
    }

    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_introspection_outlives_its_dropped_callers_and_leaves_no_flight_behind() {
        let provider = held_provider().await;
        let introspector = introspector(&provider.url);
        let first = check(&introspector, "opaque-1");
        until("the provider to be asked", || provider.requests.load(Ordering::SeqCst) == 1).await;
        // Every caller gone while the provider is still answering.
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        provider.release.send_replace(true);
        // The introspection finishes on its own: its answer is cached, its flight removed.
        until("the answer to be cached", || {
            introspector.cached(&sha256(b"opaque-1")).is_some() && introspector.flights_in_progress() == 0
        })
        .await;
        let valid = introspector.validate("opaque-1").await.unwrap();
        assert_eq!(valid.claims.other().get("scope").and_then(Value::as_str), Some("read"));
        assert_eq!(provider.requests.load(Ordering::SeqCst), 1, "one request for the token");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_after_a_dropped_one_joins_the_same_request() {
        let provider = held_provider().await;
        let introspector = introspector(&provider.url);
        let first = check(&introspector, "opaque-2");
        until("the provider to be asked", || provider.requests.load(Ordering::SeqCst) == 1).await;
        first.abort();
        let _ = first.await;
        let second = check(&introspector, "opaque-2");
        provider.release.send_replace(true);
        second.await.unwrap().unwrap();
        assert_eq!(provider.requests.load(Ordering::SeqCst), 1, "the second caller joined the first request");
        assert_eq!(introspector.flights_in_progress(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flights_are_bounded_by_max_entries() {
        let provider = held_provider().await;
        let introspector = introspector_of(&provider.url, 2);
        let callers: Vec<_> =
            ["opaque-a", "opaque-b"].into_iter().map(|token| check(&introspector, token)).collect();
        until("both tokens to be asked about", || provider.requests.load(Ordering::SeqCst) == 2).await;
        // A third distinct token while two are in flight: refused at once (503), not queued
        // without bound; the same token again joins its flight.
        let third = introspector.validate("opaque-c").await.unwrap_err();
        assert_eq!(third.kind(), ErrorKind::TransportError, "{third}");
        let again = check(&introspector, "opaque-a");
        provider.release.send_replace(true);
        for caller in callers {
            caller.await.unwrap().unwrap();
        }
        again.await.unwrap().unwrap();
        assert_eq!(provider.requests.load(Ordering::SeqCst), 2);
        assert_eq!(introspector.flights_in_progress(), 0);
    }

    #[test]
    fn opaque_tokens_are_told_from_jwts_by_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(!looks_like_jwt("2YotnFZFEjr1zCsicMWpAA"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("a.b+c.d"));
    }
}

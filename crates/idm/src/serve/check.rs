//! One forward-auth check: the rule for the original request, the token against it, the rate
//! limit, the answer, and how it is counted (`idm_serve_checks_total` by protocol and outcome).

use std::time::Instant;

use axum::body::Body;
use axum::response::Response;
use http::{HeaderMap, StatusCode};
use identity_model::{Error, ErrorKind, Rejection, RejectionKind};

use super::credential::{self, Found, TokenSource};
use super::proxy::{BadCheck, BadCheckKind, Original, Proxy};
use super::{App, answer, limit};

/// One forward-auth check: the rule for the original request, the token against it, the rate
/// limit, then the answer; counted and timed by proxy protocol and outcome.
pub(super) async fn check(
    app: &App,
    proxy: Proxy,
    original: Result<Original<'_>, BadCheck>,
    headers: &HeaderMap,
) -> Response {
    let started = Instant::now();
    let _in_flight = InFlight::enter(&app.meters.in_flight);
    let decided = match original {
        Ok(original) => decide(app, &original, headers).await,
        Err(bad) => Err(bad),
    };
    let (response, outcome) = match decided {
        Ok(answered) => answered,
        Err(bad) => {
            // The proxy's report of the request is unusable or ambiguous: refuse, never guess.
            let kind = bad.kind.as_str();
            tracing::info!(kind, mode = proxy.as_str(), message = %bad.message, "check refused");
            (answer::bad_check(kind, &bad.message), Outcome::BadCheck(bad.kind))
        }
    };
    app.meters.durations[proxy.slot()].record(started.elapsed().as_secs_f64());
    if outcome == Outcome::Allowed {
        app.meters.allowed[proxy.slot()].increment(1);
    } else {
        metrics::counter!(
            "idm_serve_checks_total",
            "mode" => proxy.as_str(),
            "status" => status_label(response.status()),
            "kind" => outcome.as_str(),
        )
        .increment(1);
    }
    response
}

async fn decide(
    app: &App,
    original: &Original<'_>,
    headers: &HeaderMap,
) -> Result<(Response, Outcome), BadCheck> {
    if let Some((name, owned)) = answer::underscore_twin(headers, &app.plan.claim_headers) {
        return Err(BadCheck::invalid(format!(
            "the check carries {name}, which upstreams may read as {owned}, a header the sidecar \
             sets: a client sent it"
        )));
    }
    let choice = app.routes.select(original)?;
    let metadata_read = !app.metadata_path.is_empty()
        && original.path == Some(app.metadata_path.as_str())
        && original.methods().all(|m| m == http::Method::GET || m == http::Method::HEAD);
    if metadata_read {
        // The resource's metadata (RFC 9728) is public: a client reads it to learn how to get
        // a token.
        let mut response = Response::new(Body::empty());
        *response.headers_mut() = answer::anonymous_headers(&app.plan.claim_headers);
        return Ok((response, Outcome::Anonymous));
    }
    if app.plan.cors_preflight && is_preflight(original, headers) {
        let mut response = Response::new(Body::empty());
        *response.headers_mut() = answer::anonymous_headers(&app.plan.claim_headers);
        tracing::debug!(mode = original.proxy.as_str(), "CORS preflight let through");
        return Ok((response, Outcome::Preflight));
    }
    let guard = app.guard(choice);
    let metadata_url = guard.layer.resource_metadata_url();
    // The one credential, where this rule looks for it; elsewhere than the Authorization
    // header it is judged as a bearer token.
    let rewritten;
    let headers = match guard.sources.as_slice() {
        [TokenSource::Authorization] => headers,
        sources => match credential::find(sources, headers, original.target.as_deref())? {
            Found::Bearer(token) => {
                rewritten = credential::as_bearer(headers, &token)?;
                &rewritten
            }
            // An Authorization header the rule does not look at is not judged either.
            Found::Nothing if headers.contains_key(http::header::AUTHORIZATION) => {
                rewritten = credential::without_authorization(headers);
                &rewritten
            }
            Found::Authorization | Found::Nothing => headers,
        },
    };
    let refused = |rejection: Rejection| {
        tracing::info!(
            kind = rejection.kind().as_str(),
            status = rejection.status().as_u16(),
            mode = original.proxy.as_str(),
            method = %original.method,
            path = original.path.unwrap_or("(not given)"),
            origin = original.origin.as_deref().unwrap_or("(not given)"),
            rule = %guard.rule,
            "check refused"
        );
        (answer::refusal(&rejection, &app.plan.realm, metadata_url), Outcome::Refused(rejection.kind()))
    };
    let origin = app.plan.public_origin.as_deref().or(original.origin.as_deref());
    // The public URL is only needed to judge a proof: no allocation for bearer checks.
    let url = match (origin, &original.target) {
        (Some(origin), Some(target)) if headers.contains_key("dpop") => Some(format!("{origin}{target}")),
        _ => None,
    };
    let target = url.as_deref().map(|url| (&original.method, url));
    Ok(match guard.layer.authorize_request(target, headers).await {
        Err(rejection) => refused(rejection),
        Ok(None) => {
            let mut response = Response::new(Body::empty());
            *response.headers_mut() = answer::anonymous_headers(&app.plan.claim_headers);
            (response, Outcome::Anonymous)
        }
        Ok(Some(valid)) => {
            for rule in &guard.claim_rules {
                if let Err(why) = rule.judge(&valid) {
                    tracing::info!(
                        kind = "insufficient_claims",
                        status = 403,
                        mode = original.proxy.as_str(),
                        rule = %guard.rule,
                        message = %why,
                        "check refused"
                    );
                    return Ok((
                        answer::insufficient_claims(&why, &app.plan.realm, metadata_url),
                        Outcome::InsufficientClaims,
                    ));
                }
            }
            let identity = match answer::identity_headers(&valid, &app.plan.claim_headers) {
                Ok(identity) => identity,
                Err(bad) => {
                    let message = format!(
                        "claim {:?} cannot be sent upstream as a header: {}",
                        bad.claim.chars().take(64).collect::<String>(),
                        bad.why
                    );
                    return Ok(refused(Rejection::Invalid(Error::new(ErrorKind::InvalidClaim, message))));
                }
            };
            if let Some(limiter) = &app.limiter {
                match limiter.check(&valid).await {
                    Ok(()) => {}
                    Err(limit::Held::Wait(secs)) => {
                        tracing::info!(mode = original.proxy.as_str(), rule = %guard.rule, "check rate limited");
                        return Ok((answer::too_many(secs), Outcome::RateLimited));
                    }
                    Err(limit::Held::Unavailable(why)) => {
                        tracing::warn!(mode = original.proxy.as_str(), error = %why, "shared rate limit unavailable: refused");
                        return Ok((answer::limit_unavailable(&why), Outcome::RateLimitUnavailable));
                    }
                }
            }
            let mut response = Response::new(Body::empty());
            *response.headers_mut() = identity;
            tracing::debug!(mode = original.proxy.as_str(), rule = %guard.rule, "check allowed");
            (response, Outcome::Allowed)
        }
    })
}

/// A CORS preflight (Fetch standard, section 4.8): `OPTIONS` under every reading of the method
/// (no override header), with `Origin` and `Access-Control-Request-Method`, and without
/// credentials (a browser's preflight never carries them; a request that does is judged).
fn is_preflight(original: &Original<'_>, headers: &HeaderMap) -> bool {
    original.method == http::Method::OPTIONS
        && original.other_methods.is_empty()
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        && !headers.contains_key(http::header::AUTHORIZATION)
        && !headers.contains_key(http::header::COOKIE)
}

/// How a check ended, typed: the `kind` label of `idm_serve_checks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 200 with a valid token (`none`).
    Allowed,
    /// 200 on an anonymous route without a token.
    Anonymous,
    /// 200 for a CORS preflight, without a token.
    Preflight,
    /// 403: a valid token that fails a route's claim rule.
    InsufficientClaims,
    /// 429.
    RateLimited,
    /// 503: the shared rate limit could not be asked (configured to refuse then).
    RateLimitUnavailable,
    /// 400: the check itself could not be judged.
    BadCheck(BadCheckKind),
    /// Refused by the token layer (401 / 403 / 500 / 503).
    Refused(RejectionKind),
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "none",
            Outcome::Anonymous => "anonymous",
            Outcome::Preflight => "cors_preflight",
            Outcome::InsufficientClaims => "insufficient_claims",
            Outcome::RateLimited => "rate_limited",
            Outcome::RateLimitUnavailable => "rate_limit_unavailable",
            Outcome::BadCheck(kind) => kind.as_str(),
            Outcome::Refused(kind) => kind.as_str(),
        }
    }
}

/// Counts a check in `idm_serve_checks_in_flight` until dropped (answered or abandoned).
struct InFlight<'a>(&'a metrics::Gauge);

impl<'a> InFlight<'a> {
    fn enter(gauge: &'a metrics::Gauge) -> InFlight<'a> {
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

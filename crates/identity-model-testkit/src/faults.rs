//! Fault injection and request accounting, per endpoint.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The provider's endpoints, for counters and faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// `/.well-known/oauth-authorization-server` (RFC 8414).
    OAuthMetadata,
    /// `/jwks`.
    Jwks,
    /// `/token`.
    Token,
    /// `/authorize`.
    Authorize,
    /// `/device_authorization` (RFC 8628).
    DeviceAuthorization,
    /// `/device` (the user-facing verification page).
    DeviceVerification,
    /// `/introspect` (RFC 7662).
    Introspection,
    /// `/revoke` (RFC 7009).
    Revocation,
    /// `/userinfo`.
    Userinfo,
    /// `/par` (RFC 9126).
    PushedAuthorization,
    /// Any other path.
    Other,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 12] = [
        Endpoint::Discovery,
        Endpoint::OAuthMetadata,
        Endpoint::Jwks,
        Endpoint::Token,
        Endpoint::Authorize,
        Endpoint::DeviceAuthorization,
        Endpoint::DeviceVerification,
        Endpoint::Introspection,
        Endpoint::Revocation,
        Endpoint::Userinfo,
        Endpoint::PushedAuthorization,
        Endpoint::Other,
    ];

    /// The endpoint a request path belongs to.
    pub fn from_path(path: &str) -> Endpoint {
        match path {
            "/.well-known/openid-configuration" => Endpoint::Discovery,
            "/.well-known/oauth-authorization-server" => Endpoint::OAuthMetadata,
            "/jwks" => Endpoint::Jwks,
            "/token" => Endpoint::Token,
            "/authorize" => Endpoint::Authorize,
            "/device_authorization" => Endpoint::DeviceAuthorization,
            "/device" => Endpoint::DeviceVerification,
            "/introspect" => Endpoint::Introspection,
            "/revoke" => Endpoint::Revocation,
            "/userinfo" => Endpoint::Userinfo,
            "/par" => Endpoint::PushedAuthorization,
            _ => Endpoint::Other,
        }
    }

    /// The endpoint's path.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Discovery => "/.well-known/openid-configuration",
            Endpoint::OAuthMetadata => "/.well-known/oauth-authorization-server",
            Endpoint::Jwks => "/jwks",
            Endpoint::Token => "/token",
            Endpoint::Authorize => "/authorize",
            Endpoint::DeviceAuthorization => "/device_authorization",
            Endpoint::DeviceVerification => "/device",
            Endpoint::Introspection => "/introspect",
            Endpoint::Revocation => "/revoke",
            Endpoint::Userinfo => "/userinfo",
            Endpoint::PushedAuthorization => "/par",
            Endpoint::Other => "/",
        }
    }

    fn index(self) -> usize {
        Endpoint::ALL.iter().position(|&e| e == self).unwrap_or(Endpoint::ALL.len() - 1)
    }
}

/// A misbehaviour to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then answer normally.
    Latency(Duration),
    /// Answer with this status and a small JSON error body.
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    TooManyRequests {
        /// The `Retry-After` value in seconds.
        retry_after: u64,
    },
    /// 200 with a JSON content type and a body that is not JSON.
    MalformedJson,
    /// The normal body, labelled `text/html`.
    WrongContentType,
    /// The normal headers (with the full `Content-Length`), then half the body, then the
    /// connection closes.
    TruncatedBody,
    /// The TCP connection is reset before any response.
    ConnectionReset,
    /// A DPoP nonce demand (RFC 9449 section 8): `use_dpop_nonce` with `DPoP-Nonce: nonce`,
    /// as 400 from a token endpoint or 401 with a `DPoP` challenge from userinfo. The request
    /// is not acted on.
    UseDpopNonce(String),
}

/// How many requests a fault affects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The next `n` requests to the endpoint.
    Next(usize),
    /// Every request until [`crate::TestProvider::clear_faults`].
    UntilCleared,
}

#[derive(Debug)]
struct Armed {
    endpoint: Endpoint,
    fault: Fault,
    remaining: Option<usize>,
}

/// A request as received, for assertions on what a client sent.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// Method.
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// Headers (names lowercase).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The form (or query) parameters of the request body.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }
}

const MAX_RECORDED: usize = 256;

#[derive(Debug, Default)]
pub(crate) struct Faults {
    armed: Mutex<Vec<Armed>>,
    counters: [AtomicUsize; 11],
    recorded: Mutex<VecDeque<RecordedRequest>>,
}

impl Faults {
    pub(crate) fn inject(&self, endpoint: Endpoint, fault: Fault, times: Times) {
        let remaining = match times {
            Times::Next(n) => Some(n),
            Times::UntilCleared => None,
        };
        if remaining != Some(0) {
            lock(&self.armed).push(Armed { endpoint, fault, remaining });
        }
    }

    pub(crate) fn clear(&self) {
        lock(&self.armed).clear();
    }

    /// Counts the request and takes the fault that applies to it, if any.
    pub(crate) fn on_request(&self, request: RecordedRequest) -> Option<Fault> {
        self.counters[request.endpoint.index()].fetch_add(1, Ordering::SeqCst);
        let endpoint = request.endpoint;
        {
            let mut recorded = lock(&self.recorded);
            if recorded.len() == MAX_RECORDED {
                recorded.pop_front();
            }
            recorded.push_back(request);
        }
        let mut armed = lock(&self.armed);
        let index = armed.iter().position(|a| a.endpoint == endpoint)?;
        let fault = armed[index].fault.clone();
        if let Some(remaining) = &mut armed[index].remaining {
            *remaining -= 1;
            if *remaining == 0 {
                armed.remove(index);
            }
        }
        Some(fault)
    }

    pub(crate) fn count(&self, endpoint: Endpoint) -> usize {
        self.counters[endpoint.index()].load(Ordering::SeqCst)
    }

    pub(crate) fn reset_counts(&self) {
        for counter in &self.counters {
            counter.store(0, Ordering::SeqCst);
        }
        lock(&self.recorded).clear();
    }

    pub(crate) fn recorded(&self, endpoint: Endpoint) -> Vec<RecordedRequest> {
        lock(&self.recorded).iter().filter(|r| r.endpoint == endpoint).cloned().collect()
    }
}

/// Locks, ignoring poisoning: the provider's state stays usable after a panicking test thread.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

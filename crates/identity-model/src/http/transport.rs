//! The HTTP client behind discovery and key fetches: a small trait (bring your own client, or
//! a fake in tests) and the default implementation on reqwest + rustls.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use identity_model_core::{DiscoveryPolicy, Error, ErrorKind, FormRequest, Method};

use crate::config::HttpConfig;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A GET request for a JSON document.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Absolute URL.
    pub url: String,
    /// `Accept` header value.
    pub accept: &'static str,
    /// `If-None-Match`, to revalidate a cached document.
    pub if_none_match: Option<String>,
    /// Largest body accepted; a longer one is an error, not a truncation.
    pub max_body: usize,
}

/// A response, reduced to what the caches need.
#[derive(Debug, Clone, Default)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `ETag`.
    pub etag: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Retry-After`.
    pub retry_after: Option<String>,
    /// `Expires` (used when there is no `Cache-Control: max-age`).
    pub expires: Option<String>,
    /// `WWW-Authenticate` (RFC 6750 errors of userinfo).
    pub www_authenticate: Option<String>,
    /// `DPoP-Nonce` (RFC 9449 section 8).
    pub dpop_nonce: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request got no response.
#[derive(Debug)]
pub struct TransportError {
    /// What happened.
    pub message: String,
    /// Whether it was a timeout.
    pub timeout: bool,
    /// The cause.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn std::error::Error + 'static))
    }
}

/// A transport that could not be built from its settings (CA bundle, client certificate):
/// `invalid_config` in every builder.
pub(crate) fn config_error(e: TransportError) -> Error {
    Error::new(ErrorKind::InvalidConfig, e.message.clone()).with_source(e)
}

/// Sends requests. Implementations must not follow redirects and must enforce `max_body`.
pub trait HttpTransport: Send + Sync + fmt::Debug {
    /// Performs a GET for a document (discovery, key sets).
    fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;

    /// Sends a request to an OAuth endpoint (a form POST, or the userinfo GET) as built by
    /// the core, accepting JSON. The default refuses: a transport written only for key
    /// fetches cannot get tokens.
    fn send(
        &self,
        request: FormRequest,
        max_body: usize,
    ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let _ = max_body;
        Box::pin(async move {
            Err(TransportError {
                message: format!("this transport cannot send requests to {}", request.url),
                timeout: false,
                source: None,
            })
        })
    }
}

/// The default transport: one pooled reqwest client (rustls), timeouts, redirects off, and a
/// resolver that applies the URL policy to the addresses a name resolves to.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

/// Resolves names with the system resolver, then keeps only the addresses the URL policy
/// permits (private, local, reserved and IPv4-carrying IPv6 ranges refused unless allowed;
/// loopback when HTTP on loopback is). A name left with none is refused before any connection.
#[derive(Debug)]
struct PolicyResolver {
    policy: DiscoveryPolicy,
}

/// A name whose every address the URL policy refuses (found in an error's source chain).
#[derive(Debug)]
pub(crate) struct PolicyRefusal(String);

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyRefusal {}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<std::net::SocketAddr> =
                found.iter().copied().filter(|addr| policy.permits_address(addr.ip())).collect();
            if permitted.is_empty() {
                let shown: Vec<String> = found.iter().take(4).map(|a| a.ip().to_string()).collect();
                let host: String = host.chars().take(120).collect();
                let message = format!(
                    "{host:?} resolves only to addresses the URL policy refuses ({}): private, local \
                     and reserved targets need allow_private_targets()",
                    shown.join(", ")
                );
                return Err(Box::new(PolicyRefusal(message)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The policy refusal in `error`'s source chain, if a resolver refused the name.
pub(crate) fn policy_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refusal) = e.downcast_ref::<PolicyRefusal>() {
            return Some(refusal.0.clone());
        }
        current = e.source();
    }
    None
}

impl ReqwestTransport {
    /// A client configured from `config` (timeouts, extra CA bundle), resolving names under
    /// the strict default URL policy.
    pub fn new(config: &HttpConfig) -> Result<Self, TransportError> {
        ReqwestTransport::with_policy(config, &DiscoveryPolicy::default())
    }

    /// A client whose resolver applies `policy` to resolved addresses (the Authority and the
    /// token client build theirs with their own policy).
    pub fn with_policy(config: &HttpConfig, policy: &DiscoveryPolicy) -> Result<Self, TransportError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(PolicyResolver { policy: policy.clone() })
            .user_agent(concat!("identity-model/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| TransportError {
                message: format!("cannot read CA bundle {}: {e}", path.display()),
                timeout: false,
                source: Some(Box::new(e)),
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| TransportError {
                message: format!("CA bundle {} is not PEM certificates", path.display()),
                timeout: false,
                source: Some(Box::new(e)),
            })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(path) = &config.client_identity {
            let read = |path: &std::path::Path, what: &str| {
                std::fs::read(path).map_err(|e| TransportError {
                    message: format!("cannot read the client {what} {}: {e}", path.display()),
                    timeout: false,
                    source: Some(Box::new(e)),
                })
            };
            let mut pem = read(path, "certificate")?;
            if let Some(key) = &config.client_key {
                pem.push(b'\n');
                pem.extend(read(key, "private key")?);
            }
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| TransportError {
                message: format!("{} is not a PEM certificate chain with its private key", path.display()),
                timeout: false,
                source: Some(Box::new(e)),
            })?;
            builder = builder.identity(identity);
        }
        let client = builder.build().map_err(|e| TransportError {
            message: "cannot build the HTTP client".into(),
            timeout: false,
            source: Some(Box::new(e)),
        })?;
        Ok(ReqwestTransport { client })
    }
}

fn failed(e: reqwest::Error) -> TransportError {
    let what = if e.is_timeout() { "request timed out" } else { "request failed" };
    TransportError { message: format!("{what}: {e}"), timeout: e.is_timeout(), source: Some(Box::new(e)) }
}

impl HttpTransport for ReqwestTransport {
    fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let mut builder = self.client.get(&request.url).header("accept", request.accept);
            if let Some(etag) = &request.if_none_match {
                builder = builder.header("if-none-match", etag);
            }
            let response = builder.send().await.map_err(failed)?;
            read(response, request.max_body).await
        })
    }

    fn send(
        &self,
        request: FormRequest,
        max_body: usize,
    ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            let mut builder = match request.method {
                Method::Get => self.client.get(&request.url),
                Method::Post => self
                    .client
                    .post(&request.url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(request.body()),
            }
            .header("accept", "application/json");
            for (name, value) in &request.headers {
                builder = builder.header(name.as_str(), value.as_str());
            }
            let response = builder.send().await.map_err(failed)?;
            read(response, max_body).await
        })
    }
}

/// Reads a response: the headers the callers need, and the body up to `max_body` bytes.
async fn read(mut response: reqwest::Response, max_body: usize) -> Result<HttpResponse, TransportError> {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut out = HttpResponse {
        status: response.status().as_u16(),
        content_type: header("content-type"),
        etag: header("etag"),
        cache_control: header("cache-control"),
        retry_after: header("retry-after"),
        expires: header("expires"),
        www_authenticate: header("www-authenticate"),
        dpop_nonce: header("dpop-nonce"),
        body: Vec::new(),
    };
    let too_large = || TransportError {
        message: format!("response body is over the {max_body}-byte limit"),
        timeout: false,
        source: None,
    };
    if response.content_length().is_some_and(|len| len > max_body as u64) {
        return Err(too_large());
    }
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if out.body.len() + chunk.len() > max_body {
            return Err(too_large());
        }
        out.body.extend_from_slice(&chunk);
    }
    Ok(out)
}

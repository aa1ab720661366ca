//! Getting tokens: every grant, PAR, device flow, introspection, revocation and userinfo,
//! over the core's request builders. Endpoints come from the [`Authority`]'s cached
//! discovery document unless given explicitly. Only requests the core marks retryable are
//! retried (client credentials, introspection, revocation, userinfo, PAR, device
//! authorization); code redemption, refresh, device polling and token exchange are sent once.

use std::sync::Arc;

use identity_model_core::{
    AuthorizationRequest, Client, DeviceAuthorization, DevicePoller, DiscoveryPolicy, DpopKey,
    EndpointResponse, Endpoints, Error, ErrorKind, FormRequest, IdTokenValidation, Introspection, Method,
    PollStep, ProofRequest, PushedAuthorization, Secret, TokenExchange, TokenRequest, TokenResponse,
    UserInfo, pushed_authorization_request, revocation_result, token_request,
};

use crate::authority::Authority;
use crate::clock::{Clock, SystemClock};
use crate::config::{CircuitConfig, HttpConfig};
use crate::http::transport::{HttpResponse, HttpTransport, ReqwestTransport, config_error};
use crate::http::{Fetcher, Outgoing, Tally};

/// Largest response accepted from an OAuth endpoint.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Counters of a token client.
#[derive(Debug, Default)]
pub struct TokenClientStats {
    /// Requests sent (retries included).
    pub requests: std::sync::atomic::AtomicU64,
    /// Retries.
    pub retries: std::sync::atomic::AtomicU64,
    /// Times a host's circuit opened on this client's requests.
    pub circuit_opens: std::sync::atomic::AtomicU64,
}

struct Inner {
    client: Client,
    authority: Option<Authority>,
    endpoints: Endpoints,
    fetcher: Arc<Fetcher>,
    policy: DiscoveryPolicy,
    clock: Arc<dyn Clock>,
    stats: TokenClientStats,
    dpop: Option<Arc<DpopKey>>,
    /// The latest `DPoP-Nonce` per server origin (bounded).
    nonces: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

/// Servers whose DPoP nonce is remembered at once.
const MAX_NONCE_SERVERS: usize = 64;

/// The origin (`scheme://authority`) of `url`, which keys its server's nonce.
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    &url[..end]
}

/// Gets tokens for one client. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("client", &self.inner.client)
            .field("issuer", &self.inner.authority.as_ref().map(Authority::issuer))
            .field("endpoints", &self.inner.endpoints)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenClient`].
#[derive(Debug)]
pub struct TokenClientBuilder {
    client: Client,
    authority: Option<Authority>,
    endpoints: Endpoints,
    transport: Option<Arc<dyn HttpTransport>>,
    policy: Option<DiscoveryPolicy>,
    config: Option<HttpConfig>,
    circuit: Option<CircuitConfig>,
    clock: Arc<dyn Clock>,
    dpop: Option<Arc<DpopKey>>,
}

impl TokenClient {
    /// Starts building a client; give it an authority or explicit endpoints.
    pub fn builder(client: Client) -> TokenClientBuilder {
        TokenClientBuilder {
            client,
            authority: None,
            endpoints: Endpoints::default(),
            transport: None,
            policy: None,
            config: None,
            circuit: None,
            clock: Arc::new(SystemClock),
            dpop: None,
        }
    }
}

impl TokenClientBuilder {
    /// Gets DPoP-bound tokens (RFC 9449): every token and PAR request carries a proof by
    /// `key`; a `use_dpop_nonce` answer is retried once with the server's nonce (the latest
    /// nonce per server is remembered); a token response must say `token_type: DPoP`. The
    /// key may be shared (`Arc<DpopKey>`) with other clients and with resource requests.
    pub fn dpop_key(mut self, key: impl Into<Arc<DpopKey>>) -> Self {
        self.dpop = Some(key.into());
        self
    }

    /// Endpoints from this authority's discovery (and its transport, policy and settings).
    pub fn authority(mut self, authority: &Authority) -> Self {
        self.authority = Some(authority.clone());
        self
    }

    /// Explicit endpoints: they win over discovery, and a request to one of them needs no
    /// discovery at all (the issuer is then `endpoints.issuer` or the authority's).
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = endpoints;
        self
    }

    /// A transport other than the authority's (or a new reqwest one).
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The URL policy for explicit endpoints (default: HTTPS only).
    pub fn policy(mut self, policy: DiscoveryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Timeouts and retry settings.
    pub fn config(mut self, config: HttpConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// The per-host circuit breaker (default: the authority's, shared, else the default).
    pub fn circuit(mut self, circuit: CircuitConfig) -> Self {
        self.circuit = Some(circuit);
        self
    }

    /// The wall clock for client assertions.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<TokenClient, Error> {
        let own_config = self.config.is_some() || self.circuit.is_some();
        let circuit =
            self.circuit.or_else(|| self.authority.as_ref().map(Authority::circuit)).unwrap_or_default();
        let config =
            self.config.or_else(|| self.authority.as_ref().map(|a| a.config().clone())).unwrap_or_default();
        let policy =
            self.policy.or_else(|| self.authority.as_ref().map(|a| a.policy().clone())).unwrap_or_default();
        if self.client.auth.uses_mtls() && self.transport.is_none() && config.client_identity.is_none() {
            return Err(Error::new(
                ErrorKind::InvalidConfig,
                "tls_client_auth needs a client certificate: set HttpConfig::client_identity or give a transport",
            ));
        }
        let mtls = self.client.auth.uses_mtls();
        let clock = Arc::clone(&self.clock);
        let fetcher = match (&self.authority, self.transport) {
            (_, Some(t)) => Arc::new(Fetcher::new(t, config, circuit, clock)),
            // The authority's transport, breakers and settings: one circuit per host for both.
            (Some(a), None) if !mtls && !own_config => Arc::clone(a.fetcher()),
            (Some(a), None) if !mtls => Arc::new(Fetcher::new(a.transport(), config, circuit, clock)),
            // mTLS needs the certificate on the connection: the authority's pool may not have it.
            (_, None) => {
                let transport = ReqwestTransport::with_policy(&config, &policy).map_err(config_error)?;
                Arc::new(Fetcher::new(Arc::new(transport), config, circuit, clock))
            }
        };
        let mut endpoints = self.endpoints;
        if endpoints.issuer.is_none() {
            endpoints.issuer = self.authority.as_ref().map(|a| a.issuer().to_owned());
        }
        Ok(TokenClient {
            inner: Arc::new(Inner {
                client: self.client,
                authority: self.authority,
                endpoints,
                fetcher,
                policy,
                clock: self.clock,
                stats: TokenClientStats::default(),
                dpop: self.dpop,
                nonces: std::sync::Mutex::default(),
            }),
        })
    }
}

impl TokenClient {
    /// The client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Counters.
    pub fn stats(&self) -> &TokenClientStats {
        &self.inner.stats
    }

    /// The endpoints in effect: explicit ones over the authority's discovery document.
    pub async fn endpoints(&self) -> Result<Endpoints, Error> {
        let inner = &self.inner;
        match &inner.authority {
            Some(authority) => {
                let document = authority.metadata().await?;
                Ok(inner.endpoints.or(Endpoints::from_discovery(&document, inner.client.auth.uses_mtls())))
            }
            None => Ok(inner.endpoints.clone()),
        }
    }

    async fn endpoint(
        &self,
        pick: impl Fn(&Endpoints) -> Option<String>,
        name: &str,
    ) -> Result<(String, Option<String>), Error> {
        let inner = &self.inner;
        // An explicitly configured endpoint needs no discovery (an issuer may have none: keys
        // from a jwks_uri, a file or inline); the issuer is then the configured or the
        // authority's one (discovery would have had to match it anyway).
        if let Some(url) = pick(&inner.endpoints) {
            inner.policy.check_url(&url, name)?;
            let issuer = inner
                .endpoints
                .issuer
                .clone()
                .or_else(|| inner.authority.as_ref().map(|a| a.issuer().to_owned()));
            return Ok((url, issuer));
        }
        let endpoints = self.endpoints().await?;
        let url = pick(&endpoints).ok_or_else(|| {
            Error::new(ErrorKind::MissingFields, format!("no {name}: not in discovery and not configured"))
                .with_claim(name.to_owned())
        })?;
        self.inner.policy.check_url(&url, name)?; // names the endpoint; the fetch loop checks again
        Ok((url, endpoints.issuer))
    }

    /// The DPoP key, when the client gets DPoP-bound tokens (for the proofs of resource
    /// requests: [`DpopKey::proof`] with the token's `ath`).
    pub fn dpop_key(&self) -> Option<&DpopKey> {
        self.inner.dpop.as_deref()
    }

    /// Sends a token request (any grant) and reads the response. With a DPoP key, the request
    /// carries a proof, a `use_dpop_nonce` answer is retried once with the server's nonce, and
    /// the answer must be `token_type: DPoP`.
    pub async fn request_token(&self, request: &TokenRequest) -> Result<TokenResponse, Error> {
        let (url, issuer) = self.endpoint(|e| e.token.clone(), "token_endpoint").await?;
        let build = || request.build(&url, &self.inner.client, issuer.as_deref(), self.inner.clock.now());
        let response = self.send_with_proof(&url, None, build).await?;
        let tokens = TokenResponse::from_response(as_endpoint_response(&response))?;
        if self.inner.dpop.is_some() && !tokens.token_type.eq_ignore_ascii_case("DPoP") {
            return Err(Error::new(
                ErrorKind::InvalidResponse,
                format!("a DPoP proof was sent, but the token_type is {:?}, not DPoP", tokens.token_type),
            )
            .with_claim("token_type"));
        }
        Ok(tokens)
    }

    /// Sends the form `build` makes, with a DPoP proof when the client has a key; retried once
    /// (with a freshly built form: a client assertion is single use) when the server answers
    /// `use_dpop_nonce` with a new nonce. The server did not act on that request, so even a
    /// single-use grant may be sent again.
    async fn send_with_proof(
        &self,
        url: &str,
        access_token: Option<&str>,
        build: impl Fn() -> Result<FormRequest, Error>,
    ) -> Result<HttpResponse, Error> {
        let Some(key) = &self.inner.dpop else { return self.send(build()?).await };
        let origin = origin_of(url);
        let nonces = || self.inner.nonces.lock().unwrap_or_else(|p| p.into_inner());
        for attempt in 0..2 {
            let nonce = nonces().get(origin).cloned();
            let mut form = build()?;
            let method = match form.method {
                Method::Get => "GET",
                Method::Post => "POST",
            };
            let mut proof_request = ProofRequest::new(method, url);
            if let Some(nonce) = &nonce {
                proof_request = proof_request.with_nonce(nonce);
            }
            if let Some(token) = access_token {
                proof_request = proof_request.with_access_token(token);
            }
            form.headers.push(("DPoP".into(), key.proof(&proof_request, self.inner.clock.now())?));
            let response = self.send(form).await?;
            let fresh = response.dpop_nonce.clone().filter(|n| Some(n) != nonce.as_ref());
            if let Some(fresh) = &fresh {
                let mut map = nonces();
                if map.len() >= MAX_NONCE_SERVERS && !map.contains_key(origin) {
                    map.clear();
                }
                map.insert(origin.to_owned(), fresh.clone());
            }
            let asks_nonce = matches!(response.status, 400 | 401) && is_use_dpop_nonce(&response);
            if attempt == 0 && asks_nonce && fresh.is_some() {
                continue;
            }
            return Ok(response);
        }
        unreachable!("the second attempt returns")
    }

    /// Client credentials for `scopes` and `resources`.
    pub async fn client_credentials(
        &self,
        scopes: &[&str],
        resources: &[&str],
    ) -> Result<TokenResponse, Error> {
        let mut request = TokenRequest::client_credentials().scope(scopes.iter().copied());
        for resource in resources {
            request = request.resource(*resource);
        }
        self.request_token(&request).await
    }

    /// Uses a refresh token (sent once: a rotating refresh token is single use).
    pub async fn refresh(&self, refresh_token: impl Into<Secret>) -> Result<TokenResponse, Error> {
        let request = TokenRequest::refresh(refresh_token);
        self.request_token(&request).await
    }

    /// Token exchange (sent once).
    pub async fn exchange(&self, exchange: TokenExchange) -> Result<TokenResponse, Error> {
        self.request_token(&TokenRequest::exchange(exchange)).await
    }

    /// The authorization URL for `request` (plain, not pushed).
    pub async fn authorization_url(&self, request: &AuthorizationRequest) -> Result<String, Error> {
        let (url, _) = self.endpoint(|e| e.authorization.clone(), "authorization_endpoint").await?;
        Ok(self.bound(request).url(&url))
    }

    /// With a DPoP key, `request` with `dpop_jkt` (unless it names one already).
    fn bound<'r>(&self, request: &'r AuthorizationRequest) -> std::borrow::Cow<'r, AuthorizationRequest> {
        match &self.inner.dpop {
            Some(key) if !request.extra.iter().any(|(name, _)| name == "dpop_jkt") => {
                std::borrow::Cow::Owned(request.clone().dpop_jkt(key.thumbprint()))
            }
            _ => std::borrow::Cow::Borrowed(request),
        }
    }

    /// Pushes `request` (RFC 9126) and returns the authorization URL carrying its `request_uri`.
    pub async fn push_authorization(&self, request: &AuthorizationRequest) -> Result<String, Error> {
        let (par, issuer) = self.par_endpoint().await?;
        let bound = self.bound(request);
        let build = || bound.pushed(&par, &self.inner.client, issuer.as_deref(), self.inner.clock.now());
        let pushed = self.push(&par, build).await?;
        let (url, _) = self.endpoint(|e| e.authorization.clone(), "authorization_endpoint").await?;
        Ok(request.pushed_url(&url, &pushed.request_uri))
    }

    /// Pushes authorization request parameters the caller made (RFC 9126), authenticated as
    /// the client (`client_id` added), and returns the `request_uri` and its lifetime. Unlike
    /// [`TokenClient::push_authorization`], nothing is added: a DPoP client's `dpop_jkt`
    /// must be among `params` when the code is to be bound.
    pub async fn push_parameters(&self, params: &[(String, String)]) -> Result<PushedAuthorization, Error> {
        let (par, issuer) = self.par_endpoint().await?;
        let client = &self.inner.client;
        let build =
            || pushed_authorization_request(&par, client, params, issuer.as_deref(), self.inner.clock.now());
        self.push(&par, build).await
    }

    async fn par_endpoint(&self) -> Result<(String, Option<String>), Error> {
        self.endpoint(|e| e.pushed_authorization_request.clone(), "pushed_authorization_request_endpoint")
            .await
    }

    async fn push(
        &self,
        par: &str,
        build: impl Fn() -> Result<FormRequest, Error>,
    ) -> Result<PushedAuthorization, Error> {
        let response = self.send_with_proof(par, None, build).await?;
        PushedAuthorization::from_response(as_endpoint_response(&response))
    }

    /// Checks the callback of `request` (state, RFC 9207 iss) and redeems its code with the
    /// PKCE verifier (sent once: a code is single use). An ID token in the response is
    /// validated with the authority's keys before the tokens are returned (a client without
    /// an authority is refused with `invalid_usage` before anything is sent): signature with the issuer's keys,
    /// `iss`, `aud` = client id, `exp`, `iat`, `nonce`, `at_hash`, `azp`. Use
    /// [`TokenClient::redeem_unverified`] to validate it yourself.
    pub async fn redeem(
        &self,
        request: &AuthorizationRequest,
        callback: &str,
    ) -> Result<TokenResponse, Error> {
        let Some(authority) = &self.inner.authority else {
            // Refused before the code is spent: without keys the ID token cannot be checked.
            return Err(Error::new(
                ErrorKind::InvalidUsage,
                "redeem checks the ID token with the issuer's keys: build the client with \
                 .authority(...), or call redeem_unverified and validate the ID token yourself",
            ));
        };
        let tokens = self.redeem_unverified(request, callback).await?;
        if let Some(id_token) = &tokens.id_token {
            let issuer = self.endpoints().await?.issuer.unwrap_or_default();
            let rules = IdTokenValidation::new(issuer, self.inner.client.client_id.clone())
                .nonce(request.nonce.clone())
                .access_token(tokens.access_token.expose());
            // The kid decides what a key the cached set lacks leads to, exactly as in
            // validation (refetch within the cooldown, missing-kid memory, outage: 503).
            authority.validate_id_token(id_token.expose(), &rules).await?;
        }
        Ok(tokens)
    }

    /// [`TokenClient::redeem`] without the ID token check.
    pub async fn redeem_unverified(
        &self,
        request: &AuthorizationRequest,
        callback: &str,
    ) -> Result<TokenResponse, Error> {
        let endpoints = self.endpoints().await?;
        let issuer = endpoints.issuer.clone().unwrap_or_default();
        let code = request.callback(callback, &issuer, endpoints.iss_parameter_supported)?;
        let token = TokenRequest::authorization_code(
            code,
            request.redirect_uri.clone(),
            Some(request.pkce.verifier().clone()),
        );
        self.request_token(&token).await
    }

    /// Starts the device flow (RFC 8628 section 3.1).
    pub async fn device_authorization(
        &self,
        scopes: &[&str],
        resources: &[&str],
    ) -> Result<DeviceAuthorization, Error> {
        let (url, issuer) =
            self.endpoint(|e| e.device_authorization.clone(), "device_authorization_endpoint").await?;
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let resources: Vec<String> = resources.iter().map(|s| (*s).to_owned()).collect();
        let form = token_request::device_authorization_request(
            &url,
            &self.inner.client,
            &scopes,
            &resources,
            issuer.as_deref(),
            self.inner.clock.now(),
        )?;
        let response = self.send(form).await?;
        DeviceAuthorization::from_response(as_endpoint_response(&response))
    }

    /// Polls the token endpoint until the user approves, denies, or the code expires; waits
    /// `interval` between polls and slows down when told to.
    pub async fn poll_device(&self, authorization: &DeviceAuthorization) -> Result<TokenResponse, Error> {
        let started = tokio::time::Instant::now();
        let mut poller = DevicePoller::new(authorization);
        let request = TokenRequest::device_code(authorization.device_code.clone());
        tokio::time::sleep(poller.interval()).await;
        loop {
            let result = self.request_token(&request).await;
            match poller.next(result, started.elapsed()) {
                PollStep::Done(tokens) => return Ok(*tokens),
                PollStep::Failed(e) => return Err(e),
                PollStep::Wait(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// Introspects a token (RFC 7662).
    pub async fn introspect(
        &self,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> Result<Introspection, Error> {
        let endpoint = |e: &Endpoints| e.introspection.clone();
        let response = self.about_token(endpoint, "introspection_endpoint", token, token_type_hint).await?;
        Introspection::from_response(as_endpoint_response(&response))
    }

    /// Revokes a token (RFC 7009).
    pub async fn revoke(&self, token: &str, token_type_hint: Option<&str>) -> Result<(), Error> {
        let endpoint = |e: &Endpoints| e.revocation.clone();
        let response = self.about_token(endpoint, "revocation_endpoint", token, token_type_hint).await?;
        revocation_result(as_endpoint_response(&response))
    }

    async fn about_token(
        &self,
        pick: impl Fn(&Endpoints) -> Option<String>,
        name: &str,
        token: &str,
        token_type_hint: Option<&str>,
    ) -> Result<HttpResponse, Error> {
        let (url, issuer) = self.endpoint(pick, name).await?;
        let form = token_request::token_operation_request(
            &url,
            &self.inner.client,
            token,
            token_type_hint,
            issuer.as_deref(),
            self.inner.clock.now(),
        )?;
        self.send(form).await
    }

    /// A GET of a protected resource with `access_token`: with a DPoP key, as
    /// `Authorization: DPoP` with a proof (`htm`, `htu`, `ath`, the server's latest nonce),
    /// retried once when the resource server answers `use_dpop_nonce` with a `DPoP-Nonce`;
    /// without one, as `Bearer`. The response is returned whatever its status. The URL must
    /// pass the client's discovery policy.
    pub async fn get_resource(&self, url: &str, access_token: &str) -> Result<HttpResponse, Error> {
        self.inner.policy.check_url(url, "resource")?;
        let build = || {
            let mut form = FormRequest::post(url, identity_model_core::RetryClass::Retryable);
            form.method = Method::Get;
            let scheme = if self.inner.dpop.is_some() { "DPoP" } else { "Bearer" };
            form.header("Authorization", format!("{scheme} {access_token}"));
            Ok(form)
        };
        self.send_with_proof(url, Some(access_token), build).await
    }

    /// Fetches userinfo with `access_token`; with `expected_subject` (the ID token's `sub`),
    /// a different `sub` is rejected. With a DPoP key the token is sent as
    /// `Authorization: DPoP` with a proof (`ath`), retried once on `use_dpop_nonce`.
    pub async fn userinfo(
        &self,
        access_token: &str,
        expected_subject: Option<&str>,
    ) -> Result<UserInfo, Error> {
        let (url, _) = self.endpoint(|e| e.userinfo.clone(), "userinfo_endpoint").await?;
        let response = if self.inner.dpop.is_some() {
            // A DPoP-bound token goes with the DPoP scheme and a proof carrying its ath.
            let build = || {
                let mut form = token_request::userinfo_request(&url, access_token);
                for (name, value) in &mut form.headers {
                    if name.eq_ignore_ascii_case("authorization") {
                        *value = format!("DPoP {access_token}");
                    }
                }
                Ok(form)
            };
            self.send_with_proof(&url, Some(access_token), build).await?
        } else {
            self.send(token_request::userinfo_request(&url, access_token)).await?
        };
        UserInfo::from_response(as_endpoint_response(&response), expected_subject)
    }

    /// Sends `form` through the fetch loop; retried only when the core marked it retryable.
    /// An error status is returned as a response for the caller to read.
    async fn send(&self, form: FormRequest) -> Result<HttpResponse, Error> {
        let inner = &self.inner;
        let class = form.retry;
        let tally = Tally {
            requests: &inner.stats.requests,
            retries: &inner.stats.retries,
            circuit_opens: &inner.stats.circuit_opens,
        };
        let request = Outgoing::Endpoint(form, MAX_RESPONSE_BYTES);
        inner.fetcher.fetch(request, class, &inner.policy, ErrorKind::TransportError, tally).await
    }
}

/// Whether an error answer is `use_dpop_nonce` (in the JSON body, or a resource server's
/// `WWW-Authenticate: DPoP error="use_dpop_nonce"`).
fn is_use_dpop_nonce(response: &HttpResponse) -> bool {
    let in_body = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .is_some_and(|body| body.get("error").and_then(|e| e.as_str()) == Some("use_dpop_nonce"));
    in_body || response.www_authenticate.as_deref().is_some_and(|c| c.contains("use_dpop_nonce"))
}

fn as_endpoint_response(response: &HttpResponse) -> EndpointResponse<'_> {
    EndpointResponse {
        status: response.status,
        content_type: response.content_type.as_deref(),
        www_authenticate: response.www_authenticate.as_deref(),
        body: &response.body,
    }
}

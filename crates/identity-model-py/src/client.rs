//! `OAuthClient`: the Rust `TokenClient` for py-identity-model's request functions. Endpoints
//! are given (py-identity-model's requests carry their `address`), and so is the client's
//! authentication; one operation per call, blocking (GIL released) or as an asyncio future.
//! Transports are shared between clients of the same settings, so a call does not pay for a
//! new connection pool.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use identity_model::transport::{HttpTransport, ReqwestTransport};
use identity_model::{
    AssertionAudience, Client, ClientAuth, DiscoveryPolicy, Endpoints, Error, ErrorKind, Grant, HttpConfig,
    Secret, Settings, SigningKey, TokenClient, TokenExchange, TokenRequest,
};
use pyo3::prelude::*;

use crate::dict::JsonDict;
use crate::dpop::{DpopKey, parse_algorithm};
use crate::errors::{raise, to_py};
use crate::runtime::wait;

/// One OAuth client (id and authentication) at given endpoints.
#[pyclass(frozen, module = "identity_model._native")]
pub(crate) struct OAuthClient {
    inner: TokenClient,
}

/// What a call asks of the endpoints.
enum Operation {
    Token(TokenRequest),
    DeviceAuthorization(Vec<String>, Vec<String>),
    Introspect(String, Option<String>),
    Revoke(String, Option<String>),
    Push(Vec<(String, String)>),
    UserInfo(String, Option<String>),
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidConfig, message.into())
}

/// The transport for `config` and `policy`, shared by every client of the same settings
/// (bounded: a process sees a handful of settings).
fn transport(
    config: &HttpConfig,
    policy: &DiscoveryPolicy,
    loopback: bool,
) -> Result<Arc<dyn HttpTransport>, Error> {
    static SHARED: OnceLock<Mutex<HashMap<String, Arc<dyn HttpTransport>>>> = OnceLock::new();
    // The files a transport reads when it is built (CA bundle, client certificate and key)
    // are part of the key by their size and modification time: a renewed certificate at the
    // same path gets a new transport.
    let stamp = |path: &Option<PathBuf>| {
        path.as_ref().and_then(|p| std::fs::metadata(p).ok()).map(|m| (m.len(), m.modified().ok()))
    };
    let files = (stamp(&config.ca_bundle), stamp(&config.client_identity), stamp(&config.client_key));
    let key = format!("{loopback}{config:?}{files:?}");
    let mut shared = SHARED.get_or_init(Mutex::default).lock().unwrap_or_else(|p| p.into_inner());
    if let Some(found) = shared.get(&key) {
        return Ok(Arc::clone(found));
    }
    let built: Arc<dyn HttpTransport> =
        Arc::new(ReqwestTransport::with_policy(config, policy).map_err(|e| invalid(e.to_string()))?);
    if shared.len() >= 16 {
        shared.clear();
    }
    shared.insert(key, Arc::clone(&built));
    Ok(built)
}

/// The client authentication named `method` with its credential.
fn client_auth(
    method: &str,
    secret: Option<String>,
    key_der: Option<Vec<u8>>,
    algorithm: Option<&str>,
    kid: Option<String>,
) -> Result<ClientAuth, Error> {
    let secret =
        || secret.clone().map(Secret::from).ok_or_else(|| invalid(format!("{method} needs a client secret")));
    Ok(match method {
        "none" => ClientAuth::None,
        "client_secret_basic" => ClientAuth::SecretBasic(secret()?),
        "client_secret_post" => ClientAuth::SecretPost(secret()?),
        "client_secret_jwt" => {
            ClientAuth::SecretJwt(secret()?, parse_algorithm(algorithm.unwrap_or("HS256"))?)
        }
        "private_key_jwt" => {
            let der = key_der.ok_or_else(|| invalid("private_key_jwt needs a private key"))?;
            let mut key = SigningKey::from_der(&der, parse_algorithm(algorithm.unwrap_or("RS256"))?)?;
            if let Some(kid) = kid {
                key = key.with_kid(kid);
            }
            ClientAuth::PrivateKeyJwt(Arc::new(key))
        }
        // RFC 8705: the certificate is presented in the TLS handshake; the request names the
        // client. (Whether the provider checks it against a CA or a registered key is the
        // provider's business: the request is the same.)
        "tls_client_auth" | "self_signed_tls_client_auth" => ClientAuth::TlsClientAuth,
        other => return Err(invalid(format!("client authentication {other:?} is not supported here"))),
    })
}

/// The token request of `params` (`grant_type` first among them).
fn token_request(params: Vec<(String, String)>) -> Result<TokenRequest, Error> {
    let mut values: Vec<(String, String)> = params;
    let mut take = |name: &str| values.iter().position(|(n, _)| n == name).map(|i| values.remove(i).1);
    let grant_type = take("grant_type").ok_or_else(|| invalid("no grant_type"))?;
    let grant = match grant_type.as_str() {
        "client_credentials" => Grant::ClientCredentials,
        "refresh_token" => {
            Grant::RefreshToken(take("refresh_token").ok_or_else(|| invalid("no refresh_token"))?.into())
        }
        "authorization_code" => Grant::AuthorizationCode {
            code: take("code").ok_or_else(|| invalid("no code"))?.into(),
            redirect_uri: take("redirect_uri").ok_or_else(|| invalid("no redirect_uri"))?,
            code_verifier: take("code_verifier").map(Secret::from),
        },
        "urn:ietf:params:oauth:grant-type:device_code" => {
            Grant::DeviceCode(take("device_code").ok_or_else(|| invalid("no device_code"))?.into())
        }
        "urn:ietf:params:oauth:grant-type:token-exchange" => {
            let subject = take("subject_token").ok_or_else(|| invalid("no subject_token"))?;
            let subject_type = take("subject_token_type").ok_or_else(|| invalid("no subject_token_type"))?;
            let mut exchange = TokenExchange::new(subject, subject_type);
            if let Some(actor) = take("actor_token") {
                let actor_type =
                    take("actor_token_type").ok_or_else(|| invalid("actor_token needs actor_token_type"))?;
                exchange = exchange.actor(actor, actor_type);
            }
            if let Some(requested) = take("requested_token_type") {
                exchange = exchange.requested_token_type(requested);
            }
            while let Some(audience) = take("audience") {
                exchange = exchange.audience(audience);
            }
            Grant::TokenExchange(exchange)
        }
        other => return Err(invalid(format!("grant_type {other:?} is not supported here"))),
    };
    let mut request = TokenRequest::new(grant);
    for (name, value) in values {
        request = match name.as_str() {
            "scope" => request.scope(value.split_whitespace().map(str::to_owned)),
            "resource" => request.resource(value),
            _ => request.param(name, value),
        };
    }
    Ok(request)
}

fn device_json(authorization: &identity_model::DeviceAuthorization) -> JsonDict {
    JsonDict(
        serde_json::json!({
            "device_code": authorization.device_code.expose(),
            "user_code": authorization.user_code,
            "verification_uri": authorization.verification_uri,
            "verification_uri_complete": authorization.verification_uri_complete,
            "expires_in": authorization.expires_in,
            "interval": authorization.interval,
        })
        .to_string(),
    )
}

fn object_json(members: &serde_json::Map<String, serde_json::Value>) -> JsonDict {
    JsonDict(serde_json::Value::Object(members.clone()).to_string())
}

/// Runs `operation`; `None` for an answer without content (revocation).
async fn run(client: TokenClient, operation: Operation) -> Result<Option<JsonDict>, Error> {
    Ok(Some(match operation {
        Operation::Token(request) => JsonDict::token_response(&client.request_token(&request).await?),
        Operation::DeviceAuthorization(scopes, resources) => {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            let resources: Vec<&str> = resources.iter().map(String::as_str).collect();
            device_json(&client.device_authorization(&scopes, &resources).await?)
        }
        Operation::Introspect(token, hint) => {
            object_json(client.introspect(&token, hint.as_deref()).await?.json())
        }
        Operation::Revoke(token, hint) => {
            client.revoke(&token, hint.as_deref()).await?;
            return Ok(None);
        }
        Operation::Push(params) => {
            let pushed = client.push_parameters(&params).await?;
            JsonDict(
                serde_json::json!({"request_uri": pushed.request_uri, "expires_in": pushed.expires_in})
                    .to_string(),
            )
        }
        Operation::UserInfo(token, expected) => {
            object_json(client.userinfo(&token, expected.as_deref()).await?.json())
        }
    }))
}

/// The operation `name` with `params` (pairs, in order; repeated names allowed).
fn operation(name: &str, params: Vec<(String, String)>) -> Result<Operation, Error> {
    let one = |wanted: &str| params.iter().find(|(n, _)| n == wanted).map(|(_, v)| v.clone());
    let all = |wanted: &str| -> Vec<String> {
        params
            .iter()
            .filter(|(n, _)| n == wanted)
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
            .collect()
    };
    let token = || one("token").ok_or_else(|| invalid("no token"));
    Ok(match name {
        "token" => Operation::Token(token_request(params)?),
        "device_authorization" => Operation::DeviceAuthorization(all("scope"), all("resource")),
        "introspect" => Operation::Introspect(token()?, one("token_type_hint")),
        "revoke" => Operation::Revoke(token()?, one("token_type_hint")),
        "push" => Operation::Push(params),
        "userinfo" => Operation::UserInfo(token()?, one("expected_sub")),
        other => return Err(invalid(format!("unknown operation {other:?}"))),
    })
}

#[pymethods]
impl OAuthClient {
    /// `OAuthClient(client_id, *, auth_method="none", client_secret=None, private_key_der=None,
    /// algorithm=None, kid=None, assertion_audience=None, dpop_key=None, endpoints={},
    /// allow_http_on_loopback=True, client_certificate=None, client_key=None)`. For
    /// `tls_client_auth` (RFC 8705) the handshake presents `client_certificate` (a PEM chain,
    /// with its key or with the key in the PEM file `client_key`). `endpoints` maps `token`, `device_authorization`,
    /// `introspection`, `revocation`, `userinfo`, `pushed_authorization_request` to URLs.
    /// Client assertions are addressed to `assertion_audience`, else to the endpoint called.
    /// Timeouts and retries come from the environment (`HTTP_TIMEOUT`, ...).
    #[new]
    #[pyo3(signature = (client_id, *, auth_method="none", client_secret=None, private_key_der=None,
                        algorithm=None, kid=None, assertion_audience=None, dpop_key=None,
                        endpoints=HashMap::new(), allow_http_on_loopback=true,
                        client_certificate=None, client_key=None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn new(
        py: Python<'_>,
        client_id: String,
        auth_method: &str,
        client_secret: Option<String>,
        private_key_der: Option<Vec<u8>>,
        algorithm: Option<&str>,
        kid: Option<String>,
        assertion_audience: Option<String>,
        dpop_key: Option<PyRef<'_, DpopKey>>,
        endpoints: HashMap<String, String>,
        allow_http_on_loopback: bool,
        client_certificate: Option<PathBuf>,
        client_key: Option<PathBuf>,
    ) -> PyResult<Self> {
        let dpop = dpop_key.map(|key| Arc::clone(&key.inner));
        let built = py.detach(|| -> Result<TokenClient, Error> {
            let auth = client_auth(auth_method, client_secret, private_key_der, algorithm, kid)?;
            let mut client = Client::new(client_id, auth);
            client.assertion_audience = if assertion_audience.is_some() {
                AssertionAudience::Issuer
            } else {
                AssertionAudience::Endpoint
            };
            let mut targets = Endpoints { issuer: assertion_audience, ..Endpoints::default() };
            for (name, url) in endpoints {
                let slot = match name.as_str() {
                    "token" => &mut targets.token,
                    "device_authorization" => &mut targets.device_authorization,
                    "introspection" => &mut targets.introspection,
                    "revocation" => &mut targets.revocation,
                    "userinfo" => &mut targets.userinfo,
                    "pushed_authorization_request" => &mut targets.pushed_authorization_request,
                    "authorization" => &mut targets.authorization,
                    other => return Err(invalid(format!("unknown endpoint {other:?}"))),
                };
                *slot = Some(url);
            }
            let mut settings = Settings::from_env().map_err(|e| {
                let problems: Vec<String> =
                    e.problems.iter().map(|p| format!("{}: {}", p.variable, p.reason)).collect();
                invalid(problems.join("; "))
            })?;
            if client.auth.uses_mtls() && client_certificate.is_none() {
                return Err(invalid(format!("{auth_method} needs a client certificate")));
            }
            settings.http.client_identity = client_certificate;
            settings.http.client_key = client_key;
            let mut policy = DiscoveryPolicy::default();
            if allow_http_on_loopback {
                policy = policy.allow_http_on_loopback();
            }
            let shared = transport(&settings.http, &policy, allow_http_on_loopback)?;
            let mut builder = TokenClient::builder(client)
                .endpoints(targets)
                .policy(policy)
                .config(settings.http)
                .circuit(settings.circuit)
                .transport(shared);
            if let Some(key) = dpop {
                builder = builder.dpop_key(key);
            }
            builder.build()
        });
        built.map(|inner| OAuthClient { inner }).map_err(|e| to_py(py, &e))
    }

    /// Runs one operation (`token`, `device_authorization`, `introspect`, `revoke`, `push`,
    /// `userinfo`) with its form parameters as `(name, value)` pairs, and returns the answer
    /// as a `dict` (`None` for a revocation); raises the exception of `identity_model.exceptions`
    /// for the stable error kind, with the provider's `oauth_error` code when it sent one.
    fn call<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        params: Vec<(String, String)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let operation = operation(name, params).map_err(|e| to_py(py, &e))?;
        let client = self.inner.clone();
        match py.detach(|| wait(run(client, operation)).and_then(|r| r)) {
            Ok(answer) => answer.into_pyobject(py),
            Err(e) => Err(to_py(py, &e)),
        }
    }

    /// The same as an asyncio future on the running loop, driven by the async core.
    fn call_future<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        params: Vec<(String, String)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let operation = operation(name, params).map_err(|e| to_py(py, &e))?;
        let client = self.inner.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            run(client, operation).await.map_err(|e| raise(&e))
        })
    }
}

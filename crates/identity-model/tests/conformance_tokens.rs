//! py-identity-model's conformance cases for token requests: client-credentials,
//! authorization-code, introspection, revocation, token-exchange and userinfo. The core
//! runner defers these whole files here; this test executes every case id in them (checked
//! at the end) against wiremock endpoints serving the suite's fixtures, and the live case
//! (ACG-006) against the test provider. dpop.json's client-side cases (DPOP-004, DPOP-008) run
//! here too.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use identity_model::transport::{
    BoxFuture, HttpRequest, HttpResponse, HttpTransport, ReqwestTransport, TransportError,
};
use identity_model::{
    Authority, AuthorizationRequest, Client, ClientAuth, DiscoveryDocument, DiscoveryPolicy, Endpoints,
    ErrorKind, FormRequest, HttpConfig, Pkce, TokenClient, TokenExchange, TokenRequest, challenge_s256,
    token_type,
};
use serde_json::Value;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn spec_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../identity-model-core/tests/vectors/identity-model-spec")
}

fn fixture(relative: &str) -> String {
    std::fs::read_to_string(spec_dir().join("test-fixtures").join(relative)).unwrap()
}

fn fixture_json(relative: &str) -> Value {
    serde_json::from_str(&fixture(relative)).unwrap()
}

const FILES: [&str; 6] = [
    "client-credentials.json",
    "authorization-code.json",
    "introspection.json",
    "revocation.json",
    "token-exchange.json",
    "userinfo.json",
];

/// A provider endpoint answering every request with one response.
struct Endpoint {
    server: MockServer,
}

impl Endpoint {
    async fn new(status: u16, body: &str, content_type: &str) -> Endpoint {
        Endpoint::with(ResponseTemplate::new(status).set_body_raw(body.to_owned(), content_type)).await
    }

    async fn with(response: ResponseTemplate) -> Endpoint {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any()).respond_with(response).mount(&server).await;
        Endpoint { server }
    }

    fn url(&self) -> String {
        format!("{}/ep", self.server.uri())
    }

    fn endpoints(&self) -> Endpoints {
        let url = self.url();
        Endpoints {
            issuer: Some(self.server.uri()),
            token: Some(url.clone()),
            introspection: Some(url.clone()),
            revocation: Some(url.clone()),
            userinfo: Some(url),
            ..Endpoints::default()
        }
    }

    fn client(&self, client: Client) -> TokenClient {
        TokenClient::builder(client)
            .endpoints(self.endpoints())
            .policy(DiscoveryPolicy::default().allow_http_on_loopback())
            .config(HttpConfig { retry_max_attempts: 1, ..HttpConfig::default() })
            .build()
            .unwrap()
    }

    async fn last(&self) -> wiremock::Request {
        self.server.received_requests().await.unwrap().pop().unwrap()
    }

    async fn form(&self) -> Vec<(String, String)> {
        let request = self.last().await;
        assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
        form_urlencoded::parse(&request.body).into_owned().collect()
    }
}

fn get<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn secret() -> Client {
    Client::with_secret("client id", "s3cr:t")
}

const TOKEN: &str = r#"{"access_token":"AT","token_type":"Bearer","expires_in":3600,"scope":"a b"}"#;

async fn client_credentials(executed: &mut BTreeSet<String>) {
    let ep = Endpoint::new(200, TOKEN, "application/json").await;
    let tokens = ep.client(secret()).client_credentials(&["a", "b"], &[]).await.unwrap();
    assert_eq!((tokens.access_token.expose(), tokens.token_type.as_str()), ("AT", "Bearer"));
    assert_eq!((tokens.expires_in, tokens.scope.as_deref()), (Some(3600), Some("a b")));
    let form = ep.form().await;
    assert_eq!(get(&form, "grant_type"), Some("client_credentials"));
    executed.insert("CC-001".into());

    let basic = ep.last().await.headers["authorization"].to_str().unwrap().to_owned();
    let decoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(basic.strip_prefix("Basic ").unwrap()).unwrap()
    };
    assert_eq!(String::from_utf8(decoded).unwrap(), "client+id:s3cr%3At");
    assert!(get(&form, "client_id").is_none() && get(&form, "client_secret").is_none());
    executed.insert("CC-002".into());

    let post = Client::new("client id", ClientAuth::SecretPost("s3cr:t".into()));
    ep.client(post).client_credentials(&[], &[]).await.unwrap();
    let form = ep.form().await;
    assert_eq!((get(&form, "client_id"), get(&form, "client_secret")), (Some("client id"), Some("s3cr:t")));
    assert!(ep.last().await.headers.get("authorization").is_none());
    executed.insert("CC-003".into());

    let error = r#"{"error":"invalid_scope","error_description":"no","error_uri":"https://op.example/e"}"#;
    let bad = Endpoint::new(400, error, "application/json").await;
    let e = bad.client(secret()).client_credentials(&[], &[]).await.unwrap_err();
    let oauth = e.oauth().unwrap();
    assert_eq!(
        (oauth.error.as_str(), oauth.error_description.as_deref(), oauth.error_uri.as_deref(), oauth.status),
        ("invalid_scope", Some("no"), Some("https://op.example/e"), 400)
    );
    executed.insert("CC-004".into());

    ep.client(secret()).client_credentials(&["a", "b"], &[]).await.unwrap();
    assert_eq!(get(&ep.form().await, "scope"), Some("a b"));
    executed.insert("CC-005".into());

    /// A custom transport: counts, then delegates to reqwest.
    #[derive(Debug)]
    struct Counting(ReqwestTransport, Arc<AtomicUsize>);
    impl HttpTransport for Counting {
        fn get(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            self.0.get(request)
        }
        fn send(
            &self,
            request: FormRequest,
            max: usize,
        ) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.send(request, max)
        }
    }
    let count = Arc::new(AtomicUsize::new(0));
    let custom = TokenClient::builder(secret())
        .endpoints(ep.endpoints())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .transport(Arc::new(Counting(ReqwestTransport::new(&HttpConfig::default()).unwrap(), count.clone())))
        .build()
        .unwrap();
    custom.request_token(&TokenRequest::client_credentials().param("tenant", "t1")).await.unwrap();
    assert_eq!(get(&ep.form().await, "tenant"), Some("t1"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    executed.insert("CC-006".into());
}

async fn authorization_code(executed: &mut BTreeSet<String>) {
    let ep = Endpoint::new(200, TOKEN, "application/json").await;
    let app = ep.client(Client::public("app"));
    let request = TokenRequest::authorization_code("C1", "https://app.example/cb", None);
    assert_eq!(app.request_token(&request).await.unwrap().access_token.expose(), "AT");
    let form = ep.form().await;
    assert_eq!(
        (get(&form, "grant_type"), get(&form, "code"), get(&form, "redirect_uri")),
        (Some("authorization_code"), Some("C1"), Some("https://app.example/cb"))
    );
    executed.insert("ACG-001".into());

    for _ in 0..20 {
        let pkce = Pkce::generate().unwrap();
        let v = pkce.verifier().expose();
        assert!((43..=128).contains(&v.len()));
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)), "{v}");
        assert_ne!(v, Pkce::generate().unwrap().verifier().expose());
    }
    executed.insert("ACG-002".into());

    let vector = fixture_json("token/pkce-appendix-b.json");
    let verifier = vector["code_verifier"].as_str().unwrap();
    assert_eq!(challenge_s256(verifier), vector["code_challenge"].as_str().unwrap());
    assert_eq!(
        Pkce::from_verifier(verifier).unwrap().challenge(),
        vector["code_challenge"].as_str().unwrap()
    );
    executed.insert("ACG-003".into());

    let with_verifier =
        TokenRequest::authorization_code("C1", "https://app.example/cb", Some(verifier.into()));
    app.request_token(&with_verifier).await.unwrap();
    assert_eq!(get(&ep.form().await, "code_verifier"), Some(verifier));
    executed.insert("ACG-004".into());

    let bad = Endpoint::new(
        400,
        r#"{"error":"invalid_grant","error_description":"code used"}"#,
        "application/json",
    )
    .await;
    let e = bad.client(Client::public("app")).request_token(&request).await.unwrap_err();
    assert_eq!(e.oauth().map(|o| (o.error.as_str(), o.status)), Some(("invalid_grant", 400)));
    executed.insert("ACG-005".into());

    let provider = identity_model_testkit::TestProvider::start().await.unwrap();
    let authority = Authority::builder(provider.issuer())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .build()
        .unwrap();
    let live = TokenClient::builder(Client::public("demo-app")).authority(&authority).build().unwrap();
    let auth = AuthorizationRequest::new("demo-app", "http://127.0.0.1:8400/callback").unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = http.get(live.authorization_url(&auth).await.unwrap()).send().await.unwrap();
    let callback = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(live.redeem(&auth, &callback).await.is_ok(), "the provider accepts the verifier");
    // And refuses a wrong one.
    let response = http.get(live.authorization_url(&auth).await.unwrap()).send().await.unwrap();
    let code =
        auth.callback(response.headers()["location"].to_str().unwrap(), provider.issuer(), true).unwrap();
    let wrong = Pkce::generate().unwrap().verifier().clone();
    let e = live
        .request_token(&TokenRequest::authorization_code(code, auth.redirect_uri.clone(), Some(wrong)))
        .await
        .unwrap_err();
    assert_eq!(e.oauth().unwrap().error, "invalid_grant");
    executed.insert("ACG-006".into());
}

async fn introspection(executed: &mut BTreeSet<String>) {
    let ep = Endpoint::new(200, &fixture("introspection/active-response.json"), "application/json").await;
    let service = ep.client(secret());
    let i = service.introspect("tok", None).await.unwrap();
    assert!(i.active);
    assert_eq!(i.scopes(), vec!["read", "write", "dolphin"]);
    assert_eq!(
        (i.text("client_id"), i.text("username"), i.text("token_type")),
        (Some("l238j323ds-23ij4"), Some("jdoe"), Some("Bearer"))
    );
    assert_eq!(
        (i.time("exp"), i.time("iat"), i.time("nbf")),
        (Some(1419356238), Some(1419350238), Some(1419350238))
    );
    assert_eq!(
        (i.text("sub"), i.text("iss")),
        (Some("Z5O3upPC88QrAjx00dis"), Some("https://server.example.com/"))
    );
    assert_eq!(i.audiences(), vec!["https://protected.example.net/resource"]);
    assert!(i.text("jti").is_some());
    assert_eq!(i.json()["extension_field"], "twenty-seven");
    let request = ep.last().await;
    assert_eq!(request.method.as_str(), "POST");
    assert_eq!(get(&ep.form().await, "token"), Some("tok"));
    executed.insert("INTR-001".into());

    for inactive in ["introspection/inactive-response.json"] {
        let ep = Endpoint::new(200, &fixture(inactive), "application/json").await;
        assert!(!ep.client(secret()).introspect("tok", None).await.unwrap().active);
    }
    let minimal = Endpoint::new(200, &fixture("introspection/active-minimal.json"), "application/json").await;
    assert!(minimal.client(secret()).introspect("tok", None).await.unwrap().active);
    executed.insert("INTR-002".into());

    assert!(ep.last().await.headers.get("authorization").is_some());
    ep.client(Client::new("client id", ClientAuth::SecretPost("s3cr:t".into())))
        .introspect("tok", None)
        .await
        .unwrap();
    let form = ep.form().await;
    assert_eq!(get(&form, "client_secret"), Some("s3cr:t"));
    assert!(ep.last().await.headers.get("authorization").is_none());
    executed.insert("INTR-003".into());

    for hint in ["access_token", "refresh_token"] {
        service.introspect("tok", Some(hint)).await.unwrap();
        let form = ep.form().await;
        assert_eq!((get(&form, "token"), get(&form, "token_type_hint")), (Some("tok"), Some(hint)));
    }
    executed.insert("INTR-004".into());

    let bad =
        Endpoint::new(401, &fixture("introspection/error-invalid-client.json"), "application/json").await;
    let e = bad.client(secret()).introspect("tok", None).await.unwrap_err();
    assert_eq!(e.oauth().map(|o| (o.error.as_str(), o.status)), Some(("invalid_client", 401)));
    assert_eq!(e.oauth().unwrap().error_description.as_deref(), Some("Client authentication failed"));
    executed.insert("INTR-005".into());

    let document = discovery("introspection/discovery-with-introspection.json");
    let endpoints = Endpoints::from_discovery(&document, false);
    assert_eq!(endpoints.introspection.as_deref(), Some("https://server.example.com/introspect"));
    executed.insert("INTR-006".into());
}

fn discovery(relative: &str) -> DiscoveryDocument {
    DiscoveryDocument::from_json(
        fixture(relative).as_bytes(),
        "https://server.example.com",
        &DiscoveryPolicy::default(),
    )
    .unwrap()
}

async fn revocation(executed: &mut BTreeSet<String>) {
    for body in ["revocation/revoke-success-empty.json", "revocation/revoke-success-empty-object.json"] {
        let ep = Endpoint::new(200, &fixture(body), "application/json").await;
        let service = ep.client(secret());
        service.revoke("valid", None).await.unwrap();
        service.revoke("unknown-or-expired", None).await.unwrap();
        assert_eq!(ep.last().await.method.as_str(), "POST");
        assert_eq!(get(&ep.form().await, "token"), Some("unknown-or-expired"));
    }
    executed.insert("REV-001".into());

    let ep = Endpoint::new(200, "", "text/plain").await;
    for hint in ["access_token", "refresh_token"] {
        ep.client(secret()).revoke("tok", Some(hint)).await.unwrap();
        assert_eq!(get(&ep.form().await, "token_type_hint"), Some(hint));
    }
    executed.insert("REV-002".into());

    for (id, status, file, code) in [
        ("REV-003", 400, "revocation/error-unsupported-token-type.json", "unsupported_token_type"),
        ("REV-004", 401, "revocation/error-invalid-client.json", "invalid_client"),
    ] {
        let bad = Endpoint::new(status, &fixture(file), "application/json").await;
        let e = bad.client(secret()).revoke("tok", None).await.unwrap_err();
        assert_eq!(e.oauth().map(|o| (o.error.as_str(), o.status)), Some((code, status)), "{id}");
        assert!(e.oauth().unwrap().error_description.is_some());
        executed.insert(id.into());
    }

    let endpoints = Endpoints::from_discovery(&discovery("revocation/discovery-with-revocation.json"), false);
    assert_eq!(endpoints.revocation.as_deref(), Some("https://server.example.com/revoke"));
    executed.insert("REV-005".into());
}

async fn token_exchange(executed: &mut BTreeSet<String>) {
    let ep = Endpoint::new(
        200,
        &fixture("token-exchange/exchange-impersonation-success.json"),
        "application/json",
    )
    .await;
    let service = ep.client(secret());
    let expected = fixture_json("token-exchange/exchange-request-impersonation.json");
    let text = |name: &str| expected[name].as_str().unwrap().to_owned();
    let exchange = TokenExchange::new(text("subject_token"), text("subject_token_type"));
    let tokens = service.exchange(exchange).await.unwrap();
    assert_eq!(tokens.issued_token_type.as_deref(), Some(token_type::ACCESS_TOKEN));
    assert_eq!(tokens.token_type, "Bearer");
    let form = ep.form().await;
    for name in ["grant_type", "subject_token", "subject_token_type"] {
        assert_eq!(get(&form, name), Some(text(name).as_str()), "{name}");
    }
    executed.insert("EXCH-001".into());

    let delegation = fixture_json("token-exchange/exchange-request-delegation.json");
    let d = |name: &str| delegation[name].as_str().unwrap().to_owned();
    let ep2 =
        Endpoint::new(200, &fixture("token-exchange/exchange-delegation-success.json"), "application/json")
            .await;
    let exchange = TokenExchange::new(d("subject_token"), d("subject_token_type"))
        .actor(d("actor_token"), d("actor_token_type"));
    let request = TokenRequest::exchange(exchange).resource(d("resource"));
    ep2.client(secret()).request_token(&request).await.unwrap();
    let form = ep2.form().await;
    for name in
        ["grant_type", "subject_token", "subject_token_type", "actor_token", "actor_token_type", "resource"]
    {
        assert_eq!(get(&form, name), Some(d(name).as_str()), "{name}");
    }
    executed.insert("EXCH-002".into());

    let uris = fixture_json("token-exchange/token-type-uris.json");
    let uris: Vec<&str> =
        uris["token_type_uris"].as_array().unwrap().iter().map(|u| u.as_str().unwrap()).collect();
    assert_eq!(
        uris,
        [
            token_type::ACCESS_TOKEN,
            token_type::REFRESH_TOKEN,
            token_type::ID_TOKEN,
            token_type::SAML1,
            token_type::SAML2,
            token_type::JWT
        ]
    );
    for uri in &uris {
        service.exchange(TokenExchange::new("s", *uri)).await.unwrap();
        assert_eq!(get(&ep.form().await, "subject_token_type"), Some(*uri));
    }
    executed.insert("EXCH-003".into());

    let exchange = TokenExchange::new(text("subject_token"), text("subject_token_type"))
        .requested_token_type(text("requested_token_type"))
        .audience(text("audience"));
    service.request_token(&TokenRequest::exchange(exchange).scope([text("scope")])).await.unwrap();
    let form = ep.form().await;
    for name in ["requested_token_type", "audience", "scope"] {
        assert_eq!(get(&form, name), Some(text(name).as_str()), "{name}");
    }
    executed.insert("EXCH-004".into());

    let na =
        Endpoint::new(200, &fixture("token-exchange/exchange-n_a-token-type.json"), "application/json").await;
    let tokens =
        na.client(secret()).exchange(TokenExchange::new("s", token_type::ACCESS_TOKEN)).await.unwrap();
    assert_eq!((tokens.token_type.as_str(), tokens.expires_in), ("N_A", Some(60)));
    assert_eq!(tokens.issued_token_type.as_deref(), Some(token_type::SAML2));
    executed.insert("EXCH-005".into());

    for (file, code) in [
        ("token-exchange/exchange-error-invalid-grant.json", "invalid_grant"),
        ("token-exchange/exchange-error-invalid-request.json", "invalid_request"),
    ] {
        let bad = Endpoint::new(400, &fixture(file), "application/json").await;
        let e = bad
            .client(secret())
            .exchange(TokenExchange::new("s", token_type::ACCESS_TOKEN))
            .await
            .unwrap_err();
        assert_eq!(e.oauth().map(|o| (o.error.as_str(), o.status)), Some((code, 400)));
        assert_eq!(bad.server.received_requests().await.unwrap().len(), 1, "exchange is not retried");
    }
    executed.insert("EXCH-006".into());
}

async fn userinfo(executed: &mut BTreeSet<String>) {
    let claims = fixture("userinfo/standard-claims.json");
    let ep = Endpoint::new(200, &claims, "application/json").await;
    let app = ep.client(Client::public("app"));
    let info = app.userinfo("AT", None).await.unwrap();
    let request = ep.last().await;
    assert_eq!(request.method.as_str(), "GET");
    assert_eq!(request.headers["authorization"], "Bearer AT");
    assert_eq!(
        (info.sub(), info.text("name"), info.text("email")),
        ("248289761001", Some("Jane Doe"), Some("janedoe@example.com"))
    );
    assert_eq!(info.get("email_verified"), Some(&Value::Bool(true)));
    executed.insert("UI-001".into());

    assert!(app.userinfo("AT", Some("248289761001")).await.is_ok());
    executed.insert("UI-002".into());
    let e = app.userinfo("AT", Some("someone-else")).await.unwrap_err();
    assert_eq!((e.kind(), e.claim()), (ErrorKind::InvalidClaim, Some("sub")));
    executed.insert("UI-003".into());

    let challenge = r#"Bearer error="invalid_token", error_description="expired""#;
    let unauthorized =
        Endpoint::with(ResponseTemplate::new(401).insert_header("www-authenticate", challenge)).await;
    let e = unauthorized.client(Client::public("app")).userinfo("AT", None).await.unwrap_err();
    let oauth = e.oauth().unwrap();
    assert_eq!(
        (oauth.status, oauth.error.as_str(), oauth.www_authenticate.as_deref()),
        (401, "invalid_token", Some(challenge))
    );
    executed.insert("UI-004".into());

    let forbidden = Endpoint::with(
        ResponseTemplate::new(403).insert_header("www-authenticate", r#"Bearer error="insufficient_scope""#),
    )
    .await;
    let e = forbidden.client(Client::public("app")).userinfo("AT", None).await.unwrap_err();
    assert_eq!(e.oauth().map(|o| o.status), Some(403));
    let bare = Endpoint::with(ResponseTemplate::new(403)).await;
    let e = bare.client(Client::public("app")).userinfo("AT", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus);
    assert!(e.message().contains("403"), "{e}");
    executed.insert("UI-005".into());

    let broken = Endpoint::new(500, "<html>oops</html>", "text/html").await;
    let e = broken.client(Client::public("app")).userinfo("AT", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HttpStatus);
    assert!(e.message().contains("500"), "{e}");
    executed.insert("UI-006".into());

    assert_eq!(info.get("address").and_then(|a| a.get("locality")), Some(&Value::from("Los Angeles")));
    let mut custom: Value = serde_json::from_str(&claims).unwrap();
    custom["https://example.com/claims/tier"] = "gold".into();
    let ep2 = Endpoint::new(200, &custom.to_string(), "application/json").await;
    let info = ep2.client(Client::public("app")).userinfo("AT", None).await.unwrap();
    assert_eq!(info.get("https://example.com/claims/tier"), Some(&Value::from("gold")));
    assert_eq!(info.text("name"), Some("Jane Doe"));
    executed.insert("UI-007".into());

    let slow = Endpoint::with(
        ResponseTemplate::new(200)
            .set_body_raw(claims, "application/json")
            .set_delay(Duration::from_secs(10)),
    )
    .await;
    let config = HttpConfig { timeout: Duration::from_millis(200), ..HttpConfig::default() };
    let quick = TokenClient::builder(Client::public("app"))
        .endpoints(slow.endpoints())
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .transport(Arc::new(ReqwestTransport::new(&config).unwrap()))
        .config(HttpConfig { retry_max_attempts: 1, ..config })
        .build()
        .unwrap();
    let e = quick.userinfo("AT", None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TransportError);
    executed.insert("UI-008".into());
}

/// The payload of the DPoP proof a recorded request carried.
fn proof_claims(request: &wiremock::Request) -> serde_json::Map<String, Value> {
    let proof = request.headers["dpop"].to_str().unwrap();
    let payload = proof.split('.').nth(1).unwrap();
    serde_json::from_slice(&identity_model::base64url::decode(payload.as_bytes()).unwrap()).unwrap()
}

/// dpop.json's two client-side cases (the core runner executes the rest and points here).
async fn dpop(executed: &mut BTreeSet<String>) {
    use identity_model::DpopKey;
    // DPOP-004: the fixture's use_dpop_nonce answer, then tokens: the retry carries the nonce,
    // and the next request to the same server has it from the start.
    let challenge = fixture_json("dpop/dpop-nonce-error-response.json");
    let nonce = challenge["headers"]["DPoP-Nonce"].as_str().unwrap().to_owned();
    let server = MockServer::start().await;
    let mut refusal = ResponseTemplate::new(challenge["status"].as_u64().unwrap() as u16)
        .set_body_raw(challenge["body"].to_string(), "application/json");
    for (name, value) in challenge["headers"].as_object().unwrap() {
        refusal = refusal.insert_header(name.as_str(), value.as_str().unwrap());
    }
    Mock::given(wiremock::matchers::any())
        .respond_with(refusal)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    let tokens = r#"{"access_token":"AT","token_type":"DPoP","expires_in":3600}"#;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_raw(tokens, "application/json"))
        .with_priority(2)
        .mount(&server)
        .await;
    let url = format!("{}/ep", server.uri());
    let client = TokenClient::builder(secret())
        .endpoints(Endpoints { token: Some(url.clone()), ..Endpoints::default() })
        .policy(DiscoveryPolicy::default().allow_http_on_loopback())
        .dpop_key(DpopKey::generate_default().unwrap())
        .build()
        .unwrap();
    assert_eq!(client.client_credentials(&[], &[]).await.unwrap().token_type, "DPoP");
    client.client_credentials(&[], &[]).await.unwrap();
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "refused, retried, then the next request");
    assert_eq!(proof_claims(&requests[0]).get("nonce"), None);
    assert_eq!(proof_claims(&requests[1])["nonce"], nonce.as_str());
    assert_eq!(proof_claims(&requests[2])["nonce"], nonce.as_str(), "the nonce is remembered per server");
    executed.insert("DPOP-004".into());

    // DPOP-008: a resource request with a DPoP-bound token uses the DPoP scheme, and its proof
    // carries ath.
    let resource = Endpoint::new(200, "{}", "application/json").await;
    let bound = fixture_json("dpop/dpop-bound-token.json");
    assert_eq!(bound["token_type"], "DPoP");
    let access_token = "example-dpop-bound-access-token-value";
    let answer = client.get_resource(&resource.url(), access_token).await.unwrap();
    assert_eq!(answer.status, 200);
    let request = resource.last().await;
    assert_eq!(request.headers["authorization"], format!("DPoP {access_token}").as_str());
    let claims = proof_claims(&request);
    let pairs = fixture_json("dpop/dpop-ath-pairs.json");
    let ath = pairs["pairs"].as_array().unwrap().iter().find(|p| p["access_token"] == access_token).unwrap();
    assert_eq!(claims["ath"], ath["ath"]);
    assert_eq!(
        (claims["htm"].as_str(), claims["htu"].as_str()),
        (Some("GET"), Some(resource.url().as_str()))
    );
    executed.insert("DPOP-008".into());
}

#[tokio::test]
async fn the_client_side_dpop_cases_are_executed() {
    let mut executed = BTreeSet::new();
    dpop(&mut executed).await;
    let expected: BTreeSet<String> = ["DPOP-004", "DPOP-008"].map(String::from).into();
    assert_eq!(executed, expected);
}

#[tokio::test]
async fn every_token_request_case_is_executed() {
    let mut executed = BTreeSet::new();
    client_credentials(&mut executed).await;
    authorization_code(&mut executed).await;
    introspection(&mut executed).await;
    revocation(&mut executed).await;
    token_exchange(&mut executed).await;
    userinfo(&mut executed).await;
    let mut ids = BTreeSet::new();
    for file in FILES {
        let path = spec_dir().join("conformance").join(file);
        let suite: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for case in suite["tests"].as_array().unwrap() {
            ids.insert(case["id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(ids.len(), 37, "6 + 6 + 6 + 5 + 6 + 8 cases");
    assert_eq!(executed, ids, "every case id of the six files, and no other");
    for id in &executed {
        println!("conformance {id}: executed");
    }
}

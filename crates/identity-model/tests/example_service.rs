//! The runnable example service (`examples/protected_service.rs`), exercised as its printed
//! curl lines use it: a client-credentials token from the provider, the three answers.

#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used)]

#[path = "../examples/protected_service.rs"]
#[allow(dead_code, unreachable_pub, missing_docs)]
mod example;

use identity_model::{Client, TokenClient};
use identity_model_testkit::TestProvider;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_service_answers_as_its_curl_lines_say() {
    let provider = TestProvider::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = example::app(provider.issuer()).unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let usage = example::usage(&addr, provider.issuer());
    assert!(usage.contains(&format!("http://{addr}/orders")), "{usage}");
    assert!(usage.contains("--client-id demo-service --client-secret demo-secret"), "{usage}");

    // The token the printed `idm token client-credentials` line gets.
    let authority = support::testkit::authority(&provider, true);
    let tokens = TokenClient::builder(Client::with_secret("demo-service", "demo-secret"))
        .authority(&authority)
        .build()
        .unwrap();
    let read = tokens.client_credentials(&["api:read"], &[example::AUDIENCE]).await.unwrap();
    let token = read.access_token.expose().to_owned();

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |path: &str| format!("http://{addr}{path}");
    let ok = http.get(url("/orders")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.text().await.unwrap().starts_with("orders of demo-service"));
    let missing = http.get(url("/orders")).send().await.unwrap();
    assert_eq!(missing.status(), 401);
    assert_eq!(missing.headers()["www-authenticate"], r#"Bearer realm="orders""#);
    let forbidden = http.post(url("/orders/new")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(forbidden.status(), 403);
    let write = tokens.client_credentials(&["api:write"], &[example::AUDIENCE]).await.unwrap();
    let created =
        http.post(url("/orders/new")).bearer_auth(write.access_token.expose()).send().await.unwrap();
    assert_eq!(created.status(), 200);
    assert_eq!(http.get(url("/health")).send().await.unwrap().status(), 200);
    server.abort();
}

//! tls_client_auth (RFC 8705) over a real mutual-TLS handshake: a token endpoint (rustls)
//! that demands a client certificate from a test CA; the client presents the PEM named by
//! `HttpConfig::client_identity`, and is refused at the handshake without it.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use identity_model::{Client, ClientAuth, DiscoveryPolicy, Endpoints, ErrorKind, HttpConfig, TokenClient};
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Pki {
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "identity-model test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params.distinguished_name.push(DnType::CommonName, "svc");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    Pki {
        ca_pem: ca.pem(),
        ca_der: ca.der().clone(),
        server: (
            server.der().clone(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        ),
        client_pem: format!("{}{}", client.pem(), client_key.serialize_pem()),
        client_cert_pem: client.pem(),
        client_key_pem: client_key.serialize_pem(),
    }
}

/// A token endpoint requiring client certificates; counts handshakes that presented one and
/// handshakes that failed.
async fn token_endpoint(pki: &Pki) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca_der.clone()).unwrap();
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://127.0.0.1:{}/token", listener.local_addr().unwrap().port());
    let (with_cert, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (ok, bad) = (with_cert.clone(), failed.clone());
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (acceptor, ok, bad) = (acceptor.clone(), ok.clone(), bad.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    bad.fetch_add(1, Ordering::SeqCst);
                    return;
                };
                if tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty()) {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = tls.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                let body = r#"{"access_token":"AT-mtls","token_type":"Bearer","expires_in":60}"#;
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                tls.write_all(response.as_bytes()).await.unwrap();
                tls.shutdown().await.unwrap();
            });
        }
    });
    (url, with_cert, failed)
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn tls_client_auth_presents_the_certificate() {
    let pki = pki();
    let (url, with_cert, failed) = token_endpoint(&pki).await;
    let dir = std::env::temp_dir().join(format!("idm-mtls-handshake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = write(&dir, "ca.pem", &pki.ca_pem);
    let identity = write(&dir, "client.pem", &pki.client_pem);
    let endpoints = Endpoints { token: Some(url), ..Endpoints::default() };
    let policy = DiscoveryPolicy::default().allow_private_targets();

    let config =
        HttpConfig { ca_bundle: Some(ca.clone()), client_identity: Some(identity), ..HttpConfig::default() };
    let client = TokenClient::builder(Client::new("svc", ClientAuth::TlsClientAuth))
        .endpoints(endpoints.clone())
        .policy(policy.clone())
        .config(config)
        .build()
        .unwrap();
    let tokens = client.client_credentials(&[], &[]).await.unwrap();
    assert_eq!(tokens.access_token.expose(), "AT-mtls");
    assert_eq!(with_cert.load(Ordering::SeqCst), 1, "the handshake carried the client certificate");

    // The certificate and its key in files of their own (as py-identity-model takes them).
    let config = HttpConfig {
        ca_bundle: Some(ca.clone()),
        client_identity: Some(write(&dir, "client-cert.pem", &pki.client_cert_pem)),
        client_key: Some(write(&dir, "client-key.pem", &pki.client_key_pem)),
        ..HttpConfig::default()
    };
    let separate = TokenClient::builder(Client::new("svc", ClientAuth::TlsClientAuth))
        .endpoints(endpoints.clone())
        .policy(policy.clone())
        .config(config)
        .build()
        .unwrap();
    assert_eq!(separate.client_credentials(&[], &[]).await.unwrap().access_token.expose(), "AT-mtls");
    assert_eq!(with_cert.load(Ordering::SeqCst), 2);

    // Same endpoint, no certificate: refused during the handshake, a transport error.
    let config = HttpConfig { ca_bundle: Some(ca), retry_max_attempts: 1, ..HttpConfig::default() };
    let without = TokenClient::builder(Client::with_secret("svc", "secret"))
        .endpoints(endpoints)
        .policy(policy)
        .config(config)
        .build()
        .unwrap();
    let e = without.client_credentials(&[], &[]).await.unwrap_err();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(e.kind(), ErrorKind::TransportError, "{e}");
    assert_eq!(with_cert.load(Ordering::SeqCst), 2);
    // The server task counts its failed accept right after sending the alert: let it run.
    for _ in 0..10_000 {
        if failed.load(Ordering::SeqCst) >= 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(failed.load(Ordering::SeqCst), 1, "one handshake refused");
}

//! The HTTP/1.1 server: routes, the middleware that counts requests and applies faults, and an
//! accept loop that can reset a connection on purpose and stops on shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt as _;

use crate::endpoints::{authorize, device, introspection, metadata, token, userinfo};
use crate::faults::{Endpoint, Fault, RecordedRequest};
use crate::state::Shared;

const MAX_REQUEST_BODY: usize = 1024 * 1024;

/// Lets a request end its connection abruptly: the connection task drops the HTTP state, writes
/// `raw` (if any) straight to the socket, and closes it, with a reset when `raw` is empty.
#[derive(Clone, Default)]
struct ConnectionKill {
    notify: Arc<Notify>,
    raw: Arc<std::sync::Mutex<Vec<u8>>>,
}

impl ConnectionKill {
    fn fire(&self, raw: Vec<u8>) {
        *crate::faults::lock(&self.raw) = raw;
        self.notify.notify_one();
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/.well-known/openid-configuration", get(metadata::discovery))
        .route("/.well-known/oauth-authorization-server", get(metadata::discovery))
        .route("/jwks", get(metadata::jwks))
        .route("/token", post(token::token))
        .route("/authorize", get(authorize::authorize))
        .route("/par", post(authorize::push))
        .route("/device_authorization", post(device::device_authorization))
        .route("/device", get(device::page).post(device::confirm))
        .route("/introspect", post(introspection::introspect))
        .route("/revoke", post(introspection::revoke))
        .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .fallback(metadata::not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), faults_layer))
        .with_state(shared)
}

async fn faults_layer(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let endpoint = Endpoint::from_path(parts.uri.path());
    let recorded = RecordedRequest {
        endpoint,
        method: parts.method.to_string(),
        uri: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: bytes.to_vec(),
    };
    let fault = shared.faults.on_request(recorded);
    let kill = parts.extensions.get::<ConnectionKill>().cloned();
    let request = Request::from_parts(parts, Body::from(bytes));
    match fault {
        None => next.run(request).await,
        Some(Fault::Latency(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = serde_json::json!({"error": "injected_fault", "error_description": format!("injected status {code}")});
            (status, axum::Json(body)).into_response()
        }
        Some(Fault::TooManyRequests { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, retry_after.to_string())],
            axum::Json(serde_json::json!({"error": "slow_down", "error_description": "injected 429"})),
        )
            .into_response(),
        Some(Fault::MalformedJson) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"issuer\": \"truncated, \"keys\": [",
        )
            .into_response(),
        Some(Fault::WrongContentType) => {
            let mut response = next.run(request).await;
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            response
        }
        Some(Fault::TruncatedBody) => {
            // Written past hyper, which would refuse to send a body shorter than its length.
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let full = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
            let mut raw = format!("HTTP/1.1 {}\r\n", parts.status).into_bytes();
            for (name, value) in &parts.headers {
                if name != header::CONTENT_LENGTH {
                    raw.extend_from_slice(name.as_str().as_bytes());
                    raw.extend_from_slice(b": ");
                    raw.extend_from_slice(value.as_bytes());
                    raw.extend_from_slice(b"\r\n");
                }
            }
            raw.extend_from_slice(format!("content-length: {}\r\n\r\n", full.len().max(2)).as_bytes());
            raw.extend_from_slice(&full[..full.len() / 2]);
            kill_connection(kill, raw).await
        }
        Some(Fault::ConnectionReset) => kill_connection(kill, Vec::new()).await,
        Some(Fault::UseDpopNonce(nonce)) => {
            let body = axum::Json(serde_json::json!({
                "error": "use_dpop_nonce", "error_description": "injected: a DPoP nonce is required"
            }));
            let mut response = if endpoint == Endpoint::Userinfo {
                let challenge = "DPoP error=\"use_dpop_nonce\", error_description=\"injected\"";
                (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, challenge)], body).into_response()
            } else {
                (StatusCode::BAD_REQUEST, body).into_response()
            };
            if let Ok(value) = HeaderValue::from_str(&nonce) {
                response.headers_mut().insert("dpop-nonce", value);
            }
            response
        }
    }
}

async fn kill_connection(kill: Option<ConnectionKill>, raw: Vec<u8>) -> Response {
    if let Some(kill) = kill {
        kill.fire(raw);
        std::future::pending::<()>().await;
    }
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// Accepts connections until `shutdown` turns true.
pub(crate) async fn serve(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<bool>) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors or similar: back off briefly instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(connection(stream, router.clone(), shutdown.clone()));
    }
}

async fn connection(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    // A second handle on the socket, to turn the close into a reset when asked.
    let Ok(std_stream) = stream.into_std() else { return };
    let Ok(control) = std_stream.try_clone() else { return };
    let Ok(stream) = TcpStream::from_std(std_stream) else { return };
    let kill = ConnectionKill::default();
    let extension = kill.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(extension.clone());
        router.clone().oneshot(request.map(Body::new))
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = kill.notify.notified() => {
            let raw = std::mem::take(&mut *crate::faults::lock(&kill.raw));
            let mut control = control;
            if raw.is_empty() {
                let _ = socket2::SockRef::from(&control).set_linger(Some(Duration::ZERO));
            } else {
                use std::io::Write as _;
                let _ = control.set_nonblocking(false);
                let _ = control.write_all(&raw);
                let _ = control.shutdown(std::net::Shutdown::Write);
            }
        }
        _ = shutdown.changed() => {}
    }
}

/// Binds `addr` (port 0 picks a free one).
pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

//! Envoy's ext_authz over gRPC (`envoy.service.auth.v3.Authorization/Check`, `--grpc-listen`):
//! the same decisions as the HTTP endpoints. The original request is Envoy's
//! `attributes.request.http` (method, path with query, host, headers), read as the Envoy HTTP
//! protocol reads its check; an allowed check answers `OkHttpResponse` with the identity
//! headers (each overwriting a client's copy), a refused one `DeniedHttpResponse` with the
//! status, the challenge and the JSON body. Readiness is the gRPC health protocol
//! (`grpc.health.v1.Health`), for the server (`""`) and the Authorization service alike.

use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse, HeaderAppendAction,
    HeaderValue as EnvoyHeader, HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use tonic_health::ServingStatus;

use super::proxy::{self, Proxy};
use super::reload::Live;
use super::{answer, check};

/// The largest answer body read back from a check (the JSON of a refusal is small).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The Authorization service.
pub(crate) struct GrpcAuthz {
    live: Arc<Live>,
}

/// gRPC status codes (google.rpc.Code) for the HTTP statuses a check answers.
fn rpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        200 => 0,  // OK
        400 => 3,  // INVALID_ARGUMENT
        401 => 16, // UNAUTHENTICATED
        403 => 7,  // PERMISSION_DENIED
        429 => 8,  // RESOURCE_EXHAUSTED
        503 => 14, // UNAVAILABLE
        _ => 13,   // INTERNAL
    }
}

fn option(name: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(EnvoyHeader { key: name.to_owned(), value: value.to_owned(), ..EnvoyHeader::default() }),
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        ..HeaderValueOption::default()
    }
}

/// A check's HTTP answer as Envoy's: OK with the identity headers, or denied with the status,
/// headers and body.
async fn to_check_response(response: Response) -> CheckResponse {
    let (parts, body) = response.into_parts();
    let headers: Vec<HeaderValueOption> = parts
        .headers
        .iter()
        .filter(|(name, _)| **name != header::CONTENT_LENGTH)
        .filter_map(|(name, value)| value.to_str().ok().map(|value| option(name.as_str(), value)))
        .collect();
    let code = rpc_code(parts.status);
    let http_response = if parts.status == StatusCode::OK {
        HttpResponse::OkResponse(OkHttpResponse { headers, ..OkHttpResponse::default() })
    } else {
        let body = axum::body::to_bytes(body, MAX_ANSWER_BYTES).await.unwrap_or_default();
        HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: i32::from(parts.status.as_u16()) }),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    };
    let message = if code == 0 { String::new() } else { parts.status.to_string() };
    CheckResponse {
        status: Some(rpc::Status { code, message, details: Vec::new() }),
        http_response: Some(http_response),
        ..CheckResponse::default()
    }
}

/// 400 for a check request that does not describe an HTTP request.
fn unusable(why: &str) -> Response {
    answer::bad_check("invalid_request", why)
}

#[tonic::async_trait]
impl Authorization for GrpcAuthz {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let app = self.live.app();
        let http = request
            .get_ref()
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let Some(http) = http else {
            let answer = unusable("the check request has no attributes.request.http");
            return Ok(tonic::Response::new(to_check_response(answer).await));
        };
        let mut headers = HeaderMap::with_capacity(http.headers.len() + 1);
        let mut pairs: Vec<(&str, &str)> =
            http.headers.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if pairs.is_empty() {
            // Envoy with encode_raw_headers sends header_map instead of headers.
            if let Some(map) = &http.header_map {
                pairs = map.headers.iter().map(|h| (h.key.as_str(), h.value.as_str())).collect();
            }
        }
        for (name, value) in pairs {
            if name.starts_with(':') {
                continue; // pseudo-headers: the method, path and host come from their fields
            }
            match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                (Ok(name), Ok(value)) => {
                    headers.append(name, value);
                }
                _ => {
                    let answer = unusable("a header of the original request is not a valid header");
                    return Ok(tonic::Response::new(to_check_response(answer).await));
                }
            }
        }
        if !http.host.is_empty() {
            match HeaderValue::from_str(&http.host) {
                Ok(host) => {
                    headers.insert(header::HOST, host);
                }
                Err(_) => {
                    let answer = unusable("the original host is not a valid header value");
                    return Ok(tonic::Response::new(to_check_response(answer).await));
                }
            }
        }
        let Ok(method) = Method::from_bytes(http.method.as_bytes()) else {
            let answer = unusable("the original method is not an HTTP method");
            return Ok(tonic::Response::new(to_check_response(answer).await));
        };
        let path = if http.path.is_empty() { "/" } else { http.path.as_str() };
        let original = proxy::read(Proxy::Envoy, &method, &headers, Some(path));
        let answer = check::check(&app, Proxy::Envoy, original, &headers).await;
        Ok(tonic::Response::new(to_check_response(answer).await))
    }
}

/// Serves ext_authz and health on `listener` until `stop` resolves; readiness follows the
/// keys (and the shared store) every second.
pub(crate) async fn serve(
    live: Arc<Live>,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (reporter, health) = tonic_health::server::health_reporter();
    let watched = Arc::clone(&live);
    tokio::spawn(async move {
        let mut last = None;
        loop {
            let ready = watched.app().ready();
            if last != Some(ready) {
                let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
                reporter.set_service_status("", status).await;
                if ready {
                    reporter.set_serving::<AuthorizationServer<GrpcAuthz>>().await;
                } else {
                    reporter.set_not_serving::<AuthorizationServer<GrpcAuthz>>().await;
                }
                last = Some(ready);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    let served = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(AuthorizationServer::new(GrpcAuthz { live }))
        .serve_with_incoming_shutdown(incoming, stop)
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the gRPC server stopped");
    }
}

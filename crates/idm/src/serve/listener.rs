//! The sidecar's HTTP/1.1 server with a real server's limits: a header read timeout that also
//! closes idle keep-alive connections (hyper's timer: it runs from the connection's start or
//! the end of the previous answer until a request's headers are complete), a bound on open
//! connections, the soft open-files limit raised to the hard one, and a shutdown deadline.
//! Written on hyper directly because `axum::serve` gives hyper no timer (so no header
//! timeout) and no connection bound or deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::config::Limits;

/// File descriptors kept aside from connections (listener, provider requests, logs).
const RESERVED_FDS: u64 = 64;

/// Raises the soft open-files limit to the hard one (as Go servers do at start) and returns
/// `(before, after)`; `None` when the limits cannot be read or are unlimited.
pub(crate) fn raise_open_files_limit() -> Option<(u64, u64)> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current?;
    let Some(hard) = limit.maximum else {
        return Some((soft, soft));
    };
    if soft >= hard {
        return Some((soft, soft));
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: Some(hard) }) {
        Ok(()) => Some((soft, hard)),
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-files limit");
            Some((soft, soft))
        }
    }
}

/// Warns when `max_connections` cannot all be open under the open-files limit.
pub(crate) fn check_connection_budget(max_connections: usize, open_files: Option<u64>) {
    if let Some(limit) = open_files {
        let budget = limit.saturating_sub(RESERVED_FDS);
        if max_connections as u64 > budget {
            tracing::warn!(
                max_connections,
                open_files_limit = limit,
                "max connections is above what the open-files limit allows: raise the hard limit (ulimit -Hn) \
                 or lower --max-connections"
            );
        }
    }
}

/// Serves `router` on `listener` until `stop` resolves; then stops accepting, answers the
/// checks in flight, closes idle connections, and returns once every connection is closed or
/// `limits.shutdown_timeout` has passed (the connections left are dropped with the runtime).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut at_limit = false;
    let mut stop = std::pin::pin!(stop);
    loop {
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                if at_limit {
                    tracing::info!(
                        max_connections = limits.max_connections,
                        "below the connection limit again"
                    );
                    at_limit = false;
                }
                slot
            }
            Err(_) => {
                if !at_limit {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached: new connections wait in the listen backlog until one closes \
                         (--max-connections)"
                    );
                    at_limit = true;
                }
                tokio::select! {
                    () = &mut stop => break,
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or memory: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::select! {
                        () = &mut stop => break,
                        () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                    }
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .max_headers(100)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    let open = limits.max_connections - slots.available_permits();
    tracing::info!(connections = open, "stop requested: no new connections; answering the checks in flight");
    if tokio::time::timeout(limits.shutdown_timeout, graceful.shutdown()).await.is_err() {
        let left = limits.max_connections - slots.available_permits();
        tracing::warn!(
            connections = left,
            deadline_secs = limits.shutdown_timeout.as_secs(),
            "shutdown deadline passed: closing the connections still open"
        );
    }
}

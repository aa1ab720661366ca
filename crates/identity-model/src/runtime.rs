//! Where background work runs: on the caller's tokio runtime when there is one, otherwise on
//! one shared background runtime (started on first use, like reqwest's `blocking` module), so
//! refreshes started from blocking code run too. The blocking API drives its futures there.

use std::future::Future;
use std::sync::OnceLock;

use identity_model_core::{Error, ErrorKind};

/// The shared background runtime (one worker thread).
pub(crate) fn background() -> Result<&'static tokio::runtime::Runtime, Error> {
    static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("identity-model-background")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::new(ErrorKind::InvalidUsage, format!("cannot start the background runtime: {e}")))
}

/// Runs `task` on the current runtime, or on the background runtime outside one. The task is
/// never cancelled by whoever started it: dropping every waiter leaves it running.
pub(crate) fn spawn<F>(task: F) -> Result<(), Error>
where
    F: Future<Output = ()> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => drop(handle.spawn(task)),
        Err(_) => drop(background()?.spawn(task)),
    }
    Ok(())
}

/// Blocks the calling thread on `future`, driven by the background runtime. Works from plain
/// threads and from a runtime's blocking threads (`spawn_blocking`, the usual bridge out of
/// async code): there the wait happens on a helper thread, since the caller's thread carries
/// the runtime's context. Refused with `invalid_usage` where the caller is visibly an async
/// execution context (the future given to a runtime's `block_on`, `#[tokio::main]`).
///
/// Tokio has no public way to tell a worker thread running an async task from a blocking
/// thread (tokio-rs/tokio#3559, #7769): a call from inside a spawned async task is not
/// refused; it blocks that worker until the background runtime has done the work (never a
/// deadlock: nothing it waits for runs on the caller's runtime).
pub(crate) fn block_on<T: Send>(future: impl Future<Output = Result<T, Error>> + Send) -> Result<T, Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return background()?.block_on(future);
    }
    if tokio::task::try_id().is_none() {
        return Err(Error::new(
            ErrorKind::InvalidUsage,
            "the blocking API was called from async code (a runtime's block_on): use the async API \
             there, or call it from spawn_blocking",
        ));
    }
    let runtime = background()?;
    std::thread::scope(|scope| {
        let waiter = std::thread::Builder::new()
            .name("identity-model-wait".into())
            .spawn_scoped(scope, || runtime.block_on(future))
            .map_err(|e| {
                Error::new(ErrorKind::InvalidUsage, format!("cannot start a waiting thread: {e}"))
            })?;
        waiter
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::InvalidUsage, "the blocking call panicked")))
    })
}

/// A runtime for a program's own `main` (the `idm` command line): multi-threaded, every
/// driver enabled. Libraries should not call this.
pub fn new_runtime(worker_threads: usize) -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(worker_threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| Error::new(ErrorKind::InvalidUsage, format!("cannot start a tokio runtime: {e}")))
}

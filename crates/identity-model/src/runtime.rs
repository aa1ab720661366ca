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

/// Whether the calling thread is running an async task (or a runtime's `block_on` future)
/// rather than a blocking thread (`spawn_blocking`). Tokio has no direct API for it
/// (tokio-rs/tokio#3559, #7769); its cooperative budget tells: async tasks are polled under a
/// finite budget, blocking threads run unconstrained. The probe spends at most the task's
/// budget, which only makes a task that is about to be refused yield a little sooner.
fn in_async_task() -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    for _ in 0..=256 {
        match tokio::task::coop::poll_proceed(&mut cx) {
            std::task::Poll::Ready(restore) => restore.made_progress(),
            std::task::Poll::Pending => return true,
        }
    }
    false
}

/// Blocks the calling thread on `future`, driven by the background runtime. Works from plain
/// threads and from a runtime's blocking threads (`spawn_blocking`, the usual bridge out of
/// async code): there the wait happens on a helper thread, since the caller's thread carries
/// the runtime's context. Refused with `invalid_usage` on an async execution context (a task
/// on a runtime's worker, or the future given to `block_on` / `#[tokio::main]`): blocking
/// there would stall the runtime. (A task wrapped in `tokio::task::unconstrained` cannot be
/// told from a blocking thread and is let through.)
pub(crate) fn block_on<T: Send>(future: impl Future<Output = Result<T, Error>> + Send) -> Result<T, Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return background()?.block_on(future);
    }
    if in_async_task() {
        return Err(Error::new(
            ErrorKind::InvalidUsage,
            "the blocking API was called on an async task: use the async API there, or call it \
             from spawn_blocking",
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

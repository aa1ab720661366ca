//! Waiting on the library's async core from Python threads: one tokio runtime, kept for
//! such waits (the library's refreshes run in their own tasks there), entered with the GIL
//! released by the callers.

use identity_model::{Error, ErrorKind};

/// Runs `future` to its end from a thread outside any runtime.
pub(crate) fn wait<F: std::future::Future>(future: F) -> Result<F::Output, Error> {
    static RUNTIME: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    let runtime = RUNTIME
        .get_or_init(|| identity_model::new_runtime(1).ok())
        .as_ref()
        .ok_or_else(|| Error::new(ErrorKind::InvalidUsage, "no runtime could be started for the wait"))?;
    Ok(runtime.block_on(future))
}

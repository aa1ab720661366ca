//! Single flight: at most one refresh of a kind runs at a time, in its own task; every caller
//! that needs it waits on its shared outcome and may give up (dropped, or its own deadline)
//! without cancelling it or changing what the others get. Every waiter of a failed refresh
//! gets that failure. Nothing here is locked across an `.await`.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use identity_model_core::{Error, ErrorKind};
use tokio::sync::watch;

type Outcome<T> = Option<Result<T, Arc<Error>>>;

/// The refresh of one thing (a key set, a discovery document).
#[derive(Debug)]
pub(crate) struct SingleFlight<T> {
    current: Mutex<Option<Ticket<T>>>,
    started: AtomicU64,
    /// The kind of error waiters get when a flight's task ended without an answer.
    abandoned: ErrorKind,
}

/// A place in a flight's queue of waiters.
#[derive(Debug)]
pub(crate) struct Ticket<T> {
    /// The flight's number: flights are numbered from 1 in the order they start.
    pub(crate) seq: u64,
    receiver: watch::Receiver<Outcome<T>>,
    abandoned: ErrorKind,
}

impl<T> Clone for Ticket<T> {
    fn clone(&self) -> Self {
        Ticket { seq: self.seq, receiver: self.receiver.clone(), abandoned: self.abandoned }
    }
}

impl<T: Clone + Send + Sync + 'static> SingleFlight<T> {
    /// No flight yet; a flight whose task ends without an answer (its runtime shut down, it
    /// panicked) gives its waiters an error of kind `abandoned`.
    pub(crate) fn new(abandoned: ErrorKind) -> Arc<Self> {
        Arc::new(SingleFlight { current: Mutex::new(None), started: AtomicU64::new(0), abandoned })
    }

    fn current(&self) -> std::sync::MutexGuard<'_, Option<Ticket<T>>> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many flights have started so far: a flight whose `seq` is above a number read
    /// earlier started after that reading.
    pub(crate) fn started(&self) -> u64 {
        self.started.load(Ordering::Acquire)
    }

    /// The flight in progress, if any.
    pub(crate) fn in_flight(&self) -> Option<Ticket<T>> {
        self.current().clone()
    }

    /// Joins the flight in progress (`(ticket, false)`), or starts `work` in its own task
    /// (`(ticket, true)`); `work` gets the new flight's number. `Err` only when no task can be
    /// spawned.
    pub(crate) fn join_or_start<F, W>(self: &Arc<Self>, work: W) -> Result<(Ticket<T>, bool), Error>
    where
        W: FnOnce(u64) -> F,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let mut current = self.current();
        if let Some(ticket) = current.as_ref() {
            return Ok((ticket.clone(), false));
        }
        let seq = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        let (sender, receiver) = watch::channel(None);
        let ticket = Ticket { seq, receiver, abandoned: self.abandoned };
        *current = Some(ticket.clone());
        drop(current);
        let future = work(seq);
        let landing = Landing { flight: Arc::clone(self), seq, sender: Some(sender) };
        // If no task can be spawned, the dropped landing ends the flight again.
        crate::runtime::spawn(async move {
            let landing = landing;
            let outcome = future.await.map_err(Arc::new);
            landing.land(outcome);
        })?;
        Ok((ticket, true))
    }

    fn finish(&self, seq: u64) {
        let mut current = self.current();
        if current.as_ref().is_some_and(|t| t.seq == seq) {
            *current = None;
        }
    }
}

/// Ends a flight: on completion, and (when its task is dropped or panics) on drop, so a flight
/// never stays "in progress" after its task is gone.
struct Landing<T: Clone + Send + Sync + 'static> {
    flight: Arc<SingleFlight<T>>,
    seq: u64,
    sender: Option<watch::Sender<Outcome<T>>>,
}

impl<T: Clone + Send + Sync + 'static> Landing<T> {
    fn land(mut self, outcome: Result<T, Arc<Error>>) {
        self.flight.finish(self.seq);
        if let Some(sender) = self.sender.take() {
            sender.send_replace(Some(outcome));
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Drop for Landing<T> {
    fn drop(&mut self) {
        if self.sender.is_some() {
            // The task was dropped (runtime shutting down) or panicked: waiters see the
            // channel close and get an error; the next caller starts a new flight.
            self.flight.finish(self.seq);
        }
    }
}

impl<T: Clone> Ticket<T> {
    /// Waits for the flight's outcome. Dropping this future leaves the flight running.
    pub(crate) async fn outcome(mut self) -> Result<T, Error> {
        let result = match self.receiver.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        match result {
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(shared(&error)),
            None => Err(Error::new(self.abandoned, "the refresh ended without an answer")),
        }
    }
}

/// One failure for many waiters: the same kind and message, the original as the source.
pub(crate) fn shared(error: &Arc<Error>) -> Error {
    let copy = error.replicate();
    copy.with_source(SharedError(Arc::clone(error)))
}

#[derive(Debug)]
struct SharedError(Arc<Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&*self.0)
    }
}

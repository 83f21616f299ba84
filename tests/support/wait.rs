#![allow(dead_code)]
//! The tests' one way to wait: for a state, never for a time. A probe is checked again
//! and again until it reports the state reached (`Ok`) or the deadline passes; its `Err`
//! says how things stand, and the last one is what a failure shows.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a wait pauses between two checks unless told otherwise.
pub const POLL_EVERY: Duration = Duration::from_millis(20);

/// A wait for `what`, failing after `timeout`.
#[derive(Debug, Clone)]
pub struct Wait {
    what: String,
    timeout: Duration,
    every: Duration,
}

impl Wait {
    pub fn new(what: impl Into<String>, timeout: Duration) -> Wait {
        Wait { what: what.into(), timeout, every: POLL_EVERY }
    }

    /// Checks this often (a probe that is costly, e.g. parsing a large exposition, asks
    /// for less; one racing another thread asks for `Duration::ZERO`).
    pub fn every(mut self, every: Duration) -> Wait {
        self.every = every;
        self
    }

    /// Checks `probe` until it returns `Ok`; at the deadline, the last `Err`.
    pub fn poll<T, E>(&self, mut probe: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = probe();
            let now = Instant::now();
            if last.is_ok() || now >= deadline {
                return last;
            }
            std::thread::sleep(self.every.min(deadline - now));
        }
    }

    /// [`poll`](Wait::poll) as a test assertion: panics at the deadline with what was
    /// awaited and the last state.
    pub fn until<T, E: Display>(&self, probe: impl FnMut() -> Result<T, E>) -> T {
        let result = self.poll(probe);
        result.unwrap_or_else(|last| self.fail(last))
    }

    /// [`poll`](Wait::poll) for async probes; pauses on the tokio timer, so the runtime
    /// (and an in-process exporter on it) keeps running.
    pub async fn poll_async<T, E, F>(&self, mut probe: impl FnMut() -> F) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let last = probe().await;
            let now = Instant::now();
            if last.is_ok() || now >= deadline {
                return last;
            }
            tokio::time::sleep(self.every.min(deadline - now)).await;
        }
    }

    /// [`until`](Wait::until) for async probes.
    pub async fn until_async<T, E, F>(&self, probe: impl FnMut() -> F) -> T
    where
        E: Display,
        F: Future<Output = Result<T, E>>,
    {
        let result = self.poll_async(probe).await;
        result.unwrap_or_else(|last| self.fail(last))
    }

    fn fail(&self, last: impl Display) -> ! {
        panic!("timed out after {:?} waiting for {}\n{last}", self.timeout, self.what)
    }
}

/// `Wait::new(what, timeout).until(probe)`.
pub fn until<T, E: Display>(what: &str, timeout: Duration, probe: impl FnMut() -> Result<T, E>) -> T {
    Wait::new(what, timeout).until(probe)
}

/// `Ok(())` when `reached`, else `Err(state())`: a probe from a condition.
pub fn check<E>(reached: bool, state: impl FnOnce() -> E) -> Result<(), E> {
    if reached {
        Ok(())
    } else {
        Err(state())
    }
}

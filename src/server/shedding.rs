//! The connection limit: every connection is accepted, and at the limit the one idle
//! longest is closed to make room, so idle and slow clients never queue a scrape.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// What an idle connection is waiting for; the order is the order they are shed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Waiting {
    /// Accepted, with no complete request head yet (a TLS handshake included).
    FirstRequest,
    /// Kept alive after a response.
    NextRequest,
}

/// The open connections, and which of them may be closed to admit a new one.
#[derive(Debug)]
pub(super) struct Connections {
    max: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Orders connections and idle spells; a smaller number came first.
    next: u64,
    open: HashMap<u64, Entry>,
    /// The idle connections, by what they wait for and then since when.
    idle: BTreeMap<(Waiting, u64), u64>,
}

impl State {
    /// Starts an idle spell of connection `id`, later than every one before it.
    fn set_idle(&mut self, id: u64, waiting: Waiting) {
        let key = (waiting, self.next);
        self.next += 1;
        if let Some(entry) = self.open.get_mut(&id) {
            entry.idle = Some(key);
            self.idle.insert(key, id);
        }
    }
}

#[derive(Debug)]
struct Entry {
    /// Where the connection stands in `State::idle`; `None` while it answers a request.
    idle: Option<(Waiting, u64)>,
    /// Sent (or dropped) when the connection is shed.
    shed: oneshot::Sender<()>,
}

impl Connections {
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Connections { max, state: Mutex::default() })
    }

    /// Admits a new connection, shedding the longest-idle one if the limit is reached.
    /// `None` when every open connection is answering a request. The receiver resolves
    /// when the new connection is shed in its turn.
    pub(super) fn admit(self: &Arc<Self>) -> Option<(Ticket, oneshot::Receiver<()>)> {
        let mut state = self.lock();
        if state.open.len() >= self.max {
            let (_, victim) = state.idle.pop_first()?;
            if let Some(entry) = state.open.remove(&victim) {
                let _ = entry.shed.send(());
            }
        }
        let (id, (shed, shed_rx)) = (state.next, oneshot::channel());
        state.open.insert(id, Entry { idle: None, shed });
        state.set_idle(id, Waiting::FirstRequest);
        let ticket = Ticket { id, connections: self.clone() };
        Some((ticket, shed_rx))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step, so a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One admitted connection's place; dropping it (the connection ended) frees the place.
#[derive(Debug)]
pub(super) struct Ticket {
    id: u64,
    connections: Arc<Connections>,
}

impl Ticket {
    /// Marks the connection busy until the guard is dropped (its response is given),
    /// after which it waits, idle, for its next request.
    pub(super) fn answering(&self) -> Answering<'_> {
        let mut state = self.connections.lock();
        let State { open, idle, .. } = &mut *state;
        if let Some(key) = open.get_mut(&self.id).and_then(|e| e.idle.take()) {
            idle.remove(&key);
        }
        Answering(self)
    }

    /// Whether a complete request head has arrived (true for a shed connection, whose
    /// end is already decided).
    pub(super) fn has_requested(&self) -> bool {
        let state = self.connections.lock();
        state.open.get(&self.id).is_none_or(|e| e.idle.is_none_or(|(w, _)| w != Waiting::FirstRequest))
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.connections.lock();
        if let Some(Entry { idle: Some(key), .. }) = state.open.remove(&self.id) {
            state.idle.remove(&key);
        }
    }
}

/// A request being answered; see [`Ticket::answering`].
#[derive(Debug)]
pub(super) struct Answering<'a>(&'a Ticket);

impl Drop for Answering<'_> {
    fn drop(&mut self) {
        self.0.connections.lock().set_idle(self.0.id, Waiting::NextRequest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::oneshot::error::TryRecvError;

    impl Connections {
        /// Connections open (admitted and neither ended nor shed).
        fn open(&self) -> usize {
            self.lock().open.len()
        }
    }

    fn shed(rx: &mut oneshot::Receiver<()>) -> bool {
        !matches!(rx.try_recv(), Err(TryRecvError::Empty))
    }

    #[test]
    fn at_the_limit_the_oldest_connection_without_a_request_goes_first() {
        let c = Connections::new(3);
        let (a, mut a_rx) = c.admit().unwrap();
        let (b, mut b_rx) = c.admit().unwrap();
        let (kept_alive, mut k_rx) = c.admit().unwrap();
        drop(kept_alive.answering());
        assert_eq!(c.open(), 3);

        // `a` has waited for its first request longest.
        let (d, mut d_rx) = c.admit().unwrap();
        assert!(shed(&mut a_rx));
        assert!(!shed(&mut b_rx) && !shed(&mut k_rx) && !shed(&mut d_rx));
        assert_eq!(c.open(), 3);
        drop(a);
        assert_eq!(c.open(), 3, "a shed connection no longer counts");

        // Connections without a request go before a kept-alive one, even newer ones.
        let (e, mut e_rx) = c.admit().unwrap();
        assert!(shed(&mut b_rx) && !shed(&mut k_rx));
        let (f, mut f_rx) = c.admit().unwrap();
        assert!(shed(&mut d_rx) && !shed(&mut k_rx));

        // Once the others are answering, the kept-alive one goes.
        let (_busy_e, _busy_f) = (e.answering(), f.answering());
        let (_g, _) = c.admit().unwrap();
        assert!(shed(&mut k_rx));
        assert!(!shed(&mut e_rx) && !shed(&mut f_rx));
        drop((b, d, kept_alive));
        assert_eq!(c.open(), 3);
    }

    #[test]
    fn kept_alive_connections_go_longest_idle_first_and_busy_ones_never() {
        let c = Connections::new(3);
        let (first, mut first_rx) = c.admit().unwrap();
        let (second, mut second_rx) = c.admit().unwrap();
        let (busy, mut busy_rx) = c.admit().unwrap();
        drop(first.answering());
        drop(second.answering());
        // `first` answers again, so `second` has now been idle longest.
        drop(first.answering());
        let answering = busy.answering();
        assert!(busy.has_requested());

        let (_new, mut new_rx) = c.admit().unwrap();
        assert!(shed(&mut second_rx));
        assert!(!shed(&mut first_rx) && !shed(&mut busy_rx) && !shed(&mut new_rx));
        drop(second);
        // With `first` and `busy` answering, the only idle one is the newest: it goes.
        let _again = first.answering();
        let (_newer, _) = c.admit().unwrap();
        assert!(shed(&mut new_rx));
        drop(answering);
    }

    #[test]
    fn when_every_connection_is_answering_a_new_one_is_refused() {
        let c = Connections::new(2);
        let (a, _a_rx) = c.admit().unwrap();
        let (b, _b_rx) = c.admit().unwrap();
        let (answering_a, _answering_b) = (a.answering(), b.answering());
        assert!(c.admit().is_none());
        assert_eq!(c.open(), 2);
        drop(answering_a);
        assert!(c.admit().is_some(), "an idle one is shed again");
    }

    #[test]
    fn a_connection_has_requested_once_it_answered() {
        let c = Connections::new(2);
        let (a, _rx) = c.admit().unwrap();
        assert!(!a.has_requested());
        drop(a.answering());
        assert!(a.has_requested());
        drop(a);
        assert_eq!(c.open(), 0);
    }
}

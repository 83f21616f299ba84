//! Wires the pieces together, the same way for every command: the store, one engine per
//! operation sharing a lock per token, and the saver ([`Wiring`]); `run` adds the HTTP
//! server and a supervisor per engine, and on shutdown stops them all and saves last.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::engine::limits::TokenLocks;
use crate::engine::{Engine, Saver, Shared};
use crate::metrics::Renderer;
use crate::server::{self, Site};
use crate::store::{OperationStore, Store};
use crate::web::{LoadedWebConfig, WebConfigHandle};

/// How a command ended, as the process's exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Done = 0,
    /// Failed or stopped early (a backfill resumes with the same command).
    Failed = 1,
    /// Refused: bad usage or configuration; nothing was spent.
    Usage = 2,
}

/// The store and what works on it: one engine per operation (operations with the same
/// token share its lock), the saver, and the signal that stops them.
#[derive(Debug)]
pub struct Wiring {
    pub config: Arc<Config>,
    pub store: Arc<Store>,
    pub saver: Arc<Saver>,
    shared: Vec<Shared>,
}

impl Wiring {
    /// `save_to` is where the saver writes the state (`None`: it writes nothing).
    pub fn new(
        config: Arc<Config>,
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        save_to: Option<PathBuf>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        let saver = Arc::new(Saver::new(store.clone(), save_to, clock.clone()));
        let mut locks = TokenLocks::default();
        let shared = config
            .operations
            .iter()
            .map(|op| Shared {
                token_lock: locks.get(&op.token),
                clock: clock.clone(),
                saver: saver.clone(),
                shutdown: shutdown.clone(),
            })
            .collect();
        Wiring { config, store, saver, shared }
    }

    /// A new engine for operation `index`.
    pub fn engine(&self, index: usize) -> Engine {
        Engine::new(
            self.store.operations()[index].clone(),
            &self.config.operations[index],
            &self.config,
            self.shared[index].clone(),
        )
    }
}

/// How long engines get to stop before the state is saved regardless.
const STOP_GRACE: Duration = Duration::from_secs(6);

/// Everything `run` needs from outside; tests build it the way `main` does.
#[derive(Debug)]
pub struct Options {
    pub config: Config,
    pub telemetry_path: String,
    pub server_limits: server::Limits,
    pub web: WebConfigHandle,
    pub clock: Arc<dyn Clock>,
    /// How long a poller that ended unexpectedly waits before it is restarted.
    pub restart_delay: Duration,
}

impl Options {
    pub fn new(config: Config) -> Self {
        Options {
            restart_delay: config.api.retry_max,
            config,
            telemetry_path: "/metrics".to_owned(),
            server_limits: server::Limits::default(),
            web: WebConfigHandle::fixed(LoadedWebConfig::disabled()),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Runs the exporter until `shutdown` resolves, then saves the state and returns.
pub async fn run(
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Options { config, telemetry_path, server_limits, web, clock, restart_delay } = options;
    let (stop_tx, stop_rx) = watch::channel(false);
    let store = {
        let (config, now) = (config.clone(), clock.now());
        Arc::new(tokio::task::spawn_blocking(move || crate::state::restore(&config, now)).await?)
    };
    let state_path = config.state_path.clone();
    let wiring = Arc::new(Wiring::new(
        Arc::new(config),
        store.clone(),
        clock,
        Some(state_path.clone()),
        stop_rx.clone(),
    ));
    let site = Arc::new(Site {
        telemetry_path,
        store: store.clone(),
        renderer: Renderer::new(store.clone(), web.stats().clone(), wiring.config.metrics.exemplars),
        status: Default::default(),
    });
    let server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(server::serve(listener, site.clone(), server_limits, web, async move {
            let _ = stop.changed().await;
        }))
    };
    site.status.loaded.store(true, Ordering::Release);

    let mut pollers = tokio::task::JoinSet::new();
    for (index, op) in store.operations().iter().enumerate() {
        let wiring = wiring.clone();
        let engine = move || wiring.engine(index).run();
        pollers.spawn(supervise(op.clone(), engine, stop_rx.clone(), restart_delay));
    }

    shutdown.await;
    site.status.stopping.store(true, Ordering::Release);
    tracing::info!("shutting down: stopping pollers, then saving state");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(STOP_GRACE, async { while pollers.join_next().await.is_some() {} }).await.is_err()
    {
        tracing::warn!("pollers did not stop in time; aborting them");
        pollers.abort_all();
    }
    let saved = wiring.saver.save().await;
    let _ = server.await;
    if saved {
        tracing::info!(path = %state_path.display(), "state saved; bye");
    }
    Ok(())
}

/// Runs an operation's engine, and restarts it after `delay` when it panics or ends before
/// shutdown (logged, and shown in `wolkvox_up` and `wolkvox_poller_restarts_total`); the
/// store keeps its cursors and counters, so the new engine goes on where the old one stopped.
pub async fn supervise<F, Fut>(
    op: Arc<OperationStore>,
    engine: F,
    mut stop: watch::Receiver<bool>,
    delay: Duration,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        // A JoinSet aborts the engine if this supervisor is itself aborted.
        let mut task = tokio::task::JoinSet::new();
        task.spawn(engine());
        let ended = task.join_next().await;
        if *stop.borrow() {
            return;
        }
        let why = match ended {
            Some(Err(e)) if e.is_panic() => {
                let panic = e.into_panic();
                let text = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "(no message)".to_owned());
                format!("panicked: {text}")
            }
            Some(Err(e)) => e.to_string(),
            _ => "ended without being asked to".to_owned(),
        };
        tracing::error!(
            operation = %op.name,
            error = %why,
            restart_in_ms = delay.as_millis() as u64,
            "poller stopped unexpectedly; restarting it"
        );
        {
            let mut data = op.data();
            data.restarts += 1;
            data.last_error = Some(format!("poller {why}"));
            for slot in &mut data.reports {
                slot.health.up = false;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

#[cfg(test)]
mod tests;

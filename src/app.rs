//! Wires the pieces together: restores the state, starts one poller per operation and
//! the HTTP server, and on shutdown stops them all and saves the state last.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::limits::{self, TokenLocks};
use crate::metrics::Renderer;
use crate::poller::{Clock, Poller, Saver, SystemClock};
use crate::server::{self, Site};
use crate::state::{self, Loaded};
use crate::store::{DailyUse, Data, Health, Operation, Store};
use crate::web::{LoadedWebConfig, WebConfigHandle};

/// How long pollers get to stop before the state is saved regardless.
const STOP_GRACE: Duration = Duration::from_secs(6);

/// Everything `run` needs from outside; tests build it the way `main` does.
#[derive(Debug)]
pub struct Options {
    pub config: Config,
    pub telemetry_path: String,
    pub server_limits: server::Limits,
    pub web: WebConfigHandle,
    pub clock: Arc<dyn Clock>,
}

impl Options {
    pub fn new(config: Config) -> Self {
        Options {
            config,
            telemetry_path: "/metrics".to_owned(),
            server_limits: server::Limits::default(),
            web: WebConfigHandle::fixed(LoadedWebConfig::disabled()),
            clock: Arc::new(SystemClock),
        }
    }
}

/// Builds the store from the configuration and the saved state.
pub fn restore_store(config: &Config, clock: &dyn Clock) -> Store {
    let now = clock.now();
    let mut ops: Vec<Operation> = config
        .operations
        .iter()
        .map(|op| Operation {
            name: op.name.clone(),
            daily_limit: op.daily_limit(),
            cursor: None,
            daily: DailyUse {
                day: limits::local_day(now, op.timezone),
                used: 0,
                exhausted: false,
            },
            data: Data::new(&config.metrics.duration_buckets, config.metrics.max_agents),
            health: Health::default(),
        })
        .collect();
    match state::load(&config.state_path) {
        Loaded::Fresh => {
            tracing::info!(path = %config.state_path.display(), "no saved state; starting with catch-up")
        }
        Loaded::MovedAside { moved_to, error } => tracing::error!(
            path = %config.state_path.display(),
            moved_to = %moved_to.as_ref().map_or("(could not move it)".into(), |p| p.display().to_string()),
            error = %error,
            "state file unreadable; moved aside, counting from scratch with catch-up"
        ),
        Loaded::Restored(mut file) => {
            for op in &mut ops {
                match file.operations.remove(&op.name) {
                    Some(saved) => {
                        if let Some(warning) = state::restore(op, saved) {
                            tracing::warn!(operation = %op.name, "{warning}");
                        }
                        tracing::info!(
                            operation = %op.name,
                            watermark = ?op.cursor,
                            agents = op.data.agents.len(),
                            "state restored"
                        );
                    }
                    None => {
                        tracing::info!(operation = %op.name, "new operation; starting with catch-up")
                    }
                }
            }
            for name in file.operations.keys() {
                tracing::warn!(operation = %name, "saved state of an operation no longer configured is dropped");
            }
        }
    }
    Store::new(ops)
}

/// Runs the exporter until `shutdown` resolves, then saves the state and returns.
pub async fn run(
    options: Options,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let Options {
        config,
        telemetry_path,
        server_limits,
        web,
        clock,
    } = options;
    let store = {
        let config = config.clone();
        let clock = clock.clone();
        Arc::new(tokio::task::spawn_blocking(move || restore_store(&config, &*clock)).await?)
    };
    let saver = Arc::new(Saver::new(store.clone(), config.state_path.clone()));
    let site = Arc::new(Site {
        telemetry_path,
        store: store.clone(),
        renderer: Renderer::new(store.clone()),
        ready: Default::default(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = {
        let mut stop = stop_rx.clone();
        tokio::spawn(server::serve(
            listener,
            site.clone(),
            server_limits,
            web,
            async move {
                let _ = stop.changed().await;
            },
        ))
    };
    site.ready.store(true, Ordering::Release);

    let mut locks = TokenLocks::default();
    let mut pollers = tokio::task::JoinSet::new();
    for (i, op) in config.operations.iter().enumerate() {
        let poller = Poller::new(
            i,
            op,
            &config,
            store.clone(),
            locks.get(&op.token),
            clock.clone(),
            saver.clone(),
            stop_rx.clone(),
        );
        pollers.spawn(poller.run());
    }

    shutdown.await;
    tracing::info!("shutting down: stopping pollers, then saving state");
    let _ = stop_tx.send(true);
    if tokio::time::timeout(STOP_GRACE, async {
        while pollers.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        tracing::warn!("pollers did not stop in time; aborting them");
        pollers.abort_all();
    }
    let saved = saver.save().await;
    let _ = server.await;
    if saved {
        tracing::info!(path = %config.state_path.display(), "state saved; bye");
    }
    Ok(())
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

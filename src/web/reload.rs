//! Keeps the web config current while the exporter runs: the file and the certificates
//! it names are polled (and re-read on SIGHUP); a bad version is logged, counted and
//! ignored, so the server always runs on the last good one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::config::{LoadedWebConfig, WebConfig, WebConfigError};

/// Reload outcomes, exported as metrics. Written only by the watcher.
#[derive(Debug)]
pub struct ReloadStats {
    /// Changed versions applied.
    pub successes: AtomicU64,
    /// Changed versions refused (the previous version stayed in force).
    pub failures: AtomicU64,
    /// 1 when the latest reload attempt succeeded (or none failed yet), else 0.
    pub last_reload_successful: AtomicU64,
    /// Times the watcher looked at the files (each poll and each SIGHUP).
    pub checks: AtomicU64,
}

impl Default for ReloadStats {
    fn default() -> Self {
        Self {
            successes: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_reload_successful: AtomicU64::new(1),
            checks: AtomicU64::new(0),
        }
    }
}

/// How the watcher looks for changes; tests shorten the intervals.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub poll_interval: Duration,
    /// After a change is seen, the files must read the same again after this delay
    /// before they are loaded, so a file caught half-written is not applied.
    pub settle_delay: Duration,
    pub reload_on_sighup: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(2),
            settle_delay: Duration::from_millis(100),
            reload_on_sighup: true,
        }
    }
}

/// The server's view of the web config: cheap to clone and to read on every
/// connection and request.
#[derive(Debug, Clone)]
pub struct WebConfigHandle {
    current: watch::Receiver<Arc<LoadedWebConfig>>,
    stats: Arc<ReloadStats>,
}

impl WebConfigHandle {
    /// A handle that never changes, for when no `--web.config.file` is given.
    pub fn fixed(config: Arc<LoadedWebConfig>) -> Self {
        let (_sender, current) = watch::channel(config);
        Self { current, stats: Arc::new(ReloadStats::default()) }
    }

    /// The version in force now: taken per connection for TLS, per request for auth.
    pub fn current(&self) -> Arc<LoadedWebConfig> {
        self.current.borrow().clone()
    }

    /// A receiver that is notified on every applied reload.
    pub fn subscribe(&self) -> watch::Receiver<Arc<LoadedWebConfig>> {
        self.current.clone()
    }

    pub fn stats(&self) -> &Arc<ReloadStats> {
        &self.stats
    }

    /// Watches `path`, loaded as `initial`, polling and on SIGHUP per `options`. Must be
    /// called inside a tokio runtime; the task ends when every handle is dropped.
    pub fn watch(path: impl Into<PathBuf>, initial: Arc<LoadedWebConfig>, options: WatchOptions) -> Self {
        let stats = Arc::new(ReloadStats::default());
        let (sender, current) = watch::channel(initial);
        // Registered here, not in the task, so a SIGHUP sent right after start is
        // already handled rather than killing the process.
        let hangup = if options.reload_on_sighup { hangup_signal() } else { None };
        tokio::spawn(watch_loop(path.into(), sender, stats.clone(), options, hangup));
        Self { current, stats }
    }
}

#[cfg(unix)]
type Hangup = tokio::signal::unix::Signal;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Option<Hangup> {
    let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    signal
        .inspect_err(|error| {
            tracing::warn!(%error, "cannot listen for SIGHUP; the web config is reloaded by polling only")
        })
        .ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Option<Hangup> {
    None
}

/// Resolves on the next SIGHUP; never, when there is no signal to wait for.
async fn next_hangup(hangup: &mut Option<Hangup>) {
    #[cfg(unix)]
    if let Some(signal) = hangup {
        if signal.recv().await.is_some() {
            return;
        }
    }
    #[cfg(not(unix))]
    let _ = hangup;
    std::future::pending::<()>().await
}

async fn watch_loop(
    path: PathBuf,
    sender: watch::Sender<Arc<LoadedWebConfig>>,
    stats: Arc<ReloadStats>,
    options: WatchOptions,
    mut hangup: Option<Hangup>,
) {
    // The files last loaded, with the digests last seen (loaded, or refused).
    let mut known = sender.borrow().read_log.clone();
    if known.files.is_empty() {
        // A starting configuration that read no file still watches the one named.
        known.files.push(path.clone());
        known.digests = known.digests_now().await;
    }
    let mut ticker = tokio::time::interval(options.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;

    loop {
        let forced = tokio::select! {
            _ = sender.closed() => return,
            _ = ticker.tick() => false,
            _ = next_hangup(&mut hangup) => true,
        };
        let seen = known.digests_now().await;
        stats.checks.fetch_add(1, Ordering::Relaxed);
        if !forced {
            if seen == known.digests {
                continue;
            }
            tokio::time::sleep(options.settle_delay).await;
            if known.digests_now().await != seen {
                continue;
            }
        }

        let previous = sender.borrow().clone();
        match reload(&path, &previous).await {
            Ok(config) => {
                known = config.read_log.clone();
                stats.successes.fetch_add(1, Ordering::Relaxed);
                stats.last_reload_successful.store(1, Ordering::Relaxed);
                tracing::info!(
                    path = %path.display(),
                    tls = config.tls_enabled(),
                    basic_auth = config.basic_auth_enabled(),
                    "web config reloaded"
                );
                sender.send_replace(config);
            }
            Err(error) => {
                // Remember what was refused so it is reported once, not every poll.
                known.digests = seen;
                stats.failures.fetch_add(1, Ordering::Relaxed);
                stats.last_reload_successful.store(0, Ordering::Relaxed);
                tracing::error!(
                    path = %path.display(),
                    %error,
                    "web config reload failed; keeping the last good version"
                );
            }
        }
    }
}

/// Loads the new version off the async workers (bcrypt and file reads block), refusing
/// what cannot be applied to a running listener: TLS switched on or off under connected
/// scrapers, or basic auth dropped (a file truncated mid-write must not open `/metrics`).
async fn reload(path: &Path, previous: &LoadedWebConfig) -> Result<Arc<LoadedWebConfig>, WebConfigError> {
    let load_path = path.to_path_buf();
    let next = tokio::task::spawn_blocking(move || WebConfig::load(&load_path)).await.map_err(|e| {
        WebConfigError::Syntax { path: path.to_path_buf(), message: format!("loading was interrupted: {e}") }
    })??;
    let refused = match (previous.tls_enabled(), next.tls_enabled()) {
        (true, false) => "tls_server_config: the new version turns TLS off",
        (false, true) => "tls_server_config: the new version turns TLS on",
        _ if previous.basic_auth_enabled() && !next.basic_auth_enabled() => {
            "basic_auth_users: the new version has no users, turning authentication off"
        }
        _ => return Ok(next),
    };
    Err(WebConfigError::NeedsRestart { path: path.to_path_buf(), message: refused.to_string() })
}

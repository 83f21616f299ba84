//! Saves the state for every engine and for the shutdown path, one save at a time; a
//! failed save is logged and counted here, and polling goes on.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use crate::clock::Clock;
use crate::store::Store;

#[derive(Debug)]
pub struct Saver {
    store: Arc<Store>,
    /// `None` for the backfill, which saves its own progress.
    path: Option<PathBuf>,
    clock: Arc<dyn Clock>,
    lock: tokio::sync::Mutex<()>,
}

impl Saver {
    pub fn new(store: Arc<Store>, path: Option<PathBuf>, clock: Arc<dyn Clock>) -> Self {
        Saver { store, path, clock, lock: tokio::sync::Mutex::new(()) }
    }

    /// Saves the state; true when it was written.
    pub async fn save(&self) -> bool {
        let Some(path) = self.path.clone() else {
            return true;
        };
        let _guard = self.lock.lock().await;
        let (store, now) = (self.store.clone(), self.clock.now());
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || crate::state::save(&store, &path, now)).await;
        let error = match result {
            Ok(Ok(bytes)) => {
                tracing::debug!(bytes, elapsed_ms = started.elapsed().as_millis() as u64, "state saved");
                return true;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.store.save_failures.fetch_add(1, Ordering::Relaxed);
        self.store.touch();
        tracing::error!(error = %error, "state save failed; will retry after the next cycle");
        false
    }
}

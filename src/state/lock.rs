//! One process at a time on a state path: the exporter and `backfill` hold an advisory
//! lock on `<state>.lock`, which names the holder's pid, until they exit.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Held while the process works on the state path; released when dropped or at exit.
#[derive(Debug)]
pub struct StateLock(File);

impl Drop for StateLock {
    /// Unlocked outright: a child process forked meanwhile may still hold a copy of the
    /// file until it execs, which would keep the lock otherwise.
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("--state.path {} is in use by process {pid} (it holds {}): an exporter or a backfill already works on this state; stop it first, or use another --state.path", .state.display(), .lock.display())]
    Held { state: PathBuf, lock: PathBuf, pid: String },
    #[error("--state.path {}: cannot lock {}: {source}", .state.display(), .lock.display())]
    Io { state: PathBuf, lock: PathBuf, source: std::io::Error },
}

/// Takes the lock of `state_path` (creating its directory), or says who holds it.
pub fn lock(state_path: &Path) -> Result<StateLock, LockError> {
    let lock = super::beside(state_path, ".lock");
    let io = |source| LockError::Io { state: state_path.to_owned(), lock: lock.clone(), source };
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&lock).map_err(io)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| writeln!(file, "{}", std::process::id()))
                .map_err(io)?;
            Ok(StateLock(file))
        }
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.take(32).read_to_string(&mut pid);
            let pid = pid.trim();
            Err(LockError::Held {
                state: state_path.to_owned(),
                lock,
                pid: if pid.is_empty() { "(pid not written yet)".into() } else { pid.to_owned() },
            })
        }
        Err(TryLockError::Error(e)) => Err(io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_second_holder_is_told_the_first_ones_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sub/state.json");
        let held = lock(&state).unwrap();
        let err = lock(&state).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("in use by process {}", std::process::id())), "{text}");
        drop(held);
        assert!(lock(&state).is_ok(), "released when dropped");
    }
}

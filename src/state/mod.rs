//! The persisted state: per operation the day's request count, the agents, and per
//! report the cursor, the remembered rows and the counters; saved atomically (write,
//! fsync, rename, fsync the directory). A corrupt file is moved aside, never trusted.

mod lock;
mod restore;
mod v1;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub use lock::{lock, LockError, StateLock};
pub use restore::{restore, restore_saved};

use crate::reports::agents::AgentInfo;
use crate::store::{DailyUse, Density, OperationStore, Store};

pub const VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot write state file {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub saved_at: DateTime<Utc>,
    pub operations: BTreeMap<String, OpState>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OpState {
    pub daily: Option<DailyUse>,
    pub agents: Vec<(String, AgentInfo)>,
    pub overflow_records: u64,
    /// By report name.
    pub reports: BTreeMap<String, ReportState>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ReportState {
    pub cursor: Option<DateTime<Utc>>,
    /// Where the report's first catch-up began.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
    /// Rows per local hour, learned.
    #[serde(default)]
    pub density: Density,
    /// Remembered identities as (high 64 bits, low 64 bits, local date seconds).
    pub seen: Vec<(u64, u64, i64)>,
    pub counters: Box<RawValue>,
}

impl StateFile {
    /// Every operation's state, saved at `now`.
    pub fn of(store: &Store, now: DateTime<Utc>) -> StateFile {
        let operations = store.operations().iter().map(|op| (op.name.clone(), snapshot(op))).collect();
        StateFile { version: VERSION, saved_at: now, operations }
    }
}

/// Writes the store's state atomically; the bytes written.
pub fn save(store: &Store, path: &Path, now: DateTime<Utc>) -> Result<u64, StateError> {
    let mut body = serde_json::to_vec(&StateFile::of(store, now)).expect("state values serialize");
    body.push(b'\n');
    write_atomically(path, &body).map_err(|source| StateError::Write { path: path.to_owned(), source })?;
    Ok(body.len() as u64)
}

/// One operation's state, its ledger and data read together (so that a page is in both
/// or in neither).
pub fn snapshot(op: &OperationStore) -> OpState {
    let ledger = op.ledger();
    let data = op.read();
    let reports = data
        .reports
        .iter()
        .zip(&ledger.reports)
        .map(|(slot, l)| {
            let state = ReportState {
                cursor: l.cursor,
                since: l.since,
                density: l.density.clone(),
                seen: l.seen.iter().map(|(k, d)| (k.0, k.1, *d)).collect(),
                counters: slot.report.save(&slot.counters),
            };
            (slot.name().to_string(), state)
        })
        .collect();
    OpState {
        daily: Some(data.daily.clone()),
        agents: data.agents.known.iter().map(|(id, a)| (id.to_string(), a.clone())).collect(),
        overflow_records: data.agents.overflow_records,
        reports,
    }
}

/// `path` with `suffix` added to its name: the files kept beside the state.
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(crate) fn write_atomically(path: &Path, body: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = path.with_extension("json.tmp");
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// What loading found.
#[derive(Debug)]
pub enum Loaded {
    Fresh,
    Restored(StateFile),
    /// The file was unreadable or corrupt and was moved to `moved_to`.
    MovedAside {
        moved_to: Option<PathBuf>,
        error: String,
    },
}

/// Reads the state file; a version 1 file (before reports) is converted.
pub fn load(path: &Path, now: DateTime<Utc>) -> Loaded {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Fresh,
        Err(e) => return move_aside(path, format!("cannot read: {e}"), now),
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    let parsed = match serde_json::from_slice::<Version>(&text) {
        Ok(Version { version: VERSION }) => {
            serde_json::from_slice(&text).map_err(|e| format!("corrupt: {e}"))
        }
        Ok(Version { version: 1 }) => v1::convert(&text).map_err(|e| format!("corrupt version 1 state: {e}")),
        Ok(Version { version }) => Err(format!("unsupported state version {version}")),
        Err(e) => Err(format!("corrupt: {e}")),
    };
    parsed.map_or_else(|error| move_aside(path, error, now), Loaded::Restored)
}

fn move_aside(path: &Path, error: String, now: DateTime<Utc>) -> Loaded {
    let target = beside(path, &format!(".corrupt-{}", now.format("%Y%m%dT%H%M%SZ")));
    let moved_to = fs::rename(path, &target).ok().map(|_| target);
    Loaded::MovedAside { moved_to, error }
}

#[cfg(test)]
mod tests;

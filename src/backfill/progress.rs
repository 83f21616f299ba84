//! The progress file `<state>.backfill`: the command's settings, the store and the
//! histories as they stood between two windows, so that the same command resumes an
//! interrupted backfill. A row is in the store's counters and remembered rows together
//! (the page's lock), and in the history before its window's cursor moves on, so a
//! window read again after a resume counts nothing twice.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::timeline::History;
use crate::state::StateFile;

const VERSION: u32 = 1;

/// What must be the same for a backfill to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// `--from` and `--to` as given.
    pub from: String,
    pub to: Option<String>,
    pub step_secs: i64,
    pub labels: Vec<(String, String)>,
    /// Per operation, the range read: `--to` left out reads up to when it started.
    pub ranges: BTreeMap<String, (DateTime<Utc>, DateTime<Utc>)>,
}

impl Settings {
    /// Whether a backfill started with `self` can resume under `now`'s command
    /// (ranges aside: without `--to`, the saved ones stand).
    pub fn same_command(&self, now: &Settings) -> bool {
        self.from == now.from
            && self.to == now.to
            && self.step_secs == now.step_secs
            && self.labels == now.labels
            && self.ranges.keys().eq(now.ranges.keys())
    }
}

/// The file as read.
#[derive(Debug, Deserialize)]
pub struct Saved {
    #[allow(dead_code)]
    version: u32,
    pub settings: Settings,
    pub state: StateFile,
    /// Per operation, per report name.
    pub histories: BTreeMap<String, BTreeMap<String, History>>,
}

/// The file as written, borrowing what it saves.
#[derive(Debug, Serialize)]
pub struct ToSave<'a> {
    version: u32,
    pub settings: &'a Settings,
    pub state: &'a StateFile,
    pub histories: BTreeMap<&'a str, BTreeMap<&'a str, &'a History>>,
}

impl<'a> ToSave<'a> {
    pub fn new(
        settings: &'a Settings,
        state: &'a StateFile,
        histories: BTreeMap<&'a str, BTreeMap<&'a str, &'a History>>,
    ) -> Self {
        ToSave { version: VERSION, settings, state, histories }
    }
}

/// Where the progress of a backfill writing `state_path` is kept.
pub fn path_for(state_path: &Path) -> PathBuf {
    crate::state::beside(state_path, ".backfill")
}

/// The saved progress, if any.
pub fn load(path: &Path) -> Result<Option<Saved>, String> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    #[derive(Deserialize)]
    struct Version {
        version: u32,
    }
    match serde_json::from_slice::<Version>(&text) {
        Ok(Version { version: VERSION }) => {
            serde_json::from_slice(&text).map(Some).map_err(|e| format!("{} is corrupt: {e}", path.display()))
        }
        Ok(Version { version }) => {
            Err(format!("{} was written by another version (format {version})", path.display()))
        }
        Err(e) => Err(format!("{} is corrupt: {e}", path.display())),
    }
}

pub fn save(path: &Path, progress: &ToSave) -> io::Result<u64> {
    let body = serde_json::to_vec(progress).map_err(io::Error::other)?;
    crate::state::write_atomically(path, &body)?;
    Ok(body.len() as u64)
}

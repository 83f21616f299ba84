//! The persisted state: cursor, remembered identities, counters, histograms, agent
//! names and the day's request count of every operation, saved atomically (write,
//! fsync, rename, fsync the directory). A corrupt file is moved aside, never trusted.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{Agent, DailyUse, Data, Identity, Operation, Store};

const VERSION: u32 = 1;

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
    pub cursor: Option<DateTime<Utc>>,
    pub daily: Option<DailyUse>,
    pub bounds: Vec<f64>,
    pub agents: Vec<(String, Agent)>,
    pub overflow: Agent,
    pub overflow_records: u64,
    /// Remembered identities as (high 64 bits, low 64 bits, local date seconds).
    pub seen: Vec<(u64, u64, i64)>,
}

#[derive(Serialize)]
struct OpStateRef<'a> {
    cursor: Option<DateTime<Utc>>,
    daily: Option<&'a DailyUse>,
    bounds: &'a [f64],
    agents: Vec<(&'a str, &'a Agent)>,
    overflow: &'a Agent,
    overflow_records: u64,
    seen: Vec<(u64, u64, i64)>,
}

/// Serializes every operation, each under its own lock, then writes the file atomically.
pub fn save(store: &Store, path: &Path) -> Result<u64, StateError> {
    let mut body = Vec::with_capacity(1 << 16);
    write!(
        body,
        "{{\"version\":{VERSION},\"saved_at\":{},\"operations\":{{",
        serde_json::to_string(&Utc::now()).expect("a timestamp serializes")
    )
    .expect("writing to a Vec");
    for i in 0..store.len() {
        let op = store.read(i);
        if i > 0 {
            body.push(b',');
        }
        serde_json::to_writer(&mut body, &op.name).expect("a string serializes");
        body.push(b':');
        let view = OpStateRef {
            cursor: op.cursor,
            daily: Some(&op.daily),
            bounds: &op.data.bounds,
            agents: op.data.sorted_agents(),
            overflow: &op.data.overflow,
            overflow_records: op.data.overflow_records,
            seen: op.data.seen.iter().map(|(k, d)| (k.0, k.1, *d)).collect(),
        };
        serde_json::to_writer(&mut body, &view).expect("state values serialize");
    }
    body.extend_from_slice(b"}}\n");
    write_atomically(path, &body).map_err(|source| StateError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(body.len() as u64)
}

fn write_atomically(path: &Path, body: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let tmp = path.with_extension("json.tmp");
    let result = (|| {
        let file = File::create(&tmp)?;
        let mut w = BufWriter::new(file);
        w.write_all(body)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
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

pub fn load(path: &Path) -> Loaded {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Loaded::Fresh,
        Err(e) => return move_aside(path, format!("cannot open: {e}")),
    };
    match serde_json::from_reader::<_, StateFile>(BufReader::new(file)) {
        Ok(s) if s.version == VERSION => Loaded::Restored(s),
        Ok(s) => move_aside(path, format!("unsupported state version {}", s.version)),
        Err(e) => move_aside(path, format!("corrupt: {e}")),
    }
}

fn move_aside(path: &Path, error: String) -> Loaded {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let mut target = path.as_os_str().to_owned();
    target.push(format!(".corrupt-{stamp}"));
    let target = PathBuf::from(target);
    let moved_to = fs::rename(path, &target).ok().map(|_| target);
    Loaded::MovedAside { moved_to, error }
}

/// Restores one operation from its saved state. Saved histogram bounds win over the
/// configured ones, so a restart never breaks a histogram's buckets.
pub fn restore(op: &mut Operation, saved: OpState) -> Option<String> {
    let mut warning = None;
    if saved.bounds != *op.data.bounds {
        warning = Some(format!(
            "duration buckets differ from the saved state's {:?}; keeping the saved buckets \
             (remove the state file to apply new ones, which resets the counters)",
            saved.bounds
        ));
    }
    let mut data = Data::new(&saved.bounds, op.data.max_agents);
    data.agents = saved
        .agents
        .into_iter()
        .map(|(id, a)| (id.into_boxed_str(), a))
        .collect();
    data.overflow = saved.overflow;
    data.overflow_records = saved.overflow_records;
    data.seen = saved
        .seen
        .into_iter()
        .map(|(hi, lo, d)| (Identity(hi, lo), d))
        .collect();
    let buckets = data.bounds.len() + 1;
    let consistent = data
        .agents
        .values()
        .chain(std::iter::once(&data.overflow))
        .flat_map(|a| a.series.iter().flatten())
        .all(|h| h.buckets.len() == buckets && h.buckets.iter().sum::<u64>() == h.count);
    if !consistent {
        return Some("saved histograms are inconsistent; ignoring the saved data".to_owned());
    }
    op.data = data;
    op.cursor = saved.cursor;
    if let Some(daily) = saved.daily {
        op.daily = daily;
    }
    warning
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Health;

    fn op(name: &str) -> Operation {
        Operation {
            name: name.into(),
            daily_limit: 1000,
            cursor: None,
            daily: DailyUse {
                day: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                used: 0,
                exhausted: false,
            },
            data: Data::new(&[60.0], 10),
            health: Health::default(),
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        let mut a = op("a");
        a.cursor = Some(Utc::now());
        a.daily.used = 7;
        let mut agent = Agent::new("Ana", 5);
        let mut h = crate::store::Histogram::new(&[60.0]);
        h.observe(&[60.0], 30.0);
        agent.series[0] = Some(h);
        a.data.agents.insert("1001".into(), agent);
        a.data.seen.insert(Identity::from(u128::MAX - 5), 42);
        let store = Store::new(vec![a, op("b")]);
        save(&store, &path).unwrap();

        let Loaded::Restored(mut file) = load(&path) else {
            panic!()
        };
        let mut fresh = op("a");
        assert!(restore(&mut fresh, file.operations.remove("a").unwrap()).is_none());
        let orig = store.read(0);
        assert_eq!(fresh.cursor, orig.cursor);
        assert_eq!(fresh.daily, orig.daily);
        assert_eq!(fresh.data.agents, orig.data.agents);
        assert_eq!(fresh.data.seen, orig.data.seen);
        assert!(file.operations.contains_key("b"));
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        fs::write(&path, b"{\"version\":1,\"operations\":{\"a\":").unwrap();
        let Loaded::MovedAside {
            moved_to: Some(to),
            error,
        } = load(&path)
        else {
            panic!()
        };
        assert!(error.starts_with("corrupt"), "{error}");
        assert!(!path.exists());
        assert!(to
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("state.json.corrupt-"));
        assert!(matches!(load(&path), Loaded::Fresh));
    }
}

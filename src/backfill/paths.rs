//! The OpenMetrics file: checked before the first request (a new file, or with
//! `--output.overwrite` a regular one; in a directory that takes files; none of the
//! state's own), then written to a temporary file beside it and renamed. The temporary
//! file is removed on every failure, a full disk included.

use std::fs::File;
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use super::{progress, BackfillError};

/// Whether `output` may be written, before anything is read.
pub(super) fn check_output(output: &Path, overwrite: bool, state_path: &Path) -> Result<(), BackfillError> {
    let refuse = |why: String| Err(BackfillError::Usage(format!("--output={}: {why}", output.display())));
    if output.file_name().is_none() {
        return refuse("not a file name".to_owned());
    }
    let dir = directory(output);
    match std::fs::metadata(dir) {
        Err(e) => return refuse(format!("its directory {} is not usable: {e}", dir.display())),
        Ok(m) if !m.is_dir() => return refuse(format!("{} is not a directory", dir.display())),
        Ok(_) => {}
    }
    match std::fs::symlink_metadata(output) {
        Ok(m) if !m.is_file() => {
            return refuse(
                "exists and is not a regular file (a directory, device, FIFO, socket or \
                 link): it is never replaced; name a new file"
                    .to_owned(),
            )
        }
        Ok(_) if !overwrite => {
            return refuse("exists; name a new file, or pass --output.overwrite to replace it".to_owned())
        }
        _ => {}
    }
    let own = [
        ("--state.path", state_path.to_owned()),
        ("the backfill's progress file", progress::path_for(state_path)),
        ("the state's lock file", crate::state::beside(state_path, ".lock")),
    ];
    for (what, path) in own {
        if resolved(&path) == resolved(output) {
            return refuse(format!("is {what} ({}); name another file", path.display()));
        }
    }
    match temporary(dir) {
        Ok(_) => Ok(()),
        Err(e) => refuse(format!("cannot create a file in {}: {e}", dir.display())),
    }
}

/// Writes `output` through `write`: into a temporary file beside it, synced, then
/// renamed over it (only a regular file, and only when `overwrite`).
pub(super) fn write_output<T>(
    output: &Path,
    overwrite: bool,
    write: impl FnOnce(&mut BufWriter<&File>) -> io::Result<T>,
) -> io::Result<T> {
    let tmp = temporary(directory(output))?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file());
    let written = write(&mut out)?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let persisted = match std::fs::symlink_metadata(output) {
        Ok(m) if !m.is_file() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "it is now there and not a regular file",
            ))
        }
        _ if overwrite => tmp.persist(output),
        _ => tmp.persist_noclobber(output),
    };
    persisted.map_err(|e| e.error)?;
    Ok(written)
}

fn directory(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The path with its directory resolved (links, `..`), for comparing files that may
/// not exist yet.
fn resolved(path: &Path) -> PathBuf {
    let dir = directory(path);
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_owned());
    dir.join(path.file_name().unwrap_or_default())
}

/// A new file in `dir`, removed when dropped; readable as a file created plainly is.
fn temporary(dir: &Path) -> io::Result<NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".wolkvox-backfill-").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    builder.tempfile_in(dir)
}

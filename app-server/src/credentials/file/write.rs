//! Replacing the document on disk: the new document goes to a synced temp file in the same
//! directory, renamed over the old one, so a crash leaves one whole version or the other.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::super::error::StoreError;

/// The document's name in the state dir; its temp files are named after it.
pub(super) const FILE_NAME: &str = "credentials.json";

/// Removes temp files a writer killed mid-write left behind (they hold tokens). Called under
/// the exclusive lock, when no other writer can be using one.
pub(super) fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(&format!(".{FILE_NAME}."))
            && name.ends_with(".tmp")
            && let Err(e) = std::fs::remove_file(entry.path())
        {
            tracing::warn!(path = %entry.path().display(), "could not remove a stale temp file: {e}");
        }
    }
}

/// Replaces `target` with `bytes` via a synced temp file in `dir` (the target's directory,
/// so the rename cannot cross file systems) and syncs the directory.
pub(super) fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{FILE_NAME}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = write_new_private_file(&temp, bytes)
        .and_then(|()| std::fs::rename(&temp, target).map_err(StoreError::io(target)));
    if let Err(e) = written {
        // Best effort: the temp file holds tokens and must not linger.
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    sync_dir(dir)
}

/// Creates `path` (failing if it exists), mode 0600, with `bytes`, synced to disk.
fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(StoreError::io(path))?;
    file.write_all(bytes).map_err(StoreError::io(path))?;
    file.sync_all().map_err(StoreError::io(path))
}

/// Makes the rename durable. Windows has no directory handles to sync; its rename is
/// journaled by NTFS.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io(dir))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

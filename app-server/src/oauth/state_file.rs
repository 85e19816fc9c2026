//! Small files of the OAuth engine in the state directory (the discovery cache, the sticky
//! callback ports): read with a size bound, replaced atomically, mode 0600. They only hold
//! what can be found again, so a missing, oversized or corrupt file is ignored, never fatal,
//! and they are not synced: a crash may lose the last change (found again at the next
//! login), and a sync would compete for the disk with the credential saves that must be
//! durable.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The contents of `path` when it exists and holds at most `max_bytes`; `None` (logged at
/// debug level) otherwise.
pub(crate) fn read_bounded(path: &Path, max_bytes: u64) -> Option<Vec<u8>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "state file unreadable; ignored");
            return None;
        }
    };
    let mut bytes = Vec::new();
    match file.take(max_bytes + 1).read_to_end(&mut bytes) {
        Ok(n) if n as u64 <= max_bytes => Some(bytes),
        Ok(_) => {
            tracing::debug!(path = %path.display(), max_bytes, "state file too large; ignored");
            None
        }
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "state file unreadable; ignored");
            None
        }
    }
}

/// Replaces `path` with `bytes`: written to a temp file (0600) in the same directory, then
/// renamed over it, so readers see the old file or the new one, never a part. Not synced
/// (see the module's comment).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp: PathBuf = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Takes an OS lock (`flock` on unix, `LockFileEx` on Windows) on `<state file>.lock`
/// (created empty, mode 0600, never deleted), so processes sharing the state directory
/// take turns writing `state_file`. Waits at most `wait`, polling; `None` when it could not
/// be had by then. Released when the file is dropped, and by the OS when the process ends.
pub(crate) fn lock_exclusive(
    state_file: &Path,
    wait: std::time::Duration,
) -> Option<std::fs::File> {
    let mut name = state_file.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let path = state_file.with_file_name(name);
    let path = path.as_path();
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "state lock file unusable");
            return None;
        }
    };
    let start = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Some(file),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => return None,
            Err(std::fs::TryLockError::Error(e)) => {
                tracing::debug!(path = %path.display(), error = %e, "state lock failed");
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_reads_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(read_bounded(&path, 10), None);
        write_atomically(&path, b"{\"a\":1}").unwrap();
        write_atomically(&path, b"{\"b\":2}").unwrap();
        assert_eq!(read_bounded(&path, 10).unwrap(), b"{\"b\":2}");
        assert_eq!(read_bounded(&path, 3), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temp file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn the_lock_is_taken_in_turn_and_a_bounded_wait_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let held = lock_exclusive(&path, std::time::Duration::ZERO).unwrap();
        assert!(dir.path().join("state.json.lock").exists());
        // Another holder (a separate open file, as another process has) must wait.
        assert!(lock_exclusive(&path, std::time::Duration::from_millis(30)).is_none());
        drop(held);
        assert!(lock_exclusive(&path, std::time::Duration::ZERO).is_some());
    }
}

//! One refresh at a time per server, across processes (requirements rule 20): a rotated
//! refresh token used twice revokes the whole token family at strict servers.
//!
//! The lock is an OS file lock (`flock` on unix, `LockFileEx` on Windows) on
//! `state_dir/locks/<hash of the key>.lock`. The OS drops it when the holder exits, so a
//! crashed daemon never leaves a server locked. Lock files are never deleted: deleting one
//! while another process waits on it would let a third process lock a fresh file.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::model::{CredentialKey, hex};

/// Held while one server's tokens are refreshed; dropping it releases the lock.
#[derive(Debug)]
#[must_use = "the lock is released when this value is dropped"]
pub struct RefreshLock {
    // Closing the file releases the OS lock.
    _file: File,
    #[cfg(test)]
    path: PathBuf,
}

#[cfg(test)]
impl RefreshLock {
    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

pub(crate) fn lock_path(state_dir: &Path, key: &CredentialKey) -> PathBuf {
    let digest = Sha256::digest(key.storage_key().as_bytes());
    state_dir
        .join("locks")
        .join(format!("{}.lock", &hex(&digest)[..32]))
}

/// Waits (at most `wait`) until the lock for `key` is free.
pub(crate) fn acquire(
    state_dir: &Path,
    key: &CredentialKey,
    wait: Duration,
) -> Result<RefreshLock, StoreError> {
    let (file, path) = open_lock_file(state_dir, key)?;
    let file = wait_for_lock(file, &path, LockKind::Exclusive, wait)?;
    Ok(RefreshLock {
        _file: file,
        #[cfg(test)]
        path,
    })
}

/// Creates the lock file for `key` (and its directory) if there is none yet.
pub(crate) fn prepare(state_dir: &Path, key: &CredentialKey) -> Result<(), StoreError> {
    open_lock_file(state_dir, key).map(drop)
}

/// `None` when another holder (thread or process) has the lock now.
pub(crate) fn try_acquire(
    state_dir: &Path,
    key: &CredentialKey,
) -> Result<Option<RefreshLock>, StoreError> {
    let (file, path) = open_lock_file(state_dir, key)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(RefreshLock {
            _file: file,
            #[cfg(test)]
            path,
        })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(StoreError::Io { path, source }),
    }
}

fn open_lock_file(state_dir: &Path, key: &CredentialKey) -> Result<(File, PathBuf), StoreError> {
    let path = lock_path(state_dir, key);
    let dir = path.parent().expect("lock path has a parent");
    crate::home::create_private_dir(dir).map_err(StoreError::io(dir))?;
    let file = open_lock(&path)?;
    Ok((file, path))
}

/// Exclusive for writers, shared for readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockKind {
    Exclusive,
    Shared,
}

/// Helper threads blocked in a lock wait whose caller gave up (their holder is stuck)
/// count against this; past it, waits poll instead of using a thread.
const MAX_WAITING_THREADS: usize = 16;
static WAITING_THREADS: AtomicUsize = AtomicUsize::new(0);

/// Takes the OS lock on `file`, waiting at most `wait`; then [`StoreError::LockTimeout`].
/// Never an unbounded wait: a holder that hangs (a stuck process, a network file system)
/// must not hang the request that waits, nor keep its thread forever.
///
/// The wait is the OS's blocking lock on a helper thread, so waiters are served in turn as
/// the OS wakes them (polling alone lets a busy writer starve the others); the caller stops
/// waiting at the bound, and a helper that acquires the lock afterwards releases it at once.
/// Helpers still blocked are capped; beyond the cap the wait polls.
pub(crate) fn wait_for_lock(
    file: File,
    path: &Path,
    kind: LockKind,
    wait: Duration,
) -> Result<File, StoreError> {
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    match try_lock(&file, kind) {
        Ok(()) => return Ok(file),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(source)) => return Err(io(source)),
    }
    let timeout = || StoreError::LockTimeout {
        path: path.to_owned(),
        waited_secs: wait.as_secs_f64(),
    };
    if WAITING_THREADS.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING_THREADS {
        WAITING_THREADS.fetch_sub(1, Ordering::SeqCst);
        return poll_for_lock(file, kind, wait).map_err(|e| e.map_or_else(timeout, io));
    }
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("store-lock".to_owned())
        .spawn(move || {
            let locked = match kind {
                LockKind::Exclusive => file.lock(),
                LockKind::Shared => file.lock_shared(),
            };
            WAITING_THREADS.fetch_sub(1, Ordering::SeqCst);
            // A caller that gave up dropped the receiver: the file, and the lock with it,
            // is dropped here.
            let _ = tx.send(locked.map(|()| file));
        });
    if let Err(source) = spawned {
        WAITING_THREADS.fetch_sub(1, Ordering::SeqCst);
        return Err(io(source));
    }
    match rx.recv_timeout(wait) {
        Ok(Ok(file)) => Ok(file),
        Ok(Err(source)) => Err(io(source)),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(timeout()),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(io(std::io::Error::other(
            "the lock wait stopped unexpectedly",
        ))),
    }
}

fn try_lock(file: &File, kind: LockKind) -> Result<(), TryLockError> {
    match kind {
        LockKind::Exclusive => file.try_lock(),
        LockKind::Shared => file.try_lock_shared(),
    }
}

/// `Err(None)` on timeout.
fn poll_for_lock(
    file: File,
    kind: LockKind,
    wait: Duration,
) -> Result<File, Option<std::io::Error>> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match try_lock(&file, kind) {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(Some(e)),
        }
        let waited = start.elapsed();
        if waited >= wait {
            return Err(None);
        }
        std::thread::sleep(pause.min(wait - waited));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Opens (creating, mode 0600) a file used only for locking; its content stays empty.
pub(crate) fn open_lock(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(StoreError::io(path))
}

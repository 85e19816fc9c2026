//! One refresh at a time per server, across processes (requirements rule 20): a rotated
//! refresh token used twice revokes the whole token family at strict servers.
//!
//! The lock is an OS file lock (`flock` on unix, `LockFileEx` on Windows) on
//! `state_dir/locks/<hash of the key>.lock`. The OS drops it when the holder exits, so a
//! crashed daemon never leaves a server locked. Lock files are never deleted: deleting one
//! while another process waits on it would let a third process lock a fresh file.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::error::StoreError;
use super::model::{CredentialKey, hex};

/// Held while one server's tokens are refreshed; dropping it releases the lock.
#[derive(Debug)]
#[must_use = "the lock is released when this value is dropped"]
pub struct RefreshLock {
    // Closing the file releases the OS lock.
    _file: File,
    path: PathBuf,
}

impl RefreshLock {
    /// The lock file, for diagnostics.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

pub(crate) fn lock_path(state_dir: &Path, key: &CredentialKey) -> PathBuf {
    let digest = Sha256::digest(key.storage_key().as_bytes());
    state_dir
        .join("locks")
        .join(format!("{}.lock", &hex(&digest)[..32]))
}

/// Blocks until the lock for `key` is free.
pub(crate) fn acquire(state_dir: &Path, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
    let (file, path) = open_lock_file(state_dir, key)?;
    file.lock().map_err(StoreError::io(&path))?;
    Ok(RefreshLock { _file: file, path })
}

/// `None` when another holder (thread or process) has the lock now.
pub(crate) fn try_acquire(
    state_dir: &Path,
    key: &CredentialKey,
) -> Result<Option<RefreshLock>, StoreError> {
    let (file, path) = open_lock_file(state_dir, key)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(RefreshLock { _file: file, path })),
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

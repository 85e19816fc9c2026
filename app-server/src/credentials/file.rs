//! The file backend: one JSON document, `state_dir/credentials.json` (mode 0600).
//!
//! Several daemons may share a state dir (one per frontend, or a CLI `logout` next to a
//! running daemon), so every change is a read-modify-write under an exclusive OS lock on
//! the sibling `credentials.json.lock`, and reads take the shared lock. The new document is
//! written to a temp file in the same directory, synced, and renamed over the old one, so a
//! crash leaves either the old or the new document, never half of one.
//!
//! A document this build cannot read (corrupt, or a future version) is reported and never
//! overwritten: saving over it would destroy every other server's login.
//!
//! What tells versions of the document apart is in [`stamp`], the replacement on disk in
//! [`write`](mod@write).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::document::{self, Document};
use super::error::StoreError;
use super::model::{CredentialKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::{self, LockKind, RefreshLock};
use super::store::{CredentialStore, DEFAULT_LOCK_WAIT, StoreBackend};
use super::update::{Decide, Update, UpdateResult};
use crate::home::Home;

mod stamp;
#[cfg(test)]
mod tests;
mod write;

pub(crate) use self::stamp::{Stamp, Stamped};
use self::write::{FILE_NAME, remove_stale_temp_files, write_atomically};

const LOCK_NAME: &str = "credentials.json.lock";

/// Credentials, registrations and flags in one JSON file under the state dir.
#[derive(Debug)]
pub struct FileStore {
    state_dir: PathBuf,
    path: PathBuf,
    lock_path: PathBuf,
    /// How long any lock (the document's, a refresh lock) is waited for.
    lock_wait: Duration,
    #[cfg(test)]
    reads: AtomicU64,
}

impl FileStore {
    /// Prepares the state dir (0700); the file itself is created by the first save.
    pub fn open(home: &Home) -> Result<FileStore, StoreError> {
        home.ensure_state_dir().map_err(|e| match e {
            crate::home::HomeError::Io { path, source } => StoreError::Io { path, source },
            other => StoreError::Io {
                path: home.state_dir.clone(),
                source: std::io::Error::other(other.to_string()),
            },
        })?;
        Ok(FileStore {
            state_dir: home.state_dir.clone(),
            path: home.state_dir.join(FILE_NAME),
            lock_path: home.state_dir.join(LOCK_NAME),
            lock_wait: DEFAULT_LOCK_WAIT,
            #[cfg(test)]
            reads: AtomicU64::new(0),
        })
    }

    /// The same store with another bound on lock waits (tests use a short one).
    pub(crate) fn with_lock_wait(mut self, wait: Duration) -> FileStore {
        self.lock_wait = wait;
        self
    }

    pub(crate) fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The credentials document.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// A consistent snapshot of the document, read under the shared lock.
    pub(crate) fn read(&self) -> Result<Document, StoreError> {
        self.read_with(Ok)
    }

    /// Runs `read` on the current document while holding the shared lock, so no writer
    /// changes the document (or, for the keyring backend, its items) meanwhile.
    pub(crate) fn read_with<R>(
        &self,
        read: impl FnOnce(Document) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let lock = refresh_lock::open_lock(&self.lock_path)?;
        let _lock =
            refresh_lock::wait_for_lock(lock, &self.lock_path, LockKind::Shared, self.lock_wait)?;
        read(self.read_unlocked()?)
    }

    /// Applies `change` to the current document under the exclusive lock and writes the
    /// result if it differs. Nothing is written when the current document cannot be read.
    pub(crate) fn modify<R>(
        &self,
        change: impl FnOnce(&mut Document) -> R,
    ) -> Result<R, StoreError> {
        self.modify_stamped(change).map(|(result, _)| result)
    }

    /// [`FileStore::modify`], also returning the document now on disk with its stamp
    /// (taken under the exclusive lock, so it describes exactly that document).
    pub(crate) fn modify_stamped<R>(
        &self,
        change: impl FnOnce(&mut Document) -> R,
    ) -> Result<(R, Stamped), StoreError> {
        self.modify_known(|_| None, change)
    }

    /// [`FileStore::modify_stamped`] for a caller that may hold the current document:
    /// `known` gets the file's stamp, taken under the exclusive lock, and returns the
    /// document that stamp describes if it has it, which then is not read again.
    pub(crate) fn modify_known<R>(
        &self,
        known: impl FnOnce(Option<&Stamp>) -> Option<Document>,
        change: impl FnOnce(&mut Document) -> R,
    ) -> Result<(R, Stamped), StoreError> {
        let lock = refresh_lock::open_lock(&self.lock_path)?;
        let _lock = refresh_lock::wait_for_lock(
            lock,
            &self.lock_path,
            LockKind::Exclusive,
            self.lock_wait,
        )?;
        let stamp = self.stamp()?;
        let before = match known(stamp.as_ref()) {
            Some(doc) => doc,
            None => self.read_unlocked()?,
        };
        let mut doc = before.clone();
        let result = change(&mut doc);
        let written = doc != before;
        let stamp = if written {
            remove_stale_temp_files(&self.state_dir);
            write_atomically(&self.state_dir, &self.path, &document::render(&doc))?;
            self.stamp()?
        } else {
            stamp
        };
        // `_lock` is dropped after the rename, so the next writer reads the new document.
        Ok((
            result,
            Stamped {
                stamp,
                doc,
                written,
            },
        ))
    }

    /// The document with the stamp of the very file it was read from, without the lock:
    /// every save renames a complete new file into place, so an open file is one whole
    /// version of the document, never a write in progress, and its `fstat` describes exactly
    /// the bytes read. A writer holding the lock therefore delays no reader: until its
    /// rename the file is the document as it was, after it the new one.
    pub(crate) fn read_stamped(&self) -> Result<Stamped, StoreError> {
        #[cfg(test)]
        self.reads.fetch_add(1, Ordering::Relaxed);
        let io = |source| StoreError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Ok(Stamped {
                    stamp: None,
                    doc: Document::default(),
                    written: false,
                });
            }
            Err(source) => return Err(io(source)),
        };
        let meta = file.metadata().map_err(io)?;
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(io)?;
        Ok(Stamped {
            stamp: Some(Stamp::of(&meta)),
            doc: document::parse(&self.path, &bytes)?,
            written: false,
        })
    }

    /// What identifies the document's current version on disk, from one `metadata` call
    /// (no lock, no read); `None` while the file does not exist.
    pub(crate) fn stamp(&self) -> Result<Option<Stamp>, StoreError> {
        match std::fs::metadata(&self.path) {
            Ok(meta) => Ok(Some(Stamp::of(&meta))),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// Whether a watch on the state directory hears every change to the document: it is
    /// a file of its own (not a link to one elsewhere, nor one with a second name that
    /// could be written through), or there is none yet.
    pub(crate) fn watchable(&self) -> bool {
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) => {
                #[cfg(unix)]
                let single = {
                    use std::os::unix::fs::MetadataExt;
                    meta.nlink() == 1
                };
                #[cfg(not(unix))]
                let single = true;
                meta.file_type().is_file() && single
            }
            Err(e) => e.kind() == ErrorKind::NotFound,
        }
    }

    /// How many times the document was read from disk (a test seam for the cache).
    #[cfg(test)]
    pub(crate) fn document_reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    fn read_unlocked(&self) -> Result<Document, StoreError> {
        #[cfg(test)]
        self.reads.fetch_add(1, Ordering::Relaxed);
        match std::fs::read(&self.path) {
            Ok(bytes) => document::parse(&self.path, &bytes),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(Document::default()),
            Err(source) => Err(StoreError::Io {
                path: self.path.clone(),
                source,
            }),
        }
    }
}

impl CredentialStore for FileStore {
    fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, StoreError> {
        Ok(self.read()?.credentials_for(key).cloned())
    }

    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError> {
        let new = creds.clone();
        CredentialStore::update(self, &creds.key(), Box::new(|_| Update::Save(new))).map(drop)
    }

    fn update(
        &self,
        key: &CredentialKey,
        decide: Decide<'_>,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        // One exclusive lock around the read, the decision and the write.
        self.modify(|doc| doc.apply_update(key, decide))
    }

    fn update_many(&self, updates: Vec<(CredentialKey, Decide<'_>)>) -> Vec<UpdateResult> {
        let n = updates.len();
        match self.modify(|doc| doc.apply_updates(updates)) {
            Ok(stored) => stored.into_iter().map(Ok).collect(),
            Err(e) => e.for_each_of(n),
        }
    }

    fn delete(&self, key: &CredentialKey) -> Result<bool, StoreError> {
        self.modify(|doc| doc.remove_credentials(key))
    }

    fn list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        Ok(self
            .read()?
            .credentials_in_order()
            .map(Arc::unwrap_or_clone)
            .collect())
    }

    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        Ok(self.read()?.registration(issuer, redirect_uri).cloned())
    }

    fn save_registration(&self, reg: &StoredRegistration) -> Result<(), StoreError> {
        self.modify(|doc| doc.put_registration(reg))
    }

    fn save_registrations(&self, regs: &[StoredRegistration]) -> Result<(), StoreError> {
        self.modify(|doc| regs.iter().for_each(|reg| doc.put_registration(reg)))
    }

    fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> Result<(), StoreError> {
        self.modify(|doc| doc.remove_registration(issuer, redirect_uri))
    }

    fn cimd_refused(&self, issuer: &str) -> Result<bool, StoreError> {
        Ok(self.read()?.cimd_refused_issuers.contains(issuer))
    }

    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError> {
        self.modify(|doc| doc.mark_cimd_refused(issuer))
    }

    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
        refresh_lock::acquire(&self.state_dir, key, self.lock_wait)
    }

    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError> {
        refresh_lock::try_acquire(&self.state_dir, key)
    }

    fn prepare_refresh_lock(&self, key: &CredentialKey) -> Result<(), StoreError> {
        refresh_lock::prepare(&self.state_dir, key)
    }

    fn backend(&self) -> StoreBackend {
        StoreBackend::File
    }
}

//! The credential document kept in memory, so handing out a token does not read and parse
//! a file whose size grows with the number of stored servers.
//!
//! Other processes (daemons of other frontends, the CLI) write the same file, so before
//! each use the cache compares the file's stamp (identity, size, modification time: one
//! `metadata` call) with the stamp of the copy it holds, and reads the file again only when
//! they differ. This daemon's own writes replace the copy with the document they wrote.
//!
//! Modification times are coarse (a few milliseconds on common file systems), so two
//! writes in one tick could reuse an inode and a size and look like one. A copy whose
//! modification time is less than [`RACY_WINDOW`] older than the moment its stamp was
//! taken is therefore not trusted: the next use reads the file again, until the copy is
//! old enough that any later write must carry a later time.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use super::document::Document;
use super::error::StoreError;
use super::file::{FileStore, Stamp, Stamped};
use super::model::{CredentialKey, LookupKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::RefreshLock;
use super::{CredentialStore, Decide, StoreBackend, UpdateResult};

/// How much older than its stamp a cached copy's modification time must be to be trusted
/// without a read; well above the timestamp granularity of common file systems.
const RACY_WINDOW: Duration = Duration::from_millis(100);

/// The file store with its document cached in memory; what `open_store` hands out for the
/// file backend.
#[derive(Debug)]
pub struct CachedFileStore {
    file: FileStore,
    copy: Mutex<Option<Snapshot>>,
    /// Checks of the file's stamp made for lookups (a test seam: one per batch of reads).
    #[cfg(test)]
    checks: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Snapshot {
    stamp: Option<Stamp>,
    /// When `stamp` was taken (before the document was read, or right after it was written).
    taken_at: SystemTime,
    doc: Arc<Document>,
}

impl Snapshot {
    fn new(stamped: Stamped, taken_at: SystemTime) -> Snapshot {
        Snapshot {
            stamp: stamped.stamp,
            taken_at,
            doc: Arc::new(stamped.doc),
        }
    }

    /// Whether the file stamped `now` is this copy's document.
    fn matches(&self, now: Option<&Stamp>) -> bool {
        if self.stamp.as_ref() != now {
            return false;
        }
        match now.map(|s| s.modified) {
            // No file: nothing to be racy about (a created file has a stamp).
            None => true,
            Some(Some(modified)) => modified
                .checked_add(RACY_WINDOW)
                .is_some_and(|safe| safe <= self.taken_at),
            // A platform without modification times: identity and size only.
            Some(None) => true,
        }
    }
}

impl CachedFileStore {
    pub fn new(file: FileStore) -> CachedFileStore {
        CachedFileStore {
            file,
            copy: Mutex::new(None),
            #[cfg(test)]
            checks: Default::default(),
        }
    }

    /// The current document: the cached copy when the file's stamp says it is current,
    /// else the file read again.
    fn current(&self) -> Result<Arc<Document>, StoreError> {
        #[cfg(test)]
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = self.file.stamp()?;
        if let Some(copy) = self.lock().as_ref()
            && copy.matches(now.as_ref())
        {
            return Ok(Arc::clone(&copy.doc));
        }
        let taken_at = SystemTime::now();
        let copy = Snapshot::new(self.file.read_stamped()?, taken_at);
        let doc = Arc::clone(&copy.doc);
        *self.lock() = Some(copy);
        Ok(doc)
    }

    /// Changes the document under the file's exclusive lock and keeps what was written.
    /// When the copy is the document on disk (its stamp, checked under the lock, says so)
    /// the file is not read and parsed again.
    fn modify<R>(&self, change: impl FnOnce(&mut Document) -> R) -> Result<R, StoreError> {
        let known = |stamp: Option<&Stamp>| {
            self.lock()
                .as_ref()
                .filter(|copy| copy.matches(stamp))
                .map(|copy| Document::clone(&copy.doc))
        };
        let result = self.file.modify_known(known, change);
        let taken_at = SystemTime::now();
        match result {
            Ok((result, stamped)) => {
                *self.lock() = Some(Snapshot::new(stamped, taken_at));
                Ok(result)
            }
            Err(e) => {
                // The file may or may not have changed: read it next time.
                *self.lock() = None;
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
        // A copy is replaced whole, so a panic elsewhere cannot leave it half-updated.
        self.copy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The wrapped file store (its path, and reads that bypass the cache in tests).
    pub fn file(&self) -> &FileStore {
        &self.file
    }

    /// Stamp checks made for lookups so far.
    #[cfg(test)]
    pub(crate) fn stamp_checks(&self) -> u64 {
        self.checks.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Lookups answered from one checked copy of the document ([`CredentialStore::pinned`]);
/// writes and locks go to the store.
#[derive(Debug)]
struct Pinned<'a> {
    store: &'a CachedFileStore,
    doc: Arc<Document>,
}

impl CredentialStore for Pinned<'_> {
    fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, StoreError> {
        Ok(self.doc.credentials_for(key).cloned())
    }

    fn load_shared(&self, key: &LookupKey) -> Result<Option<Arc<StoredCredentials>>, StoreError> {
        Ok(self.doc.shared_credentials(key).cloned())
    }

    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError> {
        self.store.save(creds)
    }

    fn update(
        &self,
        key: &CredentialKey,
        decide: Decide<'_>,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.store.update(key, decide)
    }

    fn update_many(&self, updates: Vec<(CredentialKey, Decide<'_>)>) -> Vec<UpdateResult> {
        self.store.update_many(updates)
    }

    fn delete(&self, key: &CredentialKey) -> Result<bool, StoreError> {
        self.store.delete(key)
    }

    fn list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        Ok(self
            .doc
            .credentials
            .values()
            .map(|c| (**c).clone())
            .collect())
    }

    fn stored_set(&self) -> Result<super::StoredSet, StoreError> {
        Ok(super::StoredSet::shared(Arc::clone(&self.doc)))
    }

    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        Ok(self.doc.registration(issuer, redirect_uri).cloned())
    }

    fn save_registration(&self, reg: &StoredRegistration) -> Result<(), StoreError> {
        self.store.save_registration(reg)
    }

    fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> Result<(), StoreError> {
        self.store.delete_registration(issuer, redirect_uri)
    }

    fn cimd_refused(&self, issuer: &str) -> Result<bool, StoreError> {
        Ok(self.doc.cimd_refused_issuers.contains(issuer))
    }

    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError> {
        self.store.mark_cimd_refused(issuer)
    }

    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
        self.store.refresh_lock(key)
    }

    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError> {
        self.store.try_refresh_lock(key)
    }

    fn backend(&self) -> StoreBackend {
        self.store.backend()
    }
}

impl CredentialStore for CachedFileStore {
    fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, StoreError> {
        Ok(self.current()?.credentials_for(key).cloned())
    }

    fn load_shared(&self, key: &LookupKey) -> Result<Option<Arc<StoredCredentials>>, StoreError> {
        Ok(self.current()?.shared_credentials(key).cloned())
    }

    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError> {
        let new = creds.clone();
        self.update(&creds.key(), Box::new(|_| super::Update::Save(new)))
            .map(drop)
    }

    fn update(
        &self,
        key: &CredentialKey,
        decide: Decide<'_>,
    ) -> Result<Option<StoredCredentials>, StoreError> {
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
            .current()?
            .credentials
            .values()
            .map(|c| (**c).clone())
            .collect())
    }

    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        Ok(self.current()?.registration(issuer, redirect_uri).cloned())
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
        Ok(self.current()?.cimd_refused_issuers.contains(issuer))
    }

    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError> {
        self.modify(|doc| doc.mark_cimd_refused(issuer))
    }

    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
        self.file.refresh_lock(key)
    }

    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError> {
        self.file.try_refresh_lock(key)
    }

    fn backend(&self) -> StoreBackend {
        StoreBackend::File
    }

    fn pinned(&self) -> Option<Box<dyn CredentialStore + '_>> {
        let doc = self.current().ok()?;
        Some(Box::new(Pinned { store: self, doc }))
    }

    fn stored_set(&self) -> Result<super::StoredSet, StoreError> {
        Ok(super::StoredSet::shared(self.current()?))
    }
}

#[cfg(test)]
#[path = "cache_tests.rs"]
mod tests;

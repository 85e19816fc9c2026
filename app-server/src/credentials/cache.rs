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
//! modification time is less than [`RACY_WINDOW`](super::copy::RACY_WINDOW) older than
//! the moment its stamp was taken is therefore not trusted: the next use reads the file
//! again, until the copy is old enough that any later write must carry a later time.
//!
//! Where the state directory can be watched ([`DirWatch`], Linux), a copy checked against
//! the file after the watch's queue was read is current until the queue holds a change to
//! the file. The file itself is followed too, so a write through another name of it (a
//! hard link made later) is heard. Token lookups are then answered from the copy on the
//! caller's thread ([`CachedFileStore::load_shared_now`]): one non-blocking read of the
//! queue, no file system call. Anything heard (a write of another process, an overflow)
//! sends the next use through the check again. This daemon's own save is heard as
//! exactly one rename over the file; when nothing else was heard while it was made, what
//! it wrote is vouched for at once, so a run of saves never reads the file back.

use std::sync::{Arc, Mutex, PoisonError, TryLockError};
use std::time::SystemTime;

use super::copy::{Held, Snapshot};
use super::document::Document;
use super::error::StoreError;
use super::file::{FileStore, Stamp};
use super::model::{CredentialKey, LookupKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::RefreshLock;
use super::store::{CredentialStore, StoreBackend, StoredSet};
use super::update::{Decide, Update, UpdateResult};
use super::watch::DirWatch;

/// The file store with its document cached in memory; what `open_store` hands out for the
/// file backend.
#[derive(Debug)]
pub(crate) struct CachedFileStore {
    file: FileStore,
    copy: Mutex<Held>,
    /// Changes to the file, heard of without a file system call; `None` where there is
    /// no such watch (other platforms, no inotify instance to be had).
    watch: Option<DirWatch>,
    /// Checks of the file's stamp made for lookups (a test seam: one per batch of reads).
    #[cfg(test)]
    checks: std::sync::atomic::AtomicU64,
    /// Run once between a save's rename and its second read of the watch's queue (a test
    /// seam: another process's write at the worst moment).
    #[cfg(test)]
    after_write: AfterWrite,
}

#[cfg(test)]
type Hook = Box<dyn FnOnce(&CachedFileStore) + Send>;

#[cfg(test)]
#[derive(Default)]
struct AfterWrite(Mutex<Option<Hook>>);

#[cfg(test)]
impl std::fmt::Debug for AfterWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AfterWrite")
    }
}

impl CachedFileStore {
    pub(crate) fn new(file: FileStore) -> CachedFileStore {
        // Watching before the first read: no change can fall between the two.
        let watch = match (file.path().parent(), file.path().file_name()) {
            (Some(dir), Some(name)) => DirWatch::new(dir, name),
            _ => None,
        };
        CachedFileStore {
            file,
            copy: Mutex::default(),
            watch,
            #[cfg(test)]
            checks: Default::default(),
            #[cfg(test)]
            after_write: AfterWrite::default(),
        }
    }

    /// The current document: the cached copy when the watch vouches for it or the file's
    /// stamp says it is current, else the file read again.
    fn current(&self) -> Result<Arc<Document>, StoreError> {
        // A copy the watch vouches for is current: no look at the file, and no read of a
        // copy too young for its stamp to be trusted.
        if let Some(doc) = self.in_memory() {
            return Ok(doc);
        }
        #[cfg(test)]
        self.checks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // The watch's queue first: what it held is covered by the look at the file below,
        // and a change made after this is heard by a later use.
        let heard = self.listen();
        let now = self.file.stamp()?;
        let watchable = heard.is_some() && self.follow_file() && self.file.watchable();
        {
            let mut copy = self.lock();
            let vouch = watchable && copy.still(heard);
            if let Some(snapshot) = copy.snapshot.as_mut()
                && snapshot.matches(now.as_ref())
            {
                snapshot.vouched = vouch;
                return Ok(Arc::clone(&snapshot.doc));
            }
        }
        let taken_at = SystemTime::now();
        let mut snapshot = Snapshot::new(self.file.read_stamped()?, taken_at);
        let doc = Arc::clone(&snapshot.doc);
        let mut copy = self.lock();
        snapshot.vouched = watchable && copy.still(heard);
        copy.snapshot = Some(snapshot);
        Ok(doc)
    }

    /// Follows the file now in place (its link count is looked at after this, and a
    /// change made to it by another name from then on is heard); `false`: not watched.
    fn follow_file(&self) -> bool {
        self.watch
            .as_ref()
            .is_some_and(|watch| watch.follow_file(self.file.path()))
    }

    /// Reads the watch's queue; the count of changes heard so far, `None` without a watch.
    fn listen(&self) -> Option<u64> {
        let watch = self.watch.as_ref()?;
        let mut copy = self.lock();
        copy.drain(watch);
        (!copy.lost).then_some(copy.heard)
    }

    /// The current document without a file system call, when the watch vouches for the
    /// copy: for callers on async threads. Never waits (a copy being replaced right now
    /// counts as not vouched for). `None`: check the file ([`CachedFileStore::current`]).
    fn in_memory(&self) -> Option<Arc<Document>> {
        let watch = self.watch.as_ref()?;
        let mut copy = match self.copy.try_lock() {
            Ok(copy) => copy,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if !copy.snapshot.as_ref().is_some_and(|s| s.vouched) {
            return None;
        }
        copy.drain(watch);
        copy.snapshot
            .as_ref()
            .filter(|s| s.vouched)
            .map(|s| Arc::clone(&s.doc))
    }

    /// Changes the document under the file's exclusive lock and keeps what was written.
    /// When the copy is the document on disk (the watch vouches for it, or its stamp,
    /// checked under the lock, says so) the file is not read and parsed again.
    ///
    /// What was written is vouched for at once when the watch heard exactly one new file
    /// renamed over the document, and nothing else about it, from a read of its queue
    /// made under the lock before the rename to one made right after (other readers of
    /// the queue in between count what they hear for the save): that rename is this
    /// save's, so the file holds what was written. Anything more (another process's save
    /// after ours, a write in place, a second save of ours begun meanwhile) leaves the
    /// copy to be checked at its next use, as for a write of another process.
    fn modify<R>(&self, change: impl FnOnce(&mut Document) -> R) -> Result<R, StoreError> {
        // The number of this save, once the queue was read under the lock.
        let mut save = None;
        let known = |stamp: Option<&Stamp>| {
            let mut copy = self.lock();
            if let Some(watch) = self.watch.as_ref() {
                copy.drain(watch);
                // The file followed is about to be replaced: its end is not a change.
                watch.forget_file();
                save = (!copy.lost).then(|| copy.begin_save());
            }
            copy.snapshot
                .as_ref()
                .filter(|s| (s.vouched && s.stamp.as_ref() == stamp) || s.matches(stamp))
                .map(|s| Document::clone(&s.doc))
        };
        let result = self.file.modify_known(known, change);
        let taken_at = SystemTime::now();
        #[cfg(test)]
        if let Some(hook) = self.after_write.0.lock().unwrap().take() {
            hook(self);
        }
        match result {
            Ok((result, stamped)) => {
                let written = stamped.written;
                let mut snapshot = Snapshot::new(stamped, taken_at);
                let mut copy = self.lock();
                if let (Some(watch), Some(number)) = (self.watch.as_ref(), save) {
                    copy.drain(watch);
                    let heard = copy.end_save(number);
                    // The file in place is ours: followed from now on, then its links
                    // counted.
                    snapshot.vouched = written
                        && heard.is_some_and(|w| w.only_its_rename())
                        && self.follow_file()
                        && self.file.watchable();
                }
                copy.snapshot = Some(snapshot);
                Ok(result)
            }
            Err(e) => {
                // The file may or may not have changed: read it next time.
                let mut copy = self.lock();
                copy.snapshot = None;
                if let Some(number) = save {
                    copy.end_save(number);
                }
                Err(e)
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        // A copy is replaced whole, so a panic elsewhere cannot leave it half-updated.
        self.copy.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The wrapped file store (its path, and reads that bypass the cache).
    #[cfg(test)]
    pub(crate) fn file(&self) -> &FileStore {
        &self.file
    }

    /// Runs `hook` once, right after the next save's rename.
    #[cfg(test)]
    pub(crate) fn after_next_write(&self, hook: impl FnOnce(&CachedFileStore) + Send + 'static) {
        *self.after_write.0.lock().unwrap() = Some(Box::new(hook));
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
            .shared_credentials_in_order()
            .map(|c| (**c).clone())
            .collect())
    }

    fn stored_set(&self) -> Result<StoredSet, StoreError> {
        Ok(StoredSet::shared(Arc::clone(&self.doc)))
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

    fn prepare_refresh_lock(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.store.prepare_refresh_lock(key)
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

    fn load_shared_now(&self, key: &LookupKey) -> Option<Option<Arc<StoredCredentials>>> {
        self.in_memory()
            .map(|doc| doc.shared_credentials(key).cloned())
    }

    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError> {
        let new = creds.clone();
        self.update(&creds.key(), Box::new(|_| Update::Save(new)))
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
            .shared_credentials_in_order()
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

    fn prepare_refresh_lock(&self, key: &CredentialKey) -> Result<(), StoreError> {
        self.file.prepare_refresh_lock(key)
    }

    fn backend(&self) -> StoreBackend {
        StoreBackend::File
    }

    fn pinned(&self) -> Option<Box<dyn CredentialStore + '_>> {
        let doc = self.current().ok()?;
        Some(Box::new(Pinned { store: self, doc }))
    }

    fn stored_set(&self) -> Result<StoredSet, StoreError> {
        Ok(StoredSet::shared(self.current()?))
    }

    fn stored_set_now(&self) -> Option<StoredSet> {
        self.in_memory().map(StoredSet::shared)
    }
}

#[cfg(test)]
mod tests;

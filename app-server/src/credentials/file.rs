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

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::document::{self, Document};
use super::error::StoreError;
use super::model::{CredentialKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::{self, LockKind, RefreshLock};
use super::store::{CredentialStore, DEFAULT_LOCK_WAIT, StoreBackend};
use super::update::{Decide, Update, UpdateResult};
use crate::home::Home;

const FILE_NAME: &str = "credentials.json";
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

/// A document and the stamp of the file it came from.
#[derive(Debug)]
pub(crate) struct Stamped {
    pub stamp: Option<Stamp>,
    pub doc: Document,
    /// The document was just renamed into place by this process (one save), not read.
    pub written: bool,
}

/// The file's identity (device and inode), size and modification time: every save renames
/// a new file over the old one, so a changed document has a changed stamp. Equal stamps
/// can hide a change only within the file system's timestamp granularity, which the cache
/// guards against (see `cache.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    pub modified: Option<SystemTime>,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Stamp {
            dev,
            ino,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
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
    pub fn with_lock_wait(mut self, wait: Duration) -> FileStore {
        self.lock_wait = wait;
        self
    }

    pub(crate) fn lock_wait(&self) -> Duration {
        self.lock_wait
    }

    /// The credentials document.
    pub fn path(&self) -> &Path {
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

/// Removes temp files a writer killed mid-write left behind (they hold tokens). Called under
/// the exclusive lock, when no other writer can be using one.
fn remove_stale_temp_files(dir: &Path) {
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
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), StoreError> {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use super::super::model::fixtures;
    use super::*;

    fn store(dir: &Path) -> FileStore {
        FileStore::open(&Home::at(dir)).unwrap()
    }

    fn key(name: &str) -> CredentialKey {
        CredentialKey::new(name, format!("https://{name}.example.com/mcp"))
    }

    fn creds(name: &str) -> StoredCredentials {
        let k = key(name);
        fixtures::credentials(&k.server_name, &k.server_url)
    }

    /// Names of the files in `dir`, without the lock files and the locks dir.
    fn data_files(dir: &Path) -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n != LOCK_NAME && n != "locks")
            .collect()
    }

    #[test]
    fn missing_file_is_empty_and_reads_do_not_create_it() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        assert_eq!(s.load(&key("a")).unwrap(), None);
        assert!(s.list().unwrap().is_empty());
        assert_eq!(
            s.load_registration("https://as", "http://127.0.0.1/cb")
                .unwrap(),
            None
        );
        assert!(!s.cimd_refused("https://as").unwrap());
        assert!(!s.delete(&key("a")).unwrap());
        assert!(!s.path().exists());
    }

    #[test]
    fn credentials_round_trip_and_delete() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let a = creds("a");
        s.save(&a).unwrap();
        s.save(&creds("b")).unwrap();
        assert_eq!(s.load(&key("a")).unwrap(), Some(a.clone()));

        // A fresh instance (another daemon) sees the same data.
        let other = store(tmp.path());
        assert_eq!(other.load(&key("a")).unwrap(), Some(a.clone()));

        let mut rotated = a.clone();
        rotated.refresh_token = Some("rt-rotated".to_owned());
        rotated.expires_at = None;
        s.save(&rotated).unwrap();
        assert_eq!(other.load(&key("a")).unwrap(), Some(rotated));

        let names: Vec<_> = s
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.server_name)
            .collect();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"a".to_owned()) && names.contains(&"b".to_owned()));

        assert!(s.delete(&key("a")).unwrap());
        assert!(!s.delete(&key("a")).unwrap());
        assert_eq!(s.load(&key("a")).unwrap(), None);
        assert!(s.load(&key("b")).unwrap().is_some());
    }

    #[test]
    fn a_moved_server_does_not_see_old_tokens() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        s.save(&creds("a")).unwrap();
        let moved = CredentialKey::new("a", "https://a.example.com/v2/mcp");
        assert_eq!(s.load(&moved).unwrap(), None);
        assert!(!s.delete(&moved).unwrap());
        assert!(s.load(&key("a")).unwrap().is_some());
    }

    #[test]
    fn registrations_and_cimd_flags_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let reg = fixtures::registration("https://as", "http://127.0.0.1:1/callback/x");
        s.save_registration(&reg).unwrap();
        let other = store(tmp.path());
        assert_eq!(
            other
                .load_registration("https://as", "http://127.0.0.1:1/callback/x")
                .unwrap(),
            Some(reg.clone())
        );
        assert_eq!(
            other
                .load_registration("https://as", "http://127.0.0.1:2/callback/x")
                .unwrap(),
            None
        );
        s.delete_registration("https://as", "http://127.0.0.1:1/callback/x")
            .unwrap();
        assert_eq!(
            other
                .load_registration("https://as", "http://127.0.0.1:1/callback/x")
                .unwrap(),
            None
        );

        s.mark_cimd_refused("https://as").unwrap();
        s.mark_cimd_refused("https://as").unwrap();
        assert!(other.cimd_refused("https://as").unwrap());
        assert!(!other.cimd_refused("https://other-as").unwrap());
        let doc = s.read().unwrap();
        assert_eq!(doc.cimd_refused_issuers.len(), 1);
    }

    #[test]
    fn document_layout_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let a = creds("a");
        s.save(&a).unwrap();
        s.mark_cimd_refused("https://as").unwrap();
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tmp.path().join("credentials.json")).unwrap())
                .unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(
            json["credentials"][a.key().storage_key()]["accessToken"],
            "at-secret-a"
        );
        assert_eq!(json["registrations"], serde_json::json!([]));
        assert_eq!(
            json["cimdRefusedIssuers"],
            serde_json::json!(["https://as"])
        );
    }

    #[cfg(unix)]
    #[test]
    fn file_is_0600_and_dir_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        let s = store(&dir);
        s.save(&creds("a")).unwrap();
        let _lock = s.refresh_lock(&key("a")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
        assert_eq!(mode(&dir.join(LOCK_NAME)), 0o600);
        assert_eq!(mode(&dir.join("locks")), 0o700);

        // A file made readable by someone else is private again after the next write.
        std::fs::set_permissions(dir.join(FILE_NAME), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        s.save(&creds("b")).unwrap();
        assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);
    }

    #[test]
    fn writes_leave_no_temp_files() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        for i in 0..20 {
            s.save(&creds(&format!("s{i}"))).unwrap();
        }
        s.delete(&key("s3")).unwrap();
        s.save_registration(&fixtures::registration("https://as", "http://127.0.0.1/cb"))
            .unwrap();
        assert_eq!(
            data_files(tmp.path()),
            BTreeSet::from([FILE_NAME.to_owned()])
        );
    }

    #[test]
    fn temp_files_of_an_interrupted_writer_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let stale = tmp.path().join(format!(".{FILE_NAME}.999999.0.tmp"));
        std::fs::write(&stale, b"{\"version\":1,").unwrap();
        s.save(&creds("a")).unwrap();
        assert!(!stale.exists());
        assert_eq!(
            data_files(tmp.path()),
            BTreeSet::from([FILE_NAME.to_owned()])
        );
    }

    #[test]
    fn failed_write_removes_its_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        // A non-empty directory in the target's place makes the rename fail after the temp
        // file was written and synced.
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("x"), b"x").unwrap();
        let err = write_atomically(tmp.path(), &target, b"{}").unwrap_err();
        assert!(
            matches!(err, StoreError::Io { ref path, .. } if path == &target),
            "{err:?}"
        );
        assert_eq!(
            data_files(tmp.path()),
            BTreeSet::from(["target".to_owned()])
        );
    }

    #[test]
    fn corrupt_file_is_reported_and_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let garbage = b"{\"version\":1,\"credentials\":{\"a|x\":{\"accessToken\":\"tok\"";
        std::fs::write(s.path(), garbage).unwrap();

        let is_corrupt = |r: Result<(), StoreError>| match r {
            Err(StoreError::Corrupt { path, reason }) => {
                assert_eq!(path, s.path());
                assert!(reason.contains("line 1"), "{reason}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        };
        is_corrupt(s.load(&key("a")).map(drop));
        is_corrupt(s.list().map(drop));
        is_corrupt(s.save(&creds("a")));
        is_corrupt(s.delete(&key("a")).map(drop));
        is_corrupt(s.save_registration(&fixtures::registration("https://as", "http://x")));
        is_corrupt(s.delete_registration("https://as", "http://x"));
        is_corrupt(s.mark_cimd_refused("https://as"));
        assert_eq!(std::fs::read(s.path()).unwrap(), garbage);
        assert_eq!(
            data_files(tmp.path()),
            BTreeSet::from([FILE_NAME.to_owned()])
        );

        let message = s.save(&creds("a")).unwrap_err().to_string();
        assert!(message.contains("credentials.json"), "{message}");
        assert!(message.contains("move it aside"), "{message}");
    }

    #[test]
    fn future_version_is_reported_and_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let future = br#"{"version":2,"credentials":{},"somethingNew":true}"#;
        std::fs::write(s.path(), future).unwrap();
        assert!(matches!(
            s.save(&creds("a")),
            Err(StoreError::UnsupportedVersion { version: 2, .. })
        ));
        assert!(matches!(
            s.load(&key("a")),
            Err(StoreError::UnsupportedVersion { version: 2, .. })
        ));
        assert_eq!(std::fs::read(s.path()).unwrap(), future);
    }

    /// A minimal entry: the concurrency tests rewrite a document of up to 800 of them 880
    /// times, which is slow in debug builds with the full fixture.
    fn small_creds(name: &str) -> StoredCredentials {
        let mut c = creds(name);
        c.access_token = "t".to_owned();
        c.refresh_token = None;
        c.scopes.clear();
        c.revocation_endpoint = None;
        c.client.client_secret = None;
        c
    }

    const THREADS: usize = 8;
    const SAVES_PER_THREAD: usize = 100;

    /// Saves `THREADS x SAVES_PER_THREAD` distinct keys, thread `t` using `stores[t % len]`,
    /// then checks with a fresh instance that every key is present: a lost update (two
    /// writers reading the same old document) would drop some.
    fn concurrent_saves(stores: Vec<Arc<FileStore>>) {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let s = Arc::clone(&stores[t % stores.len()]);
                std::thread::spawn(move || {
                    for i in 0..SAVES_PER_THREAD {
                        s.save(&small_creds(&format!("t{t}-s{i}"))).unwrap();
                        if i % 10 == 0 {
                            // Interleave the other kinds of writes too.
                            s.mark_cimd_refused(&format!("https://as-{t}-{i}")).unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let fresh = store(&stores[0].state_dir);
        let listed: BTreeSet<String> = fresh
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.server_name)
            .collect();
        let expected: BTreeSet<String> = (0..THREADS)
            .flat_map(|t| (0..SAVES_PER_THREAD).map(move |i| format!("t{t}-s{i}")))
            .collect();
        let lost: Vec<_> = expected.difference(&listed).collect();
        assert!(
            lost.is_empty(),
            "{} saves lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        assert_eq!(listed.len(), expected.len());
        assert_eq!(
            fresh.read().unwrap().cimd_refused_issuers.len(),
            THREADS * SAVES_PER_THREAD / 10
        );
    }

    #[test]
    fn concurrent_saves_lose_nothing() {
        // Two instances on one dir stand for two daemons: each operation opens its own lock
        // file handle, and OS file locks exclude other handles exactly as they exclude other
        // processes. Four threads share each instance, so threads of one daemon race too.
        let tmp = tempfile::tempdir().unwrap();
        concurrent_saves(vec![
            Arc::new(store(tmp.path())),
            Arc::new(store(tmp.path())),
        ]);
        assert_eq!(
            data_files(tmp.path()),
            BTreeSet::from([FILE_NAME.to_owned()])
        );
    }

    /// Increments a counter kept in the access token through `update`, from threads of two
    /// instances (two daemons): a read and a write taking the lock separately would let two
    /// writers start from the same value and lose increments.
    #[test]
    fn update_reads_decides_and_writes_under_one_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let mut first = small_creds("a");
        first.access_token = "0".to_owned();
        store(tmp.path()).save(&first).unwrap();
        let stores = [Arc::new(store(tmp.path())), Arc::new(store(tmp.path()))];
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = Arc::clone(&stores[t % 2]);
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        CredentialStore::update(
                            s.as_ref(),
                            &key("a"),
                            Box::new(|current| {
                                let mut next = current.expect("stored").clone();
                                let n: u32 = next.access_token.parse().unwrap();
                                next.access_token = (n + 1).to_string();
                                Update::Save(next)
                            }),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(
            store(tmp.path())
                .load(&key("a"))
                .unwrap()
                .unwrap()
                .access_token,
            "100"
        );
    }

    #[test]
    fn update_keeps_deletes_and_reports_what_is_stored() {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let a = creds("a");
        let seen = std::cell::Cell::new(false);
        let after = CredentialStore::update(
            &s,
            &key("a"),
            Box::new(|current| {
                seen.set(current.is_none());
                Update::Keep
            }),
        )
        .unwrap();
        assert!(seen.get() && after.is_none());
        assert!(!s.path().exists(), "nothing to write");

        s.save(&a).unwrap();
        let mut newer = a.clone();
        newer.access_token = "at-newer".to_owned();
        let kept = CredentialStore::update(&s, &key("a"), Box::new(|_| Update::Keep)).unwrap();
        assert_eq!(kept, Some(a.clone()));
        let saved =
            CredentialStore::update(&s, &key("a"), Box::new(|_| Update::Save(newer.clone())))
                .unwrap();
        assert_eq!(saved, Some(newer.clone()));
        assert_eq!(s.load(&key("a")).unwrap(), Some(newer));
        let gone = CredentialStore::update(&s, &key("a"), Box::new(|_| Update::Delete)).unwrap();
        assert_eq!(gone, None);
        assert_eq!(s.load(&key("a")).unwrap(), None);
    }

    #[test]
    fn lock_waits_end_in_a_retryable_timeout() {
        let tmp = tempfile::tempdir().unwrap();
        let holder = store(tmp.path());
        holder.save(&creds("a")).unwrap();
        let before = std::fs::read(holder.path()).unwrap();
        let waiter = store(tmp.path()).with_lock_wait(Duration::from_millis(100));

        // A refresh lock held elsewhere (another daemon, stuck).
        let held = holder.refresh_lock(&key("a")).unwrap();
        let err = waiter.refresh_lock(&key("a")).unwrap_err();
        assert!(
            matches!(err, StoreError::LockTimeout { ref path, .. } if path == held.path()),
            "{err:?}"
        );
        assert!(err.is_retryable());
        assert!(err.to_string().contains("try again"), "{err}");
        // Other servers are not held up.
        drop(waiter.refresh_lock(&key("b")).unwrap());
        drop(held);
        drop(waiter.refresh_lock(&key("a")).unwrap());

        // The document's lock held exclusively: reads and writes give up, nothing changes.
        let doc_lock = refresh_lock::open_lock(&tmp.path().join(LOCK_NAME)).unwrap();
        doc_lock.lock().unwrap();
        for result in [
            waiter.load(&key("a")).map(drop),
            waiter.save(&creds("b")),
            waiter.list().map(drop),
            waiter.delete(&key("a")).map(drop),
        ] {
            let err = result.unwrap_err();
            assert!(
                matches!(err, StoreError::LockTimeout { ref path, .. } if path.ends_with(LOCK_NAME)),
                "{err:?}"
            );
        }
        assert_eq!(std::fs::read(holder.path()).unwrap(), before);
        // A reader holding the shared lock blocks writers, not other readers.
        drop(doc_lock);
        let shared = refresh_lock::open_lock(&tmp.path().join(LOCK_NAME)).unwrap();
        shared.lock_shared().unwrap();
        assert!(waiter.load(&key("a")).unwrap().is_some());
        assert!(matches!(
            waiter.save(&creds("b")),
            Err(StoreError::LockTimeout { .. })
        ));
        drop(shared);
        waiter.save(&creds("b")).unwrap();
    }

    #[test]
    fn a_prepared_refresh_lock_is_a_file_and_no_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let one = store(tmp.path());
        let path = refresh_lock::lock_path(tmp.path(), &key("a"));
        assert!(!path.exists());
        one.prepare_refresh_lock(&key("a")).unwrap();
        one.prepare_refresh_lock(&key("a")).unwrap();
        assert!(path.is_file());
        // Not held: another store takes it at once, and then preparing does not wait.
        let held = store(tmp.path()).try_refresh_lock(&key("a")).unwrap();
        assert_eq!(held.as_ref().map(|l| l.path()), Some(path.as_path()));
        one.prepare_refresh_lock(&key("a")).unwrap();
    }

    #[test]
    fn refresh_lock_excludes_a_second_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let one = store(tmp.path());
        let two = store(tmp.path());
        let held = one.refresh_lock(&key("a")).unwrap();
        assert!(held.path().starts_with(tmp.path().join("locks")));
        assert!(two.try_refresh_lock(&key("a")).unwrap().is_none());
        assert!(one.try_refresh_lock(&key("a")).unwrap().is_none());
        // Other servers are not blocked.
        let other = two.try_refresh_lock(&key("b")).unwrap();
        assert!(other.is_some());
        assert_ne!(other.unwrap().path(), held.path());
        drop(held);
        let again = two.try_refresh_lock(&key("a")).unwrap();
        assert!(again.is_some());
    }

    #[test]
    fn blocking_refresh_lock_waits_for_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Arc::new(store(tmp.path()));
        let held = s.refresh_lock(&key("a")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let s = Arc::clone(&s);
            std::thread::spawn(move || {
                let lock = s.refresh_lock(&key("a")).unwrap();
                tx.send(()).unwrap();
                drop(lock);
            })
        };
        // While held, the waiter cannot have acquired it (the lock is still exclusive).
        assert!(s.try_refresh_lock(&key("a")).unwrap().is_none());
        assert!(rx.try_recv().is_err());
        drop(held);
        rx.recv().unwrap();
        waiter.join().unwrap();
    }
}

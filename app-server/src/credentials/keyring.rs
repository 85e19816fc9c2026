//! The keyring backend: each server's tokens are one OS keyring item (service
//! `mcp-app-server`, account = the key's storage key, secret = the JSON of
//! [`StoredCredentials`]).
//!
//! Keyrings cannot be enumerated portably, so the file document keeps an index of the keys
//! stored here; registrations and the CIMD-refused flags also stay in the file (they are
//! per issuer, not user tokens). Entries left in the file by the file backend are still
//! found, and move into the keyring on their next save, so switching backends does not log
//! anyone out.
//!
//! Items are only written while the file document's exclusive lock is held, and read under
//! its shared lock, so the compare-and-save of [`CredentialStore::update`] excludes other
//! daemons' writes as it does for the file backend.
//!
//! Every keyring call runs on a thread of its own with a time bound: the Linux backend
//! drives its own tokio runtime with `block_on`, which panics on a runtime thread, and a
//! D-Bus service that never answers must not hang a login.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::error::StoreError;
use super::file::FileStore;
use super::model::{CredentialKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::{self, RefreshLock};
use super::store::{CredentialStore, StoreBackend};
use super::update::{Decide, Update};

/// The keyring service name of every item this program stores.
pub const KEYRING_SERVICE: &str = "mcp-app-server";

/// Account of the item the probe reads; it is never written.
const PROBE_ACCOUNT: &str = "mcp-app-server-availability-probe";

/// How long the availability probe may take before the keyring counts as unavailable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one keyring operation may take; long enough for an unlock prompt.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Secrets by account name. The OS keyring in production; a map in tests, so the store's
/// bookkeeping is tested on machines without a keyring.
pub(crate) trait Secrets: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<String>, StoreError>;
    fn set(&self, account: &str, secret: &str) -> Result<(), StoreError>;
    /// `false` when there was no such item.
    fn delete(&self, account: &str) -> Result<bool, StoreError>;
}

/// Checks that the OS keyring answers: reading an item that does not exist must give "no
/// entry". Any platform error, or no answer within 3 s, means unavailable. Safe to call from
/// async code, `spawn_blocking` and plain threads.
pub fn probe_keyring() -> Result<(), String> {
    let outcome = run_bounded(PROBE_TIMEOUT, || {
        keyring::Entry::new(KEYRING_SERVICE, PROBE_ACCOUNT).and_then(|e| e.get_password())
    })?;
    match outcome {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(describe(&e)),
    }
}

/// Runs `op` on a new thread and waits at most `timeout`. On timeout the thread is left to
/// finish (or not) on its own; there is no way to cancel a blocked platform call.
fn run_bounded<T: Send + 'static>(
    timeout: Duration,
    op: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keyring".to_owned())
        .spawn(move || {
            // The receiver may have given up; nothing to do then.
            let _ = tx.send(op());
        })
        .map_err(|e| format!("could not start a thread for the keyring call: {e}"))?;
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => format!(
            "the keyring did not answer within {} s (is it waiting for an unlock prompt?)",
            timeout.as_secs()
        ),
        mpsc::RecvTimeoutError::Disconnected => "the keyring call panicked".to_owned(),
    })
}

/// The error's text, without the debug dump of matching items `Ambiguous` would print.
fn describe(e: &keyring::Error) -> String {
    match e {
        keyring::Error::Ambiguous(items) => format!(
            "{} keyring items match the same service and account; remove the duplicates \
             with the keyring manager",
            items.len()
        ),
        other => other.to_string(),
    }
}

/// The platform keyring through the `keyring` crate.
pub(crate) struct OsKeyring;

impl OsKeyring {
    fn call<T: Send + 'static>(
        account: &str,
        op: impl FnOnce(keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, StoreError> {
        let account = account.to_owned();
        run_bounded(OPERATION_TIMEOUT, move || {
            keyring::Entry::new(KEYRING_SERVICE, &account).and_then(op)
        })
        .map_err(|reason| StoreError::Keyring { reason })
    }
}

fn keyring_error(e: keyring::Error) -> StoreError {
    StoreError::Keyring {
        reason: describe(&e),
    }
}

impl Secrets for OsKeyring {
    fn get(&self, account: &str) -> Result<Option<String>, StoreError> {
        match Self::call(account, |e| e.get_password())? {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), StoreError> {
        let secret = secret.to_owned();
        Self::call(account, move |e| e.set_password(&secret))?.map_err(keyring_error)
    }

    fn delete(&self, account: &str) -> Result<bool, StoreError> {
        match Self::call(account, |e| e.delete_credential())? {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// Tokens in the OS keyring; everything else in the file document.
pub struct KeyringStore {
    file: FileStore,
    secrets: Box<dyn Secrets>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    pub(crate) fn new(file: FileStore, secrets: Box<dyn Secrets>) -> KeyringStore {
        KeyringStore { file, secrets }
    }

    /// The keyring item for `key`. An item that does not parse is reported separately from
    /// platform failures, so `list` can skip it and still show the other servers.
    fn read_item(&self, key: &CredentialKey) -> Result<Item, StoreError> {
        let account = key.storage_key();
        let Some(secret) = self.secrets.get(&account)? else {
            return Ok(Item::Missing);
        };
        Ok(match serde_json::from_str::<StoredCredentials>(&secret) {
            // Stored for another URL under a colliding account: not this server's tokens.
            Ok(creds) if creds.key() != *key => Item::Missing,
            Ok(creds) => Item::Found(Box::new(creds)),
            Err(_) => Item::Unreadable(StoreError::Keyring {
                reason: format!(
                    "the keyring item {KEYRING_SERVICE}/{account} does not hold credentials \
                     this build can read; log out of {} to remove it",
                    key.server_name
                ),
            }),
        })
    }
}

enum Item {
    Missing,
    Found(Box<StoredCredentials>),
    Unreadable(StoreError),
}

impl CredentialStore for KeyringStore {
    fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, StoreError> {
        // Under the document's shared lock: no save moves the entry between the keyring
        // and the file while it is looked up in both.
        self.file.read_with(|doc| match self.read_item(key)? {
            Item::Found(creds) => Ok(Some(*creds)),
            Item::Unreadable(e) => Err(e),
            // Left in the file by the file backend before the switch to the keyring.
            Item::Missing => Ok(doc.credentials_for(key).cloned()),
        })
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
        // Every write of an item happens under the document's exclusive lock, so this
        // read, decision and write exclude other daemons' writes as the file backend does.
        self.file.modify(|doc| {
            let current = match self.read_item(key)? {
                Item::Found(creds) => Some(*creds),
                // Nobody can use an item this build cannot read: a login may replace it and
                // a logout remove it, and a compare-and-save finds nothing to compare with.
                Item::Unreadable(_) => None,
                Item::Missing => doc.credentials_for(key).cloned(),
            };
            let account = key.storage_key();
            match decide(current.as_ref()) {
                Update::Keep => Ok(current),
                Update::Save(new) => {
                    debug_assert_eq!(&new.key(), key);
                    let secret =
                        serde_json::to_string(&new).expect("credentials serialize to JSON");
                    // Index first: an index entry without an item is skipped by `list`,
                    // while an item missing from the index would be invisible to `status`.
                    doc.keyring_index.insert(key.clone());
                    self.secrets.set(&account, &secret)?;
                    // The keyring copy is now the current one; drop any older copy from
                    // the file.
                    doc.credentials.remove(&account);
                    Ok(Some(new))
                }
                Update::Delete => {
                    self.secrets.delete(&account)?;
                    doc.keyring_index.remove(key);
                    if doc.credentials_for(key).is_some() {
                        doc.credentials.remove(&account);
                    }
                    Ok(None)
                }
            }
        })?
    }

    fn delete(&self, key: &CredentialKey) -> Result<bool, StoreError> {
        let mut found = false;
        self.update(
            key,
            Box::new(|current| {
                found = current.is_some();
                Update::Delete
            }),
        )?;
        Ok(found)
    }

    fn list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        let mut doc = self.file.read()?;
        let mut all = Vec::new();
        for key in &doc.keyring_index {
            match self.read_item(key)? {
                Item::Found(creds) => all.push(*creds),
                // Indexed but never written (a save failed half way), or removed by hand.
                Item::Missing => {
                    tracing::debug!(server = %key, "keyring item listed in the index is missing");
                }
                // One unreadable item must not hide every other server's status.
                Item::Unreadable(e) => tracing::warn!(server = %key, "{e}"),
            }
        }
        let in_keyring = std::mem::take(&mut doc.keyring_index);
        all.extend(
            doc.credentials_in_order()
                .filter(|c| !in_keyring.contains(&c.key()))
                .map(Arc::unwrap_or_clone),
        );
        Ok(all)
    }

    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        self.file.load_registration(issuer, redirect_uri)
    }

    fn save_registration(&self, reg: &StoredRegistration) -> Result<(), StoreError> {
        self.file.save_registration(reg)
    }

    fn save_registrations(&self, regs: &[StoredRegistration]) -> Result<(), StoreError> {
        self.file.save_registrations(regs)
    }

    fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> Result<(), StoreError> {
        self.file.delete_registration(issuer, redirect_uri)
    }

    fn cimd_refused(&self, issuer: &str) -> Result<bool, StoreError> {
        self.file.cimd_refused(issuer)
    }

    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError> {
        self.file.mark_cimd_refused(issuer)
    }

    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
        refresh_lock::acquire(self.file.state_dir(), key, self.file.lock_wait())
    }

    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError> {
        refresh_lock::try_acquire(self.file.state_dir(), key)
    }

    fn prepare_refresh_lock(&self, key: &CredentialKey) -> Result<(), StoreError> {
        refresh_lock::prepare(self.file.state_dir(), key)
    }

    fn backend(&self) -> StoreBackend {
        StoreBackend::Keyring
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    use super::super::model::fixtures;
    use super::*;
    use crate::home::Home;

    /// Secrets in a map; `fail` makes every call fail as a locked keyring would.
    #[derive(Default, Clone)]
    pub(crate) struct MemorySecrets {
        items: Arc<Mutex<HashMap<String, String>>>,
        fail: Arc<AtomicBool>,
    }

    impl MemorySecrets {
        fn check(&self) -> Result<(), StoreError> {
            if self.fail.load(Ordering::SeqCst) {
                Err(StoreError::Keyring {
                    reason: "Couldn't access platform secure storage: locked".to_owned(),
                })
            } else {
                Ok(())
            }
        }
    }

    impl Secrets for MemorySecrets {
        fn get(&self, account: &str) -> Result<Option<String>, StoreError> {
            self.check()?;
            Ok(self.items.lock().unwrap().get(account).cloned())
        }
        fn set(&self, account: &str, secret: &str) -> Result<(), StoreError> {
            self.check()?;
            self.items
                .lock()
                .unwrap()
                .insert(account.to_owned(), secret.to_owned());
            Ok(())
        }
        fn delete(&self, account: &str) -> Result<bool, StoreError> {
            self.check()?;
            Ok(self.items.lock().unwrap().remove(account).is_some())
        }
    }

    fn key(name: &str) -> CredentialKey {
        CredentialKey::new(name, format!("https://{name}.example.com/mcp"))
    }

    fn creds(name: &str) -> StoredCredentials {
        let k = key(name);
        fixtures::credentials(&k.server_name, &k.server_url)
    }

    fn stores(dir: &std::path::Path) -> (KeyringStore, MemorySecrets, FileStore) {
        let secrets = MemorySecrets::default();
        let home = Home::at(dir);
        let store = KeyringStore::new(FileStore::open(&home).unwrap(), Box::new(secrets.clone()));
        (store, secrets, FileStore::open(&home).unwrap())
    }

    fn file_text(file: &FileStore) -> String {
        std::fs::read_to_string(file.path()).unwrap_or_default()
    }

    #[test]
    fn tokens_go_to_the_keyring_and_only_the_index_to_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, file) = stores(tmp.path());
        let a = creds("a");
        store.save(&a).unwrap();
        assert_eq!(store.load(&key("a")).unwrap(), Some(a.clone()));
        assert_eq!(store.backend(), StoreBackend::Keyring);

        let item = secrets.items.lock().unwrap()[&key("a").storage_key()].clone();
        assert_eq!(serde_json::from_str::<StoredCredentials>(&item).unwrap(), a);
        let text = file_text(&file);
        assert!(
            !text.contains("at-secret-a") && !text.contains("rt-secret-a"),
            "{text}"
        );
        assert!(file.read().unwrap().keyring_index.contains(&key("a")));

        assert_eq!(store.list().unwrap(), vec![a]);
        assert!(store.delete(&key("a")).unwrap());
        assert!(!store.delete(&key("a")).unwrap());
        assert_eq!(store.load(&key("a")).unwrap(), None);
        assert!(secrets.items.lock().unwrap().is_empty());
        assert!(file.read().unwrap().keyring_index.is_empty());
    }

    #[test]
    fn file_entries_are_found_and_moved_on_save() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, file) = stores(tmp.path());
        let legacy = creds("old");
        file.save(&legacy).unwrap();
        store.save(&creds("new")).unwrap();

        assert_eq!(store.load(&key("old")).unwrap(), Some(legacy.clone()));
        let mut names: Vec<_> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.server_name)
            .collect();
        names.sort();
        assert_eq!(names, ["new", "old"]);

        let mut refreshed = legacy.clone();
        refreshed.access_token = "at-refreshed".to_owned();
        store.save(&refreshed).unwrap();
        assert_eq!(store.load(&key("old")).unwrap(), Some(refreshed));
        assert!(!file_text(&file).contains("at-secret-old"));
        assert!(
            secrets
                .items
                .lock()
                .unwrap()
                .contains_key(&key("old").storage_key())
        );

        // Deleting finds a file-only entry too.
        file.save(&creds("file-only")).unwrap();
        assert!(store.delete(&key("file-only")).unwrap());
        assert_eq!(store.load(&key("file-only")).unwrap(), None);
    }

    #[test]
    fn list_skips_indexed_keys_without_an_item() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, _file) = stores(tmp.path());
        store.save(&creds("a")).unwrap();
        store.save(&creds("b")).unwrap();
        secrets
            .items
            .lock()
            .unwrap()
            .remove(&key("a").storage_key());
        let names: Vec<_> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.server_name)
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn unreadable_item_is_an_error_that_names_the_server_not_the_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, _file) = stores(tmp.path());
        store.save(&creds("b")).unwrap();
        store.save(&creds("a")).unwrap();
        secrets.items.lock().unwrap().insert(
            key("a").storage_key(),
            "{\"accessToken\":\"tok-SECRET\"".to_owned(),
        );
        let err = store.load(&key("a")).unwrap_err().to_string();
        assert!(err.contains("log out of a"), "{err}");
        assert!(!err.contains("SECRET"), "{err}");
        // Status still shows the other server.
        let names: Vec<_> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|c| c.server_name)
            .collect();
        assert_eq!(names, ["b"]);
    }

    #[test]
    fn keyring_failures_are_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, file) = stores(tmp.path());
        secrets.fail.store(true, Ordering::SeqCst);
        assert!(matches!(
            store.save(&creds("a")),
            Err(StoreError::Keyring { .. })
        ));
        assert!(matches!(
            store.load(&key("a")),
            Err(StoreError::Keyring { .. })
        ));
        assert!(matches!(
            store.delete(&key("a")),
            Err(StoreError::Keyring { .. })
        ));
        assert!(!file_text(&file).contains("at-secret-a"));
        // Registrations do not involve the keyring.
        let reg = fixtures::registration("https://as", "http://127.0.0.1/cb");
        store.save_registration(&reg).unwrap();
        assert_eq!(
            store
                .load_registration("https://as", "http://127.0.0.1/cb")
                .unwrap(),
            Some(reg)
        );
        store.mark_cimd_refused("https://as").unwrap();
        assert!(store.cimd_refused("https://as").unwrap());
    }

    #[test]
    fn update_compares_under_the_document_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, _file) = stores(tmp.path());
        let a = creds("a");
        store.save(&a).unwrap();
        let mut rotated = a.clone();
        rotated.refresh_token = Some("rt-rotated".to_owned());
        // What the caller expected is stored: saved.
        let expected = a.clone();
        let after = store
            .update(
                &key("a"),
                Box::new(|now| {
                    if now == Some(&expected) {
                        Update::Save(rotated.clone())
                    } else {
                        Update::Keep
                    }
                }),
            )
            .unwrap();
        assert_eq!(after.as_ref(), Some(&rotated));
        // Something else is stored now: kept, and returned.
        let stale = store
            .update(
                &key("a"),
                Box::new(|now| {
                    if now == Some(&expected) {
                        Update::Save(expected.clone())
                    } else {
                        Update::Keep
                    }
                }),
            )
            .unwrap();
        assert_eq!(stale.as_ref(), Some(&rotated));
        assert_eq!(store.load(&key("a")).unwrap(), Some(rotated));

        // While another daemon holds the document lock, nothing is read or written.
        let waiter = KeyringStore::new(
            FileStore::open(&Home::at(tmp.path()))
                .unwrap()
                .with_lock_wait(Duration::from_millis(50)),
            Box::new(secrets.clone()),
        );
        let doc_lock = refresh_lock::open_lock(&tmp.path().join("credentials.json.lock")).unwrap();
        doc_lock.lock().unwrap();
        assert!(matches!(
            waiter.save(&creds("a")),
            Err(StoreError::LockTimeout { .. })
        ));
        assert!(matches!(
            waiter.load(&key("a")),
            Err(StoreError::LockTimeout { .. })
        ));
        drop(doc_lock);
        assert_eq!(
            store
                .load(&key("a"))
                .unwrap()
                .unwrap()
                .refresh_token
                .as_deref(),
            Some("rt-rotated")
        );
    }

    #[test]
    fn an_unreadable_item_can_be_logged_out_or_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, secrets, _file) = stores(tmp.path());
        store.save(&creds("a")).unwrap();
        let garbage = || {
            secrets
                .items
                .lock()
                .unwrap()
                .insert(key("a").storage_key(), "not json".to_owned());
        };
        garbage();
        assert!(store.delete(&key("a")).unwrap() || store.load(&key("a")).unwrap().is_none());
        assert!(secrets.items.lock().unwrap().is_empty());
        store.save(&creds("a")).unwrap();
        garbage();
        store.save(&creds("a")).unwrap();
        assert_eq!(store.load(&key("a")).unwrap(), Some(creds("a")));
    }

    #[test]
    fn refresh_lock_is_shared_with_the_file_backend() {
        let tmp = tempfile::tempdir().unwrap();
        let (store, _secrets, file) = stores(tmp.path());
        let held = store.refresh_lock(&key("a")).unwrap();
        assert!(file.try_refresh_lock(&key("a")).unwrap().is_none());
        drop(held);
        assert!(file.try_refresh_lock(&key("a")).unwrap().is_some());
    }

    #[test]
    fn probe_answers_from_plain_threads() {
        // Whatever this machine offers, the probe returns (within its bound) and says why.
        if let Err(reason) = probe_keyring() {
            assert!(!reason.is_empty());
        }
        let from_thread = std::thread::spawn(probe_keyring).join().unwrap();
        assert_eq!(from_thread.is_ok(), probe_keyring().is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn probe_is_safe_inside_a_tokio_runtime() {
        let direct = probe_keyring();
        let blocking = tokio::task::spawn_blocking(probe_keyring).await.unwrap();
        assert_eq!(direct.is_ok(), blocking.is_ok());
    }

    #[test]
    fn bounded_call_gives_up_on_a_hung_operation() {
        let (release, wait) = mpsc::channel::<()>();
        let err = run_bounded(Duration::from_millis(10), move || {
            let _ = wait.recv();
        })
        .unwrap_err();
        assert!(err.contains("did not answer"), "{err}");
        drop(release);
        assert_eq!(run_bounded(Duration::from_secs(60), || 7).unwrap(), 7);
    }
}

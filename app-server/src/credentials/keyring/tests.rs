//! The keyring backend against an in-memory keyring: tokens in items, the index in the
//! file, failures named without secrets, locks shared with the file backend, the probe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::super::model::fixtures;
use super::*;
use crate::home::Home;

/// Secrets in a map; `fail` makes every call fail as a locked keyring would.
#[derive(Default, Clone)]
pub(crate) struct MemorySecrets {
    pub(crate) items: Arc<Mutex<HashMap<String, String>>>,
    pub(crate) fail: Arc<AtomicBool>,
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

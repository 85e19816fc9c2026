use std::sync::mpsc;
use std::time::Duration;

use super::*;
use crate::credentials::{
    CachedFileStore, CredentialKey, CredentialStore, Decide, FileStore, RefreshLock, StoreBackend,
    StoredCredentials, UpdateResult,
};
use crate::home::Home;

fn reg(i: usize) -> StoredRegistration {
    StoredRegistration {
        issuer: "https://as.example".into(),
        redirect_uri: format!("http://127.0.0.1:4000/callback/{i}"),
        client_id: format!("client-{i}"),
        client_secret: None,
        token_endpoint_auth_method: "none".into(),
        registered_at: 0,
        client_secret_expires_at: None,
        certificate_x5t: None,
    }
}

/// A file store whose first registration write waits until the test lets it go, and
/// which records how many registrations each write carried.
#[derive(Debug)]
struct Gated {
    inner: CachedFileStore,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
    sizes: Mutex<Vec<usize>>,
}

impl CredentialStore for Gated {
    fn save_registrations(&self, regs: &[StoredRegistration]) -> Result<(), StoreError> {
        self.sizes.lock().unwrap().push(regs.len());
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
            let release = self.release.lock().unwrap().take().unwrap();
            release.recv().unwrap();
        }
        self.inner.save_registrations(regs)
    }
    fn save_registration(&self, _: &StoredRegistration) -> Result<(), StoreError> {
        panic!("registrations are saved in batches")
    }
    fn load(&self, key: &CredentialKey) -> UpdateResult {
        self.inner.load(key)
    }
    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError> {
        self.inner.save(creds)
    }
    fn update(&self, key: &CredentialKey, decide: Decide<'_>) -> UpdateResult {
        self.inner.update(key, decide)
    }
    fn delete(&self, key: &CredentialKey) -> Result<bool, StoreError> {
        self.inner.delete(key)
    }
    fn list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        self.inner.list()
    }
    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        self.inner.load_registration(issuer, redirect_uri)
    }
    fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> Result<(), StoreError> {
        self.inner.delete_registration(issuer, redirect_uri)
    }
    fn cimd_refused(&self, issuer: &str) -> Result<bool, StoreError> {
        self.inner.cimd_refused(issuer)
    }
    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError> {
        self.inner.mark_cimd_refused(issuer)
    }
    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
        self.inner.refresh_lock(key)
    }
    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError> {
        self.inner.try_refresh_lock(key)
    }
    fn backend(&self) -> StoreBackend {
        StoreBackend::File
    }
}

fn waiting_regs(saves: &RegistrationSaves) -> usize {
    lock(&saves.waiting).as_ref().map_or(0, |b| b.regs.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registrations_queued_during_a_write_share_the_next_one_and_all_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gated = Arc::new(Gated {
        inner: CachedFileStore::new(FileStore::open(&Home::at(dir.path())).unwrap()),
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(Some(release_rx)),
        sizes: Mutex::new(Vec::new()),
    });
    let queue = StoreQueue::new(gated.clone());
    let saves = Arc::new(RegistrationSaves::default());
    let spawn = |i: usize| {
        let (saves, queue) = (saves.clone(), queue.clone());
        tokio::spawn(async move { saves.save(&queue, reg(i)).await })
    };
    // The first registration is being written (held) ...
    let first = spawn(0);
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    // ... while 50 more logins save theirs.
    let rest: Vec<_> = (1..=50).map(spawn).collect();
    tokio::time::timeout(Duration::from_secs(20), async {
        while waiting_regs(&saves) < 50 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("all 50 saves waiting");
    assert_eq!(queue.queued(), 1, "one write queued for the 50");
    // Until written, each one is known to the next login that asks.
    assert_eq!(
        saves
            .unwritten("https://as.example", &reg(7).redirect_uri)
            .map(|r| r.client_id),
        Some("client-7".to_string())
    );
    saves.forget("https://as.example", &reg(8).redirect_uri);
    assert!(
        saves
            .unwritten("https://as.example", &reg(8).redirect_uri)
            .is_none()
    );
    release_tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    for t in rest {
        t.await.unwrap().unwrap();
    }
    for i in 0..=50 {
        assert!(
            saves
                .unwritten("https://as.example", &reg(i).redirect_uri)
                .is_none(),
            "written ones are not kept in memory"
        );
    }
    // Two writes: the first one alone, the 50 saved meanwhile together, and one
    // registration write queued for those 50, not one each.
    assert_eq!(*gated.sizes.lock().unwrap(), [1, 50]);
    // All of them are in the file, as another process reads it.
    let other = FileStore::open(&Home::at(dir.path())).unwrap();
    for i in 0..=50 {
        let found = other
            .load_registration("https://as.example", &reg(i).redirect_uri)
            .unwrap()
            .expect("registration stored");
        assert_eq!(found.client_id, format!("client-{i}"));
    }
}

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use super::super::model::fixtures;
use super::super::refresh_lock::RefreshLock;
use super::super::{CachedFileStore, FileStore, StoreBackend, StoredRegistration};
use super::*;
use crate::home::Home;

fn file_store(dir: &Path) -> CachedFileStore {
    CachedFileStore::new(FileStore::open(&Home::at(dir)).unwrap())
}

/// What another process sees: a store of its own on the same directory.
fn other_process(dir: &Path) -> FileStore {
    FileStore::open(&Home::at(dir)).unwrap()
}

fn creds(i: usize) -> StoredCredentials {
    fixtures::credentials(&format!("s{i}"), &format!("https://s{i}.example/mcp"))
}

fn save(c: StoredCredentials) -> SendDecide {
    Box::new(move |_| Update::Save(c))
}

/// A file store whose first `update_many` waits until the test lets it go, and which
/// records how many updates each `update_many` carried.
#[derive(Debug)]
struct Gated {
    inner: CachedFileStore,
    entered: Mutex<Option<mpsc::Sender<()>>>,
    release: Mutex<Option<mpsc::Receiver<()>>>,
    sizes: Mutex<Vec<usize>>,
}

impl CredentialStore for Gated {
    fn update_many(&self, updates: Vec<(CredentialKey, Decide<'_>)>) -> Vec<UpdateResult> {
        self.sizes.lock().unwrap().push(updates.len());
        if let Some(entered) = self.entered.lock().unwrap().take() {
            entered.send(()).unwrap();
            let release = self.release.lock().unwrap().take().unwrap();
            release.recv().unwrap();
        }
        self.inner.update_many(updates)
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
    fn save_registration(&self, reg: &StoredRegistration) -> Result<(), StoreError> {
        self.inner.save_registration(reg)
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

async fn until(what: impl Fn() -> bool) {
    tokio::time::timeout(Duration::from_secs(20), async {
        while !what() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("condition reached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_queued_during_a_write_share_the_next_write_and_are_durable_when_answered() {
    let tmp = tempfile::tempdir().unwrap();
    let (gated, entered_rx, release_tx) = gated(tmp.path());
    let queue = StoreQueue::new(gated.clone());

    // The first update is being written (held at the gate) ...
    let first = tokio::spawn({
        let q = queue.clone();
        async move { q.update(creds(0).key(), save(creds(0))).await }
    });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    // ... while 199 more arrive: they wait for it, together.
    let rest: Vec<_> = (1..200)
        .map(|i| {
            let q = queue.clone();
            let dir = tmp.path().to_path_buf();
            tokio::spawn(async move {
                let c = creds(i);
                let stored = q.update(c.key(), save(c.clone())).await;
                // Answered only once it is on disk, as any other process reads it.
                let on_disk = other_process(&dir).load(&c.key()).unwrap();
                (stored, on_disk, c)
            })
        })
        .collect();
    until(|| queue.queued() == 199).await;
    assert!(!first.is_finished());
    release_tx.send(()).unwrap();

    assert_eq!(first.await.unwrap().unwrap(), Some(creds(0)));
    for task in rest {
        let (stored, on_disk, c) = task.await.unwrap();
        assert_eq!(stored.unwrap(), Some(c.clone()));
        assert_eq!(on_disk, Some(c));
    }
    assert_eq!(*gated.sizes.lock().unwrap(), vec![1, 199]);
    let counts = queue.counts();
    assert_eq!((counts.updates, counts.writes), (200, 2));
    assert_eq!(other_process(tmp.path()).list().unwrap().len(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_sees_what_another_process_wrote_before_it_was_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let queue = StoreQueue::new(Arc::new(file_store(tmp.path())));
    let other = other_process(tmp.path());
    let mut c = creds(1);
    assert_eq!(queue.load(c.key()).await.unwrap(), None);
    for i in 0..50 {
        c.access_token = format!("at-{i}");
        other.save(&c).unwrap();
        assert_eq!(queue.load(c.key()).await.unwrap(), Some(c.clone()));
    }
    other.delete(&c.key()).unwrap();
    assert_eq!(queue.load(c.key()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_group_write_fails_every_update_in_it_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = file_store(tmp.path());
    store.save(&creds(0)).unwrap();
    let queue = StoreQueue::new(Arc::new(store));
    // Another writer left a file this build cannot read: nothing may replace it.
    let path = tmp.path().join("credentials.json");
    std::fs::write(&path, b"{ not json").unwrap();
    let tasks: Vec<_> = (1..20)
        .map(|i| {
            let q = queue.clone();
            tokio::spawn(async move { q.update(creds(i).key(), save(creds(i))).await })
        })
        .collect();
    for task in tasks {
        let err = task.await.unwrap().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"{ not json");
}

fn gated(dir: &Path) -> (Arc<Gated>, mpsc::Receiver<()>, mpsc::Sender<()>) {
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    let gated = Arc::new(Gated {
        inner: file_store(dir),
        entered: Mutex::new(Some(entered_tx)),
        release: Mutex::new(Some(release_rx)),
        sizes: Mutex::new(Vec::new()),
    });
    (gated, entered_rx, release_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_do_not_wait_behind_a_write_and_writes_keep_their_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (gated, entered, release) = gated(tmp.path());
    let queue = StoreQueue::new(gated.clone());
    let held = tokio::spawn({
        let q = queue.clone();
        async move { q.update(creds(0).key(), save(creds(0))).await }
    });
    tokio::task::spawn_blocking(move || entered.recv().unwrap())
        .await
        .unwrap();
    // A write is stuck (as behind another process's lock): loads are still answered.
    let c = creds(1);
    assert_eq!(queue.load(c.key()).await.unwrap(), None);
    assert_eq!(queue.read(|s| s.list()).await.unwrap().len(), 0);

    // Queued behind the held write, in this order: a save, a deletion of another entry,
    // and a compare-and-save that expects the save before it.
    let mut changed = c.clone();
    changed.access_token = "at-changed".into();
    let update = tokio::spawn({
        let q = queue.clone();
        let c = c.clone();
        async move { q.update(c.key(), save(c.clone())).await }
    });
    until(|| queue.queued() == 1).await;
    let delete = tokio::spawn({
        let q = queue.clone();
        async move { q.write(|s| s.delete(&creds(0).key())).await }
    });
    until(|| queue.queued() == 2).await;
    let cas = tokio::spawn({
        let q = queue.clone();
        let (c, changed) = (c.clone(), changed.clone());
        async move {
            q.update(
                c.key(),
                Box::new(move |old| {
                    if old == Some(&c) {
                        Update::Save(changed)
                    } else {
                        Update::Keep
                    }
                }),
            )
            .await
        }
    });
    until(|| queue.queued() == 3).await;
    release.send(()).unwrap();
    held.await.unwrap().unwrap();
    assert_eq!(update.await.unwrap().unwrap(), Some(c.clone()));
    assert!(
        delete.await.unwrap().unwrap(),
        "the held write had saved it"
    );
    assert_eq!(cas.await.unwrap().unwrap(), Some(changed.clone()));
    // The held write, then one for each run of updates between the other writes.
    assert_eq!(*gated.sizes.lock().unwrap(), vec![1, 1, 1]);
    let stored = other_process(tmp.path()).list().unwrap();
    assert_eq!(stored, vec![changed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_queued_together_share_one_stamp_check_made_after_they_were_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(file_store(tmp.path()));
    let queue = StoreQueue::new(store.clone());
    let other = other_process(tmp.path());
    let mut c = creds(1);
    c.access_token = "at-old".into();
    other.save(&c).unwrap();
    assert_eq!(queue.load(c.key()).await.unwrap(), Some(c.clone()));

    // The reading lane is busy (held at a gate) while 100 loads are queued ...
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let gate = tokio::spawn({
        let q = queue.clone();
        async move {
            q.read(move |_| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
                Ok(())
            })
            .await
        }
    });
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    let loads: Vec<_> = (0..100)
        .map(|_| {
            let (q, key) = (queue.clone(), c.key());
            tokio::spawn(async move { q.load(key).await })
        })
        .collect();
    until(|| queue.queued() == 100).await;
    // ... and another process writes after they were all asked: they must see it.
    c.access_token = "at-new".into();
    other.save(&c).unwrap();
    let checks_before = store.stamp_checks();
    release_tx.send(()).unwrap();
    gate.await.unwrap().unwrap();
    for load in loads {
        assert_eq!(load.await.unwrap().unwrap(), Some(c.clone()));
    }
    assert_eq!(store.stamp_checks() - checks_before, 1);
}

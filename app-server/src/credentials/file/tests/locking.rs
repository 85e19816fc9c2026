//! Writers and lock holders in several threads and instances: no lost update, updates
//! under one lock, bounded lock waits, refresh locks.

use super::*;

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
        CredentialStore::update(&s, &key("a"), Box::new(|_| Update::Save(newer.clone()))).unwrap();
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

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::super::model::fixtures;
use super::*;
use crate::home::Home;

fn store(dir: &Path) -> CachedFileStore {
    CachedFileStore::new(FileStore::open(&Home::at(dir)).unwrap())
}

/// Moves the document's modification time into the past, as if it had been written a while
/// ago, so a cached copy of it is trusted (this changes the stamp: the next use reads once).
fn age(store: &CachedFileStore) {
    let file = std::fs::File::options()
        .write(true)
        .open(store.file().path())
        .unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .unwrap();
}

#[test]
fn a_cache_hit_reads_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let creds = fixtures::credentials("a", "https://a.example/mcp");
    s.save(&creds).unwrap();
    s.save_registration(&fixtures::registration(
        "https://auth.example.com",
        "http://127.0.0.1:1/cb",
    ))
    .unwrap();
    age(&s);
    assert_eq!(s.load(&creds.key()).unwrap(), Some(creds.clone()));
    let reads = s.file().document_reads();
    for _ in 0..100 {
        assert_eq!(s.load(&creds.key()).unwrap(), Some(creds.clone()));
    }
    assert_eq!(s.list().unwrap(), vec![creds.clone()]);
    assert!(
        s.load_registration("https://auth.example.com", "http://127.0.0.1:1/cb")
            .unwrap()
            .is_some()
    );
    assert!(!s.cimd_refused("https://auth.example.com").unwrap());
    assert_eq!(
        s.file().document_reads(),
        reads,
        "hits must not read the file"
    );
}

#[test]
fn a_missing_file_is_empty_and_is_not_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let key = fixtures::credentials("a", "https://a.example/mcp").key();
    assert_eq!(s.load(&key).unwrap(), None);
    let reads = s.file().document_reads();
    assert_eq!(s.load(&key).unwrap(), None);
    assert_eq!(s.file().document_reads(), reads);
    assert!(!s.file().path().exists());
}

#[test]
fn a_write_by_another_process_is_seen_by_the_next_request() {
    let tmp = tempfile::tempdir().unwrap();
    // Two stores with their own caches over one state dir: two daemons.
    let ours = store(tmp.path());
    let theirs = store(tmp.path());
    let old = fixtures::credentials("a", "https://a.example/mcp");
    ours.save(&old).unwrap();
    age(&ours);
    assert_eq!(ours.load(&old.key()).unwrap(), Some(old.clone()));

    // Same size: only the file's identity and time tell the versions apart.
    let mut rotated = old.clone();
    rotated.access_token = "at-secret-b".to_owned();
    rotated.refresh_token = Some("rt-secret-b".to_owned());
    theirs.save(&rotated).unwrap();
    assert_eq!(ours.load(&old.key()).unwrap(), Some(rotated.clone()));

    assert!(theirs.delete(&old.key()).unwrap());
    assert_eq!(ours.load(&old.key()).unwrap(), None);
    assert!(ours.list().unwrap().is_empty());
}

#[test]
fn our_writes_update_the_cache_and_keep_other_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = store(tmp.path());
    let theirs = store(tmp.path());
    let a = fixtures::credentials("a", "https://a.example/mcp");
    let b = fixtures::credentials("b", "https://b.example/mcp");
    ours.save(&a).unwrap();
    assert_eq!(ours.load(&a.key()).unwrap(), Some(a.clone()));
    // Another process adds b; our next write is a read-modify-write of the file, not of
    // our copy, so b survives it.
    theirs.save(&b).unwrap();
    ours.mark_cimd_refused("https://auth.example.com").unwrap();
    assert!(ours.cimd_refused("https://auth.example.com").unwrap());
    let mut names: Vec<_> = ours
        .list()
        .unwrap()
        .into_iter()
        .map(|c| c.server_name)
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(theirs.load(&b.key()).unwrap(), Some(b));
}

#[test]
fn a_corrupt_file_is_reported_not_served_from_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let creds = fixtures::credentials("a", "https://a.example/mcp");
    s.save(&creds).unwrap();
    age(&s);
    assert!(s.load(&creds.key()).unwrap().is_some());
    std::fs::write(s.file().path(), b"{not json").unwrap();
    assert!(s.load(&creds.key()).is_err());
    assert!(
        s.save(&creds).is_err(),
        "a corrupt document is never overwritten"
    );
    assert_eq!(std::fs::read(s.file().path()).unwrap(), b"{not json");
}

#[test]
fn a_write_over_a_current_copy_does_not_read_the_file_and_one_over_a_stale_copy_does() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = store(tmp.path());
    let theirs = store(tmp.path());
    let a = fixtures::credentials("a", "https://a.example/mcp");
    let b = fixtures::credentials("b", "https://b.example/mcp");
    let c = fixtures::credentials("c", "https://c.example/mcp");
    ours.save(&a).unwrap();
    age(&ours);
    assert_eq!(ours.load(&a.key()).unwrap(), Some(a.clone()));
    let reads = ours.file().document_reads();
    // The copy is the file: saving reads nothing.
    let mut a2 = a.clone();
    a2.access_token = "at-secret-a2".into();
    ours.save(&a2).unwrap();
    assert_eq!(ours.file().document_reads(), reads);
    // Another process wrote meanwhile: the save reads the file, and keeps its entry.
    theirs.save(&b).unwrap();
    age(&ours);
    ours.save(&c).unwrap();
    assert_eq!(ours.file().document_reads(), reads + 1);
    let mut all = other_list(tmp.path());
    all.sort_by(|x, y| x.server_name.cmp(&y.server_name));
    assert_eq!(all, vec![a2, b, c]);
}

fn other_list(dir: &Path) -> Vec<StoredCredentials> {
    FileStore::open(&Home::at(dir)).unwrap().list().unwrap()
}

/// What a token request is answered with: from memory when the store vouches for its copy,
/// else by a check of the file. The flag says which.
fn token_lookup(s: &CachedFileStore, key: &LookupKey) -> (Option<StoredCredentials>, bool) {
    match s.load_shared_now(key) {
        Some(found) => (found.map(Arc::unwrap_or_clone), true),
        None => (s.load_shared(key).unwrap().map(Arc::unwrap_or_clone), false),
    }
}

#[cfg(target_os = "linux")]
mod watched;

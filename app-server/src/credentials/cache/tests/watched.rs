//! With the state directory watched (Linux): copies answered from memory, our own saves
//! kept without a read, and every write of another process or by hand seen.

use super::*;

#[test]
fn a_checked_copy_answers_from_memory_without_a_file_system_call() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    s.save(&creds).unwrap();
    // Our own save is the copy: no check of the file either.
    let (reads, checks) = (s.file().document_reads(), s.stamp_checks());
    for _ in 0..100 {
        assert_eq!(token_lookup(&s, &key), (Some(creds.clone()), true));
    }
    let other = LookupKey::new(CredentialKey::new("b", "https://b.example/mcp"));
    assert_eq!(token_lookup(&s, &other), (None, true));
    assert_eq!(s.file().document_reads(), reads, "no read of the file");
    assert_eq!(s.stamp_checks(), checks, "not even a look at its stamp");
    // Shared, not copied.
    let a = s.load_shared_now(&key).unwrap().unwrap();
    let b = s.load_shared_now(&key).unwrap().unwrap();
    assert!(Arc::ptr_eq(&a, &b));
}

#[test]
fn our_own_saves_are_the_copy_without_a_read_or_a_check() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let mut creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    s.save(&creds).unwrap();
    // The first save found no file; every later one starts from the copy it wrote.
    assert_eq!(s.file().document_reads(), 1);
    for i in 0..50 {
        creds.access_token = format!("at-secret-{i:04}");
        s.save(&creds).unwrap();
        assert_eq!(
            token_lookup(&s, &key),
            (Some(creds.clone()), true),
            "save {i}"
        );
    }
    assert_eq!(s.file().document_reads(), 1);
    assert_eq!(s.stamp_checks(), 0);
    assert_eq!(other_list(tmp.path()), vec![creds]);
}

#[test]
fn a_write_of_another_process_right_after_our_save_is_seen() {
    type Foreign = fn(&Path, &StoredCredentials);
    let writes: [(&str, Foreign); 3] = [
        ("their save", |dir, theirs| store(dir).save(theirs).unwrap()),
        ("an edit in place", |dir, theirs| {
            let path = dir.join("credentials.json");
            let text = std::fs::read_to_string(&path).unwrap();
            let edited = text.replace("at-secret-ours", &theirs.access_token);
            std::fs::write(&path, edited).unwrap();
        }),
        ("their logout", |dir, theirs| {
            assert!(store(dir).delete(&theirs.key()).unwrap());
        }),
    ];
    for (what, write) in writes {
        let tmp = tempfile::tempdir().unwrap();
        let ours = store(tmp.path());
        let mut creds = fixtures::credentials("a", "https://a.example/mcp");
        let key = LookupKey::new(creds.key());
        ours.save(&creds).unwrap();
        creds.access_token = "at-secret-ours".into();
        let mut theirs = creds.clone();
        theirs.access_token = "at-secret-them".into();
        let dir = tmp.path().to_owned();
        let foreign = theirs.clone();
        // Between our rename and our look at the watch's queue.
        ours.after_next_write(move |_| write(&dir, &foreign));
        ours.save(&creds).unwrap();
        let expected = (what != "their logout").then_some(theirs);
        assert_eq!(
            token_lookup(&ours, &key),
            (expected.clone(), false),
            "{what}"
        );
        assert_eq!(token_lookup(&ours, &key), (expected, true), "{what}");
    }
}

#[test]
fn a_lookup_between_our_rename_and_our_look_at_the_queue_keeps_the_save_vouched() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = store(tmp.path());
    let mut creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    ours.save(&creds).unwrap();
    let lookup = key.clone();
    // Another thread's token request reads the queue, and so hears our rename first.
    ours.after_next_write(move |s| {
        assert!(!token_lookup(s, &lookup).1, "our rename was heard");
    });
    creds.access_token = "at-secret-ours".into();
    ours.save(&creds).unwrap();
    let checks = ours.stamp_checks();
    assert_eq!(token_lookup(&ours, &key), (Some(creds), true));
    assert_eq!(ours.stamp_checks(), checks);
}

#[test]
fn a_save_the_watch_heard_more_than_its_rename_about_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = store(tmp.path());
    let mut creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    ours.save(&creds).unwrap();
    assert!(token_lookup(&ours, &key).1);
    // A writer that takes no lock renames its file over the document while our save
    // is being made (after our look at the queue, before our rename).
    let path = ours.file().path().to_owned();
    creds.access_token = "at-secret-ours".into();
    let new = creds.clone();
    ours.update(
        &creds.key(),
        Box::new(move |_| {
            let temp = path.with_file_name("hand-made.json");
            std::fs::write(&temp, b"{}").unwrap();
            std::fs::rename(&temp, &path).unwrap();
            crate::credentials::Update::Save(new)
        }),
    )
    .unwrap();
    // Ours was renamed last, so the file is ours; but two renames were heard.
    assert_eq!(token_lookup(&ours, &key), (Some(creds.clone()), false));
    assert_eq!(token_lookup(&ours, &key), (Some(creds), true));
}

#[test]
fn every_write_of_another_process_is_seen_by_the_next_request() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = store(tmp.path());
    let theirs = store(tmp.path());
    let mut creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    ours.save(&creds).unwrap();
    assert_eq!(token_lookup(&ours, &key).0, Some(creds.clone()));
    let mut from_memory = 0;
    for i in 0..200 {
        // Rotations of one length, within one tick of the clock: neither size nor
        // time tells them apart.
        creds.access_token = format!("at-secret-{i:04}");
        creds.refresh_token = Some(format!("rt-secret-{i:04}"));
        theirs.save(&creds).unwrap();
        assert_eq!(
            token_lookup(&ours, &key),
            (Some(creds.clone()), false),
            "write {i}"
        );
        let (seen, in_memory) = token_lookup(&ours, &key);
        assert_eq!(seen, Some(creds.clone()), "after write {i}");
        from_memory += usize::from(in_memory);
    }
    // Between writes the copy, checked once, answers from memory.
    assert_eq!(from_memory, 200);
    assert!(theirs.delete(key.key()).unwrap());
    assert_eq!(token_lookup(&ours, &key), (None, false));
    assert_eq!(token_lookup(&ours, &key), (None, true));
}

#[test]
fn a_young_copy_the_watch_vouches_for_is_not_read_again() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = store(tmp.path());
    let theirs = store(tmp.path());
    let mut creds = fixtures::credentials("a", "https://a.example/mcp");
    theirs.save(&creds).unwrap();
    // Written just now: by its stamp alone the copy would be read again at every use
    // for the next 100 ms.
    assert_eq!(ours.load(&creds.key()).unwrap(), Some(creds.clone()));
    let reads = ours.file().document_reads();
    for _ in 0..20 {
        assert_eq!(ours.load(&creds.key()).unwrap(), Some(creds.clone()));
        assert_eq!(ours.list().unwrap(), vec![creds.clone()]);
    }
    assert_eq!(ours.file().document_reads(), reads);
    // Another write within the same moment is still seen.
    creds.access_token = "at-secret-b".into();
    theirs.save(&creds).unwrap();
    assert_eq!(ours.load(&creds.key()).unwrap(), Some(creds.clone()));
    assert_eq!(ours.file().document_reads(), reads + 1);
}

#[test]
fn a_hand_edit_in_place_is_seen_by_the_next_request() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path());
    let creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    s.save(&creds).unwrap();
    assert!(token_lookup(&s, &key).0.is_some());
    assert!(token_lookup(&s, &key).1);
    // Truncated and rewritten through the same inode, as an editor may.
    let text = std::fs::read_to_string(s.file().path()).unwrap();
    let edited = text.replace("at-secret-a", "at-secret-z");
    std::fs::write(s.file().path(), edited).unwrap();
    let (seen, in_memory) = token_lookup(&s, &key);
    assert!(!in_memory);
    assert_eq!(seen.unwrap().access_token, "at-secret-z");
}

#[test]
fn a_linked_document_is_always_checked() {
    for how in ["symlink", "hard link"] {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let s = store(tmp.path());
        let creds = fixtures::credentials("a", "https://a.example/mcp");
        let key = LookupKey::new(creds.key());
        s.save(&creds).unwrap();
        // The document also reachable by a name outside the watched directory, where
        // a write to it makes no event here.
        let outside = elsewhere.path().join("credentials.json");
        if how == "symlink" {
            std::fs::rename(s.file().path(), &outside).unwrap();
            std::os::unix::fs::symlink(&outside, s.file().path()).unwrap();
        } else {
            std::fs::hard_link(s.file().path(), &outside).unwrap();
        }
        for _ in 0..3 {
            assert_eq!(
                token_lookup(&s, &key),
                (Some(creds.clone()), false),
                "{how}"
            );
        }
        let text = std::fs::read_to_string(&outside).unwrap();
        std::fs::write(&outside, text.replace("at-secret-a", "at-secret-z")).unwrap();
        let (seen, in_memory) = token_lookup(&s, &key);
        assert!(!in_memory, "{how}");
        assert_eq!(seen.unwrap().access_token, "at-secret-z", "{how}");
    }
}

#[test]
fn a_lost_watch_falls_back_to_checking_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    std::fs::create_dir(&dir).unwrap();
    let s = store(&dir);
    let creds = fixtures::credentials("a", "https://a.example/mcp");
    let key = LookupKey::new(creds.key());
    s.save(&creds).unwrap();
    assert!(token_lookup(&s, &key).0.is_some());
    assert!(token_lookup(&s, &key).1);
    // The state directory replaced by another one: the watch sees the old one.
    std::fs::rename(&dir, tmp.path().join("old")).unwrap();
    std::fs::create_dir(&dir).unwrap();
    let theirs = store(&dir);
    let mut moved = creds.clone();
    moved.access_token = "at-secret-new-dir".into();
    theirs.save(&moved).unwrap();
    for _ in 0..3 {
        assert_eq!(token_lookup(&s, &key), (Some(moved.clone()), false));
    }
}

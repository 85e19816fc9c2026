//! The document on disk: its layout and modes, temp files, and documents this build
//! cannot read.

use super::*;

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
    std::fs::set_permissions(dir.join(FILE_NAME), std::fs::Permissions::from_mode(0o644)).unwrap();
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

//! Entries, registrations and CIMD flags saved, read back and deleted.

use super::*;

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

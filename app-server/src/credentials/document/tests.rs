//! The credentials document: round trips, key order, defaults, and documents this build
//! refuses (corrupt, a future version).

use super::super::model::fixtures;
use super::*;

fn path() -> &'static Path {
    Path::new("/state/credentials.json")
}

#[test]
fn round_trip() {
    let mut doc = Document::default();
    let creds = fixtures::credentials("a", "https://a.example/mcp");
    doc.credentials
        .insert(creds.key().storage_key(), Arc::new(creds));
    doc.put_registration(&fixtures::registration("https://as", "http://127.0.0.1/cb"));
    doc.cimd_refused_issuers.insert("https://as".to_owned());
    doc.keyring_index
        .insert(CredentialKey::new("b", "https://b.example/mcp"));
    let bytes = render(&doc);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\"cimdRefusedIssuers\""), "{text}");
    assert!(text.contains("\"keyringIndex\""), "{text}");
    assert_eq!(parse(path(), &bytes).unwrap(), doc);
}

/// The map is hashed in memory; the file, and every listing, has the entries in the
/// order of their keys whatever order they were made in.
#[test]
fn entries_are_written_and_listed_in_key_order() {
    let names: Vec<String> = (0..40).rev().map(|i| format!("s{i:02}")).collect();
    let mut doc = Document::default();
    for name in &names {
        let creds = fixtures::credentials(name, &format!("https://{name}.example/mcp"));
        doc.credentials
            .insert(creds.key().storage_key(), Arc::new(creds));
    }
    let text = String::from_utf8(render(&doc)).unwrap();
    let at: Vec<usize> = (0..40)
        .map(|i| {
            text.find(&format!("\"s{i:02}|"))
                .expect("every key written")
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    let mut sorted = names.clone();
    sorted.sort();
    let listed: Vec<String> = doc
        .shared_credentials_in_order()
        .map(|c| c.server_name.clone())
        .collect();
    assert_eq!(listed, sorted);
    let taken: Vec<String> = doc
        .clone()
        .credentials_in_order()
        .map(|c| c.server_name.clone())
        .collect();
    assert_eq!(taken, sorted);
    // The same document renders to the same bytes, and reads back equal.
    let again = parse(path(), text.as_bytes()).unwrap();
    assert_eq!(render(&again), text.as_bytes());
    assert_eq!(again, doc);
}

#[test]
fn minimal_document_parses_with_defaults() {
    let doc = parse(path(), br#"{"version":1}"#).unwrap();
    assert_eq!(doc, Document::default());
}

#[test]
fn garbage_is_corrupt_without_quoting_values() {
    for (bytes, want) in [
            (&b""[..], "empty"),
            (b"  \n", "empty"),
            (b"{\"version\":1,", "invalid JSON at line 1"),
            (b"[1,2]", "unexpected content"),
            (b"{\"credentials\":{}}", "no \"version\""),
            (b"{\"version\":\"one\"}", "not a whole number"),
            (
                b"{\"version\":1,\"credentials\":{\"k\":{\"accessToken\":\"tok-SECRET\"}}}",
                "unexpected content",
            ),
            (
                b"{\"version\":1,\"credentials\":{\"k\":{\"accessToken\":7,\"refreshToken\":\"rt-SECRET\"}}}",
                "unexpected content",
            ),
        ] {
            match parse(path(), bytes) {
                Err(StoreError::Corrupt { path: p, reason }) => {
                    assert_eq!(p, path());
                    assert!(reason.contains(want), "{reason:?} lacks {want:?}");
                    assert!(!reason.contains("SECRET"), "{reason}");
                }
                other => panic!("{:?}: expected Corrupt, got {other:?}", String::from_utf8_lossy(bytes)),
            }
        }
}

#[test]
fn future_version_is_refused() {
    for future in [
        &br#"{"version":2,"credentials":{"x":"new shape"}}"#[..],
        br#"{"version":2}"#,
    ] {
        match parse(path(), future) {
            Err(StoreError::UnsupportedVersion { version: 2, .. }) => {}
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
    }
}

#[test]
fn entry_for_another_url_is_not_handed_out() {
    let mut doc = Document::default();
    let key = CredentialKey::new("a", "https://a.example/mcp");
    let mut creds = fixtures::credentials("a", "https://elsewhere.example/mcp");
    doc.credentials
        .insert(key.storage_key(), Arc::new(creds.clone()));
    assert!(doc.credentials_for(&key).is_none());
    let lookup = LookupKey::new(key.clone());
    assert!(doc.shared_credentials(&lookup).is_none());
    creds.server_url = key.server_url.clone();
    doc.credentials.insert(key.storage_key(), Arc::new(creds));
    assert!(doc.credentials_for(&key).is_some());
    let shared = doc.shared_credentials(&lookup).unwrap();
    assert!(Arc::ptr_eq(shared, &doc.credentials[&key.storage_key()]));
}

#[test]
fn registrations_are_keyed_by_issuer_and_redirect() {
    let mut doc = Document::default();
    let mut reg = fixtures::registration("https://as", "http://127.0.0.1:1/cb");
    doc.put_registration(&reg);
    doc.put_registration(&fixtures::registration(
        "https://as",
        "http://127.0.0.1:2/cb",
    ));
    reg.client_id = "replaced".to_owned();
    doc.put_registration(&reg);
    assert_eq!(doc.registrations.len(), 2);
    assert_eq!(
        doc.registration("https://as", "http://127.0.0.1:1/cb")
            .unwrap()
            .client_id,
        "replaced"
    );
    doc.remove_registration("https://as", "http://127.0.0.1:1/cb");
    assert!(
        doc.registration("https://as", "http://127.0.0.1:1/cb")
            .is_none()
    );
    assert!(
        doc.registration("https://as", "http://127.0.0.1:2/cb")
            .is_some()
    );
}

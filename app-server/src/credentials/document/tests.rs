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

fn link(server: &StoredCredentials, owner: &StoredCredentials) -> StoredLink {
    StoredLink {
        server: server.key(),
        owner: owner.key(),
        issuer: owner.issuer.clone(),
        resource: owner.resource.clone(),
    }
}

/// Rule 85: a link shows the owner's tokens under the linked name, writes through it land
/// in the owner's entry, the file holds the tokens once, and reading it back shows the
/// link again.
#[test]
fn a_link_shows_the_owners_tokens_and_writes_through() {
    let mut doc = Document::default();
    let a = fixtures::credentials("a", "https://gw.example/a");
    let b = fixtures::credentials("b", "https://gw.example/b");
    doc.apply_update(&a.key(), Box::new(|_| Update::Save(a.clone())));
    let shown = doc
        .apply_update(&b.key(), Box::new(|_| Update::Link(link(&b, &a))))
        .expect("linked");
    assert_eq!(shown.shared_with, Some(a.key()));
    assert_eq!(
        (shown.server_name.as_str(), shown.access_token.as_str()),
        ("b", "at-secret-a")
    );
    assert_eq!(shown.entry_key(), a.key());

    // A renewal through `b` renews `a`'s entry.
    let mut renewed = shown.clone();
    renewed.access_token = "at-new".into();
    renewed.refresh_token = Some("rt-new".into());
    doc.apply_update(&b.key(), Box::new(|_| Update::Save(renewed)));
    assert_eq!(
        doc.credentials_for(&a.key()).unwrap().access_token,
        "at-new"
    );
    assert_eq!(
        doc.credentials_for(&b.key()).unwrap().access_token,
        "at-new"
    );

    let text = String::from_utf8(render(&doc)).unwrap();
    assert_eq!(text.matches("at-new").count(), 1, "{text}");
    assert_eq!(text.matches("rt-new").count(), 1, "{text}");
    let back = parse(path(), text.as_bytes()).unwrap();
    assert_eq!(back, doc);
    assert_eq!(
        back.credentials_for(&b.key()).unwrap().shared_with,
        Some(a.key())
    );

    // A login of `b`'s own replaces the link; `a` keeps its tokens.
    let own = fixtures::credentials("b", "https://gw.example/b");
    doc.apply_update(&b.key(), Box::new(|_| Update::Save(own.clone())));
    assert!(doc.links.is_empty());
    assert_eq!(doc.credentials_for(&b.key()), Some(&own));
    assert_eq!(
        doc.credentials_for(&a.key()).unwrap().access_token,
        "at-new"
    );
}

/// Rules 87 and 88: deleting a link removes only it; deleting the owner hands its entry
/// to the first server linked to it; a link to tokens of another issuer or resource is
/// refused, and one whose owner moved is dropped.
#[test]
fn links_end_with_their_server_or_their_issuer_and_outlive_their_owner() {
    let mut doc = Document::default();
    let a = fixtures::credentials("a", "https://gw.example/a");
    let b = fixtures::credentials("b", "https://gw.example/b");
    let c = fixtures::credentials("c", "https://gw.example/c");
    doc.apply_update(&a.key(), Box::new(|_| Update::Save(a.clone())));
    for s in [&b, &c] {
        let l = link(s, &a);
        assert!(
            doc.apply_update(&s.key(), Box::new(|_| Update::Link(l)))
                .is_some()
        );
    }
    assert!(doc.remove_credentials(&b.key()));
    assert!(doc.credentials_for(&b.key()).is_none());
    assert_eq!(doc.credentials_for(&a.key()), Some(&a));

    // `a` leaves: `c` keeps the tokens as its own.
    let l = link(&b, &a);
    doc.apply_update(&b.key(), Box::new(|_| Update::Link(l)));
    assert!(doc.remove_credentials(&a.key()));
    assert!(doc.credentials_for(&a.key()).is_none());
    let heir = doc.credentials_for(&b.key()).unwrap();
    assert_eq!(
        (heir.shared_with.clone(), heir.access_token.as_str()),
        (None, "at-secret-a")
    );
    let other = doc.credentials_for(&c.key()).unwrap();
    assert_eq!(other.shared_with, Some(b.key()));

    // Another issuer is never linked to.
    let d = fixtures::credentials("d", "https://gw.example/d");
    let mut wrong = link(&d, heir);
    wrong.issuer = "https://other-as.example".into();
    assert!(
        doc.apply_update(&d.key(), Box::new(|_| Update::Link(wrong)))
            .is_none()
    );
    // The owner moves to another issuer: its links are dropped.
    let mut moved = doc.credentials_for(&b.key()).unwrap().clone();
    moved.issuer = "https://other-as.example".into();
    doc.apply_update(&b.key(), Box::new(|_| Update::Save(moved)));
    assert!(doc.credentials_for(&c.key()).is_none());
    assert!(doc.links.is_empty());
}

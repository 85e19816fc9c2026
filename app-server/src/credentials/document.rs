//! The on-disk JSON document `credentials.json`, as pure parse and render functions.
//!
//! ```json
//! { "version": 1,
//!   "credentials": { "<storage key>": StoredCredentials },
//!   "registrations": [ StoredRegistration ],
//!   "cimdRefusedIssuers": [ "https://issuer" ],
//!   "keyringIndex": [ { "serverName": ..., "serverUrl": ... } ] }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::model::{CredentialKey, LookupKey, StoredCredentials, StoredRegistration};
use super::update::{Decide, Update};

pub(crate) const CURRENT_VERSION: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Document {
    pub version: u64,
    /// Tokens kept in the file (file backend, or left over from before a switch to keyring).
    /// Shared: a copy of the document, and a token handed out, copies no entry. Hashed, so
    /// that a token request finds its entry in one probe however many servers are stored;
    /// written to the file in the order of the keys ([`Document::credentials_in_order`]).
    #[serde(default, serialize_with = "in_key_order")]
    pub credentials: HashMap<String, Arc<StoredCredentials>>,
    #[serde(default)]
    pub registrations: Vec<StoredRegistration>,
    #[serde(default)]
    pub cimd_refused_issuers: BTreeSet<String>,
    /// Keys whose tokens live in the OS keyring, which cannot be enumerated portably.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub keyring_index: BTreeSet<CredentialKey>,
}

impl Default for Document {
    fn default() -> Self {
        Document {
            version: CURRENT_VERSION,
            credentials: HashMap::new(),
            registrations: Vec::new(),
            cimd_refused_issuers: BTreeSet::new(),
            keyring_index: BTreeSet::new(),
        }
    }
}

/// The credentials map as the file has it: ordered by storage key, so that the same
/// document is always the same bytes.
fn in_key_order<S: serde::Serializer>(
    credentials: &HashMap<String, Arc<StoredCredentials>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    credentials
        .iter()
        .collect::<BTreeMap<&String, &Arc<StoredCredentials>>>()
        .serialize(s)
}

impl Document {
    /// The stored entries, ordered by storage key (the order of the file).
    pub fn credentials_in_order(self) -> impl Iterator<Item = Arc<StoredCredentials>> {
        let ordered: BTreeMap<String, Arc<StoredCredentials>> =
            self.credentials.into_iter().collect();
        ordered.into_values()
    }

    /// [`Document::credentials_in_order`], without taking the document.
    pub fn shared_credentials_in_order(&self) -> impl Iterator<Item = &Arc<StoredCredentials>> {
        let ordered: BTreeMap<&String, &Arc<StoredCredentials>> = self.credentials.iter().collect();
        ordered.into_values()
    }

    /// The entry for `key`, if its stored URL is the key's URL (a hand-edited or colliding
    /// entry for another URL is not handed out).
    pub fn credentials_for(&self, key: &CredentialKey) -> Option<&StoredCredentials> {
        self.credentials
            .get(&key.storage_key())
            .filter(|c| c.server_name == key.server_name && c.server_url == key.server_url)
            .map(|c| &**c)
    }

    /// [`Document::credentials_for`], by a key whose storage key is known, shared.
    pub fn shared_credentials(&self, key: &LookupKey) -> Option<&Arc<StoredCredentials>> {
        self.credentials
            .get(key.storage_key())
            .filter(|c| key.is_for(&c.server_name, &c.server_url))
    }

    pub fn registration(&self, issuer: &str, redirect_uri: &str) -> Option<&StoredRegistration> {
        self.registrations
            .iter()
            .find(|r| r.issuer == issuer && r.redirect_uri == redirect_uri)
    }

    /// Replaces the registration for the same issuer and redirect URI, or adds it.
    /// Applies several decisions in order (a group commit); what is stored for each key
    /// afterwards.
    pub fn apply_updates(
        &mut self,
        updates: Vec<(CredentialKey, Decide<'_>)>,
    ) -> Vec<Option<StoredCredentials>> {
        updates
            .into_iter()
            .map(|(key, decide)| self.apply_update(&key, decide))
            .collect()
    }

    /// Applies an [`CredentialStore::update`](super::CredentialStore::update) decision to
    /// the entry for `key`; returns what is stored for it afterwards.
    pub fn apply_update(
        &mut self,
        key: &CredentialKey,
        decide: Decide<'_>,
    ) -> Option<StoredCredentials> {
        let current = self.credentials_for(key).cloned();
        match decide(current.as_ref()) {
            Update::Keep => current,
            Update::Save(new) => {
                debug_assert_eq!(&new.key(), key);
                self.credentials
                    .insert(key.storage_key(), Arc::new(new.clone()));
                // A file entry supersedes a keyring one (the keyring backend was used
                // before).
                self.keyring_index.remove(key);
                Some(new)
            }
            Update::Delete => {
                if current.is_some() {
                    self.credentials.remove(&key.storage_key());
                }
                None
            }
        }
    }

    /// `false` when there was nothing to remove.
    pub fn remove_credentials(&mut self, key: &CredentialKey) -> bool {
        let found = self.credentials_for(key).is_some();
        if found {
            self.credentials.remove(&key.storage_key());
        }
        found
    }

    pub fn mark_cimd_refused(&mut self, issuer: &str) {
        self.cimd_refused_issuers.insert(issuer.to_owned());
    }

    pub fn put_registration(&mut self, reg: &StoredRegistration) {
        self.remove_registration(&reg.issuer, &reg.redirect_uri);
        self.registrations.push(reg.clone());
    }

    pub fn remove_registration(&mut self, issuer: &str, redirect_uri: &str) {
        self.registrations
            .retain(|r| !(r.issuer == issuer && r.redirect_uri == redirect_uri));
    }
}

/// Parses the file's bytes. Anything this build cannot read faithfully is an error, never
/// an empty document: the caller must not overwrite what it does not understand.
///
/// Reasons carry only positions, never serde's message, which may quote a value (a token).
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Document, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_owned(),
        reason,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(corrupt("the file is empty".to_owned()));
    }
    let error = match serde_json::from_slice::<Document>(bytes) {
        Ok(doc) if doc.version == CURRENT_VERSION => return Ok(doc),
        Ok(doc) => {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_owned(),
                version: doc.version,
            });
        }
        Err(error) => error,
    };
    // A later version may use a shape this build cannot parse: say so rather than
    // calling it corrupt. Only on this error path is the file parsed a second time.
    #[derive(Deserialize)]
    struct VersionOnly {
        version: Option<serde_json::Value>,
    }
    if let Ok(VersionOnly { version }) = serde_json::from_slice::<VersionOnly>(bytes) {
        match version.as_ref().map(serde_json::Value::as_u64) {
            None => return Err(corrupt("it has no \"version\" field".to_owned())),
            Some(None) => return Err(corrupt("\"version\" is not a whole number".to_owned())),
            Some(Some(version)) if version != CURRENT_VERSION => {
                return Err(StoreError::UnsupportedVersion {
                    path: path.to_owned(),
                    version,
                });
            }
            Some(Some(_)) => {}
        }
    }
    let what = match error.classify() {
        serde_json::error::Category::Data => "unexpected content",
        _ => "invalid JSON",
    };
    Err(corrupt(format!(
        "{what} at line {} column {}",
        error.line(),
        error.column()
    )))
}

pub(crate) fn render(doc: &Document) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(doc).expect("the document serializes to JSON");
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
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
}

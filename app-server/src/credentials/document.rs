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
    pub(crate) version: u64,
    /// Tokens kept in the file (file backend, or left over from before a switch to keyring).
    /// Shared: a copy of the document, and a token handed out, copies no entry. Hashed, so
    /// that a token request finds its entry in one probe however many servers are stored;
    /// written to the file in the order of the keys ([`Document::credentials_in_order`]).
    #[serde(default, serialize_with = "in_key_order")]
    pub(crate) credentials: HashMap<String, Arc<StoredCredentials>>,
    #[serde(default)]
    pub(crate) registrations: Vec<StoredRegistration>,
    #[serde(default)]
    pub(crate) cimd_refused_issuers: BTreeSet<String>,
    /// Keys whose tokens live in the OS keyring, which cannot be enumerated portably.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) keyring_index: BTreeSet<CredentialKey>,
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
    pub(crate) fn credentials_in_order(self) -> impl Iterator<Item = Arc<StoredCredentials>> {
        let ordered: BTreeMap<String, Arc<StoredCredentials>> =
            self.credentials.into_iter().collect();
        ordered.into_values()
    }

    /// [`Document::credentials_in_order`], without taking the document.
    pub(crate) fn shared_credentials_in_order(
        &self,
    ) -> impl Iterator<Item = &Arc<StoredCredentials>> {
        let ordered: BTreeMap<&String, &Arc<StoredCredentials>> = self.credentials.iter().collect();
        ordered.into_values()
    }

    /// The entry for `key`, if its stored URL is the key's URL (a hand-edited or colliding
    /// entry for another URL is not handed out).
    pub(crate) fn credentials_for(&self, key: &CredentialKey) -> Option<&StoredCredentials> {
        self.credentials
            .get(&key.storage_key())
            .filter(|c| key.is_key_of(c))
            .map(|c| &**c)
    }

    /// [`Document::credentials_for`], by a key whose storage key is known, shared.
    pub(crate) fn shared_credentials(&self, key: &LookupKey) -> Option<&Arc<StoredCredentials>> {
        self.credentials
            .get(key.storage_key())
            .filter(|c| key.is_for(&c.server_name, &c.server_url, c.account.as_deref()))
    }

    /// Every account's entry of the server `server_name` at `server_url` (rule 80).
    pub(crate) fn accounts_of<'a>(
        &'a self,
        server_name: &'a str,
        server_url: &'a str,
    ) -> impl Iterator<Item = &'a StoredCredentials> + 'a {
        self.credentials
            .values()
            .filter(move |c| c.server_name == server_name && c.server_url == server_url)
            .map(|c| &**c)
    }

    pub(crate) fn registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Option<&StoredRegistration> {
        self.registrations
            .iter()
            .find(|r| r.issuer == issuer && r.redirect_uri == redirect_uri)
    }

    /// Replaces the registration for the same issuer and redirect URI, or adds it.
    /// Applies several decisions in order (a group commit); what is stored for each key
    /// afterwards.
    pub(crate) fn apply_updates(
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
    pub(crate) fn apply_update(
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
    pub(crate) fn remove_credentials(&mut self, key: &CredentialKey) -> bool {
        let found = self.credentials_for(key).is_some();
        if found {
            self.credentials.remove(&key.storage_key());
        }
        found
    }

    pub(crate) fn mark_cimd_refused(&mut self, issuer: &str) {
        self.cimd_refused_issuers.insert(issuer.to_owned());
    }

    pub(crate) fn put_registration(&mut self, reg: &StoredRegistration) {
        self.remove_registration(&reg.issuer, &reg.redirect_uri);
        self.registrations.push(reg.clone());
    }

    pub(crate) fn remove_registration(&mut self, issuer: &str, redirect_uri: &str) {
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
mod tests;

//! The on-disk JSON document `credentials.json`, as pure parse and render functions.
//!
//! ```json
//! { "version": 1,
//!   "credentials": { "<storage key>": StoredCredentials },
//!   "registrations": [ StoredRegistration ],
//!   "cimdRefusedIssuers": [ "https://issuer" ],
//!   "keyringIndex": [ { "serverName": ..., "serverUrl": ... } ],
//!   "links": { "<storage key>": StoredLink } }
//! ```
//!
//! A link (rule 85) stands for a server that shares another server's login: in memory the
//! owner's entry is also shown under the linked server's key, marked
//! [`StoredCredentials::shared_with`]; the file holds the tokens once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::model::{CredentialKey, LookupKey, StoredCredentials, StoredLink, StoredRegistration};
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
    /// Servers that share another server's login, by the storage key of the server.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) links: BTreeMap<String, StoredLink>,
}

impl Default for Document {
    fn default() -> Self {
        Document {
            version: CURRENT_VERSION,
            credentials: HashMap::new(),
            registrations: Vec::new(),
            cimd_refused_issuers: BTreeSet::new(),
            keyring_index: BTreeSet::new(),
            links: BTreeMap::new(),
        }
    }
}

/// The credentials map as the file has it: ordered by storage key, so that the same
/// document is always the same bytes; a shared login's copies are not written (its link
/// is).
fn in_key_order<S: serde::Serializer>(
    credentials: &HashMap<String, Arc<StoredCredentials>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    credentials
        .iter()
        .filter(|(_, c)| c.shared_with.is_none())
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
            Update::Save(mut new) => {
                debug_assert_eq!(&new.key(), key);
                let owner = current.and_then(|c| c.shared_with);
                if let Some(owner) = owner.filter(|o| new.shared_with.as_ref() == Some(o)) {
                    // Shared credentials renewed: written back into the entry that holds
                    // them, which every server sharing them sees.
                    new.server_name = owner.server_name.clone();
                    new.server_url = owner.server_url.clone();
                    new.account = owner.account.clone();
                    new.shared_with = None;
                    self.put_own(&owner, new);
                    return self.credentials_for(key).cloned();
                }
                // Credentials of its own (a login) end the server's link.
                new.shared_with = None;
                self.links.remove(&key.storage_key());
                self.put_own(key, new.clone());
                Some(new)
            }
            Update::Delete => {
                self.remove_entry(key);
                None
            }
            Update::Link(link) => self.link(key, link),
        }
    }

    /// `false` when there was nothing to remove.
    pub(crate) fn remove_credentials(&mut self, key: &CredentialKey) -> bool {
        self.remove_entry(key)
    }

    /// The entry `key` holds itself (not a shared login shown under its name).
    fn own_entry(&self, key: &CredentialKey) -> Option<&StoredCredentials> {
        self.credentials_for(key)
            .filter(|c| c.shared_with.is_none())
    }

    fn put_own(&mut self, key: &CredentialKey, creds: StoredCredentials) {
        self.credentials.insert(key.storage_key(), Arc::new(creds));
        // A file entry supersedes a keyring one (the keyring backend was used before).
        self.keyring_index.remove(key);
        self.show_links_of(key);
    }

    /// Removes what `key` has: its link only when it shares another server's login; its
    /// own entry otherwise, whose tokens then stay with the first server sharing them (in
    /// the order of the keys), so the others keep their login.
    fn remove_entry(&mut self, key: &CredentialKey) -> bool {
        let slot = key.storage_key();
        let Some(current) = self.credentials_for(key).cloned() else {
            self.links.remove(&slot);
            return false;
        };
        self.credentials.remove(&slot);
        if self.links.remove(&slot).is_some() || current.shared_with.is_some() {
            return true;
        }
        let sharing: Vec<String> = self
            .links
            .iter()
            .filter(|(_, l)| &l.owner == key)
            .map(|(s, _)| s.clone())
            .collect();
        let Some((heir_slot, rest)) = sharing.split_first() else {
            return true;
        };
        let heir = self.links.remove(heir_slot).expect("listed").server;
        for s in rest {
            if let Some(l) = self.links.get_mut(s) {
                l.owner = heir.clone();
            }
        }
        // Tokens renewed through the removed entry's refresh token go on through the heir's.
        for creds in self.credentials.values_mut() {
            if creds.refreshed_through.as_ref() == Some(key) {
                Arc::make_mut(creds).refreshed_through = Some(heir.clone());
            }
        }
        let mut own = current;
        own.server_name = heir.server_name.clone();
        own.server_url = heir.server_url.clone();
        own.account = heir.account.clone();
        self.put_own(&heir, own);
        true
    }

    /// Makes `key` share the login of `link.owner` (or of the server that one shares): only
    /// when that entry holds tokens of the link's issuer for the link's resource, and no
    /// other server shares `key`'s own login. What `key` had of its own gives way.
    fn link(&mut self, key: &CredentialKey, link: StoredLink) -> Option<StoredCredentials> {
        let current = self.credentials_for(key).cloned();
        let Some(owner) = self.credentials_for(&link.owner).map(|c| c.entry_key()) else {
            return current;
        };
        let serves = &owner != key
            && link.server == *key
            && self
                .own_entry(&owner)
                .is_some_and(|o| o.issuer == link.issuer && o.resource == link.resource);
        let shared_by_others = self.links.values().any(|l| &l.owner == key);
        if !serves || shared_by_others {
            return current;
        }
        let slot = key.storage_key();
        self.credentials.remove(&slot);
        self.keyring_index.remove(key);
        let link = StoredLink { owner, ..link };
        self.links.insert(slot, link.clone());
        self.show_link(&link);
        self.credentials_for(key).cloned()
    }

    /// Shows the owner's entry under the name of every server sharing it.
    fn show_links_of(&mut self, owner: &CredentialKey) {
        let linked: Vec<StoredLink> = self
            .links
            .values()
            .filter(|l| &l.owner == owner)
            .cloned()
            .collect();
        for link in &linked {
            self.show_link(link);
        }
    }

    /// Every link shown (after the document was read).
    pub(crate) fn show_all_links(&mut self) {
        let all: Vec<StoredLink> = self.links.values().cloned().collect();
        for link in &all {
            self.show_link(link);
        }
    }

    /// Shows the owner's entry under the linked server's key, while it holds tokens of
    /// the link's issuer for its resource; a link that no longer serves is dropped (the
    /// server is then logged out), and so is one the server's own login replaced.
    fn show_link(&mut self, link: &StoredLink) {
        let slot = link.server.storage_key();
        if self.own_entry(&link.server).is_some() {
            self.links.remove(&slot);
            return;
        }
        let shown = self
            .own_entry(&link.owner)
            .filter(|o| o.issuer == link.issuer && o.resource == link.resource)
            .map(|o| StoredCredentials {
                server_name: link.server.server_name.clone(),
                server_url: link.server.server_url.clone(),
                account: link.server.account.clone(),
                shared_with: Some(link.owner.clone()),
                ..o.clone()
            });
        match shown {
            Some(creds) => {
                self.credentials.insert(slot, Arc::new(creds));
            }
            None => {
                self.links.remove(&slot);
                if self
                    .credentials
                    .get(&slot)
                    .is_some_and(|c| c.shared_with.is_some())
                {
                    self.credentials.remove(&slot);
                }
            }
        }
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
        Ok(mut doc) if doc.version == CURRENT_VERSION => {
            doc.show_all_links();
            return Ok(doc);
        }
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

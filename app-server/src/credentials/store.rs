//! The trait both backends implement, and what it answers with.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::document;
use super::error::StoreError;
use super::model::{CredentialKey, LookupKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::RefreshLock;
use super::update::{Decide, UpdateResult};

/// How long a store operation waits for a lock (the document's or a refresh lock) before
/// it fails with the retryable [`StoreError::LockTimeout`]. Longer than one token endpoint
/// request (the HTTP client's 30 s whole-request timeout, `TOTAL_TIMEOUT` in `oauth/http.rs`,
/// which checks at compile time that it stays shorter), the longest a healthy refresh or code
/// exchange holds a refresh lock, so a wait only times out behind a stuck holder.
pub(crate) const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(40);

/// The backend a store actually uses (what `auto` resolved to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    File,
    Keyring,
}

/// Persistent credentials. Synchronous: methods wait (bounded) for file locks and, for the
/// keyring, for platform calls, so async code calls them inside `spawn_blocking`.
pub trait CredentialStore: Send + Sync + std::fmt::Debug {
    /// The tokens for `key`; `None` when absent or stored for another URL.
    fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, StoreError>;
    /// Inserts or replaces the entry for `creds.key()`, leaving other servers' entries as
    /// they are, also when other processes save at the same time.
    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError>;
    /// Compare-and-save: reads the entry for `key`, lets `decide` choose, and applies the
    /// choice, all under the store's exclusive lock, so no other process's write lands
    /// between the read and the write. Returns what is stored afterwards.
    fn update(
        &self,
        key: &CredentialKey,
        decide: Decide<'_>,
    ) -> Result<Option<StoredCredentials>, StoreError>;
    /// Several [`CredentialStore::update`]s, applied in order; one result each. The file
    /// backend applies them all in one read-modify-write under its lock, with one write and
    /// one sync of the file (group commit): when this returns, every change it made is
    /// durable. Backends without that do one update after the other.
    fn update_many(&self, updates: Vec<(CredentialKey, Decide<'_>)>) -> Vec<UpdateResult> {
        updates
            .into_iter()
            .map(|(key, decide)| self.update(&key, decide))
            .collect()
    }
    /// [`CredentialStore::load`] on the hot path: the entry shared with the store's copy
    /// where it keeps one (the file's in-memory document), so nothing is copied.
    fn load_shared(&self, key: &LookupKey) -> Result<Option<Arc<StoredCredentials>>, StoreError> {
        Ok(self.load(key.key())?.map(Arc::new))
    }
    /// [`CredentialStore::load_shared`] without a file system call or a wait, for callers
    /// on async threads: `None` when the store cannot answer that way right now (then
    /// call [`CredentialStore::load_shared`] on a blocking thread). An answer sees every
    /// write finished before the call, as that one does.
    fn load_shared_now(&self, key: &LookupKey) -> Option<Option<Arc<StoredCredentials>>> {
        let _ = key;
        None
    }
    /// `false` when there was nothing to delete.
    fn delete(&self, key: &CredentialKey) -> Result<bool, StoreError>;
    /// Every stored entry, for status.
    fn list(&self) -> Result<Vec<StoredCredentials>, StoreError>;

    /// A DCR registration to reuse for this issuer and redirect URI (rule 12).
    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError>;
    /// Inserts or replaces the registration for `reg.issuer` and `reg.redirect_uri`.
    fn save_registration(&self, reg: &StoredRegistration) -> Result<(), StoreError>;
    /// Several [`CredentialStore::save_registration`]s; the file backend writes them in
    /// one read-modify-write (one write, one sync). Backends without that save one after
    /// the other.
    fn save_registrations(&self, regs: &[StoredRegistration]) -> Result<(), StoreError> {
        regs.iter().try_for_each(|reg| self.save_registration(reg))
    }
    fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> Result<(), StoreError>;

    /// Whether this issuer rejected a Client ID Metadata Document before (rule 13), so
    /// registration goes straight to DCR.
    fn cimd_refused(&self, issuer: &str) -> Result<bool, StoreError>;
    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError>;

    /// Exclusive cross-process lock for one server's refresh, held across the network call:
    /// an OS file lock on `state_dir/locks/<hash of the key>.lock`. Waits for the current
    /// holder, at most the store's lock wait ([`StoreError::LockTimeout`]); after acquiring, reload the credentials, as the holder may have
    /// refreshed them already. Not reentrant: a second call for the same key from the same
    /// process waits like any other holder, so put an in-process per-server mutex in front
    /// (which also keeps `spawn_blocking` threads from piling up on the OS lock).
    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError>;
    /// Like [`CredentialStore::refresh_lock`], but `None` instead of waiting.
    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError>;
    /// Makes what [`CredentialStore::refresh_lock`] needs for `key` (its lock file) ahead
    /// of time, without taking the lock, so taking it later only opens a file. Called
    /// while a login waits for the browser: creating a file can take a while on a busy
    /// disk, and then it is not spent after the user came back.
    fn prepare_refresh_lock(&self, key: &CredentialKey) -> Result<(), StoreError> {
        let _ = key;
        Ok(())
    }

    fn backend(&self) -> StoreBackend;

    /// A view that answers several lookups (`load`, `list`, `load_registration`,
    /// `cimd_refused`) from one look at the store made now, for the file one check of its
    /// stamp; everything else goes to this store. Lookups answered by it see every write
    /// finished before this call, so a caller who asked before it is answered by a look
    /// made after asking. `None` when the backend has no cheaper way than answering each
    /// lookup on its own (or the look failed: each lookup then meets the error itself).
    fn pinned(&self) -> Option<Box<dyn CredentialStore + '_>> {
        None
    }

    /// Every stored entry at one moment, for lookups by key. The file store shares its
    /// in-memory copy (no copy of the entries); other stores build it from [`Self::list`].
    fn stored_set(&self) -> Result<StoredSet, StoreError> {
        Ok(StoredSet::from_list(self.list()?))
    }
    /// [`CredentialStore::stored_set`] without a file system call or a wait, as
    /// [`CredentialStore::load_shared_now`] answers lookups; `None`: call that one on a
    /// blocking thread.
    fn stored_set_now(&self) -> Option<StoredSet> {
        None
    }
}

/// Every stored entry at one moment ([`CredentialStore::stored_set`]); cheap to clone.
#[derive(Debug, Clone)]
pub struct StoredSet {
    doc: Arc<document::Document>,
}

impl StoredSet {
    pub(crate) fn shared(doc: Arc<document::Document>) -> StoredSet {
        StoredSet { doc }
    }

    pub(crate) fn from_list(list: Vec<StoredCredentials>) -> StoredSet {
        let doc = document::Document {
            credentials: list
                .into_iter()
                .map(|c| (c.key().storage_key(), Arc::new(c)))
                .collect(),
            ..Default::default()
        };
        StoredSet { doc: Arc::new(doc) }
    }

    /// The entry for `key` (as [`CredentialStore::load`] finds it).
    pub(crate) fn get(&self, key: &CredentialKey) -> Option<&StoredCredentials> {
        self.doc.credentials_for(key)
    }

    /// [`StoredSet::get`] by a key whose storage key is known.
    pub(crate) fn lookup(&self, key: &LookupKey) -> Option<&StoredCredentials> {
        self.doc.shared_credentials(key).map(|c| &**c)
    }

    /// Every account's entry of the server `server_name` at `server_url`, in no order.
    pub(crate) fn accounts_of<'a>(
        &'a self,
        server_name: &'a str,
        server_url: &'a str,
    ) -> impl Iterator<Item = &'a StoredCredentials> + 'a {
        self.doc.accounts_of(server_name, server_url)
    }

    /// The entry a request for `key` that names no account uses (rule 81): with an account
    /// in `key`, that account's; without, the server's account chosen last.
    pub(crate) fn current<'a>(&'a self, key: &'a LookupKey) -> Option<&'a StoredCredentials> {
        let k = key.key();
        if k.account.is_some() {
            return self.lookup(key);
        }
        chosen_last(self.accounts_of(&k.server_name, &k.server_url))
    }
}

/// Rule 81 for every server at once: the label of each server's account used last, where
/// that account has one. Made once per version of the store's document, so that a request
/// naming no account finds its account in one probe however many entries are stored.
#[derive(Debug)]
pub(crate) struct CurrentAccounts {
    set: StoredSet,
    /// Each server's entry used last, by the storage key of the server's unnamed entry.
    last: std::collections::HashMap<String, Arc<StoredCredentials>>,
}

impl CurrentAccounts {
    pub(crate) fn of(set: StoredSet) -> CurrentAccounts {
        let mut last: std::collections::HashMap<String, Arc<StoredCredentials>> =
            std::collections::HashMap::new();
        for c in set.doc.credentials.values() {
            let server = CredentialKey::new(c.server_name.clone(), c.server_url.clone());
            let entry = last
                .entry(server.storage_key())
                .or_insert_with(|| c.clone());
            if chosen_last([&**entry, &**c]).is_some_and(|l| std::ptr::eq(l, &**c)) {
                *entry = c.clone();
            }
        }
        CurrentAccounts { set, last }
    }

    /// [`StoredSet::current`] of the server whose unnamed entry `server` is the key of.
    pub(crate) fn current(&self, server: &LookupKey) -> Option<&StoredCredentials> {
        self.last
            .get(server.storage_key())
            .filter(|c| server.key().same_server(&c.key()))
            .map(|c| &**c)
    }

    /// Whether this was made from `set` (the same version of the document).
    pub(crate) fn is_of(&self, set: &StoredSet) -> bool {
        Arc::ptr_eq(&self.set.doc, &set.doc)
    }

    /// The label of the account used last of the server whose unnamed entry `server` is
    /// the key of; `None` when that account has no label or nothing is stored.
    pub(crate) fn label(&self, server: &LookupKey) -> Option<&str> {
        self.current(server).and_then(|c| c.account.as_deref())
    }
}

/// Rule 81, pure: of one server's entries, the account chosen last (the greatest
/// `selected_at`; entries stored before accounts existed count as never chosen); ties go
/// to the greater label, so every process picks the same one.
pub(crate) fn chosen_last<'a>(
    entries: impl IntoIterator<Item = &'a StoredCredentials>,
) -> Option<&'a StoredCredentials> {
    entries.into_iter().max_by(|a, b| {
        a.selected_at
            .cmp(&b.selected_at)
            .then_with(|| a.account.cmp(&b.account))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::fixtures::credentials;

    fn account(label: Option<&str>, selected_at: Option<i64>) -> StoredCredentials {
        let mut c = credentials("s", "https://s.example/mcp");
        c.account = label.map(str::to_owned);
        c.selected_at = selected_at;
        c
    }

    #[test]
    fn the_account_chosen_last_serves_requests_that_name_none() {
        let old = account(None, None);
        let alice = account(Some("alice"), Some(2_000));
        let bob = account(Some("bob"), Some(1_000));
        let other_server = {
            let mut c = account(Some("zed"), Some(9_000));
            c.server_url = "https://other.example/mcp".into();
            c
        };
        let set = StoredSet::from_list(vec![old.clone(), alice.clone(), bob.clone(), other_server]);
        let server = LookupKey::new(old.key());
        assert_eq!(set.accounts_of("s", "https://s.example/mcp").count(), 3);
        assert_eq!(set.current(&server), Some(&alice));
        // A named account is that account, chosen last or not.
        assert_eq!(set.current(&LookupKey::new(bob.key())), Some(&bob));
        assert_eq!(set.lookup(&server), Some(&old));

        // An entry from before accounts counts as never chosen; equal stamps go to the
        // greater label, so every process agrees.
        assert_eq!(
            chosen_last([&old, &account(Some("a"), Some(1))])
                .unwrap()
                .account
                .as_deref(),
            Some("a")
        );
        assert_eq!(chosen_last([&old]), Some(&old));
        let tie = [account(Some("x"), Some(5)), account(Some("y"), Some(5))];
        assert_eq!(chosen_last(&tie).unwrap().account.as_deref(), Some("y"));
        assert_eq!(chosen_last(&[]), None);

        let index = CurrentAccounts::of(set.clone());
        assert!(index.is_of(&set));
        assert!(!index.is_of(&StoredSet::from_list(vec![old.clone()])));
        assert_eq!(index.label(&server), Some("alice"));
        let other = LookupKey::new(CredentialKey::new("s", "https://other.example/mcp"));
        assert_eq!(index.label(&other), Some("zed"));
        let unnamed_only = CurrentAccounts::of(StoredSet::from_list(vec![old.clone()]));
        assert_eq!(unnamed_only.label(&server), None);
        assert_eq!(unnamed_only.current(&server), Some(&old));
        assert_eq!(index.current(&server), Some(&alice));
    }
}

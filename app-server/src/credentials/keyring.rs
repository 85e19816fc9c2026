//! The keyring backend: each server's tokens are one OS keyring item (service
//! `mcp-app-server`, account = the key's storage key, secret = the JSON of
//! [`StoredCredentials`]).
//!
//! Keyrings cannot be enumerated portably, so the file document keeps an index of the keys
//! stored here; registrations and the CIMD-refused flags also stay in the file (they are
//! per issuer, not user tokens). Entries left in the file by the file backend are still
//! found, and move into the keyring on their next save, so switching backends does not log
//! anyone out.
//!
//! Items are only written while the file document's exclusive lock is held, and read under
//! its shared lock, so the compare-and-save of [`CredentialStore::update`] excludes other
//! daemons' writes as it does for the file backend.
//!
//! Every keyring call runs on a thread of its own with a time bound: the Linux backend
//! drives its own tokio runtime with `block_on`, which panics on a runtime thread, and a
//! D-Bus service that never answers must not hang a login.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use super::error::StoreError;
use super::file::FileStore;
use super::model::{CredentialKey, StoredCredentials, StoredRegistration};
use super::refresh_lock::{self, RefreshLock};
use super::store::{CredentialStore, StoreBackend};
use super::update::{Decide, Update};

/// The keyring service name of every item this program stores.
pub(crate) const KEYRING_SERVICE: &str = "mcp-app-server";

/// Account of the item the probe reads; it is never written.
const PROBE_ACCOUNT: &str = "mcp-app-server-availability-probe";

/// How long the availability probe may take before the keyring counts as unavailable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long one keyring operation may take; long enough for an unlock prompt.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);

/// Secrets by account name. The OS keyring in production; a map in tests, so the store's
/// bookkeeping is tested on machines without a keyring.
pub(crate) trait Secrets: Send + Sync {
    fn get(&self, account: &str) -> Result<Option<String>, StoreError>;
    fn set(&self, account: &str, secret: &str) -> Result<(), StoreError>;
    /// `false` when there was no such item.
    fn delete(&self, account: &str) -> Result<bool, StoreError>;
}

/// Checks that the OS keyring answers: reading an item that does not exist must give "no
/// entry". Any platform error, or no answer within 3 s, means unavailable. Safe to call from
/// async code, `spawn_blocking` and plain threads.
pub(crate) fn probe_keyring() -> Result<(), String> {
    let outcome = run_bounded(PROBE_TIMEOUT, || {
        keyring::Entry::new(KEYRING_SERVICE, PROBE_ACCOUNT).and_then(|e| e.get_password())
    })?;
    match outcome {
        Ok(_) | Err(keyring::Error::NoEntry) => Ok(()),
        Err(e) => Err(describe(&e)),
    }
}

/// Runs `op` on a new thread and waits at most `timeout`. On timeout the thread is left to
/// finish (or not) on its own; there is no way to cancel a blocked platform call.
fn run_bounded<T: Send + 'static>(
    timeout: Duration,
    op: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("keyring".to_owned())
        .spawn(move || {
            // The receiver may have given up; nothing to do then.
            let _ = tx.send(op());
        })
        .map_err(|e| format!("could not start a thread for the keyring call: {e}"))?;
    rx.recv_timeout(timeout).map_err(|e| match e {
        mpsc::RecvTimeoutError::Timeout => format!(
            "the keyring did not answer within {} s (is it waiting for an unlock prompt?)",
            timeout.as_secs()
        ),
        mpsc::RecvTimeoutError::Disconnected => "the keyring call panicked".to_owned(),
    })
}

/// The error's text, without the debug dump of matching items `Ambiguous` would print.
fn describe(e: &keyring::Error) -> String {
    match e {
        keyring::Error::Ambiguous(items) => format!(
            "{} keyring items match the same service and account; remove the duplicates \
             with the keyring manager",
            items.len()
        ),
        other => other.to_string(),
    }
}

/// The platform keyring through the `keyring` crate.
pub(crate) struct OsKeyring;

impl OsKeyring {
    fn call<T: Send + 'static>(
        account: &str,
        op: impl FnOnce(keyring::Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<keyring::Result<T>, StoreError> {
        let account = account.to_owned();
        run_bounded(OPERATION_TIMEOUT, move || {
            keyring::Entry::new(KEYRING_SERVICE, &account).and_then(op)
        })
        .map_err(|reason| StoreError::Keyring { reason })
    }
}

fn keyring_error(e: keyring::Error) -> StoreError {
    StoreError::Keyring {
        reason: describe(&e),
    }
}

impl Secrets for OsKeyring {
    fn get(&self, account: &str) -> Result<Option<String>, StoreError> {
        match Self::call(account, |e| e.get_password())? {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(keyring_error(e)),
        }
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), StoreError> {
        let secret = secret.to_owned();
        Self::call(account, move |e| e.set_password(&secret))?.map_err(keyring_error)
    }

    fn delete(&self, account: &str) -> Result<bool, StoreError> {
        match Self::call(account, |e| e.delete_credential())? {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(keyring_error(e)),
        }
    }
}

/// Tokens in the OS keyring; everything else in the file document.
pub(crate) struct KeyringStore {
    file: FileStore,
    secrets: Box<dyn Secrets>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    pub(crate) fn new(file: FileStore, secrets: Box<dyn Secrets>) -> KeyringStore {
        KeyringStore { file, secrets }
    }

    /// The keyring item for `key`. An item that does not parse is reported separately from
    /// platform failures, so `list` can skip it and still show the other servers.
    fn read_item(&self, key: &CredentialKey) -> Result<Item, StoreError> {
        let account = key.storage_key();
        let Some(secret) = self.secrets.get(&account)? else {
            return Ok(Item::Missing);
        };
        Ok(match serde_json::from_str::<StoredCredentials>(&secret) {
            // Stored for another URL under a colliding account: not this server's tokens.
            Ok(creds) if creds.key() != *key => Item::Missing,
            Ok(creds) => Item::Found(Box::new(creds)),
            Err(_) => Item::Unreadable(StoreError::Keyring {
                reason: format!(
                    "the keyring item {KEYRING_SERVICE}/{account} does not hold credentials \
                     this build can read; log out of {} to remove it",
                    key.server_name
                ),
            }),
        })
    }
}

enum Item {
    Missing,
    Found(Box<StoredCredentials>),
    Unreadable(StoreError),
}

impl CredentialStore for KeyringStore {
    fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, StoreError> {
        // Under the document's shared lock: no save moves the entry between the keyring
        // and the file while it is looked up in both.
        self.file.read_with(|doc| match self.read_item(key)? {
            Item::Found(creds) => Ok(Some(*creds)),
            Item::Unreadable(e) => Err(e),
            // Left in the file by the file backend before the switch to the keyring.
            Item::Missing => Ok(doc.credentials_for(key).cloned()),
        })
    }

    fn save(&self, creds: &StoredCredentials) -> Result<(), StoreError> {
        let new = creds.clone();
        self.update(&creds.key(), Box::new(|_| Update::Save(new)))
            .map(drop)
    }

    fn update(
        &self,
        key: &CredentialKey,
        decide: Decide<'_>,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        // Every write of an item happens under the document's exclusive lock, so this
        // read, decision and write exclude other daemons' writes as the file backend does.
        self.file.modify(|doc| {
            let current = match self.read_item(key)? {
                Item::Found(creds) => Some(*creds),
                // Nobody can use an item this build cannot read: a login may replace it and
                // a logout remove it, and a compare-and-save finds nothing to compare with.
                Item::Unreadable(_) => None,
                Item::Missing => doc.credentials_for(key).cloned(),
            };
            let account = key.storage_key();
            match decide(current.as_ref()) {
                // The keyring keeps no links: the server keeps what it has.
                Update::Keep | Update::Link(_) => Ok(current),
                Update::Save(new) => {
                    debug_assert_eq!(&new.key(), key);
                    let secret =
                        serde_json::to_string(&new).expect("credentials serialize to JSON");
                    // Index first: an index entry without an item is skipped by `list`,
                    // while an item missing from the index would be invisible to `status`.
                    doc.keyring_index.insert(key.clone());
                    self.secrets.set(&account, &secret)?;
                    // The keyring copy is now the current one; drop any older copy from
                    // the file.
                    doc.credentials.remove(&account);
                    Ok(Some(new))
                }
                Update::Delete => {
                    self.secrets.delete(&account)?;
                    doc.keyring_index.remove(key);
                    if doc.credentials_for(key).is_some() {
                        doc.credentials.remove(&account);
                    }
                    Ok(None)
                }
            }
        })?
    }

    fn delete(&self, key: &CredentialKey) -> Result<bool, StoreError> {
        let mut found = false;
        self.update(
            key,
            Box::new(|current| {
                found = current.is_some();
                Update::Delete
            }),
        )?;
        Ok(found)
    }

    fn list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        let mut doc = self.file.read()?;
        let mut all = Vec::new();
        for key in &doc.keyring_index {
            match self.read_item(key)? {
                Item::Found(creds) => all.push(*creds),
                // Indexed but never written (a save failed half way), or removed by hand.
                Item::Missing => {
                    tracing::debug!(server = %key, "keyring item listed in the index is missing");
                }
                // One unreadable item must not hide every other server's status.
                Item::Unreadable(e) => tracing::warn!(server = %key, "{e}"),
            }
        }
        let in_keyring = std::mem::take(&mut doc.keyring_index);
        all.extend(
            doc.credentials_in_order()
                .filter(|c| !in_keyring.contains(&c.key()))
                .map(Arc::unwrap_or_clone),
        );
        Ok(all)
    }

    fn load_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, StoreError> {
        self.file.load_registration(issuer, redirect_uri)
    }

    fn save_registration(&self, reg: &StoredRegistration) -> Result<(), StoreError> {
        self.file.save_registration(reg)
    }

    fn save_registrations(&self, regs: &[StoredRegistration]) -> Result<(), StoreError> {
        self.file.save_registrations(regs)
    }

    fn delete_registration(&self, issuer: &str, redirect_uri: &str) -> Result<(), StoreError> {
        self.file.delete_registration(issuer, redirect_uri)
    }

    fn cimd_refused(&self, issuer: &str) -> Result<bool, StoreError> {
        self.file.cimd_refused(issuer)
    }

    fn mark_cimd_refused(&self, issuer: &str) -> Result<(), StoreError> {
        self.file.mark_cimd_refused(issuer)
    }

    fn refresh_lock(&self, key: &CredentialKey) -> Result<RefreshLock, StoreError> {
        refresh_lock::acquire(self.file.state_dir(), key, self.file.lock_wait())
    }

    fn try_refresh_lock(&self, key: &CredentialKey) -> Result<Option<RefreshLock>, StoreError> {
        refresh_lock::try_acquire(self.file.state_dir(), key)
    }

    fn prepare_refresh_lock(&self, key: &CredentialKey) -> Result<(), StoreError> {
        refresh_lock::prepare(self.file.state_dir(), key)
    }

    fn backend(&self) -> StoreBackend {
        StoreBackend::Keyring
    }
}

#[cfg(test)]
pub(crate) mod tests;

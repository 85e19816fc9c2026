//! The credential store: tokens per server, client registrations per issuer, and the
//! cross-process refresh lock (requirements rules 12, 13, 19, 20).
//!
//! Two backends behind one trait: a JSON file in the state dir (the default, and what
//! `auto` falls back to) and the OS keyring. Several daemons may share one state dir, so
//! every write is a locked read-modify-write and refreshes are serialized by OS file locks.
//! The API is synchronous (lock waits sleep, bounded by [`DEFAULT_LOCK_WAIT`]); async
//! callers use `spawn_blocking`.

mod batched;
mod cache;
mod copy;
mod document;
mod error;
mod file;
mod keyring;
mod model;
mod refresh_lock;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::batched::{BatchCounts, SendDecide, StoreQueue};
pub use self::cache::CachedFileStore;
pub use self::error::StoreError;
pub use self::file::FileStore;
pub use self::keyring::{KEYRING_SERVICE, KeyringStore, probe_keyring};
#[cfg(test)]
pub(crate) use self::model::fixtures;
pub use self::model::{
    CredentialKey, LookupKey, StoredClient, StoredCredentials, StoredRegistration,
};
pub use self::refresh_lock::RefreshLock;
use crate::home::Home;

/// Where tokens are kept; config key `mcp_oauth_credentials_store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreMode {
    /// The OS keyring when it answers, else the file; always the file on Linux.
    #[default]
    Auto,
    File,
    /// The OS keyring. On Linux its per-session cache can hold an older copy of an item
    /// than another login session (or a daemon started from one) wrote: with several
    /// sessions of one user, a rotated refresh token could be used twice, which revokes
    /// the grant at strict servers. Use it there only with one session at a time.
    Keyring,
}

impl From<crate::config::CredentialsStoreMode> for StoreMode {
    fn from(mode: crate::config::CredentialsStoreMode) -> Self {
        use crate::config::CredentialsStoreMode;
        match mode {
            CredentialsStoreMode::Auto => Self::Auto,
            CredentialsStoreMode::File => Self::File,
            CredentialsStoreMode::Keyring => Self::Keyring,
        }
    }
}

/// The backend a store actually uses (what `auto` resolved to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    File,
    Keyring,
}

/// How long a store operation waits for a lock (the document's or a refresh lock) before
/// it fails with the retryable [`StoreError::LockTimeout`]. Longer than one token endpoint
/// request (the HTTP client's 30 s whole-request timeout, `TOTAL_TIMEOUT` in `oauth/http.rs`,
/// which checks at compile time that it stays shorter), the longest a healthy refresh or code
/// exchange holds a refresh lock, so a wait only times out behind a stuck holder.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(40);

/// Overrides [`DEFAULT_LOCK_WAIT`], in milliseconds (tests, and home directories on slow
/// network file systems).
pub const LOCK_WAIT_ENV: &str = "MCP_APP_SERVER_STORE_LOCK_WAIT_MS";

/// What [`CredentialStore::update`] makes of the entry it found.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // built once per store call
pub enum Update {
    /// Leave the entry as it is.
    Keep,
    /// Store this (for the same key) instead.
    Save(StoredCredentials),
    Delete,
}

/// The decision of an [`CredentialStore::update`], given the entry stored now.
pub type Decide<'a> = Box<dyn FnOnce(Option<&StoredCredentials>) -> Update + 'a>;

/// What one update leaves stored for its key, or why it failed.
pub type UpdateResult = Result<Option<StoredCredentials>, StoreError>;

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

    pub fn from_list(list: Vec<StoredCredentials>) -> StoredSet {
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
    pub fn get(&self, key: &CredentialKey) -> Option<&StoredCredentials> {
        self.doc.credentials_for(key)
    }

    /// [`StoredSet::get`] by a key whose storage key is known.
    pub fn lookup(&self, key: &LookupKey) -> Option<&StoredCredentials> {
        self.doc.shared_credentials(key).map(|c| &**c)
    }

    pub fn len(&self) -> usize {
        self.doc.credentials.len()
    }

    pub fn is_empty(&self) -> bool {
        self.doc.credentials.is_empty()
    }
}

/// Opens the store `mode` asks for. `keyring` fails with [`StoreError::KeyringUnavailable`]
/// when the keyring does not answer; `auto` then falls back to the file (headless Linux has
/// no Secret Service). Probing the keyring takes at most 3 s.
///
/// On Linux `auto` is the file: the keyring crate's Linux backend caches items in the
/// kernel's per-session keyring, so a daemon in one login session could read a refresh
/// token that a daemon in another session has already rotated (see docs/credentials.md).
pub fn open_store(home: &Home, mode: StoreMode) -> Result<Arc<dyn CredentialStore>, StoreError> {
    let file = FileStore::open(home)?.with_lock_wait(lock_wait_from_env());
    let keyring = |file| Arc::new(KeyringStore::new(file, Box::new(keyring::OsKeyring)));
    match mode {
        StoreMode::File => Ok(Arc::new(CachedFileStore::new(file))),
        StoreMode::Keyring => match probe_keyring() {
            Ok(()) => Ok(keyring(file)),
            Err(reason) => Err(StoreError::KeyringUnavailable { reason }),
        },
        StoreMode::Auto if cfg!(target_os = "linux") => Ok(Arc::new(CachedFileStore::new(file))),
        StoreMode::Auto => match probe_keyring() {
            Ok(()) => Ok(keyring(file)),
            Err(reason) => {
                tracing::info!(
                    path = %file.path().display(),
                    "OS keyring not available ({reason}); keeping credentials in the file"
                );
                Ok(Arc::new(CachedFileStore::new(file)))
            }
        },
    }
}

fn lock_wait_from_env() -> Duration {
    std::env::var(LOCK_WAIT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_LOCK_WAIT, Duration::from_millis)
}

/// Now as unix seconds, the unit of `expires_at`, `updated_at` and `registered_at`.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_mode_reads_lowercase_config_values() {
        #[derive(Deserialize)]
        struct Config {
            mcp_oauth_credentials_store: StoreMode,
        }
        for (text, mode) in [
            ("auto", StoreMode::Auto),
            ("file", StoreMode::File),
            ("keyring", StoreMode::Keyring),
        ] {
            let config: Config =
                toml::from_str(&format!("mcp_oauth_credentials_store = \"{text}\"")).unwrap();
            assert_eq!(config.mcp_oauth_credentials_store, mode);
        }
        assert!(toml::from_str::<Config>("mcp_oauth_credentials_store = \"Keyring\"").is_err());
        assert_eq!(StoreMode::default(), StoreMode::Auto);
    }

    #[test]
    fn open_store_follows_keyring_availability() {
        let tmp = tempfile::tempdir().unwrap();
        let home = Home::at(tmp.path().join("home"));
        let file = open_store(&home, StoreMode::File).unwrap();
        assert_eq!(file.backend(), StoreBackend::File);
        assert!(home.state_dir.is_dir());

        let auto = open_store(&home, StoreMode::Auto).unwrap();
        let explicit = open_store(&home, StoreMode::Keyring);
        if cfg!(target_os = "linux") {
            // The per-session keyutils cache could hand out a rotated refresh token: auto
            // is the file on Linux whatever the keyring offers.
            assert_eq!(auto.backend(), StoreBackend::File);
            match probe_keyring() {
                Ok(()) => assert_eq!(explicit.unwrap().backend(), StoreBackend::Keyring),
                Err(_) => assert!(matches!(
                    explicit,
                    Err(StoreError::KeyringUnavailable { .. })
                )),
            }
            return;
        }
        match probe_keyring() {
            // A desktop with a keyring.
            Ok(()) => {
                assert_eq!(auto.backend(), StoreBackend::Keyring);
                assert_eq!(explicit.unwrap().backend(), StoreBackend::Keyring);
            }
            // Headless machines (CI): auto falls back, explicit keyring says why and what to do.
            Err(_) => {
                assert_eq!(auto.backend(), StoreBackend::File);
                let err = explicit.unwrap_err();
                assert!(
                    matches!(err, StoreError::KeyringUnavailable { .. }),
                    "{err:?}"
                );
                assert!(
                    err.to_string().contains("mcp_oauth_credentials_store"),
                    "{err}"
                );
            }
        }
    }

    #[test]
    fn file_store_through_the_trait_object() {
        let tmp = tempfile::tempdir().unwrap();
        let store = open_store(&Home::at(tmp.path()), StoreMode::File).unwrap();
        let creds = model::fixtures::credentials("a", "https://a.example/mcp");
        store.save(&creds).unwrap();
        assert_eq!(store.load(&creds.key()).unwrap(), Some(creds));
    }
}

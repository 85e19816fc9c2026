//! The credential store: tokens per server, client registrations per issuer, and the
//! cross-process refresh lock (requirements rules 12, 13, 19, 20).
//!
//! Two backends behind one trait: a JSON file in the state dir (the default, and what
//! `auto` falls back to) and the OS keyring. Several daemons may share one state dir, so
//! every write is a locked read-modify-write and refreshes are serialized by OS file locks.
//! The API is synchronous (lock waits sleep, bounded by `DEFAULT_LOCK_WAIT`, 40 s); async
//! callers use `spawn_blocking`.

mod batched;
mod cache;
mod client_secret;
mod copy;
mod document;
mod error;
mod file;
mod keyring;
mod model;
mod refresh_lock;
mod store;
mod update;
mod watch;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use self::batched::BatchCounts;
pub(crate) use self::batched::{SendDecide, StoreQueue};
pub(crate) use self::cache::CachedFileStore;
pub use self::client_secret::{ClientSecretKeyring, KeyringError, MAX_SECRET_BYTES};
pub use self::error::StoreError;
pub use self::file::FileStore;
pub use self::keyring::Secrets;
pub(crate) use self::keyring::{KeyringStore, probe_keyring};
#[cfg(test)]
pub(crate) use self::model::fixtures;
pub use self::model::{
    AccountError, CredentialKey, LookupKey, MAX_ACCOUNT_LEN, StoredClient, StoredCredentials,
    StoredLink, StoredRegistration, check_account,
};
pub use self::refresh_lock::RefreshLock;
pub(crate) use self::store::DEFAULT_LOCK_WAIT;
pub use self::store::{CredentialStore, StoreBackend, StoredSet};
pub(crate) use self::store::{CurrentAccounts, chosen_last};
pub use self::update::Update;
#[cfg(test)]
pub(crate) use self::update::{Decide, UpdateResult};
use crate::home::Home;

/// Where tokens are kept; config key `mcp_oauth_credentials_store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StoreMode {
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

/// Overrides the wait for a store lock (`DEFAULT_LOCK_WAIT`, 40 s), in milliseconds (tests, and home directories on slow
/// network file systems).
pub const LOCK_WAIT_ENV: &str = "MCP_APP_SERVER_STORE_LOCK_WAIT_MS";

/// Opens the store `mode` asks for. `keyring` fails with [`StoreError::KeyringUnavailable`]
/// when the keyring does not answer; `auto` then falls back to the file (headless Linux has
/// no Secret Service). Probing the keyring takes at most 3 s.
///
/// On Linux `auto` is the file: the keyring crate's Linux backend caches items in the
/// kernel's per-session keyring, so a daemon in one login session could read a refresh
/// token that a daemon in another session has already rotated (see docs/credentials.md).
pub(crate) fn open_store(
    home: &Home,
    mode: StoreMode,
) -> Result<Arc<dyn CredentialStore>, StoreError> {
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

pub use crate::clock::unix_now;

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

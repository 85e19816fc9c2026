//! Client secrets kept in the OS keyring (rule 71): config.toml names an entry
//! (`client_secret_keyring = "label"`), `mcp-app-server secret set` writes it, and a login
//! reads it when it needs the secret. The item is service `mcp-app-server`, account
//! `client-secret:<label>`; token items are `<server name>|<hash>`, and server names hold
//! no `:`, so the two never meet.

use std::sync::Arc;

use super::error::StoreError;
use super::keyring::{OsKeyring, Secrets};

/// Client secrets at most this long (bytes) are stored.
pub const MAX_SECRET_BYTES: usize = 8 * 1024;

/// Why the keyring could not be used for a client secret: the platform's reason (the
/// advice of [`StoreError::Keyring`] about the token store does not apply here).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct KeyringError {
    pub reason: String,
}

impl From<StoreError> for KeyringError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Keyring { reason } | StoreError::KeyringUnavailable { reason } => {
                KeyringError { reason }
            }
            other => KeyringError {
                reason: other.to_string(),
            },
        }
    }
}

/// The client secrets in the keyring, by label. Every call blocks (the platform call runs
/// on a thread of its own and is waited for at most 60 s): async code calls it through
/// `spawn_blocking`.
#[derive(Clone)]
pub struct ClientSecretKeyring {
    secrets: Arc<dyn Secrets>,
}

impl std::fmt::Debug for ClientSecretKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecretKeyring")
            .finish_non_exhaustive()
    }
}

impl Default for ClientSecretKeyring {
    fn default() -> Self {
        Self::os()
    }
}

impl ClientSecretKeyring {
    /// The OS keyring.
    pub fn os() -> Self {
        Self::with_backend(Arc::new(OsKeyring))
    }

    /// Another backend (tests use a map).
    pub fn with_backend(secrets: Arc<dyn Secrets>) -> Self {
        Self { secrets }
    }

    /// The keyring account of `label`.
    pub fn account(label: &str) -> String {
        format!("client-secret:{label}")
    }

    /// The secret stored under `label`; `None` when there is none.
    pub fn get(&self, label: &str) -> Result<Option<String>, KeyringError> {
        Ok(self.secrets.get(&Self::account(label))?)
    }

    /// Stores `secret` under `label`, replacing any earlier one.
    pub fn set(&self, label: &str, secret: &str) -> Result<(), KeyringError> {
        Ok(self.secrets.set(&Self::account(label), secret)?)
    }

    /// Removes the secret under `label`; `false` when there was none.
    pub fn delete(&self, label: &str) -> Result<bool, KeyringError> {
        Ok(self.secrets.delete(&Self::account(label))?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::keyring::tests::MemorySecrets;
    use super::*;

    #[test]
    fn secrets_live_under_their_own_accounts() {
        let memory = MemorySecrets::default();
        let keyring = ClientSecretKeyring::with_backend(Arc::new(memory.clone()));
        assert_eq!(keyring.get("corp").unwrap(), None);
        keyring.set("corp", "s3cret").unwrap();
        assert_eq!(keyring.get("corp").unwrap().as_deref(), Some("s3cret"));
        assert_eq!(
            memory.get("client-secret:corp").unwrap().as_deref(),
            Some("s3cret")
        );
        // No token item can have that account: server names hold no `:`.
        assert!(!ClientSecretKeyring::account("corp").contains('|'));
        keyring.set("corp", "rotated").unwrap();
        assert_eq!(keyring.get("corp").unwrap().as_deref(), Some("rotated"));
        assert!(keyring.delete("corp").unwrap());
        assert!(!keyring.delete("corp").unwrap());
        assert_eq!(keyring.get("corp").unwrap(), None);
        assert!(!format!("{keyring:?}").contains("rotated"));
    }

    #[test]
    fn a_locked_keyring_is_an_error_not_a_missing_secret() {
        let memory = MemorySecrets::default();
        memory.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let keyring = ClientSecretKeyring::with_backend(Arc::new(memory));
        // The platform's reason, without the token store's advice.
        let e = keyring.get("corp").unwrap_err().to_string();
        assert_eq!(e, "Couldn't access platform secure storage: locked");
    }
}

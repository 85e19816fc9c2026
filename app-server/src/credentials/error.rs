use std::path::PathBuf;

/// Why the credential store could not do what was asked. Messages name the file and what
/// the user can do; they never contain a token or a secret.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "could not access {path}: {source}; check that the directory exists and that this \
         user may read and write it"
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the credential file {path} cannot be read ({reason}); it was left untouched. Fix it, \
         or move it aside to start afresh (servers stored in it will need a new login)"
    )]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "the OS keyring is not available ({reason}); unlock or start it (on Linux a Secret \
         Service such as gnome-keyring), or set mcp_oauth_credentials_store = \"file\" or \
         \"auto\" in config.toml"
    )]
    KeyringUnavailable { reason: String },
    #[error(
        "the OS keyring failed: {reason}; unlock the keyring and try again, or set \
         mcp_oauth_credentials_store = \"file\" in config.toml"
    )]
    Keyring { reason: String },
    #[error(
        "the credential file {path} has format version {version}, which this build of \
         mcp-app-server does not understand (it writes version 1); it was left untouched. \
         Use a newer mcp-app-server, or move the file aside"
    )]
    UnsupportedVersion { path: PathBuf, version: u64 },
    /// Another holder kept the lock longer than the bound. Retryable.
    #[error(
        "{path} stayed locked by another operation for {waited_secs} s (another \
         mcp-app-server process refreshing or saving these credentials); try again. If this \
         persists, a process holding the lock may be stuck: end it"
    )]
    LockTimeout { path: PathBuf, waited_secs: f64 },
}

impl StoreError {
    /// The same request may succeed when tried again later.
    pub(crate) fn is_retryable(&self) -> bool {
        matches!(self, StoreError::LockTimeout { .. })
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }

    /// The same failure once for each of `n` updates that shared one write (a group
    /// commit): every caller learns that its change was not made, and why.
    pub(crate) fn for_each_of<T>(self, n: usize) -> Vec<Result<T, StoreError>> {
        let mut all = Vec::with_capacity(n);
        for _ in 1..n {
            all.push(Err(self.duplicate()));
        }
        if n > 0 {
            all.push(Err(self));
        }
        all
    }

    fn duplicate(&self) -> StoreError {
        match self {
            StoreError::Io { path, source } => StoreError::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            StoreError::Corrupt { path, reason } => StoreError::Corrupt {
                path: path.clone(),
                reason: reason.clone(),
            },
            StoreError::KeyringUnavailable { reason } => StoreError::KeyringUnavailable {
                reason: reason.clone(),
            },
            StoreError::Keyring { reason } => StoreError::Keyring {
                reason: reason.clone(),
            },
            StoreError::UnsupportedVersion { path, version } => StoreError::UnsupportedVersion {
                path: path.clone(),
                version: *version,
            },
            StoreError::LockTimeout { path, waited_secs } => StoreError::LockTimeout {
                path: path.clone(),
                waited_secs: *waited_secs,
            },
        }
    }
}

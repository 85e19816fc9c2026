//! Why a token or revocation request failed: [`TokenError`].

/// Why a token (or revocation) request failed; every variant names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The server's OAuth error answer (`invalid_grant`, `invalid_client`, ...).
    #[error("{endpoint} refused the request (HTTP {status}): {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        endpoint: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Network trouble, a timeout, 5xx or 429: worth retrying later.
    #[error("{endpoint} is unavailable ({reason}); try again later")]
    Transient { endpoint: String, reason: String },
    /// An answer that cannot be used (not JSON, missing fields, a redirect, too large, ...).
    #[error("unusable answer from {endpoint}: {reason}")]
    Invalid { endpoint: String, reason: String },
}

impl TokenError {
    /// The OAuth `error` code, when the server sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            TokenError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    #[cfg(test)]
    /// `invalid_grant`: the code or refresh token is no good; log in again.
    pub fn is_invalid_grant(&self) -> bool {
        self.oauth_error() == Some("invalid_grant")
    }

    /// `invalid_client` / `unauthorized_client`: the server does not accept this client
    /// (for a CIMD client, fall back to DCR, rule 13).
    pub fn is_client_rejected(&self) -> bool {
        matches!(
            self.oauth_error(),
            Some("invalid_client" | "unauthorized_client")
        )
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Transient { .. })
    }
}

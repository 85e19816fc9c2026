//! Why an HTTP exchange failed: [`HttpError`].

use crate::oauth::net_policy::Refused;

/// Why an HTTP exchange failed. Every variant names the URL involved.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error(
        "refusing {url}: authorization endpoints must use https (plain http is allowed only for loopback hosts)"
    )]
    InsecureUrl { url: String },
    #[error("request to {url} timed out; check the network or try again later")]
    Timeout { url: String },
    #[error("could not connect to {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("request to {url} failed: {reason}")]
    Request { url: String, reason: String },
    #[error("response from {url} is larger than the {limit} byte limit")]
    BodyTooLarge { url: String, limit: usize },
    #[error("refusing redirect from {url} to {location}: {reason}")]
    RedirectRefused {
        url: String,
        location: String,
        reason: String,
    },
    #[error("{url} redirected more than {max} times")]
    TooManyRedirects { url: String, max: usize },
    /// Rule 35: a destination the server's network policy does not allow. Nothing was sent.
    #[error("refusing {url}: {refused}")]
    DestinationRefused { url: String, refused: Refused },
    /// The server's TLS certificate was refused (or it refused ours): names the host, the
    /// reason and the setting that fixes it. Not transient: retrying gives the same answer.
    #[error("the TLS connection to {host} failed: {reason}. {fix}")]
    Certificate {
        url: String,
        host: String,
        reason: String,
        fix: String,
    },
    #[error("invalid HTTP header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("could not set up the HTTP client: {0}")]
    Setup(String),
}

impl HttpError {
    /// Network trouble that may go away on its own (the caller may retry later).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HttpError::Timeout { .. } | HttpError::Connect { .. } | HttpError::Request { .. }
        )
    }
}

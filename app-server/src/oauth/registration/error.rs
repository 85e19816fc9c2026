//! Why no client registration could be made: [`RegistrationError`].

use super::cimd::{CimdUnsupported, CimdUrlError};
use crate::oauth::http::HttpError;

/// Why no client registration could be made.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "the authorization server accepts only token endpoint auth methods this client does not implement ({advertised}); supported: client_secret_basic, client_secret_post, none, and with a client certificate tls_client_auth and self_signed_tls_client_auth"
    )]
    UnsupportedAuthMethods { advertised: String },
    /// A certificate method (RFC 8705) without `client_certificate` and `client_key`.
    #[error(
        "token endpoint auth method {method} authenticates the client by its TLS certificate, and this server has none: set client_certificate and client_key in its [mcp_servers.NAME] table, or choose another oauth.token_endpoint_auth_method"
    )]
    CertificateMissing { method: &'static str },
    /// The configured certificate cannot say what a certificate method needs.
    #[error(
        "the client certificate cannot be registered for {method}: {reason}; set oauth.token_endpoint_auth_method to the other certificate method or to \"none\""
    )]
    CertificateUnusable {
        method: &'static str,
        reason: &'static str,
    },
    /// A secret method configured without a secret.
    #[error(
        "token endpoint auth method {method} sends a client secret, and none is configured: set oauth.client_secret_env_var or oauth.client_secret_keyring, or choose another oauth.token_endpoint_auth_method"
    )]
    SecretMissing { method: &'static str },
    #[error("client registration at {url} was refused (HTTP {status}){}", describe(.error, .description))]
    Rejected {
        url: String,
        status: u16,
        error: Option<String>,
        description: Option<String>,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("invalid client registration response from {url}: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error(
        "authorization server {issuer} offers no registration_endpoint; configure a client_id for this server"
    )]
    NoRegistrationEndpoint { issuer: String },
    #[error("cannot use a Client ID Metadata Document with {issuer}: {reason}")]
    CimdUnsupported {
        issuer: String,
        reason: CimdUnsupported,
    },
    #[error(
        "no client metadata URL is configured: pass clientMetadataUrlBase or set client_metadata_url_base or the server's oauth.client_metadata_url"
    )]
    CimdNotConfigured,
    #[error(
        "{issuer} refused this client's Client ID Metadata Document earlier; use Dynamic Client Registration or a configured client_id"
    )]
    CimdRefused { issuer: String },
    #[error(transparent)]
    InvalidClientMetadataUrl(#[from] CimdUrlError),
    #[error(
        "no way to register a client with {issuer}: no client_id is configured, {cimd}, and the server offers no registration_endpoint"
    )]
    NoRegistrationPossible { issuer: String, cimd: String },
    /// MCP 2026-07-28 (authorization server binding): a preregistered client belongs to the
    /// authorization server it was registered with; its id is not sent to another one.
    #[error(
        "the configured client_id {client_id:?} belongs to the authorization server {registered_with}, but the server's protected resource metadata now names {issuer}; register a client at {issuer} and set mcp_servers.{server}.oauth.client_id (and oauth.issuer) to it, or remove client_id to let the daemon register by itself"
    )]
    PreregisteredForOtherIssuer {
        server: String,
        client_id: String,
        registered_with: String,
        issuer: String,
    },
}

fn describe(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(": {e}: {d}"),
        (Some(e), None) => format!(": {e}"),
        (None, Some(d)) => format!(": {d}"),
        (None, None) => String::new(),
    }
}

impl RegistrationError {
    #[cfg(test)]
    /// Server or network trouble that may pass.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistrationError::Http(e) => e.is_transient(),
            RegistrationError::Rejected { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

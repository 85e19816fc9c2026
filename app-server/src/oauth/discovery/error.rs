//! Why discovery failed: [`DiscoveryError`].

use crate::oauth::http::HttpError;
use crate::oauth::resource::ResourceMismatch;

/// Why discovery failed. Each variant names the URL and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{url} answered without asking for authorization (HTTP {status}); no login is needed")]
    NotProtected { url: String, status: u16 },
    #[error(
        "{url} answered HTTP {status} to an unauthenticated request and publishes no protected resource metadata; it does not look like an OAuth-protected MCP server"
    )]
    UnexpectedProbeStatus { url: String, status: u16 },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(
        "no protected resource metadata at {url} (named by the server's WWW-Authenticate): {reason}"
    )]
    ProtectedResourceNotFound { url: String, reason: String },
    #[error("invalid protected resource metadata at {url}: {reason}")]
    InvalidProtectedResource { url: String, reason: String },
    #[error("refusing protected resource metadata at {url}: {source}")]
    ResourceMismatch {
        url: String,
        #[source]
        source: ResourceMismatch,
    },
    #[error("protected resource metadata at {url} lists no authorization_servers")]
    NoAuthorizationServers { url: String },
    #[error("invalid issuer {issuer:?}: {reason}")]
    InvalidIssuer { issuer: String, reason: String },
    #[error(
        "authorization server metadata at {url} is for issuer {found:?}, expected {expected:?}"
    )]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("invalid authorization server metadata at {url}: {reason}")]
    InvalidMetadata { url: String, reason: String },
    #[error("no authorization server metadata for issuer {issuer} ({attempts})")]
    NoMetadata { issuer: String, attempts: String },
    #[error(
        "authorization server {issuer} does not advertise PKCE S256 (code_challenge_methods_supported); refusing to log in"
    )]
    PkceUnsupported { issuer: String },
    #[error(
        "authorization server {issuer} advertises {field} {url}, which is neither https nor loopback"
    )]
    InsecureEndpoint {
        issuer: String,
        field: &'static str,
        url: String,
    },
}

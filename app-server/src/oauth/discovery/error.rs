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
    /// Rules 4 and 26; the escape hatch of rule 61 is named.
    #[error(
        "authorization server metadata at {url} is for issuer {found:?}, expected {expected:?}; if this authorization server is known to publish it so, set `issuer = {found:?}` under [mcp_servers.{server}.oauth] to accept it"
    )]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
        /// The `[mcp_servers.NAME]` discovered.
        server: String,
    },
    #[error("invalid authorization server metadata at {url}: {reason}")]
    InvalidMetadata { url: String, reason: String },
    /// A document without an endpoint a login needs; the escape hatch of rule 63 is named.
    #[error(
        "authorization server metadata at {url} has no {field}; set `{field} = \"https://...\"` under [mcp_servers.{server}.oauth] if the authorization server documents one elsewhere"
    )]
    MissingEndpoint {
        url: String,
        field: &'static str,
        server: String,
    },
    #[error(
        "no authorization server metadata for issuer {issuer} ({attempts}); if it is published elsewhere, set `authorization_server_metadata_url` (or `authorization_endpoint` and `token_endpoint`) under [mcp_servers.{server}.oauth]"
    )]
    NoMetadata {
        issuer: String,
        attempts: String,
        server: String,
    },
    /// The document of the escape hatch of rule 60 could not be had.
    #[error(
        "cannot use the authorization server metadata at {url} (`authorization_server_metadata_url` of [mcp_servers.{server}.oauth]): {reason}"
    )]
    ConfiguredMetadata {
        url: String,
        server: String,
        reason: String,
    },
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

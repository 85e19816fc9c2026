//! Test kit: a reference OAuth 2.1 authorization server and an MCP resource server on
//! 127.0.0.1, strict about the MCP authorization spec (2025-11-25), with counters and
//! recordings to assert what a client sent, and faults to make it misbehave on demand.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use mcp_app_server_testkit::{Kit, KitConfig};
//! let kit = Kit::start(KitConfig::default()).await?;
//! let mcp_url = kit.mcp_url(); // 401 with resource_metadata until a token is presented
//! # Ok(()) }
//! ```

mod authorization_server;
mod browser;
mod checks;
mod config;
mod counters;
mod dpop;
mod faults;
mod hostile;
mod identity_provider;
mod jwt;
mod kit;
mod mtls;
mod resource_server;
mod store;
mod tls;

pub use authorization_server::cimd::{
    FETCH_TIMEOUT as CIMD_FETCH_TIMEOUT, MAX_DOCUMENT_BYTES as CIMD_MAX_DOCUMENT_BYTES,
};
pub use browser::{BrowserResult, authorize_redirect_location, browser_visit};
pub use config::{
    DeviceBehaviour, DeviceDecision, IssVariant, KitConfig, KitMtls, McpRevision,
    PreregisteredClient, PrmMode,
};
pub use counters::Counters;
pub use dpop::{VerifiedProof, access_token_hash, content_digest, jwk_thumbprint, verify_proof};
pub use faults::{Endpoint, Fault, Faults, GZIP_BOMB_INFLATED_BYTES, OVERSIZED_BODY_BYTES};
pub use hostile::gzip_of_spaces;
pub use identity_provider::{Idp, IdpCounters, TrustedIdp};
pub use jwt::Es256Key;
pub use kit::{
    CALLBACK_ID_PLACEHOLDER, Kit, RequestSpan, TokenRequestRecord, callback_id_for,
    sequential_round_trips,
};
pub use tls::{IssuedCert, KitTls, TestCa, TlsPeer};

/// PKCE S256 challenge for `verifier` (RFC 7636), for tests that drive the AS by hand.
pub fn pkce_challenge(verifier: &str) -> String {
    checks::s256_challenge(verifier)
}

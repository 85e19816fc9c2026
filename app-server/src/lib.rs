//! mcp-app-server: a daemon that logs frontends in to remote MCP servers with OAuth and
//! keeps their credentials.
//!
//! Layers, dependencies pointing one way: `transport` (framing) <- `rpc` (connections,
//! dispatch) -> `oauth` (the OAuth steps) -> `credentials` (the store); `config` is read by
//! all. `oauth` knows nothing of JSON-RPC beyond the discovery probe, whose shape per MCP
//! revision it takes from `mcp_wire`.

pub mod cli;
pub(crate) mod clock;
pub(crate) mod config;
pub mod credentials;
// Public only because narrowing it belongs to the engine rewrite: as `pub(crate)` its
// re-exports of items nothing outside uses would warn.
pub mod engine;
pub mod home;
pub(crate) mod mcp_wire;
pub(crate) mod oauth;
pub mod rpc;
pub mod transport;

/// Reads a DPoP key as the credential store keeps it (`StoredCredentials::dpop_key`), so a
/// test can check which key a token is bound to (`thumbprint()`, RFC 7638).
pub use oauth::dpop::decode_key;

//! mcp-app-server: a daemon that logs frontends in to remote MCP servers with OAuth and
//! keeps their credentials.
//!
//! Layers, dependencies pointing one way: `transport` (framing) <- `rpc` (connections,
//! dispatch) -> `engine` (the login engine: logins, token vending and renewal, challenges,
//! logout) -> `oauth` (the protocol steps) and `credentials` (the store); `cli` sits beside
//! `rpc`; `config` is read by all and imports none of them. docs/architecture.md has the
//! table, and `app-server/tests/suite/layers.rs` holds the code to it.

pub mod cli;
pub(crate) mod clock;
pub(crate) mod config;
pub mod credentials;
pub(crate) mod engine;
pub mod home;
pub(crate) mod mcp_wire;
pub(crate) mod oauth;
pub mod rpc;
pub mod transport;

/// Reads a DPoP key as the credential store keeps it (`StoredCredentials::dpop_key`), so a
/// test can check which key a token is bound to (`thumbprint()`, RFC 7638).
pub use oauth::dpop::decode_key;

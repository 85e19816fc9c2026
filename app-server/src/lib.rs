//! mcp-app-server: a daemon that logs frontends in to remote MCP servers with OAuth and
//! keeps their credentials.
//!
//! Layers, dependencies pointing one way: `transport` (framing) <- `rpc` (connections,
//! dispatch) -> `oauth` (the OAuth steps) -> `credentials` (the store); `config` is read by
//! all. `oauth` knows nothing of JSON-RPC beyond the discovery probe, whose shape per MCP
//! revision it takes from `mcp_wire`.

pub mod cli;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod home;
pub mod mcp_wire;
pub mod oauth;
pub mod rpc;
pub mod transport;

//! Wire types of the mcp-app-server JSON-RPC protocol.
//!
//! Types only: no I/O. Every method and notification is listed once in [`methods`]; the
//! dispatch enums, the JSON Schema and the TypeScript bindings all come from that table.

mod errors;
pub mod export;
mod jsonrpc;
mod methods;
mod types;

pub use errors::*;
pub use jsonrpc::*;
pub use methods::*;
pub use types::*;

/// The version of the protocol (semver), sent as `protocolVersion` in the answer to
/// `initialize` and carried by the npm package in `bindings/`. A change that could break an
/// existing frontend (a field removed or narrowed in a result, a required field added to a
/// request, an enum value removed from a request) needs a new major version; additions need
/// a new minor one. CHANGELOG.md says what each version added or broke.
pub const PROTOCOL_VERSION: &str = "1.0.0";

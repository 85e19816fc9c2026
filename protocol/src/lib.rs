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

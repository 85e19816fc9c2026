//! JSON-RPC: connections, the initialize handshake, dispatch, outgoing responses and
//! notifications. Calls into `oauth`, never the reverse.

mod connection;
mod error;
mod handlers;
mod outgoing;
mod server;
mod token_call;

pub(crate) use connection::serve_connection;
pub use error::AppError;
pub use server::{AppServer, ServerOptions, StartError};

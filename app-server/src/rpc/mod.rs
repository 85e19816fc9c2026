//! JSON-RPC: connections, the initialize handshake, dispatch, outgoing responses and
//! notifications. Calls into the login engine, never the reverse.
//!
//! The files use each other one way only: `server` (the daemon) builds the `state` and
//! serves each connection with `connection`, which reads messages (`envelope`, and
//! `token_call` for token requests), hands every request to `handlers` and writes the
//! replies (`reply`, `outgoing`). `handlers` take the state and a request's params and
//! answer; they know nothing of connections. `types` and `error` use none of the others.

mod connection;
mod envelope;
mod error;
mod handlers;
mod outgoing;
mod reply;
mod server;
mod state;
mod token_call;
mod types;
mod usable;

pub use server::{AppServer, ServerOptions, StartError};

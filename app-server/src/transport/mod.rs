//! Message framing over any byte stream.
//!
//! Two framings are spoken, detected per connection from the first bytes: one JSON message
//! per line, or `Content-Length:` headers as vscode-jsonrpc and LSP clients send. Replies use
//! the framing the client chose. Reading is bounded: a message over the size limit is
//! skipped (never buffered whole) and reported so the caller can answer with an error.

mod framing;

pub use framing::{Framing, Incoming, MessageReader, TransportError, write_message};

/// Largest message accepted, in bytes.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

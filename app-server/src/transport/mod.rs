//! Message framing over any byte stream.
//!
//! Two framings are spoken, detected per connection from the first bytes: one JSON message
//! per line, or `Content-Length:` headers as vscode-jsonrpc and LSP clients send. Replies use
//! the framing the client chose. Reading is bounded: a message over the size limit is
//! skipped (never buffered whole) and reported so the caller can answer with an error. The
//! input is read ahead within a byte budget, so its end is seen even while the caller has
//! paused taking messages.

mod framing;
mod read_ahead;
mod stdio;

pub(crate) use framing::encode_frame;
pub use framing::{Framing, Incoming, MessageReader, TransportError, write_message};
pub use read_ahead::READ_AHEAD_BYTES;
pub(crate) use read_ahead::{InputEnded, read_ahead};
pub(crate) use stdio::stdio;

/// Largest message accepted, in bytes.
pub(crate) const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

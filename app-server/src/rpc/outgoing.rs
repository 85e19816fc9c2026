//! The outgoing side of one connection: one bounded queue drained by one writer task.
//!
//! Memory stays bounded when the client stops reading:
//! - every request holds a slot from the moment it is read until its reply has been handed
//!   to the writer, so replies waiting for the writer count against the same limit as
//!   requests being worked on ([`MAX_IN_FLIGHT`]); with no slot free the connection stops
//!   reading, and the client's pipe fills instead of the daemon;
//! - notifications have [`MAX_QUEUED_NOTIFICATIONS`] places of their own in the queue. They
//!   are offered without waiting (the OAuth engine and the other connections never wait for
//!   a slow reader); a client that leaves that many unread has stopped reading, and its
//!   connection is closed rather than buffered for without end.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::task::JoinHandle;

use crate::transport::{Framing, write_frame};

/// Requests read from one connection and not yet answered (replies queued for the writer
/// included). Reading pauses while all are taken.
pub(crate) const MAX_IN_FLIGHT: usize = 64;

/// Notifications queued for one connection beyond its replies; one more closes it.
pub(crate) const MAX_QUEUED_NOTIFICATIONS: usize = 1024;

/// How long the writer may take to hand the last queued messages to a client that is not
/// reading, once the connection ends, before they are dropped.
pub(crate) const WRITE_GRACE: Duration = Duration::from_secs(5);

/// One message for the client, with the request slot it releases once written.
struct Frame {
    bytes: Vec<u8>,
    _slot: Option<Slot>,
}

/// A request's place among the [`MAX_IN_FLIGHT`]; a batch holds one per element (up to the
/// limit).
pub(crate) type Slot = OwnedSemaphorePermit;

/// Why a notification was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyRefused {
    /// The client left [`MAX_QUEUED_NOTIFICATIONS`] unread: the connection is being closed.
    Overflow,
    /// The connection is already closing.
    Closed,
}

/// The sending half, cloned into every request task and the connection registry.
#[derive(Clone)]
pub(crate) struct OutgoingSender {
    tx: mpsc::Sender<Frame>,
    closing: Arc<watch::Sender<bool>>,
}

impl OutgoingSender {
    /// Queues a reply, waiting for room if the queue is full; the slot is released once the
    /// writer has taken the reply. A closed connection drops it.
    pub async fn reply(&self, bytes: Vec<u8>, slot: Option<Slot>) {
        let _ = self.tx.send(Frame { bytes, _slot: slot }).await;
    }

    /// Queues a notification without waiting. A full queue means the client stopped reading:
    /// the connection is closed (see the module comment).
    pub fn notify(&self, bytes: Vec<u8>) -> Result<(), NotifyRefused> {
        match self.tx.try_send(Frame { bytes, _slot: None }) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close();
                Err(NotifyRefused::Overflow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(NotifyRefused::Closed),
        }
    }

    /// Asks the connection to stop reading and end.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`OutgoingSender::close`] was called (by a notification overflow or a
    /// failed write).
    pub fn closed(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// The writer task of one connection.
pub(crate) struct Writer {
    task: JoinHandle<()>,
}

/// Starts the writer task: messages go out in the client's framing (known once the first
/// message was read; lines until then), flushed whenever the queue runs empty.
pub(crate) fn start_writer<W>(
    writer: W,
    framing: Arc<OnceLock<Framing>>,
) -> (OutgoingSender, Writer)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::channel::<Frame>(MAX_IN_FLIGHT + MAX_QUEUED_NOTIFICATIONS);
    let (closing, _) = watch::channel(false);
    let sender = OutgoingSender {
        tx,
        closing: Arc::new(closing),
    };
    let on_failure = sender.closing.clone();
    let task = tokio::spawn(async move {
        let mut out = BufWriter::new(writer);
        let result = async {
            while let Some(frame) = rx.recv().await {
                let f = framing.get().copied().unwrap_or(Framing::Lines);
                write_frame(&mut out, f, &frame.bytes).await?;
                drop(frame);
                if rx.is_empty() {
                    out.flush().await?;
                }
            }
            out.flush().await
        }
        .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "writing to the client failed; closing the connection");
            on_failure.send_replace(true);
        }
    });
    (sender, Writer { task })
}

impl Writer {
    /// Waits until everything queued is written, for at most [`WRITE_GRACE`]; then gives up
    /// on a client that does not read. Call after every sender is dropped.
    pub async fn finish(self) {
        let mut task = self.task;
        if tokio::time::timeout(WRITE_GRACE, &mut task).await.is_err() {
            tracing::warn!(
                grace = ?WRITE_GRACE,
                "the client stopped reading; dropping the replies it did not take"
            );
            task.abort();
        }
    }
}

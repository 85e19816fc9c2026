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

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::task::JoinHandle;

use crate::transport::{Framing, encode_frame};

/// Requests read from one connection and not yet answered (replies queued for the writer
/// included). Reading pauses while all are taken.
pub(super) const MAX_IN_FLIGHT: usize = 64;

/// Notifications queued for one connection beyond its replies; one more closes it.
const MAX_QUEUED_NOTIFICATIONS: usize = 1024;

/// How long the writer may take to hand the last queued messages to a client that is not
/// reading, once the connection ends, before they are dropped.
pub(super) const WRITE_GRACE: Duration = Duration::from_secs(5);

/// One message for the client, with the request slot it releases once written.
struct Frame {
    bytes: Vec<u8>,
    _slot: Option<Slot>,
}

/// A request's place among the [`MAX_IN_FLIGHT`]; a batch holds one per element (up to the
/// limit).
pub(super) type Slot = OwnedSemaphorePermit;

/// Why a notification was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NotifyRefused {
    /// The client left [`MAX_QUEUED_NOTIFICATIONS`] unread: the connection is being closed.
    Overflow,
    /// The connection is already closing.
    Closed,
}

/// The sending half, cloned into every request task and the connection registry.
#[derive(Clone)]
pub(super) struct OutgoingSender {
    tx: mpsc::Sender<Frame>,
    closing: Arc<watch::Sender<bool>>,
}

impl OutgoingSender {
    /// Queues a reply, waiting for room if the queue is full; the slot is released once the
    /// writer has taken the reply. A closed connection drops it.
    pub(super) async fn reply(&self, bytes: Vec<u8>, slot: Option<Slot>) {
        let _ = self.tx.send(Frame { bytes, _slot: slot }).await;
    }

    /// Queues a reply when there is room now; gives it back when the queue is full (then
    /// [`OutgoingSender::reply`] waits for room). A closed connection drops it.
    pub(super) fn try_reply(&self, bytes: Vec<u8>, slot: Slot) -> Result<(), (Vec<u8>, Slot)> {
        let frame = Frame {
            bytes,
            _slot: Some(slot),
        };
        match self.tx.try_send(frame) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => Ok(()),
            Err(mpsc::error::TrySendError::Full(frame)) => Err((
                frame.bytes,
                frame._slot.expect("the frame was given its slot"),
            )),
        }
    }

    /// Queues a notification without waiting. A full queue means the client stopped reading:
    /// the connection is closed (see the module comment).
    pub(super) fn notify(&self, bytes: Vec<u8>) -> Result<(), NotifyRefused> {
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
    pub(super) fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`OutgoingSender::close`] was called (by a notification overflow or a
    /// failed write).
    pub(super) fn closed(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

/// Messages taken from the queue for one write at most.
const MAX_FRAMES_PER_WRITE: usize = 256;

/// Capacity the writer's buffer keeps between writes; a larger one (a big listing) is
/// given back after its write.
const KEPT_BUFFER_BYTES: usize = 256 * 1024;

/// Starts the writer task: messages go out in the client's framing (known once the first
/// message was read; lines until then). Everything queued when the writer gets to it goes
/// out in one write, flushed once, so a burst of replies costs a few system calls, not one
/// (or two) per reply.
pub(super) fn start_writer<W>(
    writer: W,
    framing: Arc<OnceLock<Framing>>,
) -> (OutgoingSender, Writer)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel::<Frame>(MAX_IN_FLIGHT + MAX_QUEUED_NOTIFICATIONS);
    let (closing, _) = watch::channel(false);
    let sender = OutgoingSender {
        tx,
        closing: Arc::new(closing),
    };
    let on_failure = sender.closing.clone();
    let task = tokio::spawn(write_queued(rx, writer, framing, on_failure));
    (sender, Writer { task })
}

async fn write_queued<W: AsyncWrite + Unpin>(
    mut rx: mpsc::Receiver<Frame>,
    mut out: W,
    framing: Arc<OnceLock<Framing>>,
    on_failure: Arc<watch::Sender<bool>>,
) {
    let mut frames: Vec<Frame> = Vec::with_capacity(MAX_FRAMES_PER_WRITE);
    let mut buf: Vec<u8> = Vec::new();
    let result = async {
        while rx.recv_many(&mut frames, MAX_FRAMES_PER_WRITE).await > 0 {
            if frames.len() < MAX_FRAMES_PER_WRITE {
                // Replies finishing on the other workers right now join this write.
                tokio::task::yield_now().await;
                while frames.len() < MAX_FRAMES_PER_WRITE {
                    match rx.try_recv() {
                        Ok(frame) => frames.push(frame),
                        Err(_) => break,
                    }
                }
            }
            let f = framing.get().copied().unwrap_or(Framing::Lines);
            for frame in &frames {
                encode_frame(&mut buf, f, &frame.bytes);
            }
            out.write_all(&buf).await?;
            out.flush().await?;
            // Their slots are free once the replies are written: a client that does not
            // read holds up at most this write and the queue behind it.
            frames.clear();
            buf.clear();
            if buf.capacity() > KEPT_BUFFER_BYTES {
                buf = Vec::new();
            }
        }
        out.flush().await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "writing to the client failed; closing the connection");
        on_failure.send_replace(true);
    }
}

/// The writer task of one connection.
pub(super) struct Writer {
    task: JoinHandle<()>,
}

impl Writer {
    /// Waits until everything queued is written, for at most [`WRITE_GRACE`]; then gives up
    /// on a client that does not read. Call after every sender is dropped.
    pub(super) async fn finish(self) {
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

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use super::*;

    /// Records every write it is given.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl AsyncWrite for Recorder {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.0.lock().unwrap().push(buf.to_vec());
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn replies_queued_together_go_out_in_one_write_in_their_order() {
        let recorder = Recorder::default();
        let framing = Arc::new(OnceLock::from(Framing::ContentLength));
        let (out, writer) = start_writer(recorder.clone(), framing);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
        // Queued before the writer runs: all of them wait for it.
        for i in 0..MAX_IN_FLIGHT {
            let slot = slots.clone().try_acquire_owned().unwrap();
            out.reply(format!("{{\"id\":{i}}}").into_bytes(), Some(slot))
                .await;
        }
        out.notify(b"{\"method\":\"n\"}".to_vec()).unwrap();
        drop(out);
        writer.finish().await;
        let writes = recorder.0.lock().unwrap().clone();
        assert_eq!(writes.len(), 1, "one write for the whole queue");
        let mut expected = Vec::new();
        for i in 0..MAX_IN_FLIGHT {
            let body = format!("{{\"id\":{i}}}");
            expected.extend(format!("Content-Length: {}\r\n\r\n{body}", body.len()).bytes());
        }
        expected.extend(b"Content-Length: 14\r\n\r\n{\"method\":\"n\"}");
        assert_eq!(writes[0], expected);
        // Every slot came back once its reply was written.
        assert_eq!(slots.available_permits(), MAX_IN_FLIGHT);
    }

    /// Takes nothing: a client that stopped reading.
    struct Stuck;

    impl AsyncWrite for Stuck {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Poll::Pending
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_reply_that_finds_the_queue_full_is_given_back_whole() {
        let (out, _writer) = start_writer(Stuck, Arc::new(OnceLock::from(Framing::Lines)));
        tokio::task::yield_now().await;
        let slots = Arc::new(tokio::sync::Semaphore::new(100_000));
        let mut queued = 0;
        let (bytes, slot) = loop {
            let slot = slots.clone().try_acquire_owned().unwrap();
            match out.try_reply(format!("{{\"id\":{queued}}}").into_bytes(), slot) {
                Ok(()) => queued += 1,
                Err(back) => break back,
            }
        };
        let capacity = MAX_IN_FLIGHT + MAX_QUEUED_NOTIFICATIONS;
        // The queue's room, and what the writer took before the client stopped taking it.
        assert!(
            (capacity..=capacity + MAX_FRAMES_PER_WRITE).contains(&queued),
            "{queued}"
        );
        assert_eq!(bytes, format!("{{\"id\":{queued}}}").into_bytes());
        // The slot comes back with the reply: the caller queues both later.
        assert_eq!(slots.available_permits(), 100_000 - queued - 1);
        drop(slot);
        assert_eq!(slots.available_permits(), 100_000 - queued);
    }
}

//! Reads a connection's input ahead of the message reader, within a byte budget.
//!
//! A connection whose client stops reading replies pauses taking messages (backpressure).
//! The end of its input would then go unseen for as long as the pause lasts, and a client
//! that closed its end of the pipe and never reads again would keep the daemon alive. Reading
//! ahead takes what the client already wrote, up to [`READ_AHEAD_BYTES`] (more than a pipe
//! holds), so the end of input is noticed while paused; past the budget reading stops and
//! the client's writes wait.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Bytes read ahead at most: above the 64 KiB of a Linux pipe and the 1 MiB a process may
/// raise it to.
pub const READ_AHEAD_BYTES: usize = 1 << 20;

/// Largest single read.
const CHUNK: usize = 64 * 1024;

/// The input, read ahead. Implements [`AsyncRead`]; stops the reading task when dropped.
pub(crate) struct ReadAhead {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

/// Becomes true once the input ended (or failed), even while nothing takes the bytes read
/// ahead.
pub(crate) type InputEnded = watch::Receiver<bool>;

struct Shared {
    state: Mutex<State>,
    /// Signalled when bytes were taken, so the reading task may read more.
    room: Notify,
    budget: usize,
}

struct State {
    bytes: VecDeque<u8>,
    /// Set when the input ended: `Ok` at its end, the error when reading failed.
    end: Option<std::io::Result<()>>,
    /// The consumer waiting for bytes.
    waiting: Option<Waker>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts reading `reader` ahead, holding at most `budget` bytes not yet taken.
pub(crate) fn read_ahead<R>(mut reader: R, budget: usize) -> (ReadAhead, InputEnded)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            bytes: VecDeque::new(),
            end: None,
            waiting: None,
        }),
        room: Notify::new(),
        budget: budget.max(1),
    });
    let (ended_tx, ended_rx) = watch::channel(false);
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let shared = task_shared;
        let mut buf = vec![0u8; CHUNK.min(shared.budget)];
        let end = loop {
            // Wait for room before reading, so at most `budget` bytes are held.
            let room = loop {
                let free = shared.budget - shared.lock().bytes.len();
                if free > 0 {
                    break free;
                }
                shared.room.notified().await;
            };
            let want = room.min(buf.len());
            match reader.read(&mut buf[..want]).await {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let mut state = shared.lock();
                    state.bytes.extend(&buf[..n]);
                    if let Some(w) = state.waiting.take() {
                        w.wake();
                    }
                }
                Err(e) => break Err(e),
            }
        };
        let mut state = shared.lock();
        state.end = Some(end);
        if let Some(w) = state.waiting.take() {
            w.wake();
        }
        drop(state);
        ended_tx.send_replace(true);
    });
    (ReadAhead { shared, task }, ended_rx)
}

impl AsyncRead for ReadAhead {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let mut state = self.shared.lock();
        if !state.bytes.is_empty() {
            let n = out.remaining().min(state.bytes.len());
            let (front, back) = state.bytes.as_slices();
            let from_front = n.min(front.len());
            out.put_slice(&front[..from_front]);
            out.put_slice(&back[..n - from_front]);
            state.bytes.drain(..n);
            drop(state);
            self.shared.room.notify_one();
            return Poll::Ready(Ok(()));
        }
        match &mut state.end {
            Some(Ok(())) => Poll::Ready(Ok(())),
            Some(Err(e)) => {
                let error = std::io::Error::new(e.kind(), e.to_string());
                Poll::Ready(Err(error))
            }
            None => {
                state.waiting = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn passes_the_bytes_through_in_order() {
        let (mut w, r) = tokio::io::duplex(7);
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        let expected = data.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&data).await.unwrap();
        });
        let (mut ahead, _) = read_ahead(r, 1000);
        let mut got = Vec::new();
        ahead.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn sees_the_end_while_nothing_is_taken_and_holds_at_most_the_budget() {
        // Within the budget: the end is seen without reading anything.
        let (mut w, r) = tokio::io::duplex(1 << 16);
        w.write_all(&[b'x'; 3000]).await.unwrap();
        drop(w);
        let (mut ahead, mut ended) = read_ahead(r, 4096);
        ended.wait_for(|e| *e).await.unwrap();

        // Beyond the budget: the writer is held back, the end stays unseen.
        let (mut w2, r2) = tokio::io::duplex(16);
        let (_ahead2, ended2) = read_ahead(r2, 100);
        let blocked = tokio::spawn(async move {
            w2.write_all(&[b'y'; 1000]).await.unwrap();
        });
        tokio::task::yield_now().await;
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        assert!(!blocked.is_finished());
        assert!(!*ended2.borrow());

        let mut got = Vec::new();
        ahead.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 3000);
        blocked.abort();
    }
}

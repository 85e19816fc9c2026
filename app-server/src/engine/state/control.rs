//! The control channel of one pending login: how a cancel, a newer login for the same
//! server, shutdown, and a pasted redirect (`mcpServer/oauth/complete`) reach the task that
//! waits for the browser.
//!
//! Bounded: a login ends once, so its end is a one-shot slot that never waits for room and
//! is never dropped (the first end wins, and it is seen before any queued paste); pasted
//! redirects queue in [`PASTE_SLOTS`] places, and a further one waits for its turn instead
//! of being dropped or buffered. A paste still waiting when the login ends is told so.

use std::sync::Mutex;

use tokio::sync::{mpsc, oneshot};

use crate::oauth::callback::CallbackOutcome;

/// Pasted redirects queued for one login. A paste is this login's response (its `state`
/// was checked before it was queued), so a frontend has no reason to send more than one
/// or two.
pub(crate) const PASTE_SLOTS: usize = 2;

/// The answer to the caller of `mcpServer/oauth/complete`.
pub(crate) type PasteReply = oneshot::Sender<Result<(), String>>;

/// What the waiting task receives.
pub(crate) enum Control {
    /// Boxed: a channel allocates its first block of slots with it, so a small message
    /// keeps each pending login's channel small.
    Paste(Box<CallbackOutcome>, PasteReply),
    End(EndReason),
}

/// Held by the pending login's record; see [`channel`].
pub(crate) struct ControlSender {
    pub(crate) end: Mutex<Option<oneshot::Sender<EndReason>>>,
    pub(crate) paste: mpsc::Sender<(Box<CallbackOutcome>, PasteReply)>,
}

/// Held by the task that waits for the browser.
pub(crate) struct ControlReceiver {
    /// `None` once the end was received.
    pub(crate) end: Option<oneshot::Receiver<EndReason>>,
    pub(crate) paste: mpsc::Receiver<(Box<CallbackOutcome>, PasteReply)>,
}

/// A new control channel for one login.
pub(crate) fn channel() -> (ControlSender, ControlReceiver) {
    let (end_tx, end_rx) = oneshot::channel();
    let (paste_tx, paste_rx) = mpsc::channel(PASTE_SLOTS);
    (
        ControlSender {
            end: Mutex::new(Some(end_tx)),
            paste: paste_tx,
        },
        ControlReceiver {
            end: Some(end_rx),
            paste: paste_rx,
        },
    )
}

impl ControlSender {
    /// Ends the login. `false` when it had ended already (its task is gone, or an earlier
    /// end was sent). Never waits.
    pub(in crate::engine) fn end(&self, reason: EndReason) -> bool {
        let slot = self.end.lock().unwrap_or_else(|e| e.into_inner()).take();
        slot.is_some_and(|tx| tx.send(reason).is_ok())
    }

    /// Queues a pasted redirect, waiting while [`PASTE_SLOTS`] are taken. `Err` when the
    /// login ended before it was taken (the reply is dropped with it).
    pub(in crate::engine) async fn paste(
        &self,
        outcome: CallbackOutcome,
        reply: PasteReply,
    ) -> Result<(), ()> {
        self.paste
            .send((Box::new(outcome), reply))
            .await
            .map_err(|_| ())
    }
}

impl ControlReceiver {
    /// The next message: an end before any paste. When the sender is gone without an end
    /// (the record was dropped), the login is shutting down.
    pub(in crate::engine) async fn recv(&mut self) -> Control {
        let Self { end, paste } = self;
        let ended = async {
            match end.as_mut() {
                Some(rx) => {
                    let reason = rx.await.unwrap_or(EndReason::ShuttingDown);
                    *end = None;
                    reason
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            reason = ended => Control::End(reason),
            Some((outcome, reply)) = paste.recv() => Control::Paste(outcome, reply),
        }
    }
}

/// Why a pending login ends early.
#[derive(Debug, Clone, Copy)]
pub(crate) enum EndReason {
    Cancelled,
    Superseded,
    ShuttingDown,
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    fn code(n: usize) -> CallbackOutcome {
        CallbackOutcome::Code {
            code: format!("code-{n}"),
        }
    }

    fn is_code(control: &Control, n: usize) -> bool {
        matches!(control, Control::Paste(outcome, _) if matches!(&**outcome, CallbackOutcome::Code { code } if *code == format!("code-{n}")))
    }

    #[tokio::test]
    async fn an_end_gets_through_a_full_paste_queue_first_and_only_once() {
        let (tx, mut rx) = channel();
        for n in 0..PASTE_SLOTS {
            let (reply, _) = oneshot::channel();
            tx.paste(code(n), reply).await.unwrap();
        }
        // The queue is full: a further paste has to wait, the cancel does not.
        let (reply, _) = oneshot::channel();
        assert!(tx.paste(code(99), reply).now_or_never().is_none());
        assert!(tx.end(EndReason::Cancelled));
        // A second end (a newer login, shutdown) finds the login already ending.
        assert!(!tx.end(EndReason::ShuttingDown));
        assert!(matches!(
            rx.recv().await,
            Control::End(EndReason::Cancelled)
        ));
        // The queued pastes are still there, in order, none dropped.
        for n in 0..PASTE_SLOTS {
            assert!(is_code(&rx.recv().await, n));
        }
    }

    #[tokio::test]
    async fn a_paste_beyond_the_slots_waits_for_its_turn_and_is_not_dropped() {
        let (tx, mut rx) = channel();
        let tx = std::sync::Arc::new(tx);
        let total = PASTE_SLOTS + 3;
        let sender = {
            let tx = tx.clone();
            tokio::spawn(async move {
                for n in 0..total {
                    let (reply, _) = oneshot::channel();
                    tx.paste(code(n), reply).await.unwrap();
                }
            })
        };
        for n in 0..total {
            assert!(is_code(&rx.recv().await, n));
        }
        sender.await.unwrap();
    }

    #[tokio::test]
    async fn an_ended_login_refuses_pastes_and_ends() {
        let (tx, rx) = channel();
        drop(rx);
        let (reply, _) = oneshot::channel();
        assert!(tx.paste(code(0), reply).await.is_err());
        assert!(!tx.end(EndReason::Cancelled));

        // A record dropped without an end reads as shutdown.
        let (tx, mut rx) = channel();
        drop(tx);
        assert!(matches!(
            rx.recv().await,
            Control::End(EndReason::ShuttingDown)
        ));
    }
}

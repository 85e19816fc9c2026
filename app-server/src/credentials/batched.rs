//! Store calls from async code, batched: calls made while one is being served wait in a
//! bounded queue, and one blocking thread then serves all of them in one go.
//!
//! - Loads: each is answered from the store (for the file, its in-memory copy checked
//!   against the file's stamp), always by a check made after the call was queued, so a
//!   write another process finished before the call is seen. Many token requests in flight
//!   cost one hand-off to a blocking thread, not one each.
//! - Updates (compare-and-save): every update queued meanwhile is applied in one
//!   [`CredentialStore::update_many`], which for the file is one read-modify-write under
//!   the document's lock with one write and one sync (group commit). A caller hears back
//!   only after that write is durable, so nothing is announced before it is on disk.
//!
//! Calls are served in the order they were queued; a load queued after an update sees it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::error::StoreError;
use super::model::{CredentialKey, StoredCredentials};
use super::{CredentialStore, Decide, Update, UpdateResult};

/// Calls queued at most; more wait for room (async, never blocking a worker thread).
pub const MAX_QUEUED_CALLS: usize = 4096;

/// Updates applied in one write at most; a longer queue takes several.
const MAX_UPDATES_PER_WRITE: usize = 1024;

/// The decision of a queued update: [`Decide`], movable to the thread that applies it.
pub type SendDecide = Box<dyn FnOnce(Option<&StoredCredentials>) -> Update + Send>;

/// How the queue served its calls so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Loads answered.
    pub loads: u64,
    /// Updates applied (or refused with an error).
    pub updates: u64,
    /// [`CredentialStore::update_many`] calls those updates took: writes of the file.
    pub writes: u64,
    /// Times a blocking thread was started to serve the queue.
    pub hand_offs: u64,
}

/// The store behind a batching queue; cheap to clone.
#[derive(Clone)]
pub struct StoreQueue {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for StoreQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreQueue")
            .field("store", &self.inner.store)
            .field("counts", &self.counts())
            .finish()
    }
}

struct Inner {
    store: Arc<dyn CredentialStore>,
    state: Mutex<State>,
    room: Arc<Semaphore>,
    loads: AtomicU64,
    updates: AtomicU64,
    writes: AtomicU64,
    hand_offs: AtomicU64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Call>,
    /// A blocking thread is serving the queue; it takes calls queued meanwhile too.
    serving: bool,
}

type Reply = oneshot::Sender<UpdateResult>;

enum Call {
    Load {
        key: CredentialKey,
        reply: Reply,
        _room: OwnedSemaphorePermit,
    },
    Update {
        key: CredentialKey,
        decide: SendDecide,
        reply: Reply,
        _room: OwnedSemaphorePermit,
    },
}

impl StoreQueue {
    pub fn new(store: Arc<dyn CredentialStore>) -> StoreQueue {
        StoreQueue {
            inner: Arc::new(Inner {
                store,
                state: Mutex::new(State::default()),
                room: Arc::new(Semaphore::new(MAX_QUEUED_CALLS)),
                loads: AtomicU64::new(0),
                updates: AtomicU64::new(0),
                writes: AtomicU64::new(0),
                hand_offs: AtomicU64::new(0),
            }),
        }
    }

    /// The store the queue serves (for calls that are not batched).
    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.inner.store
    }

    /// [`CredentialStore::load`], answered by a check of the store made after this call.
    pub async fn load(&self, key: CredentialKey) -> UpdateResult {
        let room = self.room().await;
        self.submit(|reply| Call::Load {
            key,
            reply,
            _room: room,
        })
        .await
    }

    /// [`CredentialStore::update`], applied together with the updates queued meanwhile;
    /// returns once the write that made it is durable.
    pub async fn update(&self, key: CredentialKey, decide: SendDecide) -> UpdateResult {
        let room = self.room().await;
        self.submit(|reply| Call::Update {
            key,
            decide,
            reply,
            _room: room,
        })
        .await
    }

    /// How the calls so far were served.
    pub fn counts(&self) -> BatchCounts {
        let i = &self.inner;
        BatchCounts {
            loads: i.loads.load(Ordering::Relaxed),
            updates: i.updates.load(Ordering::Relaxed),
            writes: i.writes.load(Ordering::Relaxed),
            hand_offs: i.hand_offs.load(Ordering::Relaxed),
        }
    }

    /// Calls waiting to be served now.
    pub fn queued(&self) -> usize {
        self.inner.lock().queue.len()
    }

    async fn room(&self) -> OwnedSemaphorePermit {
        self.inner
            .room
            .clone()
            .acquire_owned()
            .await
            .expect("the queue's semaphore is never closed")
    }

    async fn submit(&self, call: impl FnOnce(Reply) -> Call) -> UpdateResult {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut state = self.inner.lock();
            state.queue.push_back(call(reply));
            !std::mem::replace(&mut state.serving, true)
        };
        if start {
            self.inner.hand_offs.fetch_add(1, Ordering::Relaxed);
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.serve());
        }
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Io {
                path: Default::default(),
                source: std::io::Error::other("the credential store's worker thread stopped"),
            })
        })
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The queue is changed by single pushes and drains: nothing half-done to see.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serves calls until the queue is empty (on a blocking thread).
    fn serve(&self) {
        loop {
            let calls: Vec<Call> = {
                let mut state = self.lock();
                if state.queue.is_empty() {
                    state.serving = false;
                    return;
                }
                state.queue.drain(..).collect()
            };
            self.run(calls);
        }
    }

    /// Runs calls in their order: consecutive updates as one group commit.
    fn run(&self, calls: Vec<Call>) {
        let mut updates: Vec<(CredentialKey, SendDecide, Reply)> = Vec::new();
        for call in calls {
            match call {
                Call::Load { key, reply, _room } => {
                    self.commit(&mut updates);
                    self.loads.fetch_add(1, Ordering::Relaxed);
                    let _ = reply.send(self.store.load(&key));
                }
                Call::Update {
                    key, decide, reply, ..
                } => {
                    updates.push((key, decide, reply));
                    if updates.len() == MAX_UPDATES_PER_WRITE {
                        self.commit(&mut updates);
                    }
                }
            }
        }
        self.commit(&mut updates);
    }

    fn commit(&self, updates: &mut Vec<(CredentialKey, SendDecide, Reply)>) {
        if updates.is_empty() {
            return;
        }
        let (calls, replies): (Vec<(CredentialKey, Decide<'static>)>, Vec<Reply>) = updates
            .drain(..)
            .map(|(key, decide, reply)| ((key, decide as Decide<'static>), reply))
            .unzip();
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.updates
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let results = self.store.update_many(calls);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
#[path = "batched_tests.rs"]
mod tests;

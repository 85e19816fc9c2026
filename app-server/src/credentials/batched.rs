//! Store calls from async code, batched: calls made while one is being served wait in a
//! bounded queue, and one blocking thread then serves all of them in one go. Two lanes,
//! each with its own thread, so a read never waits behind a write that waits for the
//! document's lock (another process saving):
//!
//! - Reads (loads, lookups): answered from the store (for the file, its in-memory copy
//!   checked against the file's stamp; no lock), always by a check made after the call
//!   was queued, so a write another process finished before the call is seen. All reads
//!   queued meanwhile share one such check ([`CredentialStore::pinned`]): many token
//!   requests in flight cost one hand-off to a blocking thread and one `stat`, not one
//!   each. A token lookup the store can answer without a file system call (the file's
//!   copy, vouched for by a watch on the state directory: [`CredentialStore::load_shared_now`])
//!   is answered on the caller's thread and never queued.
//! - Writes: every compare-and-save queued meanwhile is applied in one
//!   [`CredentialStore::update_many`], which for the file is one read-modify-write under
//!   the document's lock with one write and one sync (group commit). A caller hears back
//!   only after that write is durable, so nothing is announced before it is on disk. Other
//!   writes (registrations, deletions) run in their place in the order.
//!
//! Each lane serves its calls in the order they were queued.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::error::StoreError;
use super::model::{CredentialKey, LookupKey, StoredCredentials};
use super::store::CredentialStore;
use super::update::{Decide, Update, UpdateResult};

/// Calls queued at most; more wait for room (async, never blocking a worker thread).
pub(crate) const MAX_QUEUED_CALLS: usize = 4096;

/// Updates applied in one write at most; a longer queue takes several.
const MAX_UPDATES_PER_WRITE: usize = 1024;

/// The decision of a queued update: [`Decide`], movable to the thread that applies it.
pub(crate) type SendDecide = Box<dyn FnOnce(Option<&StoredCredentials>) -> Update + Send>;

/// How the queue served its calls so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Loads answered.
    pub(crate) loads: u64,
    /// Of those, answered on the caller's thread from the store's copy in memory, without
    /// a hand-off ([`CredentialStore::load_shared_now`]).
    pub in_memory: u64,
    /// Updates applied (or refused with an error).
    pub(crate) updates: u64,
    /// [`CredentialStore::update_many`] calls those updates took: writes of the file.
    pub(crate) writes: u64,
    /// Times a blocking thread was started to serve the queue.
    pub hand_offs: u64,
}

/// The store behind a batching queue; cheap to clone.
#[derive(Clone)]
pub(crate) struct StoreQueue {
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
    reads: Lane<Job>,
    writes: Lane<Write>,
    room: Arc<Semaphore>,
    loads: AtomicU64,
    in_memory: AtomicU64,
    updates: AtomicU64,
    writes_done: AtomicU64,
    hand_offs: AtomicU64,
}

/// Calls waiting for one thread, and whether that thread is serving them.
struct Lane<C> {
    state: Mutex<LaneState<C>>,
}

struct LaneState<C> {
    queue: VecDeque<C>,
    serving: bool,
}

impl<C> Lane<C> {
    fn new() -> Lane<C> {
        Lane {
            state: Mutex::new(LaneState {
                queue: VecDeque::new(),
                serving: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LaneState<C>> {
        // Changed only by single pushes and whole drains: nothing half-done to see.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `call`; true when no thread serves the lane and the caller must start one.
    fn push(&self, call: C) -> bool {
        let mut state = self.lock();
        state.queue.push_back(call);
        !std::mem::replace(&mut state.serving, true)
    }

    /// Everything queued, or `None` (and the lane marked idle) when nothing is.
    fn take(&self) -> Option<Vec<C>> {
        let mut state = self.lock();
        if state.queue.is_empty() {
            state.serving = false;
            return None;
        }
        Some(state.queue.drain(..).collect())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().queue.len()
    }
}

/// What a queued call does with the store; it answers its caller itself.
type Run = Box<dyn FnOnce(&dyn CredentialStore) + Send>;

/// A call run on a lane's thread with the store.
struct Job {
    run: Run,
    _room: OwnedSemaphorePermit,
}

type Reply = oneshot::Sender<UpdateResult>;

enum Write {
    Update {
        key: CredentialKey,
        decide: SendDecide,
        reply: Reply,
        _room: OwnedSemaphorePermit,
    },
    Other(Job),
}

impl StoreQueue {
    pub(crate) fn new(store: Arc<dyn CredentialStore>) -> StoreQueue {
        StoreQueue {
            inner: Arc::new(Inner {
                store,
                reads: Lane::new(),
                writes: Lane::new(),
                room: Arc::new(Semaphore::new(MAX_QUEUED_CALLS)),
                loads: AtomicU64::new(0),
                in_memory: AtomicU64::new(0),
                updates: AtomicU64::new(0),
                writes_done: AtomicU64::new(0),
                hand_offs: AtomicU64::new(0),
            }),
        }
    }

    /// [`CredentialStore::load`], answered by a check of the store made after this call.
    pub(crate) async fn load(&self, key: CredentialKey) -> UpdateResult {
        let inner = self.inner.clone();
        self.read(move |store| {
            inner.loads.fetch_add(1, Ordering::Relaxed);
            store.load(&key)
        })
        .await
    }

    /// [`CredentialStore::load_shared`], answered like [`StoreQueue::load`]: on this
    /// thread when the store can vouch for its copy in memory without a file system call
    /// ([`CredentialStore::load_shared_now`]), else on the reading lane.
    pub(crate) async fn load_shared(
        &self,
        key: Arc<LookupKey>,
    ) -> Result<Option<Arc<StoredCredentials>>, StoreError> {
        if let Some(found) = self.inner.store.load_shared_now(&key) {
            self.inner.loads.fetch_add(1, Ordering::Relaxed);
            self.inner.in_memory.fetch_add(1, Ordering::Relaxed);
            return Ok(found);
        }
        let inner = self.inner.clone();
        self.read(move |store| {
            inner.loads.fetch_add(1, Ordering::Relaxed);
            store.load_shared(&key)
        })
        .await
    }

    /// Runs `read` on the reading lane: a call that takes no lock (lookups).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&dyn CredentialStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (job, answer) = self.job(read).await;
        if self.inner.reads.push(job) {
            self.start(Inner::serve_reads);
        }
        answered(answer).await
    }

    /// Runs `write` on the writing lane, in its place among the updates.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        write: impl FnOnce(&dyn CredentialStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (job, answer) = self.job(write).await;
        if self.inner.writes.push(Write::Other(job)) {
            self.start(Inner::serve_writes);
        }
        answered(answer).await
    }

    /// [`CredentialStore::update`], applied together with the updates queued meanwhile;
    /// returns once the write that made it is durable.
    pub(crate) async fn update(&self, key: CredentialKey, decide: SendDecide) -> UpdateResult {
        let room = self.room().await;
        let (reply, answer) = oneshot::channel();
        let call = Write::Update {
            key,
            decide,
            reply,
            _room: room,
        };
        if self.inner.writes.push(call) {
            self.start(Inner::serve_writes);
        }
        answered(answer).await
    }

    /// How the calls so far were served.
    pub(crate) fn counts(&self) -> BatchCounts {
        let i = &self.inner;
        BatchCounts {
            loads: i.loads.load(Ordering::Relaxed),
            in_memory: i.in_memory.load(Ordering::Relaxed),
            updates: i.updates.load(Ordering::Relaxed),
            writes: i.writes_done.load(Ordering::Relaxed),
            hand_offs: i.hand_offs.load(Ordering::Relaxed),
        }
    }

    /// Calls waiting to be served now (both lanes).
    #[cfg(test)]
    pub(crate) fn queued(&self) -> usize {
        self.inner.reads.len() + self.inner.writes.len()
    }

    async fn room(&self) -> OwnedSemaphorePermit {
        self.inner
            .room
            .clone()
            .acquire_owned()
            .await
            .expect("the queue's semaphore is never closed")
    }

    async fn job<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn CredentialStore) -> Result<T, StoreError> + Send + 'static,
    ) -> (Job, oneshot::Receiver<Result<T, StoreError>>) {
        let room = self.room().await;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            run: Box::new(move |store| {
                let _ = reply.send(f(store));
            }),
            _room: room,
        };
        (job, answer)
    }

    fn start(&self, serve: fn(&Inner)) {
        self.inner.hand_offs.fetch_add(1, Ordering::Relaxed);
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || serve(&inner));
    }
}

async fn answered<T>(answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
    answer.await.unwrap_or_else(|_| {
        Err(StoreError::Io {
            path: Default::default(),
            source: std::io::Error::other("the credential store's worker thread stopped"),
        })
    })
}

impl Inner {
    /// Serves the reading lane until it is empty (on a blocking thread).
    fn serve_reads(&self) {
        while let Some(jobs) = self.reads.take() {
            // One look at the store for all of them, made after each was asked.
            let pinned = if jobs.len() > 1 {
                self.store.pinned()
            } else {
                None
            };
            let store = pinned.as_deref().unwrap_or(self.store.as_ref());
            for job in jobs {
                (job.run)(store);
            }
        }
    }

    /// Serves the writing lane until it is empty (on a blocking thread): consecutive
    /// updates as one group commit, other writes in their place.
    fn serve_writes(&self) {
        while let Some(calls) = self.writes.take() {
            let mut updates: Vec<(CredentialKey, SendDecide, Reply)> = Vec::new();
            for call in calls {
                match call {
                    Write::Other(job) => {
                        self.commit(&mut updates);
                        (job.run)(self.store.as_ref());
                    }
                    Write::Update {
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
    }

    fn commit(&self, updates: &mut Vec<(CredentialKey, SendDecide, Reply)>) {
        if updates.is_empty() {
            return;
        }
        let (calls, replies): (Vec<(CredentialKey, Decide<'static>)>, Vec<Reply>) = updates
            .drain(..)
            .map(|(key, decide, reply)| ((key, decide as Decide<'static>), reply))
            .unzip();
        self.writes_done.fetch_add(1, Ordering::Relaxed);
        self.updates
            .fetch_add(calls.len() as u64, Ordering::Relaxed);
        let results = self.store.update_many(calls);
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

#[cfg(test)]
mod tests;

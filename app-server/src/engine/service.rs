//! The OAuth engine of one daemon: what the login flow, token vending, refresh and logout
//! share. Knows nothing of JSON-RPC: progress leaves as [`OAuthEvent`]s.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::credentials::{
    BatchCounts, ClientSecretKeyring, CredentialKey, CredentialStore, SendDecide, StoreError,
    StoreQueue, StoredCredentials,
};
use crate::engine::callback_ports::StickyPorts;
use crate::engine::state::challenges::ChallengeState;
use crate::engine::state::control::EndReason;
use crate::engine::state::live::Live;
use crate::engine::state::logins::PendingLogin;
use crate::engine::state::preregistrations::Preregistrations;
use crate::engine::state::refreshes::{InFlightRefresh, REFRESH_SETTLE_TIMEOUT};
use crate::engine::state::registration_saves::RegistrationSaves;
use crate::engine::target::ServerTarget;
use crate::engine::types::OAuthEvent;
use crate::oauth::callback::CallbackServer;
use crate::oauth::discovery::DiscoveryCache;
use crate::oauth::http::HttpClient;

/// The OAuth engine of one daemon.
pub struct OAuthService {
    pub(super) http: HttpClient,
    pub(super) cache: DiscoveryCache,
    /// The callback port each server's DCR registration was made for.
    pub(super) ports: StickyPorts,
    /// New DCR registrations on their way to the store, saved many at a time.
    pub(super) registration_saves: RegistrationSaves,
    /// Pre-registrations under way, waited for by the logins to their servers.
    pub(super) preregistrations: Preregistrations,
    pub(super) callbacks: Arc<CallbackServer>,
    pub(super) store: Arc<dyn CredentialStore>,
    /// Loads and compare-and-saves of the store, batched (see `credentials/batched.rs`).
    pub(super) queue: StoreQueue,
    pub(super) events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
    pub(super) logins: Mutex<HashMap<String, Arc<PendingLogin>>>,
    pub(super) next_id: AtomicU64,
    /// Refreshes under way, by credential storage key, with an id for their removal.
    pub(super) refreshes: Mutex<HashMap<String, (u64, InFlightRefresh)>>,
    pub(super) flows: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The pre-warm under way, if any.
    pub(super) prewarm: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Refusals seen per server: the step-up counts and the metadata discovery used.
    pub(super) challenges: ChallengeState,
    /// Set once shutdown begins: no token endpoint call whose answer must be saved starts
    /// after that.
    shutting_down: AtomicBool,
    /// Held (shared) by every refresh and code exchange from its token request until its
    /// answer is saved; shutdown takes it exclusively to wait for them.
    token_calls: tokio::sync::RwLock<()>,
    /// Announced statuses, servers in use, the background refresh plan.
    pub(super) live: Live,
    /// The latest DPoP nonce of each server's authorization server, by server name
    /// (RFC 9449 8); memory only.
    pub(super) dpop_nonces: crate::oauth::dpop::NonceCache,
    /// The latest DPoP nonce of each server's MCP server (RFC 9449 9), by server name.
    pub(super) rs_dpop_nonces: crate::oauth::dpop::NonceCache,
    /// Where `client_secret_keyring` secrets are read (rule 71).
    pub(super) client_secrets: ClientSecretKeyring,
    /// Each server's account used last, for the store's document last looked at (rule 81).
    pub(super) current_accounts: Mutex<Option<Arc<crate::credentials::CurrentAccounts>>>,
}

/// What the engine reaches the network with: the HTTP client every request of the protocol
/// steps goes through, and the loopback listener for the browser's redirects. Made before
/// the engine, so that a failure to make it is reported before anything starts.
pub struct Network {
    http: HttpClient,
    callbacks: Arc<CallbackServer>,
}

/// The engine could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct NetworkError(#[from] crate::oauth::http::HttpError);

impl Network {
    pub fn new() -> Result<Self, NetworkError> {
        Ok(Network {
            http: HttpClient::new()?,
            callbacks: CallbackServer::new(),
        })
    }
}

impl OAuthService {
    pub fn new(
        network: Network,
        store: Arc<dyn CredentialStore>,
        events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
    ) -> Arc<Self> {
        Self::with_client_secrets(network, store, events, ClientSecretKeyring::os())
    }

    /// [`OAuthService::new`] reading configured client secrets from `client_secrets`
    /// instead of the OS keyring.
    pub fn with_client_secrets(
        network: Network,
        store: Arc<dyn CredentialStore>,
        events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
        client_secrets: ClientSecretKeyring,
    ) -> Arc<Self> {
        let Network { http, callbacks } = network;
        Arc::new(Self {
            http,
            cache: DiscoveryCache::new(),
            ports: StickyPorts::default(),
            registration_saves: RegistrationSaves::default(),
            preregistrations: Preregistrations::default(),
            callbacks,
            queue: StoreQueue::new(store.clone()),
            store,
            events,
            logins: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            refreshes: Mutex::new(HashMap::new()),
            flows: Mutex::new(Vec::new()),
            prewarm: Mutex::new(None),
            challenges: ChallengeState::default(),
            shutting_down: AtomicBool::new(false),
            token_calls: tokio::sync::RwLock::new(()),
            live: Live::default(),
            dpop_nonces: Default::default(),
            rs_dpop_nonces: Default::default(),
            client_secrets,
            current_accounts: Mutex::new(None),
        })
    }

    /// The HTTP client for requests made on behalf of `target` (rule 35): limited by the
    /// class of the addresses its URL resolves to, widened by the server's opt-ins, and
    /// going through the target's proxy.
    pub(super) async fn server_http(&self, target: &ServerTarget) -> HttpClient {
        self.http
            .with_network(&target.network)
            .for_server(&target.url, target.net_opt_ins)
            .await
    }

    /// Keeps what the daemon learns about servers (the discovery cache, the sticky callback
    /// ports) in `state_dir`, so a later process starts from it.
    pub fn remember_in(&self, state_dir: &std::path::Path) {
        self.cache.persist_in(state_dir);
        self.ports.persist_in(state_dir);
        self.cache.preload();
        self.ports.preload();
    }

    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.store
    }

    /// A new id, unique in this daemon (logins, refreshes).
    pub(super) fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps the task of a login flow, so that shutdown waits for it to announce its end.
    pub(super) fn track_flow(&self, flow: tokio::task::JoinHandle<()>) {
        let mut flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        flows.retain(|f| !f.is_finished());
        flows.push(flow);
    }

    /// A login the user asked for: step-up counts of the server start over.
    pub fn forget_step_ups(&self, target: &super::target::ServerTarget) {
        self.challenges.forget_step_ups(&target.key());
    }

    /// Sends an event; a status change only when it differs from the last one announced
    /// for that server (the scheduler may have announced it first), and then the scheduler
    /// re-plans.
    pub(super) fn emit(&self, event: OAuthEvent) {
        if let OAuthEvent::AuthStatusChanged {
            name,
            status,
            reason,
        } = &event
        {
            self.live.wake.notify_one();
            if !self.record_status(name, (*status, *reason)) {
                return;
            }
        }
        (self.events)(event)
    }

    pub(super) async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn CredentialStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Io {
                    path: Default::default(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// The stored credentials of a server, for status listings.
    /// Every stored entry, read at once (status listings).
    pub async fn store_list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        self.queue.read(|s| s.list()).await
    }

    /// Every stored entry, shared with the store's copy where it keeps one (the scheduler's
    /// rounds: no copy of every entry per round).
    pub(super) async fn stored_set(&self) -> Result<crate::credentials::StoredSet, StoreError> {
        // The store's copy in memory when it can vouch for it: no hand-off to a thread
        // (which would compete for the cores with the token requests being answered).
        if let Some(set) = self.store.stored_set_now() {
            return Ok(set);
        }
        self.queue.read(|s| s.stored_set()).await
    }

    pub async fn store_load(
        &self,
        key: CredentialKey,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.queue.load(key).await
    }

    /// A compare-and-save, written together with the others queued meanwhile; returns
    /// once it is durable.
    pub(super) async fn store_update(
        &self,
        key: CredentialKey,
        decide: SendDecide,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.queue.update(key, decide).await
    }

    /// How the batched store calls were served so far (loads, updates, writes).
    pub fn store_counts(&self) -> BatchCounts {
        self.queue.counts()
    }

    /// Permission to ask the token endpoint for tokens that must then be saved (a refresh
    /// may rotate the refresh token, a code is spent); hold it until they are. `None` once
    /// shutdown has begun: nothing is asked then, so nothing can be lost.
    pub(super) fn begin_token_call(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        // A failed `try_read` means shutdown is waiting for the exclusive guard.
        let guard = self.token_calls.try_read().ok()?;
        (!self.shutting_down.load(Ordering::SeqCst)).then_some(guard)
    }

    /// Ends every pending login (daemon shutdown), waits (bounded by
    /// [`REFRESH_SETTLE_TIMEOUT`], longer than one token request) until every refresh and
    /// code exchange under way has saved what the server answered, waits (bounded) until
    /// each login has announced its end, and closes the listeners.
    pub async fn shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.stop_prewarm();
        self.stop_live().await;
        let names: Vec<String> = self.lock_logins().keys().cloned().collect();
        for name in names {
            self.end_login(&name, EndReason::ShuttingDown);
        }
        self.settle_token_calls().await;
        // What was learnt about servers is on disk for the next process.
        self.cache.flush().await;
        self.ports.flush().await;
        let flows = std::mem::take(&mut *self.flows.lock().unwrap_or_else(|e| e.into_inner()));
        let _ =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(flows)).await;
        self.callbacks.shutdown();
    }

    /// Waits for the token endpoint calls under way to save their answers.
    async fn settle_token_calls(&self) {
        if tokio::time::timeout(REFRESH_SETTLE_TIMEOUT, self.token_calls.write())
            .await
            .is_err()
        {
            tracing::warn!(
                "a token request was still running after {} s; exiting without its answer",
                REFRESH_SETTLE_TIMEOUT.as_secs()
            );
        }
    }

    pub(super) async fn load(
        &self,
        key: &CredentialKey,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.queue.load(key.clone()).await
    }
}

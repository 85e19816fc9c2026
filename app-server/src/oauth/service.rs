//! The OAuth engine of one daemon: what the login flow, token vending, refresh and logout
//! share. Knows nothing of JSON-RPC: progress leaves as [`OAuthEvent`]s.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_app_server_protocol::McpAuthStatus;

use super::callback::CallbackServer;
use super::discovery::MetadataCache;
use super::error::LoginError;
use super::http::HttpClient;
use super::live::Live;
use super::login::{EndReason, PendingLogin};
use super::registration::{ClientRegistration, TokenAuthMethod};
use super::vending::InFlightRefresh;
use crate::credentials::{
    CredentialKey, CredentialStore, StoreError, StoredClient, StoredCredentials,
};

/// Progress reported to whoever drives the service.
#[derive(Debug, Clone)]
pub enum OAuthEvent {
    LoginCompleted {
        name: String,
        result: Result<(), Arc<LoginError>>,
    },
    LoginRestarted {
        name: String,
        authorization_url: String,
        reason: String,
    },
    AuthStatusChanged {
        name: String,
        status: McpAuthStatus,
    },
}

/// The OAuth engine of one daemon.
pub struct OAuthService {
    pub(super) http: HttpClient,
    pub(super) cache: MetadataCache,
    pub(super) callbacks: Arc<CallbackServer>,
    pub(super) store: Arc<dyn CredentialStore>,
    pub(super) events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
    pub(super) logins: Mutex<HashMap<String, Arc<PendingLogin>>>,
    pub(super) next_id: AtomicU64,
    /// Refreshes under way, by credential storage key, with an id for their removal.
    pub(super) refreshes: Mutex<HashMap<String, (u64, InFlightRefresh)>>,
    pub(super) flows: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Announced statuses, servers in use, the background refresh plan.
    pub(super) live: Live,
}

impl OAuthService {
    pub fn new(
        http: HttpClient,
        callbacks: Arc<CallbackServer>,
        store: Arc<dyn CredentialStore>,
        events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            cache: MetadataCache::new(),
            callbacks,
            store,
            events,
            logins: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            refreshes: Mutex::new(HashMap::new()),
            flows: Mutex::new(Vec::new()),
            live: Live::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.store
    }

    /// Sends an event; a status change only when it differs from the last one announced
    /// for that server (the scheduler may have announced it first), and then the scheduler
    /// re-plans.
    pub(super) fn emit(&self, event: OAuthEvent) {
        if let OAuthEvent::AuthStatusChanged { name, status } = &event {
            self.live.wake.notify_one();
            if !self.record_status(name, *status) {
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
        self.blocking(|s| s.list()).await
    }

    pub async fn store_load(
        &self,
        key: CredentialKey,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.blocking(move |s| s.load(&key)).await
    }

    /// Ends every pending login (daemon shutdown), waits (bounded) until each has announced
    /// its end, and closes the listeners.
    pub async fn shutdown(&self) {
        self.stop_live().await;
        let names: Vec<String> = self.lock_logins().keys().cloned().collect();
        for name in names {
            self.end_login(&name, EndReason::ShuttingDown);
        }
        let flows = std::mem::take(&mut *self.flows.lock().unwrap_or_else(|e| e.into_inner()));
        let _ =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(flows)).await;
        self.settle_refreshes().await;
        self.callbacks.shutdown();
    }

    pub(super) async fn load(
        &self,
        key: &CredentialKey,
    ) -> Result<Option<StoredCredentials>, LoginError> {
        let key = key.clone();
        Ok(self.blocking(move |s| s.load(&key)).await?)
    }
}

pub(super) fn registration_from_client(client: &StoredClient) -> ClientRegistration {
    ClientRegistration {
        kind: client.kind,
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        auth_method: TokenAuthMethod::from_name(&client.token_endpoint_auth_method)
            .unwrap_or(TokenAuthMethod::None),
    }
}

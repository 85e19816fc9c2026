//! The daemon's shared state: the configuration in force, the login engine, every open
//! connection and the one outgoing path of notifications.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use mcp_app_server_protocol::{JsonRpcNotification, ServerNotification};
use tokio::sync::watch;

use super::outgoing::{NotifyRefused, OutgoingSender};
use crate::config::{self, Config, ConfigError};
use crate::engine::{OAuthService, ServerTarget, configured_servers};
use crate::home::Home;

pub(super) struct ServerState {
    pub(super) home: Home,
    pub(super) oauth: Arc<OAuthService>,
    pub(super) max_message_bytes: usize,
    config: RwLock<ConfigSlot>,
    connections: Connections,
    shutdown: watch::Sender<bool>,
}

/// The configuration in force, and the error of the last load when it failed before any
/// configuration could be read.
struct ConfigSlot {
    config: Arc<Config>,
    startup_error: Option<ConfigError>,
    /// The configured HTTP servers resolved for OAuth, once per configuration (a reload
    /// replaces them), by name: a token request neither scans nor rebuilds them. Servers
    /// whose client secret is read from the environment are left out and resolved per
    /// request, so the secret is the one set when it is used.
    targets: Arc<HashMap<String, Arc<ServerTarget>>>,
}

impl ConfigSlot {
    fn new(config: Arc<Config>, startup_error: Option<ConfigError>) -> ConfigSlot {
        let targets = Arc::new(resolved_targets(&config));
        ConfigSlot {
            config,
            startup_error,
            targets,
        }
    }
}

/// The targets of `config` that depend on nothing but the configuration.
fn resolved_targets(config: &Config) -> HashMap<String, Arc<ServerTarget>> {
    ServerTarget::resolve_static(config)
        .map(|t| (t.name.clone(), Arc::new(t)))
        .collect()
}

impl ServerState {
    /// The state of a daemon that has loaded `config` (or, when that failed, runs with the
    /// default configuration and answers `startup_error` until a reload succeeds).
    pub(super) fn new(
        home: Home,
        max_message_bytes: usize,
        oauth: Arc<OAuthService>,
        config: Arc<Config>,
        startup_error: Option<ConfigError>,
    ) -> ServerState {
        let (shutdown, _) = watch::channel(false);
        ServerState {
            home,
            oauth,
            max_message_bytes,
            config: RwLock::new(ConfigSlot::new(config, startup_error)),
            connections: Connections::default(),
            shutdown,
        }
    }

    /// The configuration in force: the default one while config.toml could not be loaded.
    pub(super) fn config_in_force(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .config
            .clone()
    }

    pub(super) fn config(&self) -> Result<Arc<Config>, ConfigError> {
        let slot = self.config.read().unwrap_or_else(|e| e.into_inner());
        match &slot.startup_error {
            Some(e) => Err(e.clone()),
            None => Ok(slot.config.clone()),
        }
    }

    /// The configured HTTP server `name` as resolved for this configuration; `None` when it
    /// is not configured, not an HTTP server, reads its secret from the environment, or the
    /// configuration could not be loaded (the caller resolves it and reports why).
    pub(super) fn target(&self, name: &str) -> Option<Arc<ServerTarget>> {
        let slot = self.config.read().unwrap_or_else(|e| e.into_inner());
        if slot.startup_error.is_some() {
            return None;
        }
        slot.targets.get(name).cloned()
    }

    /// Discovers the configured HTTP servers in the background unless
    /// `mcp_oauth_prewarm = false`, and registers a client for those that will need Dynamic
    /// Client Registration unless `mcp_oauth_preregister = false`.
    pub(super) fn prewarm(&self, config: &Config) {
        if config.prewarm_disabled {
            return;
        }
        let targets = ServerTarget::resolve_for_discovery(config).collect();
        self.oauth.prewarm(targets, !config.preregister_disabled);
    }

    /// Re-reads config.toml; on error the configuration in force stays.
    pub(super) async fn reload_config(&self) -> Result<Arc<Config>, ConfigError> {
        // Reading config.toml and the certificate files it names (up to 4 MiB each) is file
        // I/O: it runs on a blocking thread, never on the async worker.
        let path = self.home.config_file();
        let read = path.clone();
        let fresh = tokio::task::spawn_blocking(move || config::load(&read))
            .await
            .map_err(|e| ConfigError::Read {
                path,
                reason: format!("reading the configuration stopped: {e}"),
            })??;
        let fresh = Arc::new(fresh);
        let fresh_slot = ConfigSlot::new(fresh.clone(), None);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = fresh_slot;
        self.oauth.set_servers(configured_servers(&fresh));
        self.prewarm(&fresh);
        Ok(fresh)
    }

    /// Ends pending logins, settles refreshes, frees the callback ports, then tells every
    /// connection to stop reading.
    pub(super) async fn shut_down(&self) {
        self.oauth.shutdown().await;
        self.shutdown.send_replace(true);
    }

    pub(super) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(super) fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The single outgoing path of notifications: applies each connection's opt-out list.
    pub(super) fn notify(&self, notification: ServerNotification) {
        let method = notification.method();
        let message = JsonRpcNotification::new(method, Some(notification.params_value()));
        let bytes = match serde_json::to_vec(&message) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(method, error = %e, "could not serialise a notification");
                return;
            }
        };
        self.connections.broadcast(method, &bytes);
    }
}

/// Every open connection and what it asked for at initialize.
#[derive(Default)]
pub(super) struct Connections {
    next_id: AtomicU64,
    entries: Mutex<HashMap<u64, ConnectionEntry>>,
}

struct ConnectionEntry {
    outgoing: OutgoingSender,
    /// `None` until `initialize`; then the methods this connection opted out of.
    opt_out: Option<HashSet<String>>,
    /// The frontend's `clientInfo.title`, else `name`, from `initialize`.
    frontend: Option<String>,
}

impl Connections {
    pub(super) fn add(&self, outgoing: OutgoingSender) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            ConnectionEntry {
                outgoing,
                opt_out: None,
                frontend: None,
            },
        );
        id
    }

    pub(super) fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Marks a connection initialized; false when it already was.
    pub(super) fn initialize(
        &self,
        id: u64,
        opt_out: HashSet<String>,
        frontend: Option<String>,
    ) -> bool {
        let mut map = self.lock();
        match map.get_mut(&id) {
            Some(entry) if entry.opt_out.is_none() => {
                entry.opt_out = Some(opt_out);
                entry.frontend = frontend;
                true
            }
            _ => false,
        }
    }

    /// The name the connection's frontend gave at `initialize`.
    pub(super) fn frontend(&self, id: u64) -> Option<String> {
        self.lock().get(&id).and_then(|e| e.frontend.clone())
    }

    pub(super) fn is_initialized(&self, id: u64) -> bool {
        self.lock().get(&id).is_some_and(|e| e.opt_out.is_some())
    }

    /// Offers the notification to every connection without waiting: one that has not read
    /// its queued notifications is closed (see `outgoing`), never waited for.
    fn broadcast(&self, method: &str, bytes: &[u8]) {
        for (id, entry) in self.lock().iter() {
            if let Some(opt_out) = &entry.opt_out
                && !opt_out.contains(method)
                && entry.outgoing.notify(bytes.to_vec()) == Err(NotifyRefused::Overflow)
            {
                tracing::warn!(
                    connection = id,
                    method,
                    "the client has not read its last notifications; closing the connection"
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ConnectionEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

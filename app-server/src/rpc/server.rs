//! Shared daemon state: configuration, connections and the outgoing notification path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};

use mcp_app_server_protocol::{
    AuthStatusChangedNotification, JsonRpcNotification, OauthLoginCompletedNotification,
    OauthLoginRestartedNotification, ServerNotification,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::connection::Ending;
use super::error::AppError;
use super::outgoing::{NotifyRefused, OutgoingSender};
use crate::config::{self, Config, ConfigError};
use crate::credentials::{FileStore, StoreError, open_store};
use crate::engine::{OAuthEvent, OAuthService, ServerTarget, configured_servers};
use crate::home::Home;
use crate::oauth::callback::CallbackServer;
use crate::oauth::http::HttpClient;
use crate::transport::DEFAULT_MAX_MESSAGE_BYTES;

/// How to build an [`AppServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub home: Home,
    pub max_message_bytes: usize,
}

impl ServerOptions {
    pub fn new(home: Home) -> Self {
        Self {
            home,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }
}

/// The daemon: one per process, serving any number of connections.
#[derive(Clone)]
pub struct AppServer {
    pub(crate) state: Arc<ServerState>,
}

pub(crate) struct ServerState {
    pub home: Home,
    pub oauth: Arc<OAuthService>,
    pub max_message_bytes: usize,
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

impl AppServer {
    /// Builds the daemon. A config.toml that cannot be loaded does not stop it: requests
    /// that need the configuration answer with the error until a reload succeeds.
    ///
    /// Call it within a Tokio runtime (it starts the daemon's background tasks); outside
    /// one it answers [`StartError::NoRuntime`].
    pub fn new(options: ServerOptions) -> Result<Self, StartError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StartError::NoRuntime);
        }
        let (config, startup_error) = match config::load(&options.home.config_file()) {
            Ok(c) => (Arc::new(c), None),
            Err(e) => {
                tracing::warn!(error = %e, "config.toml could not be loaded");
                (Arc::new(Config::default()), Some(e))
            }
        };
        let store = open_store(&options.home, config.credentials_store.into())?;
        // The file other processes write to (with the keyring too: it holds the index).
        let watched = FileStore::open(&options.home).map(|f| f.path().to_path_buf());
        let http = HttpClient::new().map_err(|e| StartError::Http(e.to_string()))?;
        let (shutdown, _) = watch::channel(false);
        let servers = configured_servers(&config);
        let state = Arc::new_cyclic(|weak: &Weak<ServerState>| {
            let weak = weak.clone();
            let events = Arc::new(move |event: OAuthEvent| {
                if let Some(state) = weak.upgrade() {
                    state.notify(notification_for(event));
                }
            });
            ServerState {
                oauth: OAuthService::new(http, CallbackServer::new(), store, events),
                home: options.home,
                max_message_bytes: options.max_message_bytes,
                config: RwLock::new(ConfigSlot::new(config, startup_error)),
                connections: Connections::default(),
                shutdown,
            }
        });
        state.oauth.remember_in(&state.home.state_dir);
        state.oauth.set_servers(servers);
        state.prewarm(
            &state
                .config
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .config
                .clone(),
        );
        state.oauth.start_live(watched.ok());
        Ok(Self { state })
    }

    /// Serves one connection until its input ends or the daemon shuts down; other
    /// connections go on.
    pub async fn serve<R, W>(&self, reader: R, writer: W)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        super::serve_connection(self.state.clone(), reader, writer, Ending::Connection).await
    }

    /// Serves the daemon's one connection (stdio). When its input ends, or on
    /// [`AppServer::shutdown`], the daemon shuts down: running requests get a grace period,
    /// pending logins end and refreshes are settled, then the last replies are written, or
    /// dropped after a grace period when the client no longer reads them. Bounded in time.
    pub async fn run<R, W>(&self, reader: R, writer: W)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        // On a worker thread, not the thread that waits for the runtime: the tasks it wakes
        // (each request, the writer) then mostly run on the same thread right after it,
        // without a wake-up of another thread per message.
        let connection =
            super::serve_connection(self.state.clone(), reader, writer, Ending::Daemon);
        if let Err(e) = tokio::spawn(connection).await {
            tracing::error!(error = %e, "the connection stopped unexpectedly");
        }
    }

    /// Stops reading on every connection (pending writes still finish), ends pending
    /// logins and frees the callback ports.
    pub async fn shutdown(&self) {
        self.state.shut_down().await;
    }

    /// Sends a notification to every initialized connection that did not opt out.
    pub fn notify(&self, notification: ServerNotification) {
        self.state.notify(notification)
    }

    /// How the credential store's calls were served so far.
    pub fn store_counts(&self) -> crate::credentials::BatchCounts {
        self.state.oauth.store_counts()
    }
}

impl ServerState {
    pub fn config(&self) -> Result<Arc<Config>, ConfigError> {
        let slot = self.config.read().unwrap_or_else(|e| e.into_inner());
        match &slot.startup_error {
            Some(e) => Err(e.clone()),
            None => Ok(slot.config.clone()),
        }
    }

    /// The configured HTTP server `name` as resolved for this configuration; `None` when it
    /// is not configured, not an HTTP server, reads its secret from the environment, or the
    /// configuration could not be loaded (the caller resolves it and reports why).
    pub fn target(&self, name: &str) -> Option<Arc<ServerTarget>> {
        let slot = self.config.read().unwrap_or_else(|e| e.into_inner());
        if slot.startup_error.is_some() {
            return None;
        }
        slot.targets.get(name).cloned()
    }

    /// Discovers the configured HTTP servers in the background unless
    /// `mcp_oauth_prewarm = false`.
    fn prewarm(&self, config: &Config) {
        if config.prewarm_disabled {
            return;
        }
        let targets = ServerTarget::resolve_for_discovery(config).collect();
        self.oauth.prewarm(targets);
    }

    /// Re-reads config.toml; on error the configuration in force stays.
    pub fn reload_config(&self) -> Result<Arc<Config>, ConfigError> {
        let fresh = Arc::new(config::load(&self.home.config_file())?);
        let fresh_slot = ConfigSlot::new(fresh.clone(), None);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = fresh_slot;
        self.oauth.set_servers(configured_servers(&fresh));
        self.prewarm(&fresh);
        Ok(fresh)
    }

    /// Ends pending logins, settles refreshes, frees the callback ports, then tells every
    /// connection to stop reading.
    pub async fn shut_down(&self) {
        self.oauth.shutdown().await;
        self.shutdown.send_replace(true);
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub fn connections(&self) -> &Connections {
        &self.connections
    }

    /// The single outgoing path of notifications: applies each connection's opt-out list.
    pub fn notify(&self, notification: ServerNotification) {
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
pub(crate) struct Connections {
    next_id: AtomicU64,
    entries: Mutex<HashMap<u64, ConnectionEntry>>,
}

struct ConnectionEntry {
    outgoing: OutgoingSender,
    /// `None` until `initialize`; then the methods this connection opted out of.
    opt_out: Option<HashSet<String>>,
}

impl Connections {
    pub fn add(&self, outgoing: OutgoingSender) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            id,
            ConnectionEntry {
                outgoing,
                opt_out: None,
            },
        );
        id
    }

    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Marks a connection initialized; false when it already was.
    pub fn initialize(&self, id: u64, opt_out: HashSet<String>) -> bool {
        let mut map = self.lock();
        match map.get_mut(&id) {
            Some(entry) if entry.opt_out.is_none() => {
                entry.opt_out = Some(opt_out);
                true
            }
            _ => false,
        }
    }

    pub fn is_initialized(&self, id: u64) -> bool {
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

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the credential store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(
        "the daemon was built outside a Tokio runtime; call AppServer::new from within one (it starts background tasks)"
    )]
    NoRuntime,
}

fn notification_for(event: OAuthEvent) -> ServerNotification {
    match event {
        OAuthEvent::LoginCompleted { name, result } => {
            let (success, error, error_kind) = match result {
                Ok(()) => (true, None, None),
                Err(e) => {
                    let app = AppError::from(e.as_ref());
                    (false, Some(app.message), Some(app.kind))
                }
            };
            ServerNotification::OauthLoginCompleted(OauthLoginCompletedNotification {
                name,
                success,
                error,
                error_kind,
            })
        }
        OAuthEvent::LoginRestarted {
            name,
            authorization_url,
            reason,
        } => ServerNotification::OauthLoginRestarted(OauthLoginRestartedNotification {
            name,
            authorization_url,
            reason,
        }),
        OAuthEvent::AuthStatusChanged { name, status } => {
            ServerNotification::AuthStatusChanged(AuthStatusChangedNotification {
                name,
                auth_status: status,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(home: &std::path::Path, config: &str) -> AppServer {
        std::fs::write(home.join("config.toml"), config).unwrap();
        AppServer::new(ServerOptions::new(Home::at(home))).unwrap()
    }

    /// Built outside a runtime, the daemon answers with an error that says so instead of
    /// panicking when it starts its background tasks; nothing is written to the home.
    #[test]
    fn built_outside_a_runtime_it_answers_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "mcp_oauth_prewarm = false\n",
        )
        .unwrap();
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        let result = AppServer::new(ServerOptions::new(Home::at(dir.path())));
        let Err(e) = result else {
            panic!("a daemon without a runtime");
        };
        assert!(matches!(e, StartError::NoRuntime), "{e}");
        assert!(e.to_string().contains("Tokio runtime"), "{e}");
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(before.len(), after.len());
    }

    #[tokio::test]
    async fn targets_are_resolved_once_per_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let config = "mcp_oauth_prewarm = false\nmcp_oauth_credentials_store = \"file\"\n\
            [mcp_servers.a]\nurl = \"https://a.example/mcp\"\n\
            [mcp_servers.local]\ncommand = \"true\"\n\
            [mcp_servers.env]\nurl = \"https://env.example/mcp\"\n\
            [mcp_servers.env.oauth]\nclient_id = \"c\"\nclient_secret_env_var = \"MCP_TEST_UNSET_SECRET\"\n";
        let app = server(dir.path(), config);
        let state = &app.state;
        let a = state.target("a").expect("an HTTP server is resolved");
        assert_eq!(a.name, "a");
        assert_eq!(a.url.as_str(), "https://a.example/mcp");
        // The same target every time: no copy, no lookup in the configuration.
        assert!(Arc::ptr_eq(&a, &state.target("a").unwrap()));
        // Not resolved ahead: unknown, stdio, and a secret read from the environment at use.
        assert!(state.target("missing").is_none());
        assert!(state.target("local").is_none());
        assert!(state.target("env").is_none());

        // A reload resolves the servers of the new configuration.
        std::fs::write(
            dir.path().join("config.toml"),
            config.replace("https://a.example/mcp", "https://a.example/v2/mcp"),
        )
        .unwrap();
        state.reload_config().unwrap();
        let moved = state.target("a").unwrap();
        assert_eq!(moved.url.as_str(), "https://a.example/v2/mcp");
        assert!(!Arc::ptr_eq(&a, &moved));
    }

    #[tokio::test]
    async fn no_target_while_the_configuration_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let app = server(dir.path(), "mcp_servers = 3\n");
        assert!(app.state.config().is_err());
        assert!(app.state.target("a").is_none());
    }
}

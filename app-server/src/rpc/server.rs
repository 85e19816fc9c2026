//! The daemon: builds its state and serves connections on it.

use std::sync::{Arc, Weak};

use mcp_app_server_protocol::{
    AuthStatusChangedNotification, OauthLoginCompletedNotification,
    OauthLoginRestartedNotification, ServerNotification,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::connection::serve_connection;
use super::error::AppError;
use super::state::ServerState;
use super::types::Ending;
use crate::config::{self, Config};
use crate::credentials::{ClientSecretKeyring, FileStore, StoreError, open_store};
use crate::engine::{Network, OAuthEvent, OAuthService, configured_servers};
use crate::home::Home;
use crate::transport::DEFAULT_MAX_MESSAGE_BYTES;

/// How to build an [`AppServer`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub(crate) home: Home,
    pub(crate) max_message_bytes: usize,
    pub(crate) client_secrets: ClientSecretKeyring,
}

impl ServerOptions {
    pub fn new(home: Home) -> Self {
        Self {
            home,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            client_secrets: ClientSecretKeyring::os(),
        }
    }

    /// Reads `client_secret_keyring` secrets from `keyring` instead of the OS keyring.
    pub fn with_client_secrets(mut self, keyring: ClientSecretKeyring) -> Self {
        self.client_secrets = keyring;
        self
    }
}

/// The daemon: one per process, serving any number of connections.
#[derive(Clone)]
pub struct AppServer {
    state: Arc<ServerState>,
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
        let network = Network::new().map_err(|e| StartError::Http(e.to_string()))?;
        let servers = configured_servers(&config);
        let state = Arc::new_cyclic(|weak: &Weak<ServerState>| {
            let weak = weak.clone();
            let events = Arc::new(move |event: OAuthEvent| {
                if let Some(state) = weak.upgrade() {
                    state.notify(notification_for(event));
                }
            });
            ServerState::new(
                options.home,
                options.max_message_bytes,
                OAuthService::with_client_secrets(network, store, events, options.client_secrets),
                config,
                startup_error,
            )
        });
        state.oauth.remember_in(&state.home.state_dir);
        state.oauth.set_servers(servers);
        state.prewarm(&state.config_in_force());
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
        serve_connection(self.state.clone(), reader, writer, Ending::Connection).await
    }

    /// Serves the daemon's one connection (stdio). When its input ends, or on
    /// [`AppServer::shutdown`], the daemon shuts down: running requests get a grace period,
    /// pending logins end and refreshes are settled, then the last replies are written, or
    /// dropped after a grace period when the client no longer reads them. Bounded in time.
    pub(crate) async fn run<R, W>(&self, reader: R, writer: W)
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        // On a worker thread, not the thread that waits for the runtime: the tasks it wakes
        // (each request, the writer) then mostly run on the same thread right after it,
        // without a wake-up of another thread per message.
        let connection = serve_connection(self.state.clone(), reader, writer, Ending::Daemon);
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
        OAuthEvent::LoginCompleted {
            name,
            account,
            result,
        } => {
            let (success, error, error_kind) = match result {
                Ok(()) => (true, None, None),
                Err(e) => {
                    let app = AppError::from(e.as_ref());
                    (false, Some(app.message), Some(app.kind))
                }
            };
            ServerNotification::OauthLoginCompleted(OauthLoginCompletedNotification {
                name,
                account,
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
        OAuthEvent::AuthStatusChanged {
            name,
            status,
            reason,
        } => ServerNotification::AuthStatusChanged(AuthStatusChangedNotification {
            name,
            auth_status: status,
            reason,
        }),
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
        state.reload_config().await.unwrap();
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

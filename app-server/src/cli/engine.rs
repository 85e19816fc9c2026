//! What every command for people needs: the home directories, config.toml, the credential
//! store and an [`OAuthService`] of its own, built without the daemon's JSON-RPC layer. The
//! service is the daemon's engine, so a login from the terminal behaves exactly like one
//! started by a frontend.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use url::Url;

use crate::config::grant::GrantConfig;
use crate::engine::IDP_SESSION_NAME;

use crate::config::{self, Config, ConfigError};
use crate::credentials::{StoreError, StoredCredentials, check_account, open_store};
use crate::engine::{
    ChallengeError, LoginError, LogoutError, OAuthEvent, OAuthService, ServerTarget, VendError,
};
use crate::engine::{Network, TargetError};
use crate::home::{Home, HomeError};

/// Why a command failed. Each message says what failed and what the person can do.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Home(#[from] HomeError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot open the credential store: {0}")]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    #[error(
        "no MCP server named `{name}` in {config}; add a [mcp_servers.{name}] table with its url, or pass --url <url>"
    )]
    ServerNotFound { name: String, config: PathBuf },
    #[error(
        "no MCP server named `{name}` in {config} and no login stored under that name; `mcp-app-server status` lists the names you can log out of"
    )]
    NothingToLogOut { name: String, config: PathBuf },
    #[error("`{0}` is a stdio server; OAuth applies only to servers reached by `url`")]
    NotHttp(String),
    #[error(
        "`mcp_servers.{name}.oauth.client_secret_env_var` names `{var}`, which is not set; export it and run the command again"
    )]
    SecretEnvMissing { name: String, var: String },
    #[error("login to `{name}` failed: {error}")]
    Login {
        name: String,
        error: Arc<LoginError>,
    },
    #[error("no usable token for `{name}`: {error}")]
    Token { name: String, error: Arc<VendError> },
    #[error("the refusal of `{name}` could not be answered: {error}")]
    Challenge {
        name: String,
        error: Box<ChallengeError>,
    },
    #[error("logout of `{name}` failed: {error}")]
    Logout { name: String, error: LogoutError },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    pub(crate) fn login(name: &str, error: impl Into<Arc<LoginError>>) -> Self {
        CliError::Login {
            name: name.to_string(),
            error: error.into(),
        }
    }

    pub(crate) fn token(name: &str, error: Arc<VendError>) -> Self {
        CliError::Token {
            name: name.to_string(),
            error,
        }
    }
}

/// The engine of one command run.
pub(crate) struct Engine {
    pub home: Home,
    pub config: Config,
    pub oauth: Arc<OAuthService>,
    events: mpsc::UnboundedReceiver<OAuthEvent>,
}

impl Engine {
    /// Reads config.toml (an invalid one is an error: a command must not act on a guess) and
    /// opens the credential store the config names.
    pub fn open() -> Result<Self, CliError> {
        let home = Home::from_env()?;
        let config = config::load(&home.config_file())?;
        let store = open_store(&home, config.credentials_store.into())?;
        let network = Network::new().map_err(|e| CliError::Http(e.to_string()))?;
        let (tx, events) = mpsc::unbounded_channel();
        let oauth = OAuthService::new(
            network,
            store,
            Arc::new(move |event| {
                let _ = tx.send(event);
            }),
        );
        // The same sticky callback ports and discovery cache as the daemon: a second login
        // from the terminal reuses the redirect URI, so the server's registration too.
        oauth.remember_in(&home.state_dir);
        Ok(Self {
            home,
            config,
            oauth,
            events,
        })
    }

    /// The next progress event of the OAuth engine.
    pub async fn next_event(&mut self) -> Option<OAuthEvent> {
        self.events.recv().await
    }

    /// A server of config.toml, resolved as the daemon resolves it.
    pub fn configured(&self, name: &str) -> Result<ServerTarget, CliError> {
        ServerTarget::resolve(&self.config, name).map_err(|e| match e {
            TargetError::NotFound(name) => CliError::ServerNotFound {
                name,
                config: self.home.config_file(),
            },
            TargetError::NotHttp(name) => CliError::NotHttp(name),
            TargetError::SecretEnvMissing { name, var } => CliError::SecretEnvMissing { name, var },
        })
    }

    /// A server given by URL: the configured server with that URL when there is one (its
    /// settings apply), else an entry that lives only for this command, with the global
    /// settings and a name derived from the host, under which its credentials are stored.
    pub fn by_url(&self, url: &Url, name: Option<&str>) -> Result<ServerTarget, CliError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CliError::Usage(format!(
                "{url} is not an http or https URL; pass the MCP server's Streamable HTTP endpoint"
            )));
        }
        if let Some(name) = name {
            if !valid_name(name) {
                return Err(CliError::Usage(format!(
                    "`{name}` is not a usable server name: use letters, digits, `-` and `_`"
                )));
            }
            if let Some(server) = self.config.servers.get(name) {
                return match server.http() {
                    Some(http) if &http.url == url => self.configured(name),
                    _ => Err(CliError::Usage(format!(
                        "`{name}` is configured in {} with another URL; pick another --name",
                        self.home.config_file().display()
                    ))),
                };
            }
        } else if let Some(server) = self
            .config
            .servers
            .values()
            .find(|s| s.http().is_some_and(|h| &h.url == url))
        {
            return self.configured(&server.name);
        }
        let mut name = name.map_or_else(|| name_for_url(url), str::to_string);
        while self.config.servers.contains_key(&name) {
            name.push_str("-url");
        }
        Ok(ServerTarget {
            account: None,
            name,
            url: url.clone(),
            resource_override: None,
            http_headers: Default::default(),
            configured_scopes: None,
            client_id: None,
            client_secret: None,
            client_issuer: None,
            client_secret_keyring: None,
            callback_port: self.config.callback_listener_port(),
            callback_url: self.config.callback_url.clone(),
            client_metadata_url: None,
            client_metadata_url_base: self.config.client_metadata_url_base.clone(),
            net_opt_ins: Default::default(),
            grant: GrantConfig::AuthorizationCode,
            refresh_scope: Default::default(),
            token_endpoint_auth_method: None,
            dpop: None,
            share_login: true,
            enterprise: None,
            network: crate::config::network::NetworkConfig::default().over(&self.config.network),
            escape_hatches: Default::default(),
            client_key_to_frontends: false,
            lookup: Default::default(),
        })
    }

    /// A configured server, else a server logged in to by URL under that name.
    pub async fn named(&self, name: &str) -> Result<ServerTarget, CliError> {
        if self.config.servers.contains_key(name) {
            return self.configured(name);
        }
        for creds in self.unconfigured_credentials().await? {
            if creds.server_name == name
                && let Ok(url) = Url::parse(&creds.server_url)
            {
                let mut target = self.by_url(&url, None)?;
                target.name = creds.server_name;
                return Ok(target);
            }
        }
        Err(CliError::ServerNotFound {
            name: name.to_string(),
            config: self.home.config_file(),
        })
    }

    /// Stored credentials of servers that are not in config.toml (logged in with `--url` or
    /// `connect`).
    pub async fn unconfigured_credentials(&self) -> Result<Vec<StoredCredentials>, CliError> {
        let store = self.oauth.store().clone();
        let all = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| CliError::Failed(format!("reading the credential store failed: {e}")))??;
        Ok(all
            .into_iter()
            .filter(|c| !self.is_configured(&c.server_name, &c.server_url))
            // The enterprise identity provider session is no server.
            .filter(|c| c.server_name != IDP_SESSION_NAME)
            .collect())
    }

    fn is_configured(&self, name: &str, url: &str) -> bool {
        self.config
            .servers
            .get(name)
            .and_then(|s| s.http())
            .is_some_and(|h| h.url.as_str() == url)
    }

    /// `target` as `account`, checked first (rule 80), or as the server's account used
    /// last when none is named (rule 81).
    pub async fn as_account(
        &self,
        target: ServerTarget,
        account: Option<&str>,
    ) -> Result<ServerTarget, CliError> {
        if let Some(label) = account {
            check_account(label).map_err(|e| CliError::Usage(format!("--account: {e}")))?;
        }
        let target = self
            .oauth
            .for_account(Arc::new(target), account, false)
            .await?;
        Ok(Arc::unwrap_or_clone(target))
    }

    /// Ends pending logins and frees the callback ports.
    pub async fn close(&self) {
        self.oauth.shutdown().await;
    }
}

/// The global fixed port: `mcp_oauth_callback_port`, else the port of a loopback
/// `mcp_oauth_callback_url` (the daemon reads the config the same way).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A readable, stable name for a server known only by URL: its host (and port when one is
/// given), with every other character turned into `-`. `https://mcp.example.com/mcp` ->
/// `mcp-example-com`; `http://127.0.0.1:3000/mcp` -> `127-0-0-1-3000`.
pub fn name_for_url(url: &Url) -> String {
    let mut raw = url.host_str().unwrap_or("server").to_string();
    if let Some(port) = url.port() {
        raw.push_str(&format!("-{port}"));
    }
    let mut name = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (name.is_empty() || name.ends_with('-'))) {
            name.push(c.to_ascii_lowercase());
        }
    }
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "server".to_string()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_for_urls() {
        let cases = [
            ("https://mcp.example.com/mcp", "mcp-example-com"),
            ("http://127.0.0.1:3000/mcp", "127-0-0-1-3000"),
            ("http://localhost:8080/", "localhost-8080"),
            ("http://[::1]:9/mcp", "1-9"),
            ("https://MCP.Example.com:443/x", "mcp-example-com"),
        ];
        for (url, expected) in cases {
            let name = name_for_url(&Url::parse(url).unwrap());
            assert_eq!(name, expected, "{url}");
            assert!(valid_name(&name), "{name}");
        }
    }
}

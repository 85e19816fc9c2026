//! config.toml: the model and its loading.
//!
//! The `[mcp_servers.NAME]` tables follow Codex's config so users can reuse theirs: the
//! keys Codex defines for a server are accepted (those that do not matter for OAuth are
//! ignored), anything else is an error naming the key and its line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use url::Url;

pub mod client_certificate;
pub mod enterprise;
pub mod escape_hatches;
pub mod grant;
pub mod network;
mod oauth_client;
pub mod private_key;

pub use escape_hatches::EscapeHatches;
pub use oauth_client::{OauthClientConfig, RefreshScope, TOKEN_ENDPOINT_AUTH_METHODS};

/// Where credentials are kept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialsStoreMode {
    /// The OS keyring when one answers, else the file; always the file on Linux.
    #[default]
    Auto,
    File,
    /// The OS keyring; on Linux only safe with one login session at a time (see
    /// docs/credentials.md).
    Keyring,
}

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub credentials_store: CredentialsStoreMode,
    /// Fixed callback port for every login (ephemeral when absent).
    pub callback_port: Option<u16>,
    /// Replaces the redirect base (scheme, host, port, path prefix) for forwarded setups.
    pub callback_url: Option<Url>,
    /// Default base of client metadata document URLs.
    pub client_metadata_url_base: Option<String>,
    /// `[enterprise_idp]`: the identity provider of servers with `grant = "enterprise"`.
    pub enterprise_idp: Option<enterprise::EnterpriseIdpConfig>,
    /// `mcp_oauth_prewarm = false`: no discovery of the configured servers in the
    /// background at start and reload.
    pub prewarm_disabled: bool,
    /// `mcp_oauth_preregister = false`: pre-warm discovers but registers no client (Dynamic
    /// Client Registration) ahead of a server's first login.
    pub preregister_disabled: bool,
    /// The global network keys (`proxy`); a server's own keys win.
    pub network: network::NetworkConfig,
    pub servers: BTreeMap<String, ServerConfig>,
}

/// One `[mcp_servers.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    pub name: String,
    pub transport: ServerTransport,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerTransport {
    Http(Box<HttpServerConfig>),
    Stdio { command: String },
}

/// An MCP server reached over Streamable HTTP.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpServerConfig {
    pub url: Url,
    pub scopes: Option<Vec<String>>,
    pub oauth_resource: Option<String>,
    pub http_headers: BTreeMap<String, String>,
    pub oauth: OauthClientConfig,
    /// The grant of `oauth`, validated (and any key file parsed) when config.toml loaded.
    pub grant: grant::GrantConfig,
    /// The escape hatches of `oauth`, validated when config.toml loaded.
    pub escape_hatches: EscapeHatches,
    /// Lets this server's metadata send the daemon to private-network addresses (rule 35)
    /// as well as public ones; link-local and special-use addresses stay refused.
    pub allow_private_network: bool,
    /// This server's network keys (`proxy`), over the global ones.
    pub network: network::NetworkConfig,
    /// `client_key_to_frontends`: the answer for a token bound to the client certificate
    /// carries the certificate and its key themselves, for frontends that cannot read the
    /// files (rule 42). Off unless set; only with `client_certificate`.
    pub client_key_to_frontends: bool,
    /// Lets this server's metadata send the daemon to any address, link-local (the cloud
    /// metadata service at 169.254.169.254), loopback and special-use ones included.
    pub allow_link_local_and_special_use: bool,
}

impl Config {
    /// The port of the callback listener when no per-server port is set: the global port,
    /// else the port of a loopback `mcp_oauth_callback_url`; ephemeral when neither.
    pub fn callback_listener_port(&self) -> Option<u16> {
        self.callback_port.or_else(|| {
            self.callback_url.as_ref().and_then(|u| {
                let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
                if loopback { u.port() } else { None }
            })
        })
    }
}

impl ServerConfig {
    pub fn http(&self) -> Option<&HttpServerConfig> {
        match &self.transport {
            ServerTransport::Http(h) => Some(h),
            ServerTransport::Stdio { .. } => None,
        }
    }
}

/// Why config.toml was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}:{line}:{column}: {key}{message}; fix config.toml and reload")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    mcp_oauth_credentials_store: Option<CredentialsStoreMode>,
    #[serde(default)]
    mcp_oauth_callback_port: Option<u16>,
    #[serde(default)]
    mcp_oauth_prewarm: Option<bool>,
    #[serde(default)]
    mcp_oauth_preregister: Option<bool>,
    #[serde(default)]
    mcp_oauth_callback_url: Option<toml::Spanned<String>>,
    #[serde(default)]
    client_metadata_url_base: Option<toml::Spanned<String>>,
    #[serde(default)]
    enterprise_idp: Option<toml::Spanned<enterprise::RawEnterpriseIdp>>,
    #[serde(default)]
    proxy: Option<toml::Spanned<String>>,
    #[serde(default)]
    ca_certificates: Option<toml::Spanned<PathBuf>>,
    #[serde(default)]
    mcp_servers: BTreeMap<String, toml::Spanned<RawServer>>,
}

/// Keys a Codex server table may hold. Ones without meaning here are accepted and ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawServer {
    url: Option<toml::Spanned<String>>,
    command: Option<String>,
    args: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    env_vars: Option<Vec<String>>,
    cwd: Option<String>,
    scopes: Option<Vec<String>>,
    oauth_resource: Option<toml::Spanned<String>>,
    http_headers: Option<BTreeMap<String, String>>,
    env_http_headers: Option<BTreeMap<String, String>>,
    bearer_token_env_var: Option<String>,
    oauth: Option<toml::Spanned<OauthClientConfig>>,
    allow_private_network: Option<bool>,
    proxy: Option<toml::Spanned<String>>,
    ca_certificates: Option<toml::Spanned<PathBuf>>,
    client_certificate: Option<toml::Spanned<PathBuf>>,
    client_key: Option<toml::Spanned<PathBuf>>,
    client_key_to_frontends: Option<toml::Spanned<bool>>,
    allow_link_local_and_special_use: Option<bool>,
    enabled: Option<bool>,
    startup_timeout_sec: Option<f64>,
    startup_timeout_ms: Option<u64>,
    tool_timeout_sec: Option<f64>,
    enabled_tools: Option<Vec<String>>,
    disabled_tools: Option<Vec<String>>,
}

/// Reads config.toml; a missing file is an empty configuration.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(ConfigError::Read {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// Parses config text; `path` is only used in error messages.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |span: Option<std::ops::Range<usize>>, key: &str, message: String| {
        let (line, column) = span.map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        let key = if key.is_empty() {
            String::new()
        } else {
            format!("`{key}`: ")
        };
        ConfigError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            key,
            message,
        }
    };

    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| invalid(e.span(), "", e.message().to_string()))?;
    let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
        // toml's span wrapper shows up as a path segment of its own; drop it.
        let key = e
            .path()
            .to_string()
            .split('.')
            .filter(|seg| !seg.starts_with("$__serde_spanned"))
            .collect::<Vec<_>>()
            .join(".");
        let inner = e.into_inner();
        let key = if key == "." || key.is_empty() {
            String::new()
        } else {
            key
        };
        invalid(inner.span(), &key, inner.message().to_string())
    })?;

    let callback_url = match raw.mcp_oauth_callback_url {
        None => None,
        Some(s) => {
            let url = Url::parse(s.get_ref()).map_err(|e| {
                invalid(
                    Some(s.span()),
                    "mcp_oauth_callback_url",
                    format!("not a URL: {e}"),
                )
            })?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(invalid(
                    Some(s.span()),
                    "mcp_oauth_callback_url",
                    "must be an http or https URL".to_string(),
                ));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(
                    Some(s.span()),
                    "mcp_oauth_callback_url",
                    "must not have a query or fragment".to_string(),
                ));
            }
            Some(url)
        }
    };
    if raw.mcp_oauth_callback_port == Some(0) {
        return Err(invalid(
            None,
            "mcp_oauth_callback_port",
            "0 is not a fixed port; remove the key for an ephemeral port".to_string(),
        ));
    }

    let enterprise_idp = match raw.enterprise_idp {
        None => None,
        Some(spanned) => {
            let span = spanned.span();
            match spanned.get_ref().validate() {
                Ok(idp) => Some(idp),
                Err(e) => {
                    return Err(invalid(
                        Some(span),
                        &format!("enterprise_idp.{}", e.key()),
                        e.to_string(),
                    ));
                }
            }
        }
    };

    let proxy_of = |value: Option<toml::Spanned<String>>, key: &str| match value {
        None => Ok(None),
        Some(s) => network::ProxySetting::parse(s.get_ref())
            .map(Some)
            .map_err(|e| invalid(Some(s.span()), key, e)),
    };
    let pem_at = |s: toml::Spanned<PathBuf>, key: &str, label: &str| {
        network::PemFile::read(s.get_ref(), label).map_err(|e| invalid(Some(s.span()), key, e))
    };
    let pem_of = |value: Option<toml::Spanned<PathBuf>>, key: &str, label: &str| {
        value.map(|s| pem_at(s, key, label)).transpose()
    };
    let network = network::NetworkConfig {
        proxy: proxy_of(raw.proxy, "proxy")?,
        ca_certificates: pem_of(raw.ca_certificates, "ca_certificates", "CERTIFICATE")?,
        client_identity: None,
    };

    let mut servers = BTreeMap::new();
    for (name, spanned) in raw.mcp_servers {
        let span = spanned.span();
        let key = format!("mcp_servers.{name}");
        if !valid_server_name(&name) {
            return Err(invalid(
                Some(span),
                &key,
                "server names may contain only letters, digits, `-` and `_`".to_string(),
            ));
        }
        let server = spanned.into_inner();
        let transport = match (server.url, server.command) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    Some(span),
                    &key,
                    "has both `url` and `command`; keep one".to_string(),
                ));
            }
            (None, None) => {
                return Err(invalid(
                    Some(span),
                    &key,
                    "needs `url` (HTTP server) or `command` (stdio server)".to_string(),
                ));
            }
            (None, Some(command)) => ServerTransport::Stdio { command },
            (Some(url_s), None) => {
                let url_key = format!("{key}.url");
                let url = Url::parse(url_s.get_ref()).map_err(|e| {
                    invalid(Some(url_s.span()), &url_key, format!("not a URL: {e}"))
                })?;
                if url.scheme() != "http" && url.scheme() != "https" {
                    return Err(invalid(
                        Some(url_s.span()),
                        &url_key,
                        "must be an http or https URL".to_string(),
                    ));
                }
                if let Some(scopes) = &server.scopes
                    && scopes
                        .iter()
                        .any(|s| s.is_empty() || s.contains(char::is_whitespace))
                {
                    return Err(invalid(
                        Some(span),
                        &format!("{key}.scopes"),
                        "each scope must be a non-empty string without spaces".to_string(),
                    ));
                }
                if let Some(r) = &server.oauth_resource
                    && Url::parse(r.get_ref()).is_err()
                {
                    return Err(invalid(
                        Some(r.span()),
                        &format!("{key}.oauth_resource"),
                        "must be an absolute URL".to_string(),
                    ));
                }
                let (oauth, grant, escape_hatches) = match server.oauth {
                    None => (
                        OauthClientConfig::default(),
                        grant::GrantConfig::AuthorizationCode,
                        EscapeHatches::default(),
                    ),
                    Some(spanned) => {
                        let oauth_span = spanned.span();
                        let oauth = spanned.into_inner();
                        let grant = oauth.grant_config().map_err(|e| {
                            invalid(
                                Some(oauth_span.clone()),
                                &format!("{key}.oauth.{}", e.key()),
                                e.to_string(),
                            )
                        })?;
                        if matches!(grant, grant::GrantConfig::Enterprise { .. })
                            && enterprise_idp.is_none()
                        {
                            return Err(invalid(
                                Some(oauth_span),
                                &format!("{key}.oauth.grant"),
                                "the `enterprise` grant needs an `[enterprise_idp]` table (issuer, client_id)".to_string(),
                            ));
                        }
                        if let Some(message) = keyring_secret_problem(&oauth, &grant) {
                            return Err(invalid(
                                Some(oauth_span),
                                &format!("{key}.oauth.client_secret_keyring"),
                                message.to_string(),
                            ));
                        }
                        if let Some(method) = &oauth.token_endpoint_auth_method
                            && !TOKEN_ENDPOINT_AUTH_METHODS.contains(&method.as_str())
                        {
                            return Err(invalid(
                                Some(oauth_span),
                                &format!("{key}.oauth.token_endpoint_auth_method"),
                                format!(
                                    "`{method}` is not a method this client implements; use one of {}",
                                    TOKEN_ENDPOINT_AUTH_METHODS.join(", ")
                                ),
                            ));
                        }
                        let escape_hatches = oauth.escape_hatches().map_err(|e| {
                            invalid(
                                Some(oauth_span.clone()),
                                &format!("{key}.oauth.{}", e.key),
                                e.reason,
                            )
                        })?;
                        (oauth, grant, escape_hatches)
                    }
                };
                let client_identity = match (server.client_certificate, server.client_key) {
                    (None, None) => None,
                    (Some(certificate), Some(client_key)) => {
                        let cert_key = format!("{key}.client_certificate");
                        let cert_span = certificate.span();
                        let certificate = pem_at(certificate, &cert_key, "CERTIFICATE")?;
                        let facts = client_certificate::certificate_facts_of_pem(certificate.pem())
                            .map_err(|reason| {
                                invalid(
                                    Some(cert_span.clone()),
                                    &cert_key,
                                    format!("{}: {reason}", certificate.path().display()),
                                )
                            })?;
                        Some(network::ClientIdentity {
                            certificate,
                            key: pem_at(client_key, &format!("{key}.client_key"), "PRIVATE KEY")?,
                            facts,
                        })
                    }
                    (Some(_), None) | (None, Some(_)) => {
                        return Err(invalid(
                            Some(span),
                            &key,
                            "`client_certificate` and `client_key` go together: give both PEM files, or neither".to_string(),
                        ));
                    }
                };
                if matches!(
                    grant,
                    grant::GrantConfig::ClientCredentials {
                        auth: grant::ClientAuthConfig::Certificate { .. },
                        ..
                    }
                ) && client_identity.is_none()
                {
                    return Err(invalid(
                        Some(span.clone()),
                        &format!("{key}.client_certificate"),
                        "the `client_credentials` grant authenticates this client by its certificate (`token_endpoint_auth_method`), and none is configured: set `client_certificate` and `client_key`".to_string(),
                    ));
                }
                let client_key_to_frontends = match server.client_key_to_frontends {
                    Some(on) if *on.get_ref() && client_identity.is_none() => {
                        return Err(invalid(
                            Some(on.span()),
                            &format!("{key}.client_key_to_frontends"),
                            "there is no client key to hand out: set `client_certificate` and `client_key` too, or remove this key".to_string(),
                        ));
                    }
                    on => on.is_some_and(|on| on.into_inner()),
                };
                let network = network::NetworkConfig {
                    proxy: proxy_of(server.proxy, &format!("{key}.proxy"))?,
                    ca_certificates: pem_of(
                        server.ca_certificates,
                        &format!("{key}.ca_certificates"),
                        "CERTIFICATE",
                    )?,
                    client_identity,
                };
                ServerTransport::Http(Box::new(HttpServerConfig {
                    url,
                    scopes: server.scopes,
                    oauth_resource: server.oauth_resource.map(|r| r.into_inner()),
                    http_headers: server.http_headers.unwrap_or_default(),
                    oauth,
                    grant,
                    escape_hatches,
                    allow_private_network: server.allow_private_network.unwrap_or(false),
                    network,
                    client_key_to_frontends,
                    allow_link_local_and_special_use: server
                        .allow_link_local_and_special_use
                        .unwrap_or(false),
                }))
            }
        };
        servers.insert(name.clone(), ServerConfig { name, transport });
    }

    Ok(Config {
        credentials_store: raw.mcp_oauth_credentials_store.unwrap_or_default(),
        callback_port: raw.mcp_oauth_callback_port,
        callback_url,
        client_metadata_url_base: raw.client_metadata_url_base.map(|s| s.into_inner()),
        enterprise_idp,
        prewarm_disabled: raw.mcp_oauth_prewarm == Some(false),
        preregister_disabled: raw.mcp_oauth_preregister == Some(false),
        network,
        servers,
    })
}

/// Why `client_secret_keyring` cannot be used as written (rule 71), if it cannot.
fn keyring_secret_problem(
    oauth: &OauthClientConfig,
    grant: &grant::GrantConfig,
) -> Option<&'static str> {
    let label = oauth.client_secret_keyring.as_deref()?;
    if label.is_empty() || label.len() > 128 || label.chars().any(char::is_control) {
        Some("must be a label of 1 to 128 characters without control characters")
    } else if oauth.client_secret_env_var.is_some() {
        Some("give only one of `client_secret_env_var` and `client_secret_keyring`")
    } else if !matches!(grant, grant::GrantConfig::AuthorizationCode) {
        Some(
            "a secret in the keyring is for the browser login; for this grant use `client_secret_env_var` or a private key",
        )
    } else if oauth.client_id.as_deref().is_none_or(str::is_empty) {
        Some("names the secret of a client registered by hand: set `client_id` too")
    } else {
        None
    }
}

fn valid_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests;

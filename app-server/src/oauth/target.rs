//! A configured HTTP server, resolved for OAuth.

use std::collections::BTreeMap;

use url::Url;

use crate::credentials::CredentialKey;

/// A configured HTTP server, resolved for OAuth.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    pub name: String,
    pub url: Url,
    pub resource_override: Option<String>,
    pub http_headers: BTreeMap<String, String>,
    pub configured_scopes: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `oauth.issuer`: the authorization server the configured `client_id` belongs to.
    pub client_issuer: Option<String>,
    /// Per-server port, else the global one; ephemeral when neither.
    pub callback_port: Option<u16>,
    /// `mcp_oauth_callback_url`: replaces the redirect base.
    pub callback_url: Option<Url>,
    /// A fixed, published client metadata document URL.
    pub client_metadata_url: Option<String>,
    /// The configured default base for callback-scoped metadata document URLs.
    pub client_metadata_url_base: Option<String>,
    /// `allow_private_network`: lifts the network policy of rule 35 for this server.
    pub allow_private_network: bool,
}

impl ServerTarget {
    /// A configured HTTP server; `client_secret` is the value of its
    /// `client_secret_env_var`, looked up by the caller.
    pub fn from_config(
        name: &str,
        http: &crate::config::HttpServerConfig,
        config: &crate::config::Config,
        client_secret: Option<String>,
    ) -> Self {
        Self {
            name: name.to_string(),
            url: http.url.clone(),
            resource_override: http.oauth_resource.clone(),
            http_headers: http.http_headers.clone(),
            configured_scopes: http.scopes.clone(),
            client_id: http.oauth.client_id.clone(),
            client_secret,
            client_issuer: http.oauth.issuer.clone(),
            callback_port: http
                .oauth
                .callback_port
                .or_else(|| config.callback_listener_port()),
            callback_url: config.callback_url.clone(),
            client_metadata_url: http.oauth.client_metadata_url.clone(),
            client_metadata_url_base: config.client_metadata_url_base.clone(),
            allow_private_network: http.allow_private_network,
        }
    }

    pub fn key(&self) -> CredentialKey {
        CredentialKey::new(self.name.clone(), self.url.to_string())
    }
}

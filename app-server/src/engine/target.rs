//! A configured HTTP server, resolved for OAuth.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use url::Url;

use crate::config::client_certificate::CertificateFacts;
use crate::config::enterprise::EnterpriseIdpConfig;
use crate::config::grant::{ClientAuthConfig, GrantConfig};
use crate::config::network::ServerNetwork;
use crate::config::{Config, EscapeHatches, HttpServerConfig, RefreshScope};
use crate::credentials::{CredentialKey, LookupKey};
use crate::oauth::discovery::{AuthServerMetadata, Overrides};
use crate::oauth::net_policy::NetOptIns;
use crate::oauth::registration::mutual_tls::{self, RegistrationAuth};
use crate::oauth::registration::{ClientRegistration, RegistrationError, TokenAuthMethod};
use mcp_app_server_protocol::RegistrationKind;

/// A configured HTTP server, resolved for OAuth. `Debug` shows neither the client secret
/// nor the values of the configured HTTP headers (they may carry keys).
#[derive(Clone, PartialEq, Eq)]
pub struct ServerTarget {
    pub name: String,
    pub url: Url,
    pub resource_override: Option<String>,
    pub http_headers: BTreeMap<String, String>,
    pub configured_scopes: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `oauth.client_secret_keyring`: the label of the OS keyring entry holding the client
    /// secret, read when a login needs it (rule 71).
    pub client_secret_keyring: Option<String>,
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
    /// `allow_private_network` and `allow_link_local_and_special_use`: what rule 35's
    /// network policy lets this server's metadata reach beyond its default.
    pub net_opt_ins: NetOptIns,
    /// How tokens are obtained: the browser login, or a grant that needs no browser.
    pub grant: GrantConfig,
    /// `oauth.dpop`: `true` binds tokens to a key whenever the authorization server offers
    /// DPoP, `false` never; unset, only when the login's starter can send proofs or the
    /// resource requires them ([`crate::engine::flow::binds_dpop`]).
    pub dpop: Option<bool>,
    /// `oauth.share_login`: whether a login may be shared with another server at the same
    /// authorization server (rules 85 and 86) instead of going through the browser.
    pub share_login: bool,
    /// `oauth.refresh_scope`: the `scope` a refresh sends (rule 70).
    pub refresh_scope: RefreshScope,
    /// `oauth.token_endpoint_auth_method`: how the client authenticates, when configured
    /// (rule 42); else chosen from the server's list, the secret and the certificate.
    pub token_endpoint_auth_method: Option<TokenAuthMethod>,
    /// `grant = "enterprise"`: tokens come from the `[enterprise_idp]` sign-in.
    pub enterprise: Option<EnterpriseTarget>,
    /// How this server's requests reach the network (`proxy`). `Debug` hides credentials.
    pub network: ServerNetwork,
    /// `client_key_to_frontends`: a bound token's answer carries the certificate and key
    /// themselves, not only their paths (rule 42).
    pub client_key_to_frontends: bool,
    /// The escape hatches of `[mcp_servers.NAME.oauth]` (rules 60-64); empty is strict.
    pub escape_hatches: EscapeHatches,
    /// The account whose credentials this target stands for (rule 80); `None`: the entry
    /// of logins that named no account. Chosen per request ([`ServerTarget::as_account`]).
    pub account: Option<String>,
    /// The key of [`ServerTarget::lookup_key`], once worked out.
    pub lookup: LookupCache,
}

/// A [`LookupKey`] kept with the target it was made for. Not part of the target's value:
/// targets compare equal whether or not theirs was worked out yet.
#[derive(Clone, Default)]
pub struct LookupCache(OnceLock<Arc<LookupKey>>);

impl PartialEq for LookupCache {
    fn eq(&self, _: &LookupCache) -> bool {
        true
    }
}

impl Eq for LookupCache {}

impl std::fmt::Debug for ServerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTarget")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("resource_override", &self.resource_override)
            .field(
                "http_headers",
                &self
                    .http_headers
                    .keys()
                    .map(|k| (k, "<redacted>"))
                    .collect::<BTreeMap<_, _>>(),
            )
            .field("configured_scopes", &self.configured_scopes)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("client_secret_keyring", &self.client_secret_keyring)
            .field("callback_port", &self.callback_port)
            .field("callback_url", &self.callback_url.as_ref().map(Url::as_str))
            .field("client_metadata_url", &self.client_metadata_url)
            .field("client_metadata_url_base", &self.client_metadata_url_base)
            .field("net_opt_ins", &self.net_opt_ins)
            .field("client_issuer", &self.client_issuer)
            .field("grant", &self.grant)
            .field("dpop", &self.dpop)
            .field("share_login", &self.share_login)
            .field("refresh_scope", &self.refresh_scope)
            .field(
                "token_endpoint_auth_method",
                &self.token_endpoint_auth_method,
            )
            .field("enterprise", &self.enterprise)
            .field("network", &self.network)
            .field("client_key_to_frontends", &self.client_key_to_frontends)
            .field("escape_hatches", &self.escape_hatches.keys())
            .field("account", &self.account)
            .finish()
    }
}

/// Why a name of config.toml is no server the daemon can log in to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("no MCP server named `{0}` in config.toml; add a [mcp_servers.{0}] table and reload")]
    NotFound(String),
    #[error("`{0}` is a stdio server; OAuth applies only to servers reached by `url`")]
    NotHttp(String),
    #[error(
        "`mcp_servers.{name}.oauth.client_secret_env_var` names `{var}`, which is not set in the daemon's environment"
    )]
    SecretEnvMissing { name: String, var: String },
}

impl ServerTarget {
    /// The configured server `name`, resolved for OAuth: the one place a name of config.toml
    /// becomes a target (rpc, pre-warm and the CLI all come here). Reads the client secret
    /// from the variable `client_secret_env_var` names, except for a configured grant, which
    /// reads its credential itself at every use.
    pub fn resolve(config: &Config, name: &str) -> Result<Self, TargetError> {
        let http = Self::http_server(config, name)?;
        let client_secret =
            match &http.oauth.client_secret_env_var {
                Some(var) if !http.grant.is_machine() => Some(std::env::var(var).map_err(
                    |_| TargetError::SecretEnvMissing {
                        name: name.to_string(),
                        var: var.clone(),
                    },
                )?),
                _ => None,
            };
        Ok(Self::from_config(name, http, config, client_secret))
    }

    /// Every configured server whose target depends on nothing but the configuration (no
    /// environment variable is read), by name: these may be resolved once per configuration.
    pub fn resolve_static(config: &Config) -> impl Iterator<Item = Self> + '_ {
        config.servers.values().filter_map(|s| {
            let http = s.http()?;
            let reads_env = http.oauth.client_secret_env_var.is_some() && !http.grant.is_machine();
            (!reads_env).then(|| Self::from_config(&s.name, http, config, None))
        })
    }

    /// Every configured HTTP server, without its client secret: what discovery ahead of a
    /// login (pre-warm) needs, and no environment variable is read for it.
    pub fn resolve_for_discovery(config: &Config) -> impl Iterator<Item = Self> + '_ {
        config
            .servers
            .values()
            .filter_map(|s| Some(Self::from_config(&s.name, s.http()?, config, None)))
    }

    fn http_server<'c>(
        config: &'c Config,
        name: &str,
    ) -> Result<&'c HttpServerConfig, TargetError> {
        let server = config
            .servers
            .get(name)
            .ok_or_else(|| TargetError::NotFound(name.to_string()))?;
        server
            .http()
            .ok_or_else(|| TargetError::NotHttp(name.to_string()))
    }

    /// A configured HTTP server; `client_secret` is the value of its
    /// `client_secret_env_var`, looked up by the caller.
    pub(crate) fn from_config(
        name: &str,
        http: &HttpServerConfig,
        config: &Config,
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
            client_secret_keyring: http.oauth.client_secret_keyring.clone(),
            client_issuer: http.oauth.issuer.clone(),
            callback_port: http
                .oauth
                .callback_port
                .or_else(|| config.callback_listener_port()),
            callback_url: config.callback_url.clone(),
            client_metadata_url: http.oauth.client_metadata_url.clone(),
            client_metadata_url_base: config.client_metadata_url_base.clone(),
            net_opt_ins: NetOptIns {
                private_network: http.allow_private_network,
                link_local_and_special_use: http.allow_link_local_and_special_use,
            },
            grant: http.grant.clone(),
            dpop: http.oauth.dpop,
            share_login: http.oauth.share_login.unwrap_or(true),
            refresh_scope: http.oauth.refresh_scope.unwrap_or_default(),
            token_endpoint_auth_method: http
                .oauth
                .token_endpoint_auth_method
                .as_deref()
                .and_then(TokenAuthMethod::from_name),
            enterprise: match (http.oauth.grant_config(), &config.enterprise_idp) {
                (Ok(GrantConfig::Enterprise { client_id, auth }), Some(idp)) => {
                    Some(EnterpriseTarget {
                        idp: idp.clone(),
                        client_id,
                        auth,
                    })
                }
                _ => None,
            },
            network: http.network.over(&config.network),
            client_key_to_frontends: http.client_key_to_frontends,
            escape_hatches: http.escape_hatches.clone(),
            account: None,
            lookup: Default::default(),
        }
    }

    /// The escape hatches as discovery applies them to this server (rules 60-64), and
    /// whether it presents a client certificate (then the metadata's
    /// `mtls_endpoint_aliases` serve, rule 42).
    pub fn discovery_overrides(&self) -> Overrides<'_> {
        Overrides::new(&self.name, &self.escape_hatches)
            .with_mutual_tls(self.network.client_identity.is_some())
    }

    /// What the configured client certificate says, when there is one.
    pub fn certificate(&self) -> Option<&CertificateFacts> {
        self.network.client_identity.as_ref().map(|i| &i.facts)
    }

    /// The thumbprint of the configured client certificate: what a DCR registration made
    /// now records, and what a stored one must record to be reused (a registration made
    /// with another certificate, or with none, is made again: the server may hold the old
    /// certificate for it, or could take this one, rule 42).
    pub fn certificate_x5t(&self) -> Option<String> {
        self.certificate().map(|c| c.x5t_s256.clone())
    }

    /// How a client this daemon registers by DCR for this server authenticates (rule 42).
    pub fn registration_auth(
        &self,
        metadata: &AuthServerMetadata,
    ) -> Result<RegistrationAuth, RegistrationError> {
        mutual_tls::registration_auth(
            self.certificate(),
            metadata.token_endpoint_auth_methods_supported.as_deref(),
            metadata.tls_client_certificate_bound_access_tokens,
            self.token_endpoint_auth_method,
        )
    }

    /// The configured `client_id` as a client of `metadata`'s server, with the method it
    /// authenticates by.
    pub fn preregistered_client(
        &self,
        client_id: &str,
        metadata: &AuthServerMetadata,
    ) -> Result<ClientRegistration, RegistrationError> {
        let method = mutual_tls::preregistered_method(
            self.client_secret.is_some(),
            self.certificate().is_some(),
            metadata.token_endpoint_auth_methods_supported.as_deref(),
            self.token_endpoint_auth_method,
        )?;
        Ok(ClientRegistration {
            kind: RegistrationKind::Preregistered,
            client_id: client_id.to_string(),
            client_secret: self.client_secret.clone(),
            auth_method: method,
        })
    }

    pub fn key(&self) -> CredentialKey {
        CredentialKey::new(self.name.clone(), self.url.to_string())
            .with_account(self.account.clone())
    }

    /// This server as `account` (rule 80): the same configuration, another entry of the
    /// store.
    pub fn as_account(&self, account: Option<String>) -> ServerTarget {
        ServerTarget {
            account,
            lookup: Default::default(),
            ..self.clone()
        }
    }

    /// [`ServerTarget::key`] for lookups, worked out once per target. Made again when the
    /// name or URL changed since (the fields are public).
    pub fn lookup_key(&self) -> Arc<LookupKey> {
        let current =
            |k: &LookupKey| k.is_for(&self.name, self.url.as_str(), self.account.as_deref());
        let cached = self
            .lookup
            .0
            .get_or_init(|| Arc::new(LookupKey::new(self.key())));
        if current(cached) {
            Arc::clone(cached)
        } else {
            Arc::new(LookupKey::new(self.key()))
        }
    }
}

/// What an enterprise server needs: the identity provider and the daemon's client at the
/// server's authorization server. Holds names of variables and files, never their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseTarget {
    pub idp: EnterpriseIdpConfig,
    /// The client id at the MCP server's authorization server.
    pub client_id: String,
    /// Its credential; a secret already read into [`ServerTarget::client_secret`] wins.
    pub auth: Option<ClientAuthConfig>,
}

#[cfg(test)]
mod tests;

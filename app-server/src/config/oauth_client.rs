//! `[mcp_servers.NAME.oauth]` as written in config.toml; [`super::grant`] reads the grant
//! and its credential from it.

use std::path::PathBuf;

use serde::Deserialize;

/// `[mcp_servers.NAME.oauth]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthClientConfig {
    /// A client id registered by hand with the authorization server.
    pub client_id: Option<String>,
    /// The issuer of the server's authorization server. When set, a configured `client_id`
    /// belongs to it: if the server's protected resource metadata names another one, the
    /// login stops instead of sending this client id there (MCP 2026-07-28, authorization
    /// server binding). It is also an escape hatch: a metadata document whose `issuer` is
    /// exactly this value is accepted although it was found for another issuer
    /// ([`super::escape_hatches`]).
    pub issuer: Option<String>,
    /// Escape hatch: the authorization server metadata document to use instead of the
    /// well-known locations ([`super::escape_hatches`]).
    pub authorization_server_metadata_url: Option<String>,
    /// Escape hatch: replaces the metadata's `authorization_endpoint`.
    pub authorization_endpoint: Option<String>,
    /// Escape hatch: replaces the metadata's `token_endpoint`.
    pub token_endpoint: Option<String>,
    /// Escape hatch: replaces the metadata's `registration_endpoint`.
    pub registration_endpoint: Option<String>,
    /// Escape hatch: replaces the metadata's `revocation_endpoint`.
    pub revocation_endpoint: Option<String>,
    /// Name of the environment variable holding the client secret (confidential clients).
    pub client_secret_env_var: Option<String>,
    /// The label of the OS keyring entry holding the client secret (rule 71), written by
    /// `mcp-app-server secret set NAME`; for `client_id` and the browser login.
    pub client_secret_keyring: Option<String>,
    /// Fixed callback port for this server.
    pub callback_port: Option<u16>,
    /// One published client metadata document used as the client id.
    pub client_metadata_url: Option<String>,
    /// How tokens are obtained: `authorization_code` (default, browser login),
    /// `client_credentials` or `jwt_bearer` (no browser), `enterprise` (exchanged from the
    /// `[enterprise_idp]` sign-in); see [`super::grant::GrantConfig`].
    pub grant: Option<String>,
    /// `private_key_jwt`: a file holding the client's PEM private key.
    pub private_key_file: Option<PathBuf>,
    /// `private_key_jwt`: an environment variable holding the PEM private key.
    pub private_key_env_var: Option<String>,
    /// `ES256` (default) or `RS256`.
    pub private_key_alg: Option<String>,
    /// `kid` header of the client assertion.
    pub private_key_kid: Option<String>,
    /// `jwt_bearer`: a file holding the workload's identity token, re-read at every use.
    pub assertion_file: Option<PathBuf>,
    /// `jwt_bearer`: an environment variable holding the workload's identity token.
    pub assertion_env_var: Option<String>,
    /// `false` keeps tokens unbound (Bearer) even when the authorization server offers
    /// DPoP (RFC 9449); `true` binds them to a key the daemon generates whenever it does;
    /// unset, they are bound only when the login's frontend sends proofs or the resource
    /// requires DPoP.
    pub dpop: Option<bool>,
    /// `false`: this server never shares another server's login at the same authorization
    /// server (rules 85 and 86); every login goes through the browser. Unset: shared.
    pub share_login: Option<bool>,
    /// The `scope` a refresh sends (rule 70); unset is [`RefreshScope::Granted`].
    pub refresh_scope: Option<RefreshScope>,
    /// How the client authenticates at the token endpoint, one of
    /// [`TOKEN_ENDPOINT_AUTH_METHODS`]; unset, it is chosen from what the authorization
    /// server lists, the secret and the client certificate (rule 42).
    pub token_endpoint_auth_method: Option<String>,
}

/// The values `token_endpoint_auth_method` may take (RFC 7591 names).
pub const TOKEN_ENDPOINT_AUTH_METHODS: [&str; 5] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "tls_client_auth",
    "self_signed_tls_client_auth",
];

/// `refresh_scope`: the `scope` a refresh request carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefreshScope {
    /// The scopes the server granted (its last token answer's `scope`), and once more the
    /// scopes the login asked for when the server refuses those as `invalid_scope`.
    #[default]
    Granted,
    /// The scopes the login asked for, every time: for servers that grant a set they refuse
    /// on refresh (Microsoft Entra ID grants `<res>/x <res>/.default`).
    Requested,
    /// No `scope` at all: the grant as it stands (RFC 6749 6).
    None,
}

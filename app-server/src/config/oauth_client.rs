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
    /// The issuer of the authorization server `client_id` was registered with. When set and
    /// the server's protected resource metadata names another one, the login stops instead
    /// of sending this client id there (MCP 2026-07-28, authorization server binding).
    pub issuer: Option<String>,
    /// Name of the environment variable holding the client secret (confidential clients).
    pub client_secret_env_var: Option<String>,
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
}

//! Everything a login, a token request or a logout can fail with.

use std::sync::Arc;

use crate::credentials::StoreError;
use crate::engine::refusal::ChallengeInputError;
use crate::oauth::callback::{CallbackError, CallbackListenError, PasteError};
use crate::oauth::discovery::DiscoveryError;
use crate::oauth::grants::GrantError;
use crate::oauth::registration::RegistrationError;
use crate::oauth::token::TokenError;

/// Everything a login, a token request or a logout can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
    #[error("client registration failed: {0}")]
    Registration(#[from] RegistrationError),
    /// A `clientMetadataUrlBase` param that is unusable (a bad request).
    #[error("{0}")]
    InvalidClientMetadataUrlBase(String),
    /// A configured `client_metadata_url_base` or `client_metadata_url` that is unusable.
    #[error("{0}; fix it in config.toml")]
    InvalidClientMetadataConfig(String),
    #[error("cannot receive the browser's redirect: {0}")]
    CallbackListener(#[from] CallbackListenError),
    #[error("authorization failed: {0}; start the login again")]
    Authorization(CallbackError),
    #[error("token exchange failed: {0}")]
    TokenExchange(TokenError),
    #[error("the credential store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the login was cancelled")]
    Cancelled,
    #[error("{0}")]
    TimedOut(String),
    #[error("a newer login for the same server replaced this one")]
    Superseded,
    #[error("no login is pending for `{0}`; start one with mcpServer/oauth/login")]
    NoPendingLogin(String),
    #[error("{0}")]
    Paste(#[from] PasteError),
    #[error("`{0}` is not logged in; log in first")]
    NotLoggedIn(String),
    #[error("`{name}` needs a new login: {reason}")]
    ReauthenticationRequired { name: String, reason: String },
    #[error(
        "refreshing the token of `{name}` failed for now, the stored credentials are kept: {error}"
    )]
    RefreshTransient { name: String, error: TokenError },
    #[error("refreshing the token of `{name}` failed: {error}")]
    RefreshFailed { name: String, error: TokenError },
    /// A status or `WWW-Authenticate` header that is no refusal the daemon can act on.
    #[error("{0}")]
    InvalidChallenge(#[from] ChallengeInputError),
    #[error(
        "`{name}` still asks for the scopes {scopes:?} after {attempts} step-up logins for them; giving up. The account may lack the permission, or the authorization server does not grant those scopes; a new login (mcpServer/oauth/login) starts the count over"
    )]
    StepUpLimitReached {
        name: String,
        scopes: String,
        attempts: u32,
    },
    /// The credential a configured grant needs could not be read or used; `key` is the
    /// `[mcp_servers.NAME.oauth]` key that says where it comes from.
    #[error(
        "the {grant} grant of `{name}` cannot run: {error}; fix `{key}` (or what it names) and log in again"
    )]
    GrantCredential {
        name: String,
        grant: &'static str,
        key: String,
        error: Box<GrantError>,
    },
    /// The token endpoint refused or failed a grant's token request at login.
    #[error("the {grant} grant of `{name}` failed: {error}; {hint}")]
    GrantFailed {
        name: String,
        grant: &'static str,
        error: Box<TokenError>,
        hint: &'static str,
    },
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The DPoP key could not be made, read or used to sign.
    #[error("DPoP failed: {0}")]
    Dpop(String),
    /// `mcpServer/oauth/dpopProof` for a server whose token is not bound to a key.
    #[error(
        "the token of `{0}` is not DPoP-bound (its authorization server does not offer DPoP, or `dpop = false` is configured); send it with the Bearer scheme and no proof"
    )]
    NotDpopBound(String),
    /// Enterprise-managed authorization: the identity provider or the exchange failed.
    #[error("enterprise login failed: {0}")]
    Enterprise(EnterpriseError),
}

/// Why a checked challenge got no answer: the refused request cannot get a proof (a bad
/// param, or no DPoP-bound token), or acting on the refusal failed.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error(transparent)]
    Failed(Arc<LoginError>),
}

/// Why a frontend's request got no proof: its description was bad (a bad param, named), or
/// no usable DPoP-bound token could be had.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Input(#[from] ProofInputError),
    #[error(transparent)]
    Failed(Arc<LoginError>),
}

/// Why an enterprise login or renewal failed. Never quotes a token, assertion or secret.
#[derive(Debug, thiserror::Error)]
pub enum EnterpriseError {
    #[error("the identity provider {issuer} cannot be used: {reason}")]
    IdpDiscovery { issuer: String, reason: String },
    #[error("the identity provider's ID token {0}; sign in again")]
    IdToken(String),
    #[error("the identity provider refused to exchange the sign-in for `{server}`: {error}")]
    Exchange { server: String, error: GrantError },
    #[error("the authorization server of `{server}` refused the identity assertion: {error}")]
    Grant { server: String, error: GrantError },
    #[error("the client credential for `{what}` is not usable: {error}")]
    Credential { what: String, error: GrantError },
}

impl EnterpriseError {
    /// Network trouble, a timeout, 5xx or 429 at either token endpoint: worth retrying.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            EnterpriseError::Exchange { error: GrantError::Token(t), .. }
                | EnterpriseError::Grant { error: GrantError::Token(t), .. }
                if t.is_transient()
        )
    }

    /// An OAuth refusal at either token endpoint: only a new sign-in or a change of policy
    /// helps.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            EnterpriseError::Exchange {
                error: GrantError::Token(TokenError::OAuth { .. }),
                ..
            } | EnterpriseError::Grant {
                error: GrantError::Token(TokenError::OAuth { .. }),
                ..
            }
        )
    }
}

/// Why a resource request cannot get a proof; a bad param, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofInputError {
    #[error("`method` must be an HTTP method such as POST; got {0:?}")]
    Method(String),
    #[error(
        "`url` must be an absolute http(s) URL on the MCP server's origin ({server}); got {url:?}"
    )]
    Url { url: String, server: String },
    #[error("`nonce` must be a non-empty printable string of at most 512 characters")]
    Nonce,
}

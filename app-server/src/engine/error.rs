//! The engine's errors, one per kind of call, so that a caller matches only what its call
//! can fail with: [`LoginError`] (a login, and its `LoginCompleted`), [`VendError`] (a token
//! handed out, refreshed or renewed), [`CompleteError`] (a redirect URL pasted back),
//! [`LogoutError`], [`ProofError`] (a DPoP proof for a resource request) and
//! [`ChallengeError`] (a refusal answered). The protocol steps' own errors (discovery,
//! registration, token, grants, callback) are carried inside them. `rpc/error.rs` is the
//! one place that turns them into JSON-RPC errors.
//!
//! Shared errors, and only these, are `Arc`s: a login's error is both its caller's answer
//! and the `LoginCompleted` every frontend hears (`Arc<LoginError>`), and one refresh's
//! error is the answer of every caller that waited for it (`Arc<VendError>`).

use std::sync::Arc;

use crate::credentials::StoreError;
use crate::engine::refusal::ChallengeInputError;
use crate::oauth::callback::{CallbackError, CallbackListenError, PasteError};
use crate::oauth::device::DeviceError;
use crate::oauth::discovery::DiscoveryError;
use crate::oauth::grants::GrantError;
use crate::oauth::registration::RegistrationError;
use crate::oauth::token::TokenError;

/// Why a login failed: starting it, or the flow after the browser, ending in
/// `LoginCompleted`.
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
    #[error(transparent)]
    GrantCredential(#[from] GrantCredentialError),
    /// The client secret config.toml keeps in the OS keyring could not be had.
    #[error(transparent)]
    ClientSecret(#[from] ClientSecretError),
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
    /// The DPoP key could not be made.
    #[error("DPoP failed: {0}")]
    Dpop(String),
    /// Enterprise-managed authorization: the identity provider or the exchange failed.
    #[error("enterprise login failed: {0}")]
    Enterprise(EnterpriseError),
    /// A device login (RFC 8628) cannot be made with this server.
    #[error("no device login is possible with `{name}`: {reason}")]
    DeviceUnavailable { name: String, reason: String },
    /// The device authorization request failed.
    #[error("the device authorization request failed: {0}; start the login again")]
    DeviceAuthorization(DeviceError),
    /// The user refused the device login at the authorization server (`access_denied`).
    #[error(
        "the user denied the device login at the authorization server; start the login again to retry"
    )]
    DeviceDenied,
    /// The device code expired before the user approved it (`expired_token`, or its
    /// `expires_in` passed).
    #[error(
        "the device code expired before the login was approved; start the login again and enter the new code in time"
    )]
    DeviceExpired,
}

/// Why the client secret kept in the OS keyring (`client_secret_keyring`, rule 71) could
/// not be read for a login.
#[derive(Debug, thiserror::Error)]
pub enum ClientSecretError {
    #[error(
        "the client secret of `{name}` is not in the OS keyring (entry `{label}`); run `mcp-app-server secret set {name}` and log in again"
    )]
    Missing { name: String, label: String },
    #[error(
        "the client secret of `{name}` could not be read from the OS keyring: {reason}; unlock the keyring (or run `mcp-app-server secret set {name}`) and log in again"
    )]
    Unavailable { name: String, reason: String },
}

/// Why no token could be handed out: not logged in, a new login needed, or a refresh or
/// renewal that failed (for now, or for good).
#[derive(Debug, thiserror::Error)]
pub enum VendError {
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
    #[error("the credential store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the daemon is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    GrantCredential(#[from] GrantCredentialError),
    /// Enterprise-managed authorization: the identity provider or the exchange failed.
    #[error("enterprise login failed: {0}")]
    Enterprise(EnterpriseError),
    /// The identity provider's answer to the refresh of its sign-in could not be used.
    #[error("token exchange failed: {0}")]
    IdpAnswer(TokenError),
}

/// The credential a configured grant needs could not be read or used; `key` is the
/// `[mcp_servers.NAME.oauth]` key that says where it comes from. At a login or a renewal.
#[derive(Debug, thiserror::Error)]
#[error(
    "the {grant} grant of `{name}` cannot run: {error}; fix `{key}` (or what it names) and log in again"
)]
pub struct GrantCredentialError {
    pub name: String,
    pub grant: &'static str,
    pub key: String,
    pub error: Box<GrantError>,
}

/// Why a redirect URL pasted back (`mcpServer/oauth/complete`) finished no login.
#[derive(Debug, thiserror::Error)]
pub enum CompleteError {
    #[error("no login is pending for `{0}`; start one with mcpServer/oauth/login")]
    NoPendingLogin(String),
    /// The pending login is a device login: the user enters its code; there is no redirect.
    #[error(
        "the pending login of `{0}` is a device login: the user enters the code at the verification URL, and there is no redirect to paste"
    )]
    DeviceLogin(String),
    #[error("{0}")]
    Paste(#[from] PasteError),
    #[error("authorization failed: {0}; start the login again")]
    Authorization(CallbackError),
}

/// Why a logout failed; the credentials are then as they were.
#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("the credential store failed: {0}")]
    Store(#[from] StoreError),
}

/// Why a checked challenge got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    /// A `use_dpop_nonce` refusal whose proof could not be made.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The refresh a 401 asked for failed.
    #[error(transparent)]
    Token(Arc<VendError>),
    /// The step-up login a 403 asked for could not start.
    #[error(transparent)]
    Login(Arc<LoginError>),
    #[error(
        "`{name}` still asks for the scopes {scopes:?} after {attempts} step-up logins for them; giving up. The account may lack the permission, or the authorization server does not grant those scopes; a new login (mcpServer/oauth/login) starts the count over"
    )]
    StepUpLimitReached {
        name: String,
        scopes: String,
        attempts: u32,
    },
    /// A `WWW-Authenticate` header that is no refusal the daemon can act on.
    #[error("{0}")]
    InvalidChallenge(#[from] ChallengeInputError),
    #[error("`{0}` is not logged in; log in first")]
    NotLoggedIn(String),
    #[error("discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
    #[error("the credential store failed: {0}")]
    Store(#[from] StoreError),
}

/// Why a frontend's request got no proof.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    /// Its description was bad (a bad param, named).
    #[error(transparent)]
    Input(#[from] ProofInputError),
    /// No usable token could be had.
    #[error(transparent)]
    Token(Arc<VendError>),
    /// `mcpServer/oauth/dpopProof` for a server whose token is not bound to a key.
    #[error(
        "the token of `{0}` is not DPoP-bound (its authorization server does not offer DPoP, or `dpop = false` is configured); send it with the Bearer scheme and no proof"
    )]
    NotDpopBound(String),
    /// The stored DPoP key could not be read or used to sign.
    #[error("DPoP failed: {0}")]
    Dpop(String),
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

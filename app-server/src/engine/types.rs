//! The engine's public types: what its callers (rpc, the CLI) pass in and get back. A leaf:
//! it imports no flow and not the service.

use std::sync::Arc;
use std::time::Duration;

use mcp_app_server_protocol::{
    ClientRegistrationMode, LoginFlowChoice, LoginGrant, McpAuthStatus, McpAuthStatusReason,
};
use url::Url;

use crate::credentials::StoredCredentials;
use crate::engine::error::LoginError;
use crate::engine::refusal::Refusal;

/// Progress reported to whoever drives the service.
#[derive(Debug, Clone)]
pub enum OAuthEvent {
    LoginCompleted {
        name: String,
        /// The account the login was for (rule 80).
        account: Option<String>,
        result: Result<(), Arc<LoginError>>,
    },
    LoginRestarted {
        name: String,
        authorization_url: String,
        reason: String,
    },
    AuthStatusChanged {
        name: String,
        status: McpAuthStatus,
        /// Why a login is needed (see `status::reason_for`).
        reason: Option<McpAuthStatusReason>,
    },
}

/// Name under which the daemon registers itself with authorization servers.
pub const CLIENT_NAME: &str = "mcp-app-server";

/// Default time a login waits for the browser.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// What the caller of a login may choose.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub scopes: Option<Vec<String>>,
    pub client_metadata_url_base: Option<String>,
    pub mode: ClientRegistrationMode,
    pub timeout: Duration,
    /// Whoever starts the login can send DPoP proofs (a frontend that declared
    /// `capabilities.dpop`, the CLI's `connect`): the tokens may be bound to a key. Without
    /// it they are bound only when the server or its configuration requires it
    /// ([`crate::engine::flow::binds_dpop`]).
    pub dpop: bool,
    /// The frontend that started the login (`clientInfo.title`, else `name`), named on the
    /// browser's pages; `None`: "your editor".
    pub frontend: Option<String>,
    /// How the user signs in: the browser, a device code (RFC 8628), or chosen by
    /// `engine::device::auto_picks_device`.
    pub flow: LoginFlowChoice,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            scopes: None,
            client_metadata_url_base: None,
            mode: ClientRegistrationMode::Auto,
            timeout: DEFAULT_LOGIN_TIMEOUT,
            dpop: false,
            frontend: None,
            flow: LoginFlowChoice::Browser,
        }
    }
}

/// A started login: the URL for the browser.
#[derive(Debug, Clone)]
pub struct LoginStarted {
    pub authorization_url: Url,
    pub redirect_uri: String,
}

/// What starting a login gave.
#[derive(Debug, Clone)]
pub enum LoginBegun {
    /// A browser login is under way: open the URL.
    Browser(LoginStarted),
    /// An enterprise-managed server without a usable identity provider sign-in: the browser
    /// signs in at the identity provider first (open the URL); the login finishes, and is
    /// announced, after that callback.
    IdpSignIn(LoginStarted),
    /// A grant that needs no browser obtained the tokens, which are stored.
    Obtained(LoginGrant),
    /// A device login (RFC 8628) polls the authorization server: show the code and URL.
    Device(DeviceStarted),
}

/// A started device login: what the user is shown. `Debug` leaves out the user code (with
/// it, anyone could approve the login at the verification URL before the user does).
#[derive(Clone)]
pub struct DeviceStarted {
    pub verification_uri: Url,
    pub verification_uri_complete: Option<Url>,
    pub user_code: String,
    /// Unix seconds.
    pub expires_at: i64,
    /// Between two polls, as the login starts.
    pub interval: Duration,
}

impl std::fmt::Debug for DeviceStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStarted")
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_at", &self.expires_at)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// How `OAuthService::start_enterprise_login` went on.
#[derive(Debug, Clone)]
pub enum EnterpriseLogin {
    /// The tokens are stored; no browser was needed.
    Done,
    /// No usable sign-in: the browser must go to the identity provider first; the login
    /// finishes (and is announced) after its callback.
    SignIn(SignInStarted),
}

/// A started sign-in: the identity provider's URL for the browser.
#[derive(Debug, Clone)]
pub struct SignInStarted {
    pub authorization_url: Url,
    pub redirect_uri: String,
}

/// What the caller should do after a refusal. `Debug` shows neither a token nor the
/// authorization URL (it carries the login's `state`).
#[derive(Clone)]
pub enum ChallengeOutcome {
    /// A refreshed token: retry with it.
    Token(Box<StoredCredentials>),
    /// A step-up login started; it ends with `LoginCompleted` like any login.
    Login {
        started: LoginStarted,
        scopes: Vec<String>,
    },
    /// No token without the user: the stored credentials are flagged and a new login is
    /// needed.
    ReauthenticationRequired {
        reason: String,
        cause: McpAuthStatusReason,
    },
    /// A `use_dpop_nonce` refusal (RFC 9449 9): no refused token but a request for a proof
    /// with the server's nonce; this proof answers it.
    DpopProof(ResourceProof),
}

/// A refusal as a frontend received it, with the request that was refused (needed only to
/// answer a `use_dpop_nonce` challenge).
#[derive(Debug, Clone, Copy)]
pub struct ChallengeRequest<'a> {
    pub status: u16,
    pub www_authenticate: &'a str,
    /// The `DPoP-Nonce` header of the refusal.
    pub dpop_nonce: Option<&'a str>,
    pub method: Option<&'a str>,
    pub url: Option<&'a str>,
    pub body: Option<&'a str>,
}

/// A [`ChallengeRequest`] the daemon can act on.
#[derive(Debug)]
pub enum CheckedChallenge<'a> {
    /// `use_dpop_nonce` (RFC 9449 9): not a refused token but a request for a proof with
    /// the server's nonce.
    NonceRequest {
        nonce: &'a str,
        method: &'a str,
        url: &'a str,
        body: Option<&'a str>,
    },
    /// A refused token or missing scopes, with the nonce the server sent, if any.
    Refusal {
        refusal: Refusal,
        dpop_nonce: Option<&'a str>,
    },
}

impl std::fmt::Debug for ChallengeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChallengeOutcome::Token(creds) => f.debug_tuple("Token").field(creds).finish(),
            ChallengeOutcome::Login { started, scopes } => f
                .debug_struct("Login")
                .field("redirect_uri", &started.redirect_uri)
                .field("scopes", scopes)
                .finish_non_exhaustive(),
            ChallengeOutcome::ReauthenticationRequired { reason, cause } => f
                .debug_struct("ReauthenticationRequired")
                .field("reason", reason)
                .field("cause", cause)
                .finish(),
            ChallengeOutcome::DpopProof(proof) => f.debug_tuple("DpopProof").field(proof).finish(),
        }
    }
}

/// One request to the MCP server a proof is for.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRequest<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    /// The nonce the resource server sent; default: the one kept for the server.
    pub nonce: Option<&'a str>,
    /// The exact request body, for `content_digest`.
    pub body: Option<&'a [u8]>,
}

/// A proof and the access token it goes with. Holds secrets: `Debug` redacts them.
#[derive(Clone)]
pub struct ResourceProof {
    pub proof: String,
    pub access_token: String,
}

impl std::fmt::Debug for ResourceProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceProof")
            .field("proof", &"<redacted>")
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// What a logout did.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutOutcome {
    pub removed: bool,
    pub revoked: bool,
    pub revocation_error: Option<String>,
}

/// Refresh when the token expires within this many seconds, unless asked otherwise.
pub const DEFAULT_MIN_VALIDITY_SECS: u32 = 60;

/// A validity no credentials have, not even those without an expiry: refresh now. Callers
/// of `OAuthService::token` stay below it ([`MAX_MIN_VALIDITY_SECS`]).
pub(crate) const REFRESH_NOW: u32 = u32::MAX;

/// The largest validity `OAuthService::token` may be asked for.
pub const MAX_MIN_VALIDITY_SECS: u32 = REFRESH_NOW - 1;

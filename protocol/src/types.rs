//! Params, results and notification payloads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

// ---------------------------------------------------------------- initialize

/// Who is connecting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientInfo {
    /// Machine name of the frontend, e.g. `my-ide`.
    pub name: String,
    /// Human-readable name of the frontend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub title: Option<String>,
    /// Version of the frontend.
    pub version: String,
}

/// What the client can do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCapabilities {
    /// Notification methods this connection does not want to receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub opt_out_notification_methods: Option<Vec<String>>,
    /// The client can send DPoP proofs (RFC 9449) made by `mcpServer/oauth/dpopProof`.
    /// Logins it starts may then bind tokens to the daemon's key, and
    /// `mcpServer/oauth/token` hands it DPoP-bound tokens; without it (the default) a
    /// DPoP-bound token is refused with `dpopRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub dpop: Option<bool>,
    /// The client presents a server's configured client certificate (`client_certificate`
    /// and `client_key` of config.toml, named in `certificateBinding`) on its own requests
    /// to that MCP server (mutual TLS, RFC 8705). `mcpServer/oauth/token` then hands it
    /// tokens bound to that certificate; without it (the default) such a token is refused
    /// with `certificateRequired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub client_certificate: Option<bool>,
}

/// Params of `initialize`: the first request on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InitializeParams {
    /// Who is connecting.
    pub client_info: ClientInfo,
    /// What the client can do; all defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub capabilities: Option<ClientCapabilities>,
}

/// Name and version of this daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ServerInfo {
    /// Name of the daemon.
    pub name: String,
    /// Version of the daemon.
    pub version: String,
}

/// Result of `initialize`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct InitializeResponse {
    /// Name and version of this daemon.
    pub server_info: ServerInfo,
    /// The version of the protocol this daemon speaks (semver, the version of the npm
    /// package `@mcp-app-server/protocol` generated from the same table). A new major
    /// version may break existing frontends; minor versions only add.
    pub protocol_version: String,
    /// Every request method this daemon answers.
    pub methods: Vec<String>,
    /// Every notification method this daemon may send.
    pub notifications: Vec<String>,
}

// ---------------------------------------------------------------- status

/// How a configured server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum McpServerTransport {
    /// Streamable HTTP at a URL: OAuth applies.
    StreamableHttp,
    /// A local process over stdio: OAuth does not apply.
    Stdio,
}

/// Where a server stands with its credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum McpAuthStatus {
    /// OAuth does not apply to this server (stdio).
    Unsupported,
    /// No stored credentials.
    NotLoggedIn,
    /// Credentials stored and usable (the access token may be refreshed on demand).
    LoggedIn,
    /// The access token has expired and there is no refresh token.
    Expired,
    /// The server refused the stored credentials (`invalid_grant`, or its authorization
    /// server changed): log in again.
    ReauthenticationRequired,
}

/// Why a login is needed (or, with `loggedIn`, why a new one is asked for): the cause a
/// frontend shows next to its login button. Present in `mcpServerStatus/list` and
/// `mcpServer/authStatus/changed` whenever `authStatus` is `notLoggedIn`, `expired` or
/// `reauthenticationRequired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum McpAuthStatusReason {
    /// No credentials are stored for the server: never logged in, or logged out.
    NeverLoggedIn,
    /// The access token expired and there is no way to renew it without the user (the
    /// server issued no refresh token).
    TokenExpired,
    /// The authorization server refused to renew the tokens (`invalid_grant` on a refresh,
    /// or a refused grant or token exchange).
    RefreshRefused,
    /// The server now names another authorization server than the one that issued the
    /// stored tokens.
    AuthorizationServerChanged,
    /// The authorization server no longer knows the client the tokens were issued to
    /// (`invalid_client`): the registration was dropped and a new one is made at login.
    RegistrationDropped,
    /// The server asked for scopes the stored token lacks (a 403 `insufficient_scope`);
    /// the tokens stay usable for what they cover (`authStatus` stays `loggedIn`).
    MoreScopesNeeded,
    /// The server refused an access token that had not expired, and no new one could be
    /// had: the token was revoked.
    TokenRevoked,
    /// The credential of a configured grant that needs no browser (a client secret or an
    /// identity token) is missing or unreadable, and the stored token expired.
    GrantCredentialMissing,
}

/// How the client was registered with the authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum RegistrationKind {
    /// A client id configured by the user.
    Preregistered,
    /// A Client ID Metadata Document URL used as the client id.
    Cimd,
    /// Dynamic Client Registration (RFC 7591).
    Dcr,
}

/// One configured MCP server and its credential state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct McpServerStatus {
    /// The name of the `[mcp_servers.NAME]` table.
    pub name: String,
    /// How the server is reached; OAuth applies to `streamableHttp` only.
    pub transport: McpServerTransport,
    /// The server URL (HTTP servers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub url: Option<String>,
    /// Where the server stands with its credentials.
    pub auth_status: McpAuthStatus,
    /// Why a login is needed; see [`McpAuthStatusReason`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<McpAuthStatusReason>,
    /// When the stored access token expires, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub expires_at: Option<i64>,
    /// Scopes granted to the stored token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub scopes: Option<Vec<String>>,
    /// How the client was registered for the stored credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub registration: Option<RegistrationKind>,
    /// The authorization server that issued the stored credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub issuer: Option<String>,
    /// A login for this server is under way in this daemon (waiting for the browser).
    #[serde(default)]
    pub login_pending: bool,
    /// When the daemon will next refresh the access token in the background, in seconds
    /// since the Unix epoch. Set for servers whose token a frontend asked for within the last
    /// 10 minutes and that can be refreshed; otherwise the token is refreshed on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub next_refresh_at: Option<i64>,
    /// The escape hatches the server's `[mcp_servers.NAME.oauth]` table sets, by key
    /// (`authorization_server_metadata_url`, `issuer`, `authorization_endpoint`,
    /// `token_endpoint`, `registration_endpoint`, `revocation_endpoint`): workarounds for an
    /// authorization server that does not publish its metadata as the specs say. Absent
    /// when it sets none (strict discovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub escape_hatches: Option<Vec<String>>,
    /// The account the fields above describe: the one the request named, else the
    /// server's account used last. Absent for the tokens of logins that named no account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub account: Option<String>,
    /// Every account stored for the server, by label (rule 80); absent when none is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub accounts: Option<Vec<McpAccountStatus>>,
}

/// One account of a server and its credential state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct McpAccountStatus {
    /// The label the login named; absent for the tokens of a login that named none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub account: Option<String>,
    /// Where the account stands with its credentials.
    pub auth_status: McpAuthStatus,
    /// Why a login is needed; see [`McpAuthStatusReason`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<McpAuthStatusReason>,
    /// When the account's access token expires, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub expires_at: Option<i64>,
    /// Scopes granted to the account's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub scopes: Option<Vec<String>>,
    /// The account requests naming none use: the one used last.
    pub current: bool,
}

/// Params of `mcpServerStatus/list`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListMcpServerStatusParams {
    /// Opaque cursor from a previous page's `nextCursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub cursor: Option<String>,
    /// Page size, 1 to 1000; all servers when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub limit: Option<u32>,
    /// Describe this account of each server in the top-level fields (`authStatus`,
    /// `expiresAt`, ...) instead of the account used last; `accounts` lists all of them
    /// either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub account: Option<String>,
}

/// Result of `mcpServerStatus/list`, servers sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ListMcpServerStatusResponse {
    /// This page of servers.
    pub data: Vec<McpServerStatus>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub next_cursor: Option<String>,
}

// ---------------------------------------------------------------- config

/// Params of `config/mcpServer/reload` (none).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfigParams {}

/// Result of `config/mcpServer/reload`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReloadConfigResponse {}

// ---------------------------------------------------------------- login

/// Which client registration a login may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum ClientRegistrationMode {
    /// Preregistered client id if configured, else a Client ID Metadata Document when the
    /// server supports it and a base URL is known, else Dynamic Client Registration.
    #[default]
    Auto,
    /// Client ID Metadata Document only; a missing precondition is an error.
    Cimd,
    /// Dynamic Client Registration only.
    Dcr,
}

/// Params of `mcpServer/oauth/login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthLoginParams {
    /// The configured server name.
    pub name: String,
    /// The account (rules 80-81): a label the frontend chooses, such as the user's e-mail
    /// address; 1 to 256 bytes of printable text. A login naming an account the server has no
    /// tokens for adds it, and asks the browser to choose the user (`prompt`). Absent: the
    /// server's account used last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub account: Option<String>,
    /// Scopes to request; overrides the configured and discovered scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub scopes: Option<Vec<String>>,
    /// Base URL of a Client ID Metadata Document host; the client id becomes
    /// `<base>/<callbackId>/client.json?redirect_uri=...`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub client_metadata_url_base: Option<String>,
    /// Which registration to use (default `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub client_registration: Option<ClientRegistrationMode>,
    /// How long to wait for the browser, in seconds (default 300, at most 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub timeout_secs: Option<u32>,
    /// How the user signs in (default `browser`); see [`LoginFlowChoice`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub flow: Option<LoginFlowChoice>,
}

/// How a login that needs the user reaches them. A server with a configured grant that
/// needs no user (client credentials, JWT bearer, enterprise-managed) logs in with that
/// grant whatever is chosen here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum LoginFlowChoice {
    /// The browser login (authorization code with PKCE, loopback redirect); the answer's
    /// `flow` is `browser`.
    #[default]
    Browser,
    /// The device authorization grant (RFC 8628): the user enters a code at a URL on any
    /// device; the answer's `flow` is `device`. Fails when the authorization server
    /// publishes no `device_authorization_endpoint`.
    Device,
    /// `device` when the authorization server publishes a `device_authorization_endpoint`
    /// and no browser on this machine can reach the daemon's loopback listener (an SSH
    /// session without a display), else `browser`.
    Auto,
}

/// How a login obtains its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum LoginGrant {
    /// The user signs in through the browser (authorization code with PKCE); the answer
    /// carries the URL to open.
    AuthorizationCode,
    /// The daemon authenticates as the configured client itself (client credentials grant);
    /// no browser.
    ClientCredentials,
    /// The daemon presents the workload's identity token (JWT bearer grant); no browser.
    JwtBearer,
    /// The daemon exchanges the enterprise identity provider's sign-in for this server's
    /// token; no browser once signed in to the identity provider.
    EnterpriseManaged,
    /// The user enters a code at the authorization server's verification URL, on any
    /// device (RFC 8628 device authorization grant).
    DeviceCode,
    /// The login of another configured server at the same authorization server serves this
    /// one too: the same `resource` shares its tokens, another `resource` gets its own
    /// through that login's refresh token; no browser.
    SharedLogin,
}

/// The grant of a login that goes through the browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum BrowserLoginGrant {
    /// The user signs in at the server's authorization server (authorization code with
    /// PKCE).
    AuthorizationCode,
    /// The user signs in at the enterprise identity provider; the daemon then exchanges
    /// that sign-in for this server's token.
    EnterpriseManaged,
}

/// The grant of a login that needs no browser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum DirectLoginGrant {
    /// The client credentials grant of the configured client.
    ClientCredentials,
    /// The JWT bearer grant with the workload's identity token.
    JwtBearer,
    /// The enterprise identity provider's current sign-in, exchanged for this server's
    /// token.
    EnterpriseManaged,
    /// The login of another server at the same authorization server, shared (same
    /// `resource`) or used through its refresh token (another `resource`).
    SharedLogin,
}

impl From<BrowserLoginGrant> for LoginGrant {
    fn from(g: BrowserLoginGrant) -> Self {
        match g {
            BrowserLoginGrant::AuthorizationCode => LoginGrant::AuthorizationCode,
            BrowserLoginGrant::EnterpriseManaged => LoginGrant::EnterpriseManaged,
        }
    }
}

impl From<DirectLoginGrant> for LoginGrant {
    fn from(g: DirectLoginGrant) -> Self {
        match g {
            DirectLoginGrant::ClientCredentials => LoginGrant::ClientCredentials,
            DirectLoginGrant::JwtBearer => LoginGrant::JwtBearer,
            DirectLoginGrant::EnterpriseManaged => LoginGrant::EnterpriseManaged,
            DirectLoginGrant::SharedLogin => LoginGrant::SharedLogin,
        }
    }
}

impl DirectLoginGrant {
    /// The grant of a login that obtained its tokens without a browser; `None` for the
    /// authorization code grant, which always needs one.
    pub fn of(grant: LoginGrant) -> Option<Self> {
        match grant {
            LoginGrant::AuthorizationCode => None,
            LoginGrant::ClientCredentials => Some(Self::ClientCredentials),
            LoginGrant::JwtBearer => Some(Self::JwtBearer),
            LoginGrant::EnterpriseManaged => Some(Self::EnterpriseManaged),
            LoginGrant::DeviceCode => None,
            LoginGrant::SharedLogin => Some(Self::SharedLogin),
        }
    }
}

/// A login waiting for the user in the browser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthBrowserLogin {
    /// The URL to open in the user's browser.
    pub authorization_url: String,
    /// The redirect URI the browser will come back to.
    pub redirect_uri: String,
    /// How this login obtains its tokens.
    pub grant: BrowserLoginGrant,
}

/// A login that needed no browser: the tokens are stored when this answer comes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthDirectLogin {
    /// How this login obtained its tokens.
    pub grant: DirectLoginGrant,
}

/// A device login (RFC 8628) waiting for the user: show `userCode` and `verificationUri`
/// (or `verificationUriComplete` as a link or QR code); the daemon polls the authorization
/// server until the user has approved, denied, or the code expired, then sends
/// `mcpServer/oauthLogin/completed`. `mcpServer/oauth/cancel` stops the polling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthDeviceLogin {
    /// Where the user goes, on any device, to enter `userCode`.
    pub verification_uri: String,
    /// The verification URI with the code in it, when the authorization server gives one:
    /// for a link or a QR code (the user still checks that the code shown there matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub verification_uri_complete: Option<String>,
    /// The code the user enters at `verificationUri`.
    pub user_code: String,
    /// When the code expires, unix seconds; the login fails with it.
    #[ts(type = "number")]
    pub expires_at: i64,
    /// Seconds between the daemon's polls of the authorization server, as it started.
    pub interval: u32,
    /// How this login obtains its tokens.
    pub grant: DeviceLoginGrant,
}

/// The grant of a device login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub enum DeviceLoginGrant {
    /// The device authorization grant (RFC 8628).
    DeviceCode,
}

impl From<DeviceLoginGrant> for LoginGrant {
    fn from(g: DeviceLoginGrant) -> Self {
        match g {
            DeviceLoginGrant::DeviceCode => LoginGrant::DeviceCode,
        }
    }
}

/// Result of `mcpServer/oauth/login`: how the login goes on, told by `flow` (and by
/// `grant`, whose values each belong to one flow but `enterpriseManaged`).
/// `mcpServer/oauthLogin/completed` follows in every case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "flow", rename_all = "camelCase")]
pub enum OauthLoginResponse {
    /// Open `authorizationUrl` in the user's browser.
    Browser(OauthBrowserLogin),
    /// No browser is needed: the tokens are already stored.
    Direct(OauthDirectLogin),
    /// Show the user the code and the URL (device authorization grant).
    Device(OauthDeviceLogin),
}

impl OauthLoginResponse {
    /// The grant, whichever the flow.
    pub fn grant(&self) -> LoginGrant {
        match self {
            OauthLoginResponse::Browser(b) => b.grant.into(),
            OauthLoginResponse::Direct(d) => d.grant.into(),
            OauthLoginResponse::Device(d) => d.grant.into(),
        }
    }
}

/// Params of `mcpServer/oauth/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthCancelParams {
    /// The configured server name.
    pub name: String,
}

/// Result of `mcpServer/oauth/cancel`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthCancelResponse {
    /// False when no login was pending for the server.
    pub cancelled: bool,
}

/// Params of `mcpServer/oauth/complete`: finish a pending login from the URL the browser
/// was redirected to (for machines whose loopback the browser cannot reach).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthCompleteParams {
    /// The configured server name.
    pub name: String,
    /// The full redirect URL from the browser's address bar.
    pub callback_url: String,
}

/// Result of `mcpServer/oauth/complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthCompleteResponse {}

// ---------------------------------------------------------------- tokens

/// Params of `mcpServer/oauth/logout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthLogoutParams {
    /// The configured server name.
    pub name: String,
    /// The account (rules 80-81): a label the frontend chooses, such as the user's e-mail
    /// address; 1 to 256 bytes of printable text. Absent: the server's account used last. The
    /// server's other accounts stay logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub account: Option<String>,
    /// Revoke the tokens at the authorization server (RFC 7009) before deleting them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub revoke: Option<bool>,
}

/// Result of `mcpServer/oauth/logout`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthLogoutResponse {
    /// Whether local credentials existed and were deleted.
    pub removed: bool,
    /// Whether the authorization server confirmed the revocation.
    pub revoked: bool,
    /// Why revocation did not happen or failed, when it was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub revocation_error: Option<String>,
}

/// Params of `mcpServer/oauth/token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthTokenParams {
    /// The configured server name.
    pub name: String,
    /// The account (rules 80-81): a label the frontend chooses, such as the user's e-mail
    /// address; 1 to 256 bytes of printable text. Absent: the server's account used last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub account: Option<String>,
    /// Refresh first when the token expires within this many seconds (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub min_validity_secs: Option<u32>,
}

/// Result of `mcpServer/oauth/token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthTokenResponse {
    /// Send as `Authorization: <tokenType> <accessToken>` to the MCP server.
    pub access_token: String,
    /// `Bearer`, or `DPoP` for a token bound to the daemon's key: then every request needs
    /// a proof from `mcpServer/oauth/dpopProof` in its `DPoP` header.
    pub token_type: String,
    /// Seconds since the Unix epoch; absent when the server gave no lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional, type = "number")]
    pub expires_at: Option<i64>,
    /// Scopes granted to the token.
    pub scopes: Vec<String>,
    /// Present when the token is bound to the server's client certificate (RFC 8705 §3):
    /// every request with it must go over a TLS connection presenting that certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub certificate_binding: Option<CertificateBinding>,
}

/// The client certificate a token is bound to, and where the frontend reads it: the files
/// config.toml names. The daemon sends the private key itself only when the server's
/// `client_key_to_frontends` is set. `Debug` never shows the key.
#[derive(Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct CertificateBinding {
    /// base64url SHA-256 of the certificate's DER (`cnf.x5t#S256` of the token).
    #[serde(rename = "x5tS256")]
    pub x5t_s256: String,
    /// The PEM file of the certificate and its chain (`client_certificate`).
    pub certificate_file: String,
    /// The PEM file of its private key (`client_key`), to be read by the frontend itself.
    pub key_file: String,
    /// The certificate and its chain in PEM, with `client_key_to_frontends` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub certificate_pem: Option<String>,
    /// The private key in PEM, with `client_key_to_frontends` only: a secret like the
    /// token; keep it in memory, never in logs or on disk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub key_pem: Option<String>,
}

impl std::fmt::Debug for CertificateBinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateBinding")
            .field("x5t_s256", &self.x5t_s256)
            .field("certificate_file", &self.certificate_file)
            .field("key_file", &self.key_file)
            .field(
                "certificate_pem",
                &self.certificate_pem.as_ref().map(|_| "<pem>"),
            )
            .field("key_pem", &self.key_pem.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

// ---------------------------------------------------------------- challenge

/// Params of `mcpServer/oauth/challenge`: what the MCP server answered when the frontend
/// used a token from `mcpServer/oauth/token` (or sent none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthChallengeParams {
    /// The configured server name.
    pub name: String,
    /// The account (rules 80-81): a label the frontend chooses, such as the user's e-mail
    /// address; 1 to 256 bytes of printable text. Absent: the server's account used last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub account: Option<String>,
    /// The HTTP status of the MCP server's answer: 401 or 403.
    pub status: u16,
    /// The raw `WWW-Authenticate` header of that answer (several headers joined with `, `).
    pub www_authenticate: String,
    /// The `DPoP-Nonce` header of that answer. Required when the challenge is
    /// `error="use_dpop_nonce"`; the daemon keeps it for later proofs of this server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub dpop_nonce: Option<String>,
    /// With `use_dpop_nonce`: the refused request's HTTP method, for the new proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub method: Option<String>,
    /// With `use_dpop_nonce`: the refused request's URL, for the new proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub url: Option<String>,
    /// With `use_dpop_nonce`: the refused request's body, for the proof's `content_digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub body: Option<String>,
}

// ---------------------------------------------------------------- dpop proof

/// Params of `mcpServer/oauth/dpopProof`: the request a proof is for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OauthDpopProofParams {
    /// The configured server name.
    pub name: String,
    /// The account (rules 80-81): a label the frontend chooses, such as the user's e-mail
    /// address; 1 to 256 bytes of printable text. Absent: the server's account used last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub account: Option<String>,
    /// The HTTP method of the request (`POST`).
    pub method: String,
    /// The request's URL (on the MCP server's origin); query and fragment are left out of
    /// the proof's `htu`.
    pub url: String,
    /// The latest `DPoP-Nonce` the MCP server sent; default: the one last passed to
    /// `mcpServer/oauth/challenge` for this server, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub nonce: Option<String>,
    /// The exact request body: the proof then carries its `content_digest`, which the MCP
    /// profile of DPoP asks for on every MCP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional = nullable)]
    pub body: Option<String>,
}

/// Result of `mcpServer/oauth/dpopProof`: send `Authorization: DPoP <accessToken>` and
/// `DPoP: <proof>`. A proof is good for one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthDpopProofResponse {
    /// The signed proof JWT (`ath` over `accessToken`, `htm`, `htu`, fresh `jti`, `iat`).
    pub proof: String,
    /// The current access token (refreshed first when it was about to expire).
    pub access_token: String,
    /// Always `DPoP`.
    pub token_type: String,
}

/// A step-up login started by `mcpServer/oauth/challenge`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthChallengeLogin {
    /// The URL to open in the user's browser; `mcpServer/oauthLogin/completed` follows.
    pub authorization_url: String,
    /// The redirect URI the browser will come back to.
    pub redirect_uri: String,
    /// The scopes asked for: those held before plus those the server asked for.
    pub scopes: Vec<String>,
}

/// No new token can be had without the user: log in again with `mcpServer/oauth/login`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthChallengeReauthentication {
    /// Why, for people.
    pub reason: String,
    /// Why, for programs: the same cause `mcpServerStatus/list` now shows as `reason`
    /// (always sent by this daemon; absent from older ones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub cause: Option<McpAuthStatusReason>,
}

/// Result of `mcpServer/oauth/challenge`: what to do next, told by `action`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum OauthChallengeResponse {
    /// The token was refreshed: retry the request with this one.
    Token(OauthTokenResponse),
    /// The server asked for more scopes and a step-up login started: open
    /// `authorizationUrl`, wait for `mcpServer/oauthLogin/completed`, then get a token.
    Login(OauthChallengeLogin),
    /// The token was refused and cannot be refreshed (no refresh token, the refresh was
    /// refused, or the server now trusts another authorization server). The server's
    /// `authStatus` is `reauthenticationRequired`; start `mcpServer/oauth/login`.
    ReauthenticationRequired(OauthChallengeReauthentication),
    /// The server asked for a DPoP nonce (`use_dpop_nonce`): retry the request with this
    /// proof, which carries it.
    DpopProof(OauthDpopProofResponse),
}

// ---------------------------------------------------------------- notifications

/// A login ended: exactly one per login.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthLoginCompletedNotification {
    /// The configured server name.
    pub name: String,
    /// The account the login named, if it named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub account: Option<String>,
    /// Whether the credentials are now stored.
    pub success: bool,
    /// What failed and what to do, when `success` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error: Option<String>,
    /// Stable machine-readable error kind, when `success` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub error_kind: Option<crate::ErrorKind>,
}

/// A login fell back to another registration (e.g. the client metadata document was
/// refused and Dynamic Client Registration is used): open the new URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct OauthLoginRestartedNotification {
    /// The configured server name.
    pub name: String,
    /// The new URL to open in the user's browser; the previous one no longer works.
    pub authorization_url: String,
    /// Why the login fell back, for people.
    pub reason: String,
}

/// A server's credential state changed: through this daemon, by the token running out, or
/// through another process sharing the store. Sent once per change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "camelCase")]
pub struct AuthStatusChangedNotification {
    /// The configured server name.
    pub name: String,
    /// The new state.
    pub auth_status: McpAuthStatus,
    /// Why a login is needed; see [`McpAuthStatusReason`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub reason: Option<McpAuthStatusReason>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_binding_never_shows_its_key_in_debug() {
        let binding = CertificateBinding {
            x5t_s256: "thumb".into(),
            certificate_file: "/c.pem".into(),
            key_file: "/k.pem".into(),
            certificate_pem: Some("-----BEGIN CERTIFICATE-----\nQ0VSVA==\n".into()),
            key_pem: Some("-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n".into()),
        };
        let text = format!("{binding:?}");
        assert!(
            !text.contains("U0VDUkVU") && !text.contains("PRIVATE KEY"),
            "{text}"
        );
        assert!(text.contains("/k.pem") && text.contains("thumb"), "{text}");
        // On the wire the key is there: the user asked for it.
        let wire = serde_json::to_value(&binding).unwrap();
        assert_eq!(wire["keyPem"], "-----BEGIN PRIVATE KEY-----\nU0VDUkVU\n");
    }
}

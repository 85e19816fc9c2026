//! What one login carries from its start to its callback.

use std::sync::Arc;

use url::Url;

use crate::credentials::StoredRegistration;
use crate::engine::target::ServerTarget;
use crate::engine::types::LoginOptions;
use crate::oauth::authorization::Pkce;
use crate::oauth::callback::CallbackRegistration;
use crate::oauth::discovery::Discovery;
use crate::oauth::http::HttpClient;
use crate::oauth::registration::ClientRegistration;

/// Everything the flow task needs to turn a code into stored credentials: the per-request
/// record of one authorization request. The issuer of the validated metadata is recorded
/// here beside the PKCE verifier and `state` before the browser is sent anywhere, and the
/// callback's `iss` is compared with it (RFC 9207, MCP 2026-07-28).
pub(crate) struct Attempt {
    pub(crate) registration: ClientRegistration,
    pub(crate) pkce: Pkce,
    pub(crate) state: String,
    pub(crate) issuer: String,
    pub(crate) callback: CallbackRegistration,
    /// The stored DCR registration was reused (a refusal may mean it is stale).
    pub(crate) reused_registration: bool,
    /// A registration made for this attempt and not saved yet.
    pub(crate) unsaved: Option<Box<StoredRegistration>>,
}

pub(crate) struct FlowContext {
    pub(crate) target: ServerTarget,
    /// Held to the server's network policy (rule 35).
    pub(crate) http: HttpClient,
    pub(crate) options: LoginOptions,
    /// Shared with the discovery cache (and so with the other logins to the server).
    pub(crate) discovery: Arc<Discovery>,
    /// The discovery cache answered: a refusal that shows the metadata changed discovers
    /// again (once).
    pub(crate) cached: bool,
    pub(crate) scopes: Option<Vec<String>>,
    pub(crate) redirect_uri: Url,
    pub(crate) callback_path: String,
    pub(crate) port: Option<u16>,
}

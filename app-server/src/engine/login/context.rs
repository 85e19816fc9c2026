//! What one login carries from its start to its callback.

use std::sync::Arc;

use url::Url;

use crate::credentials::StoredRegistration;
use crate::engine::error::LoginError;
use crate::engine::target::ServerTarget;
use crate::engine::types::LoginOptions;
use crate::oauth::authorization::Pkce;
use crate::oauth::callback::CallbackRegistration;
use crate::oauth::discovery::Discovery;
use crate::oauth::http::HttpClient;
use crate::oauth::registration::cimd::{validate_base, validate_client_id_url};
use crate::oauth::registration::{CimdSource, ClientRegistration};

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
    /// The `prompt` the authorization request carries: set when the login adds an account
    /// to the server (rule 82).
    pub(crate) prompt: Option<&'static str>,
}

/// Where this login's metadata document URL comes from: the server's fixed
/// `client_metadata_url`, else the `clientMetadataUrlBase` param, else the configured
/// `client_metadata_url_base`. Every value that applies is validated, so a bad one is
/// reported (naming where it came from) instead of silently skipped.
pub(crate) fn cimd_source(
    target: &ServerTarget,
    options: &LoginOptions,
) -> Result<Option<CimdSource>, LoginError> {
    let param = options
        .client_metadata_url_base
        .as_deref()
        .map(|b| {
            validate_base(b).map_err(|e| {
                LoginError::InvalidClientMetadataUrlBase(format!(
                    "clientMetadataUrlBase {b:?} is not usable: {e}"
                ))
            })
        })
        .transpose()?;
    if let Some(fixed) = &target.client_metadata_url {
        let url = validate_client_id_url(fixed).map_err(|e| {
            LoginError::InvalidClientMetadataConfig(format!(
                "mcp_servers.{}.oauth.client_metadata_url {fixed:?} is not usable: {e}",
                target.name
            ))
        })?;
        return Ok(Some(CimdSource::Fixed(url)));
    }
    if let Some(base) = param {
        return Ok(Some(CimdSource::Base(base)));
    }
    target
        .client_metadata_url_base
        .as_deref()
        .map(|b| {
            validate_base(b).map(CimdSource::Base).map_err(|e| {
                LoginError::InvalidClientMetadataConfig(format!(
                    "client_metadata_url_base {b:?} is not usable: {e}"
                ))
            })
        })
        .transpose()
}

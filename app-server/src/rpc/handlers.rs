//! The methods: one handler each, from the daemon's state and a request's params to its
//! answer. Nothing here knows of connections.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mcp_app_server_protocol::{
    BrowserLoginGrant, CertificateBinding, ClientRequest, DeviceLoginGrant, DirectLoginGrant,
    ErrorKind, ListMcpServerStatusParams, ListMcpServerStatusResponse, McpAuthStatus,
    McpServerStatus, McpServerTransport, OauthBrowserLogin, OauthCancelParams, OauthCancelResponse,
    OauthChallengeLogin, OauthChallengeParams, OauthChallengeReauthentication,
    OauthChallengeResponse, OauthCompleteParams, OauthCompleteResponse, OauthDeviceLogin,
    OauthDirectLogin, OauthDpopProofParams, OauthDpopProofResponse, OauthLoginParams,
    OauthLoginResponse, OauthLogoutParams, OauthLogoutResponse, OauthTokenParams,
    OauthTokenResponse, ReloadConfigResponse,
};
use serde::Serialize;

use super::error::{AppError, RequestError};
use super::state::ServerState;
use super::types::Answer;
use super::usable::usable_by;
use crate::config::{ConfigError, ServerTransport};
use crate::credentials::{StoredCredentials, check_account};
use crate::engine::ChallengeRequest;
use crate::engine::ResourceProof;
use crate::engine::{
    ChallengeOutcome, DEFAULT_LOGIN_TIMEOUT, DEFAULT_MIN_VALIDITY_SECS, LoginBegun, LoginOptions,
    MAX_MIN_VALIDITY_SECS, ServerAccounts, ServerTarget,
};

/// What the connection a request came on declared at `initialize`.
#[derive(Debug, Clone, Default)]
pub(super) struct Peer {
    /// `capabilities.dpop`: it can send DPoP proofs, so DPoP-bound tokens are of use to it
    /// and logins it starts may bind theirs (rule 49).
    pub(super) dpop: bool,
    /// `capabilities.clientCertificate`: it presents a server's configured client
    /// certificate itself, so tokens bound to it are of use to it (rule 42).
    pub(super) client_certificate: bool,
    /// Its `clientInfo.title`, else `name`: the browser's pages of the logins it starts
    /// name it.
    pub(super) frontend: Option<String>,
}

/// What a method answers, once its handler has run.
pub(super) type PendingAnswer = Pin<Box<dyn Future<Output = Result<Answer, RequestError>> + Send>>;

/// The one way into the handlers: every request a connection has read, however it read it,
/// runs through here (`initialize` excepted: the connection's own handshake). Each method
/// runs as a future of its own size: a token request does not carry the state of a login
/// (many kilobytes, allocated and moved per request).
pub(super) fn dispatch(
    state: Arc<ServerState>,
    request: ClientRequest,
    peer: Peer,
) -> PendingAnswer {
    match request {
        ClientRequest::Initialize(_) => Box::pin(std::future::ready(Err(RequestError::Internal(
            "initialize is handled by the connection".into(),
        )))),
        ClientRequest::OauthToken(p) => Box::pin(async move { token(&state, p, peer).await }),
        ClientRequest::McpServerStatusList(p) => {
            Box::pin(async move { to_value(list_status(&state, p).await?) })
        }
        ClientRequest::ConfigMcpServerReload(_) => Box::pin(async move { reload(&state).await }),
        ClientRequest::OauthLogin(p) => {
            Box::pin(async move { to_value(login(&state, p, peer).await?) })
        }
        ClientRequest::OauthCancel(p) => Box::pin(async move { cancel(&state, p) }),
        ClientRequest::OauthComplete(p) => Box::pin(async move { complete(&state, p).await }),
        ClientRequest::OauthLogout(p) => {
            Box::pin(async move { to_value(logout(&state, p).await?) })
        }
        ClientRequest::OauthChallenge(p) => {
            Box::pin(async move { to_value(challenge(&state, p, peer).await?) })
        }
        ClientRequest::OauthDpopProof(p) => {
            Box::pin(async move { to_value(dpop_proof(&state, p).await?) })
        }
    }
}

/// `mcpServer/oauth/token`, the request a frontend makes for every MCP request it sends:
/// the stored entry is answered as it is shared, without a copy or a JSON value.
async fn token(
    state: &ServerState,
    p: OauthTokenParams,
    peer: Peer,
) -> Result<Answer, RequestError> {
    let target = resolve_shared(state, &p.name)?;
    let target = for_account(state, target, p.account.as_deref(), true).await?;
    state.oauth.token_used(&target);
    let creds = state
        .oauth
        .token(
            &target,
            p.min_validity_secs
                .unwrap_or(DEFAULT_MIN_VALIDITY_SECS)
                .min(MAX_MIN_VALIDITY_SECS),
        )
        .await
        .map_err(|e| AppError::from(e.as_ref()))?;
    let certificate = usable_by(peer.dpop, peer.client_certificate, &creds, &target)?;
    Ok(Answer::Token(creds, certificate.map(Box::new)))
}

/// `config/mcpServer/reload`.
async fn reload(state: &ServerState) -> Result<Answer, RequestError> {
    state.reload_config().await.map_err(config_error)?;
    to_value(ReloadConfigResponse {})
}

/// `mcpServer/oauth/login`: the params are checked before anything is looked up.
async fn login(
    state: &ServerState,
    p: OauthLoginParams,
    peer: Peer,
) -> Result<OauthLoginResponse, RequestError> {
    if let Some(t) = p.timeout_secs
        && !(1..=MAX_LOGIN_TIMEOUT_SECS).contains(&t)
    {
        return Err(RequestError::InvalidParams(format!(
            "invalid params at `timeoutSecs`: must be between 1 and {MAX_LOGIN_TIMEOUT_SECS}"
        )));
    }
    if let Some(scopes) = &p.scopes
        && scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(RequestError::InvalidParams(
            "invalid params at `scopes`: each scope must be a non-empty string without spaces"
                .into(),
        ));
    }
    let target = Arc::new(resolve(state, &p.name)?);
    let target =
        Arc::unwrap_or_clone(for_account(state, target, p.account.as_deref(), false).await?);
    state.oauth.forget_step_ups(&target);
    let options = LoginOptions {
        scopes: p.scopes,
        client_metadata_url_base: p.client_metadata_url_base,
        mode: p.client_registration.unwrap_or_default(),
        timeout: p
            .timeout_secs
            .map(|s| Duration::from_secs(s.into()))
            .unwrap_or(DEFAULT_LOGIN_TIMEOUT),
        dpop: peer.dpop,
        frontend: peer.frontend,
        flow: p.flow.unwrap_or_default(),
    };
    Ok(match state.oauth.start_login(target, options).await {
        Ok(LoginBegun::Browser(started)) => OauthLoginResponse::Browser(OauthBrowserLogin {
            authorization_url: started.authorization_url.to_string(),
            redirect_uri: started.redirect_uri,
            grant: BrowserLoginGrant::AuthorizationCode,
        }),
        Ok(LoginBegun::IdpSignIn(started)) => OauthLoginResponse::Browser(OauthBrowserLogin {
            authorization_url: started.authorization_url.to_string(),
            redirect_uri: started.redirect_uri,
            grant: BrowserLoginGrant::EnterpriseManaged,
        }),
        Ok(LoginBegun::Device(started)) => OauthLoginResponse::Device(OauthDeviceLogin {
            verification_uri: started.verification_uri.to_string(),
            verification_uri_complete: started.verification_uri_complete.map(String::from),
            user_code: started.user_code,
            expires_at: started.expires_at,
            interval: u32::try_from(started.interval.as_secs()).unwrap_or(u32::MAX),
            grant: DeviceLoginGrant::DeviceCode,
        }),
        // The tokens are stored; `completed` was announced.
        Ok(LoginBegun::Obtained(grant)) => match DirectLoginGrant::of(grant) {
            Some(grant) => OauthLoginResponse::Direct(OauthDirectLogin { grant }),
            None => {
                return Err(RequestError::Internal(
                    "a browser login answered without its URL".into(),
                ));
            }
        },
        Err(e) => return Err(RequestError::from(e.as_ref())),
    })
}

/// `mcpServer/oauth/cancel`.
fn cancel(state: &ServerState, p: OauthCancelParams) -> Result<Answer, RequestError> {
    to_value(OauthCancelResponse {
        cancelled: state.oauth.cancel(&p.name),
    })
}

/// `mcpServer/oauth/complete`.
async fn complete(state: &ServerState, p: OauthCompleteParams) -> Result<Answer, RequestError> {
    state.oauth.complete(&p.name, &p.callback_url).await?;
    to_value(OauthCompleteResponse {})
}

/// `mcpServer/oauth/logout`.
async fn logout(
    state: &ServerState,
    p: OauthLogoutParams,
) -> Result<OauthLogoutResponse, RequestError> {
    let target = Arc::new(resolve(state, &p.name)?);
    let target = for_account(state, target, p.account.as_deref(), false).await?;
    let out = state
        .oauth
        .logout(&target, p.revoke.unwrap_or(false))
        .await?;
    Ok(OauthLogoutResponse {
        removed: out.removed,
        revoked: out.revoked,
        revocation_error: out.revocation_error,
    })
}

/// `mcpServer/oauth/dpopProof`: the params are checked before anything is looked up.
async fn dpop_proof(
    state: &ServerState,
    p: OauthDpopProofParams,
) -> Result<OauthDpopProofResponse, RequestError> {
    let target = resolve_shared(state, &p.name)?;
    let target = for_account(state, target, p.account.as_deref(), true).await?;
    let proof = state
        .oauth
        .proof_for(
            &target,
            &p.method,
            &p.url,
            p.nonce.as_deref(),
            p.body.as_deref().map(str::as_bytes),
        )
        .await?;
    Ok(proof_response(proof))
}

fn proof_response(proof: ResourceProof) -> OauthDpopProofResponse {
    OauthDpopProofResponse {
        proof: proof.proof,
        access_token: proof.access_token,
        token_type: "DPoP".to_string(),
    }
}

fn token_response(
    creds: StoredCredentials,
    certificate_binding: Option<CertificateBinding>,
) -> OauthTokenResponse {
    OauthTokenResponse {
        access_token: creds.access_token,
        token_type: creds.token_type,
        expires_at: creds.expires_at,
        scopes: creds.scopes,
        certificate_binding,
    }
}

/// `mcpServer/oauth/challenge`: the params are checked before anything is looked up, so
/// bad input changes nothing.
async fn challenge(
    state: &ServerState,
    p: OauthChallengeParams,
    peer: Peer,
) -> Result<OauthChallengeResponse, RequestError> {
    let checked = ChallengeRequest {
        status: p.status,
        www_authenticate: &p.www_authenticate,
        dpop_nonce: p.dpop_nonce.as_deref(),
        method: p.method.as_deref(),
        url: p.url.as_deref(),
        body: p.body.as_deref(),
    }
    .check()
    .map_err(|e| RequestError::InvalidParams(format!("invalid params at `{}`: {e}", e.field())))?;
    let target = resolve_shared(state, &p.name)?;
    let target = for_account(state, target, p.account.as_deref(), true).await?;
    Ok(
        match state.oauth.answer_challenge(&target, checked).await? {
            ChallengeOutcome::Token(creds) => {
                let certificate = usable_by(peer.dpop, peer.client_certificate, &creds, &target)?;
                OauthChallengeResponse::Token(token_response(*creds, certificate))
            }
            ChallengeOutcome::Login { started, scopes } => {
                OauthChallengeResponse::Login(OauthChallengeLogin {
                    authorization_url: started.authorization_url.to_string(),
                    redirect_uri: started.redirect_uri,
                    scopes,
                })
            }
            ChallengeOutcome::ReauthenticationRequired { reason, cause } => {
                OauthChallengeResponse::ReauthenticationRequired(OauthChallengeReauthentication {
                    reason,
                    cause: Some(cause),
                })
            }
            ChallengeOutcome::DpopProof(proof) => {
                OauthChallengeResponse::DpopProof(proof_response(proof))
            }
        },
    )
}

const MAX_LOGIN_TIMEOUT_SECS: u32 = 3600;

/// [`resolve`], answered from the targets resolved once per configuration when it can be
/// (the hot path of token requests: no copy of the target, no scan of the configuration).
fn resolve_shared(state: &ServerState, name: &str) -> Result<Arc<ServerTarget>, RequestError> {
    match state.target(name) {
        Some(target) => Ok(target),
        None => resolve(state, name).map(Arc::new),
    }
}

/// `target` for the account a request names, checked first (rule 80), or for the server's
/// account used last when it names none (rule 81); `choose` makes a named account the one
/// used last.
async fn for_account(
    state: &ServerState,
    target: Arc<ServerTarget>,
    account: Option<&str>,
    choose: bool,
) -> Result<Arc<ServerTarget>, RequestError> {
    if let Some(label) = account {
        check_account(label).map_err(|e| {
            RequestError::InvalidParams(format!("invalid params at `account`: {e}"))
        })?;
    }
    Ok(state.oauth.for_account(target, account, choose).await?)
}

/// Resolves a configured HTTP server for OAuth.
fn resolve(state: &ServerState, name: &str) -> Result<ServerTarget, RequestError> {
    let config = state.config().map_err(config_error)?;
    Ok(ServerTarget::resolve(&config, name)?)
}

fn to_value<T: Serialize>(v: T) -> Result<Answer, RequestError> {
    serde_json::to_value(v)
        .map(Answer::Json)
        .map_err(|e| RequestError::Internal(e.to_string()))
}

fn config_error(e: ConfigError) -> RequestError {
    AppError::new(ErrorKind::ConfigInvalid, e.to_string()).into()
}

const MAX_PAGE: u32 = 1000;

async fn list_status(
    state: &ServerState,
    params: ListMcpServerStatusParams,
) -> Result<ListMcpServerStatusResponse, RequestError> {
    if let Some(limit) = params.limit
        && !(1..=MAX_PAGE).contains(&limit)
    {
        return Err(RequestError::InvalidParams(format!(
            "invalid params at `limit`: must be between 1 and {MAX_PAGE}"
        )));
    }
    if let Some(label) = params.account.as_deref() {
        check_account(label).map_err(|e| {
            RequestError::InvalidParams(format!("invalid params at `account`: {e}"))
        })?;
    }
    let config = state.config().map_err(config_error)?;
    let after = params.cursor.as_deref();
    let limit = params.limit.unwrap_or(u32::MAX) as usize;
    let mut remaining = config
        .servers
        .values()
        .filter(|s| after.is_none_or(|c| s.name.as_str() > c));
    // One read of the store per listing, not one per server; each server's accounts
    // together.
    let mut stored: HashMap<(String, String), Vec<StoredCredentials>> = HashMap::new();
    for c in state.oauth.store_list().await? {
        stored
            .entry((c.server_name.clone(), c.server_url.clone()))
            .or_default()
            .push(c);
    }
    let mut data = Vec::new();
    for server in remaining.by_ref().take(limit) {
        data.push(match &server.transport {
            ServerTransport::Stdio { .. } => McpServerStatus {
                name: server.name.clone(),
                transport: McpServerTransport::Stdio,
                url: None,
                auth_status: McpAuthStatus::Unsupported,
                reason: None,
                expires_at: None,
                scopes: None,
                registration: None,
                issuer: None,
                login_pending: false,
                next_refresh_at: None,
                escape_hatches: None,
                account: None,
                accounts: None,
            },
            ServerTransport::Http(http) => {
                let entries = stored
                    .remove(&(server.name.clone(), http.url.to_string()))
                    .unwrap_or_default();
                let ServerAccounts {
                    info,
                    account,
                    accounts,
                } = ServerAccounts::of(&entries, params.account.as_deref());
                let (login_pending, planned) = state.oauth.live_status(&server.name);
                // The plan may lag a change of the store by a moment; only what is logged in
                // gets refreshed.
                let next_refresh_at = planned.filter(|_| info.status == McpAuthStatus::LoggedIn);
                McpServerStatus {
                    name: server.name.clone(),
                    transport: McpServerTransport::StreamableHttp,
                    url: Some(http.url.to_string()),
                    auth_status: info.status,
                    reason: info.reason,
                    expires_at: info.expires_at,
                    scopes: info.scopes,
                    registration: info.registration,
                    issuer: info.issuer,
                    login_pending,
                    next_refresh_at,
                    escape_hatches: http.escape_hatches.status(),
                    account,
                    accounts,
                }
            }
        });
    }
    let next_cursor = match (remaining.next(), data.last()) {
        (Some(_), Some(last)) => Some(last.name.clone()),
        _ => None,
    };
    Ok(ListMcpServerStatusResponse { data, next_cursor })
}

//! Logins and renewals with the configured grant of a server that needs no browser: the
//! same discovery as a browser login, then the grant's token request, the tokens stored
//! like any others. When they expire the grant runs again (there is usually no refresh
//! token); a refusal then is final, as a refused refresh is.

use std::sync::Arc;

use mcp_app_server_protocol::{LoginGrant, McpAuthStatus, McpAuthStatusReason, RegistrationKind};

use crate::config::grant::GrantConfig;
use crate::credentials::{StoredClient, StoredCredentials, unix_now};
use crate::engine::error::{GrantCredentialError, LoginError, VendError};
use crate::engine::flow::{Discovered, binds_dpop, warn_if_unbound};
use crate::engine::service::OAuthService;
use crate::engine::state::control::EndReason;
use crate::engine::stored::{
    apply_tokens, check_unexpired, record_for, refusal_cause, stored_dpop_key,
    stored_token_endpoint, usable,
};
use crate::engine::target::ServerTarget;
use crate::engine::types::{LoginOptions, OAuthEvent};
use crate::oauth::discovery::Probe;
use crate::oauth::dpop::{self, TokenDpop};
use crate::oauth::grants::client_credentials::{self, ClientAuth, GrantTarget, secret_method};
use crate::oauth::grants::{GrantError, jwt_bearer};
use crate::oauth::http::HttpClient;
use crate::oauth::token::{TokenError, TokenResponse};

/// The `token_endpoint_auth_method` recorded for a client assertion.
const PRIVATE_KEY_JWT: &str = "private_key_jwt";

/// How a login with this grant obtains its tokens, as the protocol names it.
pub fn login_grant(grant: &GrantConfig) -> LoginGrant {
    match grant {
        GrantConfig::AuthorizationCode => LoginGrant::AuthorizationCode,
        GrantConfig::ClientCredentials { .. } => LoginGrant::ClientCredentials,
        GrantConfig::JwtBearer { .. } => LoginGrant::JwtBearer,
        GrantConfig::Enterprise { .. } => LoginGrant::EnterpriseManaged,
    }
}

/// The grant's name in config.toml and in the stored credentials.
fn grant_name(grant: &GrantConfig) -> &'static str {
    match grant {
        GrantConfig::AuthorizationCode => "authorization_code",
        GrantConfig::ClientCredentials { .. } => "client_credentials",
        GrantConfig::JwtBearer { .. } => "jwt_bearer",
        GrantConfig::Enterprise { .. } => "enterprise",
    }
}

/// What to check when the authorization server refused the grant.
fn refusal_hint(grant: &GrantConfig) -> &'static str {
    match grant {
        GrantConfig::JwtBearer { .. } => {
            "check the workload identity token (`assertion_file` or `assertion_env_var`: its issuer, audience and expiry) and that the authorization server trusts it; no other grant is tried"
        }
        _ => {
            "check `client_id` and its secret or key in the server's [mcp_servers.NAME.oauth] table"
        }
    }
}

/// One token request's answer and the client authentication it used.
struct Obtained {
    tokens: TokenResponse,
    auth_method: String,
}

impl OAuthService {
    /// Logs in with the server's configured grant: discovery (from the refusal when the
    /// caller holds one), the token request, the tokens stored; answers once they are. Past
    /// discovery, ends with exactly one `LoginCompleted`, success or not.
    pub(in crate::engine) async fn grant_login(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
        refused: Option<Probe>,
    ) -> Result<LoginGrant, Arc<LoginError>> {
        // A browser login still pending for the server is replaced by this one.
        self.end_login(&target.name, EndReason::Superseded);
        let found = self
            .discover_for_login(&target, options.scopes.as_deref(), refused)
            .await
            .map_err(Arc::new)?;
        let result = self
            .obtain_and_store(&target, &found, options.dpop)
            .await
            .map_err(Arc::new);
        let name = target.name.clone();
        match &result {
            Ok(()) => {
                tracing::info!(server = %name, grant = grant_name(&target.grant), "login completed");
                self.emit(OAuthEvent::AuthStatusChanged {
                    name: name.clone(),
                    status: McpAuthStatus::LoggedIn,
                    reason: None,
                });
            }
            Err(e) => {
                self.cache.invalidate_issuer(&found.discovery.issuer).await;
                tracing::warn!(server = %name, error = %e, "login failed");
            }
        }
        self.emit(OAuthEvent::LoginCompleted {
            name,
            account: target.account.clone(),
            result: result.clone(),
        });
        result.map(|()| login_grant(&target.grant))
    }

    /// The token request and the save, under the server's refresh lock (a renewal that
    /// started from older tokens can neither overwrite these nor be overwritten half way).
    async fn obtain_and_store(
        &self,
        target: &ServerTarget,
        found: &Discovered,
        login_can_prove: bool,
    ) -> Result<(), LoginError> {
        let lock_key = target.key();
        let _refresh_lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let Some(_saving) = self.begin_token_call() else {
            return Err(LoginError::ShuttingDown);
        };
        let metadata = &found.discovery.metadata;
        let scope = found.scopes.as_ref().map(|s| s.join(" "));
        // A new key per login when the tokens are to be bound, as for a browser login
        // (rule 49); the grant's renewals prove the same key.
        let dpop_key = if binds_dpop(target.dpop, login_can_prove, &found.discovery) {
            Some(dpop::generate_key().map_err(|e| LoginError::Dpop(e.to_string()))?)
        } else {
            None
        };
        let request = GrantTarget {
            token_endpoint: &metadata.token_endpoint,
            issuer: &metadata.issuer,
            auth_methods_supported: metadata.token_endpoint_auth_methods_supported.as_deref(),
            resource: &found.discovery.resource,
            scope: scope.as_deref(),
            dpop: dpop_key.as_ref().map(|(key, _)| TokenDpop {
                key,
                nonces: &self.dpop_nonces,
                slot: &target.name,
            }),
        };
        let obtained = run_grant(target, &found.http, &request)
            .await
            .map_err(|e| login_error(target, e))?;
        let client = StoredClient {
            kind: RegistrationKind::Preregistered,
            client_id: grant_client_id(&target.grant).unwrap_or_default(),
            // Never stored: the grant reads its secret or key where config.toml says.
            client_secret: None,
            token_endpoint_auth_method: obtained.auth_method,
        };
        let mut creds = StoredCredentials {
            grant: Some(grant_name(&target.grant).to_string()),
            ..record_for(
                target,
                metadata,
                &found.discovery.resource,
                found.scopes.clone().unwrap_or_default(),
                client,
            )
        };
        apply_tokens(&mut creds, obtained.tokens);
        if let Some((_, stored)) = dpop_key {
            warn_if_unbound(&target.name, &creds.token_type);
            creds.dpop_key = Some(stored);
        }
        // Only the grant renews these: a refresh token would never be presented.
        creds.refresh_token = None;
        self.forget_tokens_of_other_issuer(target, creds).await
    }

    /// Runs the grant again for credentials it obtained, under the refresh lock the caller
    /// holds: at the stored token endpoint, for the stored resource and scopes. A refusal
    /// flags them (a new login is needed) as a refused refresh does; a credential that
    /// cannot be read, or network trouble, leaves them as they are.
    pub(in crate::engine) async fn renew_with_grant(
        &self,
        target: &ServerTarget,
        current: StoredCredentials,
    ) -> Result<StoredCredentials, VendError> {
        let name = &target.name;
        let endpoint = stored_token_endpoint(&current, name)?;
        let Some(_saving) = self.begin_token_call() else {
            return Err(VendError::ShuttingDown);
        };
        // Tokens bound to a key are renewed with a proof of the same key.
        let dpop_key = stored_dpop_key(&current, name)?;
        let http = self.server_http(target).await;
        // The secret method chosen at login, from the server's metadata then.
        let methods = [current.client.token_endpoint_auth_method.clone()];
        let scope = (!current.scopes.is_empty()).then(|| current.scopes.join(" "));
        let request = GrantTarget {
            token_endpoint: &endpoint,
            issuer: &current.issuer,
            auth_methods_supported: Some(&methods),
            resource: &current.resource,
            scope: scope.as_deref(),
            dpop: dpop_key.as_ref().map(|key| TokenDpop {
                key,
                nonces: &self.dpop_nonces,
                slot: name,
            }),
        };
        match run_grant(target, &http, &request).await {
            Ok(obtained) => {
                let mut updated = current.clone();
                apply_tokens(&mut updated, obtained.tokens);
                updated.refresh_token = None;
                updated.grant = Some(grant_name(&target.grant).to_string());
                let stored = self.save_unless_replaced(current, updated).await?;
                tracing::debug!(server = %name, "token renewed with the configured grant");
                usable(stored, name)
            }
            Err(GrantError::Token(error @ TokenError::OAuth { .. })) => {
                tracing::warn!(server = %name, error = %error, "the grant was refused; a new login is needed");
                self.flag_refused(
                    name,
                    current,
                    refusal_cause(&error),
                    format!(
                        "the authorization server refused the {} grant: {error}",
                        grant_name(&target.grant)
                    ),
                )
                .await
            }
            Err(GrantError::Token(error)) => {
                tracing::warn!(server = %name, error = %error, "renewal failed; credentials kept");
                Err(VendError::RefreshTransient {
                    name: name.clone(),
                    error,
                })
            }
            Err(other) => {
                let error = credential_error(target, other);
                // Once the token expired nothing is handed out until the credential is back
                // and the user logs in again: say so in the status.
                if check_unexpired(&current, name).is_err() {
                    tracing::warn!(server = %name, error = %error, "the grant's credential is missing and the token expired");
                    if let Ok(newer) = self
                        .flag_refused(
                            name,
                            current,
                            McpAuthStatusReason::GrantCredentialMissing,
                            error.to_string(),
                        )
                        .await
                    {
                        return Ok(newer);
                    }
                }
                Err(VendError::GrantCredential(error))
            }
        }
    }
}

/// The configured client id of a grant, when it has one.
fn grant_client_id(grant: &GrantConfig) -> Option<String> {
    match grant {
        GrantConfig::ClientCredentials { client_id, .. } => Some(client_id.clone()),
        GrantConfig::JwtBearer { client_id, .. } => client_id.clone(),
        GrantConfig::Enterprise { client_id, .. } => Some(client_id.clone()),
        GrantConfig::AuthorizationCode => None,
    }
}

/// One token request of the server's grant, its credential read just before.
async fn run_grant(
    target: &ServerTarget,
    http: &HttpClient,
    request: &GrantTarget<'_>,
) -> Result<Obtained, GrantError> {
    match &target.grant {
        GrantConfig::ClientCredentials { client_id, auth } => {
            let auth = client_credentials::resolve(auth).await?;
            let auth_method = match &auth {
                ClientAuth::Secret(_) => secret_method(request.auth_methods_supported)
                    .as_str()
                    .to_string(),
                ClientAuth::Key(_) => PRIVATE_KEY_JWT.to_string(),
                ClientAuth::Certificate(method) => method.as_str().to_string(),
            };
            let tokens =
                client_credentials::request(http, request, client_id, &auth, unix_now()).await?;
            Ok(Obtained {
                tokens,
                auth_method,
            })
        }
        GrantConfig::JwtBearer {
            client_id,
            assertion,
        } => {
            let assertion = jwt_bearer::read_assertion(assertion).await?;
            let tokens =
                jwt_bearer::request(http, request, client_id.as_deref(), &assertion).await?;
            Ok(Obtained {
                tokens,
                auth_method: "none".to_string(),
            })
        }
        // Enterprise servers are renewed by a new exchange (engine/enterprise.rs).
        GrantConfig::AuthorizationCode | GrantConfig::Enterprise { .. } => {
            Err(GrantError::NotConfigured)
        }
    }
}

/// A failed grant at login: its token request failed, or its credential cannot be read.
fn login_error(target: &ServerTarget, error: GrantError) -> LoginError {
    match error {
        GrantError::Token(error) => LoginError::GrantFailed {
            name: target.name.clone(),
            grant: grant_name(&target.grant),
            error: Box::new(error),
            hint: refusal_hint(&target.grant),
        },
        error => LoginError::GrantCredential(credential_error(target, error)),
    }
}

/// The grant's credential cannot be read or used (at a login or a renewal).
fn credential_error(target: &ServerTarget, error: GrantError) -> GrantCredentialError {
    GrantCredentialError {
        name: target.name.clone(),
        grant: grant_name(&target.grant),
        key: format!(
            "mcp_servers.{}.oauth.{}",
            target.name,
            target.grant.credential_key().unwrap_or("grant")
        ),
        error: Box::new(error),
    }
}

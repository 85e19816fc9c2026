//! Enterprise-managed authorization (MCP extension `enterprise-managed-authorization`,
//! SEP-990): the user signs in once to the enterprise identity provider (OpenID Connect,
//! [`sign_in`]); for each server configured with `grant = "enterprise"` the daemon then
//! exchanges the ID token at the identity provider for an ID-JAG (RFC 8693) and presents it
//! at the server's authorization server with the JWT bearer grant (RFC 7523), with no
//! browser and no consent screen per server. Renewal repeats the exchange with the stored
//! ID token; an expired ID token is refreshed at the identity provider when it issued a
//! refresh token, else the user signs in again.

pub mod idp;
mod sign_in;

use std::sync::Arc;

use mcp_app_server_protocol::{McpAuthStatus, McpAuthStatusReason, RegistrationKind};
use url::Url;

use self::idp::{IdpSession, discover_idp, read_id_token, resolve_auth, session_key};
use crate::config::enterprise::EnterpriseIdpConfig;
use crate::credentials::{StoreError, StoredClient, StoredCredentials, Update, unix_now};
use crate::engine::error::{EnterpriseError, LoginError, VendError};
use crate::engine::flow::warn_escape_hatches;
use crate::engine::service::OAuthService;
use crate::engine::stored::{apply_tokens, record_for, unrefreshable, usable};
use crate::engine::target::{EnterpriseTarget, ServerTarget};
use crate::engine::types::{EnterpriseLogin, LoginOptions, OAuthEvent};
use crate::oauth::discovery::{Discovery, discover};
use crate::oauth::grants::client_credentials::{GrantTarget, secret_method};
use crate::oauth::grants::id_jag;
use crate::oauth::grants::token_exchange::{Exchange, IdpClient, exchange};
use crate::oauth::http::{HttpClient, header_map};
use crate::oauth::token::TokenResponse;

/// An ID token closer to its expiry than this is refreshed (or signed in again) first.
const ID_TOKEN_MARGIN_SECS: i64 = 30;

impl OAuthService {
    /// Logs in to an enterprise server: with a usable identity provider session at once
    /// (exchange and JWT bearer grant), else through the identity provider's sign-in. Ends
    /// with exactly one `LoginCompleted` either way.
    pub async fn start_enterprise_login(
        self: &Arc<Self>,
        target: ServerTarget,
        enterprise: EnterpriseTarget,
        options: LoginOptions,
    ) -> Result<EnterpriseLogin, Arc<LoginError>> {
        let session = self
            .idp_session(&enterprise.idp)
            .await
            .map_err(|e| Arc::new(LoginError::from(e)))?;
        let session = match session {
            Some(s) => self.fresh_id_token(&enterprise.idp, s).await.ok(),
            None => None,
        };
        match session {
            Some(session) => {
                let result = self
                    .enterprise_login_with(&target, &enterprise, &options, &session)
                    .await;
                let result = result.map_err(Arc::new);
                self.announce_login(&target.name, target.account.clone(), &result);
                result.map(|()| EnterpriseLogin::Done)
            }
            None => Ok(EnterpriseLogin::SignIn(
                self.start_idp_sign_in(target, enterprise, options).await?,
            )),
        }
    }

    /// Stores `id_token` as the identity provider session, as a finished sign-in does
    /// (`connect --conformance` seeds it from the suite's context).
    pub async fn seed_idp_session(
        &self,
        idp: &EnterpriseIdpConfig,
        token_endpoint: Url,
        id_token: String,
    ) -> Result<(), LoginError> {
        let claims = read_id_token(&id_token).map_err(LoginError::Enterprise)?;
        let session = IdpSession {
            issuer: idp.issuer.clone(),
            id_token,
            refresh_token: None,
            expires_at: claims.exp,
            token_endpoint: token_endpoint.to_string(),
            client_id: idp.client_id.clone(),
            secret_method: String::new(),
        };
        Ok(self.save_idp_session(session).await?)
    }

    pub(super) async fn idp_session(
        &self,
        idp: &EnterpriseIdpConfig,
    ) -> Result<Option<IdpSession>, StoreError> {
        let key = session_key(&idp.issuer);
        let stored = self.load(&key).await?;
        Ok(stored
            .filter(|s| s.client.client_id == idp.client_id && !s.reauthentication_required)
            .map(IdpSession::from_stored))
    }

    pub(super) async fn save_idp_session(&self, session: IdpSession) -> Result<(), StoreError> {
        let stored = session.to_stored();
        self.blocking(move |s| s.save(&stored)).await?;
        Ok(())
    }

    /// The session with an ID token good for a while: as stored, or refreshed at the
    /// identity provider. Fails when it expired without a refresh token (sign in again).
    async fn fresh_id_token(
        &self,
        idp: &EnterpriseIdpConfig,
        session: IdpSession,
    ) -> Result<IdpSession, VendError> {
        if session.id_token_valid(unix_now(), ID_TOKEN_MARGIN_SECS) {
            return Ok(session);
        }
        let reauth = |reason: &str| VendError::ReauthenticationRequired {
            name: IDP_NAME_FOR_ERRORS.to_string(),
            reason: reason.to_string(),
        };
        if session.refresh_token.is_none() {
            return Err(reauth(
                "the ID token expired and the identity provider issued no refresh token; sign in again with mcpServer/oauth/login",
            ));
        }
        match self.refresh_idp_session(idp, &session).await {
            Ok(renewed) => Ok(renewed),
            Err(VendError::Enterprise(e)) if !e.is_transient() => {
                Err(reauth(&format!("refreshing the ID token failed ({e})")))
            }
            Err(e) => Err(e),
        }
    }

    /// Discovery of the server, then exchange and grant with `session`, and the save.
    async fn enterprise_login_with(
        &self,
        target: &ServerTarget,
        enterprise: &EnterpriseTarget,
        options: &LoginOptions,
        session: &IdpSession,
    ) -> Result<(), LoginError> {
        let headers = header_map(
            target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| LoginError::Discovery(e.into()))?;
        let http = self.server_http(target).await;
        let discovery = discover(
            &http,
            &target.url,
            &headers,
            target.resource_override.as_deref(),
            target.discovery_overrides(),
            &self.cache,
        )
        .await?;
        warn_escape_hatches(&target.name, &discovery);
        let scopes = discovery
            .scopes_for(
                options.scopes.as_deref(),
                target.configured_scopes.as_deref(),
            )
            .unwrap_or_default();
        // Renewal is a new exchange, never a refresh: no refresh token is asked for.
        let scopes: Vec<String> = scopes
            .into_iter()
            .filter(|s| s != "offline_access")
            .collect();
        let method = secret_method(
            discovery
                .metadata
                .token_endpoint_auth_methods_supported
                .as_deref(),
        );
        let mut creds = credentials_for(target, enterprise, &discovery, method.as_str(), &scopes);
        let tokens = self
            .exchange_and_grant(target, enterprise, session, &http, &creds)
            .await
            .map_err(LoginError::Enterprise)?;
        apply_enterprise_tokens(&mut creds, tokens);
        let key = creds.key();
        self.blocking(move |s| s.update(&key, Box::new(|_| Update::Save(creds))).map(drop))
            .await?;
        Ok(())
    }

    /// The two token requests: the ID-JAG from the identity provider for the server's
    /// authorization server and resource, then the access token for it.
    async fn exchange_and_grant(
        &self,
        target: &ServerTarget,
        enterprise: &EnterpriseTarget,
        session: &IdpSession,
        server_http: &HttpClient,
        creds: &StoredCredentials,
    ) -> Result<TokenResponse, EnterpriseError> {
        let idp_auth = resolve_auth(enterprise.idp.auth.as_ref(), None, "[enterprise_idp]").await?;
        let as_auth = resolve_auth(
            enterprise.auth.as_ref(),
            target.client_secret.as_deref(),
            &format!("mcp_servers.{}.oauth", target.name),
        )
        .await?;
        let idp_endpoint = url_of(&session.token_endpoint)?;
        let idp_methods =
            (!session.secret_method.is_empty()).then(|| vec![session.secret_method.clone()]);
        let idp_http = self.idp_http(&enterprise.idp).await;
        let scope = (!creds.scopes.is_empty()).then(|| creds.scopes.join(" "));
        let jag = exchange(
            &idp_http,
            &IdpClient {
                token_endpoint: &idp_endpoint,
                issuer: &session.issuer,
                auth_methods_supported: idp_methods.as_deref(),
                client_id: &enterprise.idp.client_id,
                auth: idp_auth.as_ref(),
            },
            &Exchange {
                audience: &creds.issuer,
                resource: &creds.resource,
                scope: scope.as_deref(),
            },
            &session.id_token,
            unix_now(),
        )
        .await
        .map_err(|error| EnterpriseError::Exchange {
            server: target.name.clone(),
            error,
        })?;
        let as_endpoint = url_of(&creds.token_endpoint)?;
        let as_methods = vec![creds.client.token_endpoint_auth_method.clone()];
        id_jag::request(
            server_http,
            &GrantTarget {
                token_endpoint: &as_endpoint,
                issuer: &creds.issuer,
                auth_methods_supported: Some(&as_methods),
                resource: &creds.resource,
                scope: scope.as_deref(),
                // Enterprise tokens are not bound to a key (docs/extensions.md).
                dpop: None,
            },
            &creds.client.client_id,
            as_auth.as_ref(),
            &jag,
            unix_now(),
        )
        .await
        .map_err(|error| EnterpriseError::Grant {
            server: target.name.clone(),
            error,
        })
    }

    /// Renewal of an enterprise server's token (called under its refresh lock): a fresh
    /// exchange with the stored ID token. A refusal flags the server's credentials for a
    /// new login; the identity provider session and other servers are left as they are.
    pub(super) async fn enterprise_renew(
        &self,
        target: &ServerTarget,
        current: StoredCredentials,
    ) -> Result<StoredCredentials, VendError> {
        let name = &target.name;
        let Some(enterprise) = &target.enterprise else {
            return unrefreshable(current, name);
        };
        let session = self.idp_session(&enterprise.idp).await?.ok_or_else(|| {
            VendError::ReauthenticationRequired {
                name: name.clone(),
                reason: "there is no identity provider sign-in; log in again".into(),
            }
        })?;
        let session = self
            .fresh_id_token(&enterprise.idp, session)
            .await
            .map_err(|e| match e {
                VendError::ReauthenticationRequired { reason, .. } => {
                    VendError::ReauthenticationRequired {
                        name: name.clone(),
                        reason,
                    }
                }
                other => other,
            })?;
        let Some(_saving) = self.begin_token_call() else {
            return Err(VendError::ShuttingDown);
        };
        let http = self.server_http(target).await;
        match self
            .exchange_and_grant(target, enterprise, &session, &http, &current)
            .await
        {
            Ok(tokens) => {
                let mut updated = current.clone();
                apply_enterprise_tokens(&mut updated, tokens);
                let stored = self.save_unless_replaced(current, updated).await?;
                tracing::debug!(server = %name, "enterprise token renewed");
                usable(stored, name)
            }
            Err(error) if error.is_refusal() => {
                tracing::warn!(server = %name, error = %error, "enterprise renewal refused; a new login is needed");
                self.flag_refused(
                    name,
                    current,
                    McpAuthStatusReason::RefreshRefused,
                    error.to_string(),
                )
                .await
            }
            Err(error) => {
                tracing::warn!(server = %name, error = %error, "enterprise renewal failed; credentials kept");
                Err(VendError::Enterprise(error))
            }
        }
    }

    /// The HTTP client for the identity provider: held to the network policy its own
    /// configured issuer's addresses give (as a configured server's URL gives its own).
    pub(super) async fn idp_http(&self, idp: &EnterpriseIdpConfig) -> HttpClient {
        match Url::parse(&idp.issuer) {
            Ok(url) => self.http.for_server(&url, Default::default()).await,
            Err(_) => self.http.clone(),
        }
    }

    /// Discovers the identity provider (its `openid-configuration`).
    pub(super) async fn idp_metadata(
        &self,
        idp: &EnterpriseIdpConfig,
    ) -> Result<crate::oauth::discovery::AuthServerMetadata, LoginError> {
        let http = self.idp_http(idp).await;
        discover_idp(&http, &idp.issuer)
            .await
            .map_err(LoginError::Enterprise)
    }

    /// Announces the end of an enterprise login.
    pub(super) fn announce_login(
        &self,
        name: &str,
        account: Option<String>,
        result: &Result<(), Arc<LoginError>>,
    ) {
        match result {
            Ok(()) => {
                tracing::info!(server = %name, "enterprise login completed");
                self.emit(OAuthEvent::AuthStatusChanged {
                    name: name.to_string(),
                    status: McpAuthStatus::LoggedIn,
                    reason: None,
                });
                self.emit(OAuthEvent::LoginCompleted {
                    name: name.to_string(),
                    account,
                    result: Ok(()),
                });
            }
            Err(e) => {
                tracing::warn!(server = %name, error = %e, "enterprise login failed");
                self.emit(OAuthEvent::LoginCompleted {
                    name: name.to_string(),
                    account,
                    result: Err(e.clone()),
                });
            }
        }
    }
}

/// The name errors about the identity provider session use.
const IDP_NAME_FOR_ERRORS: &str = "the enterprise identity provider";

fn url_of(text: &str) -> Result<Url, EnterpriseError> {
    Url::parse(text).map_err(|e| EnterpriseError::IdpDiscovery {
        issuer: text.to_string(),
        reason: format!("the stored token endpoint is not a URL ({e})"),
    })
}

/// The credentials record of an enterprise server before its tokens: the authorization
/// server, its token endpoint and the resource exactly as discovery found them, the client.
fn credentials_for(
    target: &ServerTarget,
    enterprise: &EnterpriseTarget,
    discovery: &Discovery,
    secret_method: &str,
    scopes: &[String],
) -> StoredCredentials {
    let client = StoredClient {
        kind: RegistrationKind::Preregistered,
        client_id: target
            .client_id
            .clone()
            .unwrap_or_else(|| enterprise.client_id.clone()),
        // The secret stays in its variable; renewal reads it again.
        client_secret: None,
        token_endpoint_auth_method: secret_method.to_string(),
    };
    StoredCredentials {
        // Renewed by a new exchange with the stored ID token, never by a refresh token.
        grant: Some("enterprise".to_string()),
        ..record_for(
            target,
            &discovery.metadata,
            &discovery.resource,
            scopes.to_vec(),
            client,
        )
    }
}

/// Renewal is a new exchange, never a refresh: a refresh token of the authorization server
/// is not kept.
fn apply_enterprise_tokens(creds: &mut StoredCredentials, mut tokens: TokenResponse) {
    tokens.refresh_token = None;
    apply_tokens(creds, tokens);
    creds.refresh_token = None;
}

//! One login for servers behind one gateway: a login that another server's login at the
//! same authorization server can serve without the browser.
//!
//! - Same issuer and same `resource` (rule 85): the server shares the other's stored
//!   credentials through a link in the store; they are kept once, and every refresh of
//!   either serves both.
//! - Same issuer, another `resource` (rule 86): the other login's refresh token is presented
//!   with this server's `resource` (RFC 8707), and the tokens obtained are this server's
//!   own, renewed the same way later (`Renewal::ThroughOwner`).
//!
//! Anything else (another issuer, a refusal, an error) leaves the browser login to run as
//! before.

use mcp_app_server_protocol::McpAuthStatus;

use crate::credentials::{StoredCredentials, StoredLink, Update, unix_now};
use crate::engine::error::{LoginError, VendError};
use crate::engine::flow::{Discovered, binds_dpop};
use crate::engine::service::OAuthService;
use crate::engine::stored::{
    apply_tokens, record_for, registration_from_client, stored_token_endpoint, usable,
};
use crate::engine::target::ServerTarget;
use crate::engine::types::{LoginOptions, OAuthEvent};
use crate::oauth::http::HttpClient;
use crate::oauth::registration::TokenAuthMethod;
use crate::oauth::token::{self, TokenError, TokenResponse};

/// How another server's login can serve this one.
enum Serving {
    /// The same issuer and resource: share its entry (rule 85).
    Share(StoredCredentials),
    /// The same issuer, another resource: its refresh token, with this resource (rule 86).
    Refresh(StoredCredentials),
}

impl OAuthService {
    /// A login served by another server's login at the same authorization server, without
    /// the browser. `true` when the server is now logged in (announced); `false` leaves the
    /// login to the browser.
    pub(super) async fn shared_login(
        &self,
        target: &ServerTarget,
        options: &LoginOptions,
        found: &Discovered,
    ) -> Result<bool, LoginError> {
        if !target.share_login || target.grant.is_machine() || target.enterprise.is_some() {
            return Ok(false);
        }
        let all = self.store_list().await?;
        // A login of its own that still serves is the user asking to sign in again: the
        // browser it is.
        let key = target.key();
        if all
            .iter()
            .any(|c| c.key() == key && c.shared_with.is_none() && serves(c))
        {
            return Ok(false);
        }
        let binds = binds_dpop(target.dpop, options.dpop, &found.discovery);
        let issuer = &found.discovery.metadata.issuer;
        let resource = &found.discovery.resource;
        let asked = found.scopes.as_deref().unwrap_or_default();
        let mut choice = None;
        for c in &all {
            if c.key() == key
                // Rule 82: an account shares only the same account's login elsewhere; a
                // login under another label is another user.
                || c.account != target.account
                || c.shared_with.is_some()
                || c.refreshed_through.is_some()
                || c.grant.is_some()
                || !serves(c)
                // Rule 88: the exact issuer, never another authorization server.
                || c.issuer != *issuer
                || target.client_id.as_ref().is_some_and(|id| *id != c.client.client_id)
                || !asked.iter().all(|s| c.scopes.contains(s))
                || !certificate_fits(c, target)
            {
                continue;
            }
            if c.resource == *resource {
                if c.dpop_key.is_some() == binds {
                    choice = Some(Serving::Share(c.clone()));
                    break;
                }
            } else if choice.is_none()
                && c.refresh_token.is_some()
                && c.dpop_key.is_none()
                && !binds
            {
                choice = Some(Serving::Refresh(c.clone()));
            }
        }
        let done = match choice {
            None => false,
            Some(Serving::Share(owner)) => self.link_to(target, owner, resource).await?,
            Some(Serving::Refresh(owner)) => self.refresh_into(target, owner, found).await?,
        };
        if done {
            tracing::info!(server = %target.name, "logged in through another server's login at the same authorization server");
            self.emit(OAuthEvent::AuthStatusChanged {
                name: target.name.clone(),
                status: McpAuthStatus::LoggedIn,
                reason: None,
            });
            self.emit(OAuthEvent::LoginCompleted {
                name: target.name.clone(),
                account: target.account.clone(),
                result: Ok(()),
            });
        }
        Ok(done)
    }

    /// Rule 85: the server's entry becomes a link to `owner`'s, checked again in the store
    /// under its lock (the owner's tokens must still be of this issuer and resource).
    async fn link_to(
        &self,
        target: &ServerTarget,
        owner: StoredCredentials,
        resource: &str,
    ) -> Result<bool, LoginError> {
        let key = target.key();
        let link = StoredLink {
            server: key.clone(),
            owner: owner.key(),
            issuer: owner.issuer.clone(),
            resource: resource.to_string(),
        };
        let stored = self
            .store_update(key, Box::new(move |_| Update::Link(link)))
            .await?;
        Ok(stored.is_some_and(|c| c.shared_with.is_some()))
    }

    /// Rule 86: tokens for this server's resource from `owner`'s refresh token, under the
    /// owner's refresh lock; a rotated refresh token goes back to the owner first.
    async fn refresh_into(
        &self,
        target: &ServerTarget,
        owner: StoredCredentials,
        found: &Discovered,
    ) -> Result<bool, LoginError> {
        let owner_key = owner.key();
        let lock_key = owner_key.clone();
        let _owner_lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        // Read again under the lock: a refresh of the owner may have rotated it meanwhile.
        let Some(owner) = self.load(&owner_key).await?.filter(|c| {
            c.shared_with.is_none()
                && c.issuer == owner.issuer
                && c.refresh_token.is_some()
                && serves(c)
        }) else {
            return Ok(false);
        };
        let Some(_saving) = self.begin_token_call() else {
            return Err(LoginError::ShuttingDown);
        };
        let scopes = found.scopes.as_deref();
        let tokens = match self
            .refresh_for_resource(&found.http, &owner, &found.discovery.resource, scopes)
            .await
        {
            Ok(tokens) => tokens,
            Err(e) => {
                tracing::info!(server = %target.name, error = %e, "the authorization server did not give a token for this resource from the other login; the browser login goes on");
                return Ok(false);
            }
        };
        let tokens = self.keep_rotated(&owner, tokens).await?;
        let mut creds = record_for(
            target,
            &found.discovery.metadata,
            &found.discovery.resource,
            scopes.map(<[String]>::to_vec).unwrap_or_default(),
            owner.client.clone(),
        );
        apply_tokens(&mut creds, tokens);
        creds.refresh_token = None;
        creds.refreshed_through = Some(owner_key);
        self.forget_tokens_of_other_issuer(target, creds).await?;
        Ok(true)
    }

    /// The renewal of tokens obtained through another server's refresh token (rule 86):
    /// again through it, under its refresh lock. The caller holds this server's lock.
    pub(super) async fn renew_through_owner(
        &self,
        target: &ServerTarget,
        current: StoredCredentials,
    ) -> Result<StoredCredentials, VendError> {
        let name = &target.name;
        let Some(owner_key) = current.refreshed_through.clone() else {
            return usable(Some(current), name);
        };
        let lock_key = owner_key.clone();
        let _owner_lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let owner = self.load(&owner_key).await?.filter(|c| {
            c.shared_with.is_none()
                && c.issuer == current.issuer
                && c.refresh_token.is_some()
                && !c.reauthentication_required
        });
        let Some(owner) = owner else {
            return self
                .flag_refused(
                    name,
                    current,
                    mcp_app_server_protocol::McpAuthStatusReason::RefreshRefused,
                    "the login these tokens were renewed through is gone; log in again".into(),
                )
                .await;
        };
        let Some(_saving) = self.begin_token_call() else {
            return Err(VendError::ShuttingDown);
        };
        let http = self.server_http(target).await;
        let scopes = (!current.scopes.is_empty()).then(|| current.scopes.clone());
        match self
            .refresh_for_resource(&http, &owner, &current.resource, scopes.as_deref())
            .await
        {
            Ok(tokens) => {
                let tokens = self.keep_rotated(&owner, tokens).await?;
                let mut updated = current.clone();
                apply_tokens(&mut updated, tokens);
                updated.refresh_token = None;
                let stored = self.save_unless_replaced(current, updated).await?;
                usable(stored, name)
            }
            Err(error @ TokenError::OAuth { .. }) => {
                tracing::warn!(server = %name, error = %error, "renewal through the other server's login refused; a new login is needed");
                self.refresh_refused(name, current, &error, "").await
            }
            Err(error) => Err(VendError::RefreshTransient {
                name: name.clone(),
                error,
            }),
        }
    }

    /// The refresh grant with `owner`'s refresh token and client, at the token endpoint of
    /// the issuer that issued it, for `resource` (RFC 8707).
    async fn refresh_for_resource(
        &self,
        http: &HttpClient,
        owner: &StoredCredentials,
        resource: &str,
        scopes: Option<&[String]>,
    ) -> Result<TokenResponse, TokenError> {
        let endpoint =
            stored_token_endpoint(owner, &owner.server_name).map_err(|_| TokenError::Invalid {
                endpoint: owner.token_endpoint.clone(),
                reason: "the stored token endpoint is not a URL".into(),
            })?;
        let refresh_token = owner.refresh_token.as_deref().unwrap_or_default();
        let registration = registration_from_client(&owner.client);
        token::refresh(
            http,
            &endpoint,
            &registration,
            refresh_token,
            resource,
            scopes,
            None,
        )
        .await
    }

    /// A refresh token the answer rotated belongs to the grant, so to `owner`, whose old
    /// one no longer works: saved into the owner's entry before anything else (a rotated
    /// refresh token must never be lost). The answer's access token stays with the caller.
    async fn keep_rotated(
        &self,
        owner: &StoredCredentials,
        mut tokens: TokenResponse,
    ) -> Result<TokenResponse, crate::credentials::StoreError> {
        let Some(rotated) = tokens.refresh_token.take() else {
            return Ok(tokens);
        };
        if owner.refresh_token.as_deref() == Some(rotated.as_str()) {
            return Ok(tokens);
        }
        let mut updated = owner.clone();
        updated.refresh_token = Some(rotated);
        updated.updated_at = unix_now();
        self.save_unless_replaced(owner.clone(), updated).await?;
        Ok(tokens)
    }
}

/// Rule 42: tokens bound to a client certificate, or issued to a client the server knows
/// by one, serve only a server that presents that certificate (a server without one could
/// neither use the tokens nor renew them).
fn certificate_fits(c: &StoredCredentials, target: &ServerTarget) -> bool {
    let presented = target.certificate_x5t();
    match &c.certificate_x5t {
        Some(bound) => presented.as_ref() == Some(bound),
        None => {
            presented.is_some()
                || !TokenAuthMethod::from_name(&c.client.token_endpoint_auth_method)
                    .is_some_and(TokenAuthMethod::is_mutual_tls)
        }
    }
}

/// Stored credentials that still give a token without the user: not flagged, and unexpired
/// or renewable.
fn serves(c: &StoredCredentials) -> bool {
    !c.reauthentication_required
        && (c.refresh_token.is_some() || c.expires_at.is_none_or(|t| t > unix_now()))
}

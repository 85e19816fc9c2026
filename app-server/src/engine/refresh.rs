//! Renewal by the refresh token, and the compare-and-save every renewal ends with.

use mcp_app_server_protocol::{McpAuthStatus, McpAuthStatusReason};

use crate::credentials::{StoreError, StoredCredentials, Update, unix_now};
use crate::engine::error::VendError;
use crate::engine::service::OAuthService;
use crate::engine::stored::{
    apply_tokens, refusal_cause, registration_from_client, stored_dpop_key, stored_token_endpoint,
    unrefreshable, usable,
};
use crate::engine::target::ServerTarget;
use crate::engine::types::OAuthEvent;
use crate::oauth::dpop::TokenDpop;
use crate::oauth::token::{self, TokenError};

impl OAuthService {
    /// Renewal by the refresh token (RFC 6749 6), under the refresh lock the caller holds:
    /// at the token endpoint of the issuer that issued the tokens, with a proof of the same
    /// key when they are DPoP-bound. A refusal flags the credentials (a new login is needed);
    /// network trouble leaves them as they are.
    pub(super) async fn renew_with_refresh_token(
        &self,
        target: &ServerTarget,
        current: StoredCredentials,
    ) -> Result<StoredCredentials, VendError> {
        let name = &target.name;
        let Some(refresh_token) = current.refresh_token.clone() else {
            return unrefreshable(current, name);
        };
        // Tokens only ever go to the token endpoint of the issuer that issued them.
        let endpoint = stored_token_endpoint(&current, name)?;
        // From here on the server may rotate the refresh token: shutdown waits until the
        // answer is saved, and no refresh starts once shutdown has begun.
        let Some(_saving) = self.begin_token_call() else {
            return Err(VendError::ShuttingDown);
        };
        let registration = registration_from_client(&current.client);
        let scopes = (!current.scopes.is_empty()).then(|| current.scopes.clone());
        let http = self.server_http(target).await;
        // Tokens bound to a key are refreshed with a proof of the same key.
        let dpop_key = stored_dpop_key(&current, name)?;
        let result = token::refresh(
            &http,
            &endpoint,
            &registration,
            &refresh_token,
            &current.resource,
            scopes.as_deref(),
            dpop_key.as_ref().map(|key| TokenDpop {
                key,
                nonces: &self.dpop_nonces,
                slot: name,
            }),
        )
        .await;
        match result {
            Ok(tokens) => {
                let mut updated = current.clone();
                apply_tokens(&mut updated, tokens);
                // Saved before anyone sees the new access token: a rotated refresh token
                // must never be lost.
                let stored = self.save_unless_replaced(current, updated).await?;
                tracing::debug!(server = %name, "token refreshed");
                usable(stored, name)
            }
            // An OAuth error answer is the server refusing this grant for good: only a new
            // login helps (invalid_grant above all; also invalid_client, invalid_scope, ...).
            // A DCR client the server no longer knows (servers prune registrations): its
            // stored registration is dropped, so the next login registers again instead of
            // sending the browser to an authorization page that refuses the client.
            Err(error @ TokenError::OAuth { .. })
                if error.is_client_rejected()
                    && current.client.kind == mcp_app_server_protocol::RegistrationKind::Dcr =>
            {
                tracing::warn!(server = %name, error = %error, "the authorization server no longer knows this client registration; it is dropped and the next login registers again");
                self.flag_refused(
                    name,
                    current,
                    mcp_app_server_protocol::McpAuthStatusReason::RegistrationDropped,
                    format!(
                        "the authorization server no longer knows the client registration ({error}); the registration was dropped and the next login registers a new client"
                    ),
                )
                .await
            }
            Err(error @ TokenError::OAuth { .. }) => {
                tracing::warn!(server = %name, error = %error, "refresh refused; a new login is needed");
                self.refresh_refused(name, current, &error).await
            }
            // Network trouble, 5xx, 429, or an answer that cannot be used: the stored
            // credentials stay as they are, a later try may work.
            Err(error) => {
                tracing::warn!(server = %name, error = %error, "refresh failed; credentials kept");
                Err(VendError::RefreshTransient {
                    name: name.clone(),
                    error,
                })
            }
        }
    }

    /// [`OAuthService::flag_refused`] for a refresh the token endpoint refused with
    /// `error` (an OAuth error answer).
    pub(super) async fn refresh_refused(
        &self,
        name: &str,
        current: StoredCredentials,
        error: &TokenError,
    ) -> Result<StoredCredentials, VendError> {
        self.flag_refused(
            name,
            current,
            refusal_cause(error),
            format!("the authorization server refused the refresh: {error}"),
        )
        .await
    }

    /// The authorization server refused to renew `current` for good: flags it (a new login
    /// is needed) with `cause`, announces that, and answers with
    /// [`VendError::ReauthenticationRequired`], unless a login finished meanwhile, whose
    /// credentials then stand. A refused refresh after the MCP server refused an unexpired
    /// access token is recorded as a revoked token.
    pub(super) async fn flag_refused(
        &self,
        name: &str,
        current: StoredCredentials,
        cause: McpAuthStatusReason,
        reason: String,
    ) -> Result<StoredCredentials, VendError> {
        let revoked = self
            .challenges
            .take_refused_unexpired(&current.key(), &current.access_token);
        let cause = match cause {
            McpAuthStatusReason::RefreshRefused if revoked => McpAuthStatusReason::TokenRevoked,
            other => other,
        };
        let mut flagged = current.clone();
        flagged.reauthentication_required = true;
        flagged.login_reason = Some(cause);
        flagged.updated_at = unix_now();
        let stored = self.save_unless_replaced(current, flagged.clone()).await?;
        match stored {
            Some(s) if s == flagged => {
                self.emit(OAuthEvent::AuthStatusChanged {
                    name: name.to_string(),
                    status: McpAuthStatus::ReauthenticationRequired,
                    reason: Some(cause),
                });
                Err(VendError::ReauthenticationRequired {
                    name: name.to_string(),
                    reason,
                })
            }
            // A login finished meanwhile: its credentials stand.
            other => usable(other, name),
        }
    }

    /// Saves `new` unless the entry differs from `expected` (a login finished while the
    /// refresh ran). The comparison and the save are one locked read-modify-write of the
    /// store, so no write of another process lands between them. Returns what is stored
    /// afterwards.
    pub(super) async fn save_unless_replaced(
        &self,
        expected: StoredCredentials,
        new: StoredCredentials,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.store_update(
            expected.key(),
            Box::new(move |stored| {
                if stored == Some(&expected) {
                    Update::Save(new)
                } else {
                    Update::Keep
                }
            }),
        )
        .await
    }
}

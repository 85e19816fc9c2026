//! Logout, with RFC 7009 revocation at the issuer that issued the tokens.

use mcp_app_server_protocol::{McpAuthStatus, McpAuthStatusReason};
use url::Url;

use crate::credentials::StoredCredentials;
use crate::engine::error::LogoutError;
use crate::engine::service::OAuthService;
use crate::engine::stored::registration_from_client;
use crate::engine::target::ServerTarget;
use crate::engine::types::{LogoutOutcome, OAuthEvent};
use crate::oauth::http::HttpClient;
use crate::oauth::token::{self, TokenTypeHint};

impl OAuthService {
    /// Deletes a server's credentials, revoking them first when asked (rule 21: the refresh
    /// token, then the access token). A failed revocation still deletes them, and says so.
    /// Tokens another server still uses (a shared login, rule 87) are not revoked: only
    /// this server's hold on them goes.
    pub async fn logout(
        &self,
        target: &ServerTarget,
        revoke: bool,
    ) -> Result<LogoutOutcome, LogoutError> {
        let key = target.key();
        // Waits for a refresh under way: the tokens revoked are then the newest, and no
        // refresh finishing later can write deleted credentials back. A shared login's
        // refreshes take the lock of the entry that holds its tokens.
        let lock_key = match self.load(&key).await? {
            Some(c) => c.entry_key(),
            None => key.clone(),
        };
        let _lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let Some(creds) = self.load(&key).await? else {
            return Ok(LogoutOutcome {
                removed: false,
                revoked: false,
                revocation_error: revoke
                    .then(|| "there were no stored credentials to revoke".to_string()),
            });
        };
        let users = self.other_users(&creds).await?;
        let (revoked, revocation_error) = if revoke && !users.is_empty() {
            (
                false,
                Some(format!(
                    "not revoked: the tokens also serve {}; log out of {} too to revoke them",
                    users.join(", "),
                    if users.len() == 1 { "it" } else { "them" }
                )),
            )
        } else if revoke {
            let http = self.server_http(target).await;
            match self.revoke_tokens(&http, &creds).await {
                Ok(()) => (true, None),
                Err(reason) => (false, Some(reason)),
            }
        } else {
            (false, None)
        };
        let removed = self.queue.write(move |s| s.delete(&key)).await?;
        if removed {
            self.emit(OAuthEvent::AuthStatusChanged {
                name: target.name.clone(),
                status: McpAuthStatus::NotLoggedIn,
                reason: Some(McpAuthStatusReason::NeverLoggedIn),
            });
        }
        Ok(LogoutOutcome {
            removed,
            revoked,
            revocation_error,
        })
    }

    /// The other servers whose tokens `creds`' revocation would end (rule 87): the server
    /// whose login `creds` share, the servers sharing `creds`, and the servers whose
    /// tokens are renewed through `creds`' refresh token.
    async fn other_users(&self, creds: &StoredCredentials) -> Result<Vec<String>, LogoutError> {
        let entry = creds.entry_key();
        let mut users: Vec<String> = self
            .store_list()
            .await?
            .into_iter()
            .filter(|c| c.key() != creds.key())
            .filter(|c| {
                c.entry_key() == entry
                    || (c.refreshed_through.as_ref() == Some(&entry)
                        && creds.refresh_token.is_some())
            })
            .map(|c| format!("`{}`", c.server_name))
            .collect();
        users.sort();
        users.dedup();
        Ok(users)
    }

    /// RFC 7009 at the stored revocation endpoint: the refresh token first (that ends the
    /// grant), then the access token, each tried whatever became of the other.
    async fn revoke_tokens(
        &self,
        http: &HttpClient,
        creds: &StoredCredentials,
    ) -> Result<(), String> {
        let endpoint = match creds.revocation_endpoint.as_deref().map(Url::parse) {
            None => {
                return Err(format!(
                    "{} advertises no revocation endpoint; the tokens stay valid there until they expire",
                    creds.issuer
                ));
            }
            Some(Err(e)) => {
                return Err(format!("the stored revocation endpoint is not a URL: {e}"));
            }
            Some(Ok(endpoint)) => endpoint,
        };
        let registration = registration_from_client(&creds.client);
        let mut failures = Vec::new();
        let mut refresh_revoked = false;
        if let Some(rt) = &creds.refresh_token {
            match token::revoke(
                http,
                &endpoint,
                &registration,
                rt,
                Some(TokenTypeHint::RefreshToken),
            )
            .await
            {
                Ok(()) => refresh_revoked = true,
                Err(e) => failures.push(format!("refresh token: {e}")),
            }
        }
        match token::revoke(
            http,
            &endpoint,
            &registration,
            &creds.access_token,
            Some(TokenTypeHint::AccessToken),
        )
        .await
        {
            Ok(()) => {}
            // RFC 7009 2.2.1: a server may revoke only refresh tokens; revoking the refresh
            // token ended the grant, and the access token with it at such servers.
            Err(e) if refresh_revoked && e.oauth_error() == Some("unsupported_token_type") => {}
            Err(e) => failures.push(format!("access token: {e}")),
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "revocation failed ({}); the local credentials were deleted anyway",
                failures.join("; ")
            ))
        }
    }
}

//! Token vending: a valid access token per request, with one shared refresh per server.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::error::LoginError;
use super::service::OAuthService;
use super::target::ServerTarget;
use crate::credentials::{StoredCredentials, unix_now};
use crate::oauth::http::TOTAL_TIMEOUT;
use crate::oauth::token::{TokenError, TokenResponse};

/// Refresh when the token expires within this many seconds, unless asked otherwise.
pub const DEFAULT_MIN_VALIDITY_SECS: u32 = 60;
/// A validity no credentials have, not even those without an expiry: refresh now. Callers
/// of [`OAuthService::token`] stay below it ([`MAX_MIN_VALIDITY_SECS`]).
pub(super) const REFRESH_NOW: u32 = u32::MAX;
/// The largest validity [`OAuthService::token`] may be asked for.
pub const MAX_MIN_VALIDITY_SECS: u32 = REFRESH_NOW - 1;

impl OAuthService {
    /// A valid access token, refreshed first when it expires within `min_validity_secs`.
    ///
    /// One refresh at a time per server. Within the daemon, callers that find a refresh under
    /// way wait for it and share its result, failures included. Across processes the store's
    /// refresh lock serializes refreshes and the store is re-read under it, so credentials
    /// another process wrote meanwhile are used as they are and a refresh always presents
    /// the newest refresh token (a rotated one used twice revokes the grant at strict
    /// servers). Credentials that changed since the caller looked count as fresh: they are as
    /// new as another refresh would make them.
    pub async fn token(
        self: &Arc<Self>,
        target: &ServerTarget,
        min_validity_secs: u32,
    ) -> Result<Arc<StoredCredentials>, Arc<LoginError>> {
        // Shared with the store's copy: a fresh token is handed out without copying it.
        let stored = self
            .queue
            .load_shared(target.lookup_key())
            .await
            .map_err(LoginError::from)?;
        let mut seen = usable(stored, &target.name)?;
        // A second round only when the refresh joined had started from older credentials.
        for _ in 0..3 {
            if fresh_enough(&seen, min_validity_secs) {
                return Ok(seen);
            }
            if !can_renew(target, &seen) && target.enterprise.is_none() {
                check_unexpired(&seen, &target.name)?;
                return Ok(seen);
            }
            let result = self
                .shared_refresh(target, &seen, min_validity_secs)
                .await?;
            if result != *seen || fresh_enough(&result, min_validity_secs) {
                return Ok(Arc::new(result));
            }
            seen = Arc::new(result);
        }
        Ok(seen)
    }

    /// Refreshes now, however valid the stored token looks and whether or not it has an
    /// expiry: the MCP server refused it (a 401), so its expiry is no guide. The same single
    /// refresh per server as [`OAuthService::token`]: a caller that finds one under way
    /// joins it, and credentials another process refreshed meanwhile count as the new ones.
    /// Without a refresh token (and no configured grant to run again) the stored credentials
    /// come back unchanged.
    pub async fn refresh_now(
        self: &Arc<Self>,
        target: &ServerTarget,
    ) -> Result<StoredCredentials, Arc<LoginError>> {
        let mut seen = usable(self.load(&target.key()).await?, &target.name)?;
        // A second round only when the refresh joined had started from older credentials
        // and handed back the very ones refused.
        for _ in 0..2 {
            if !can_renew(target, &seen) && target.enterprise.is_none() {
                break;
            }
            let result = self.shared_refresh(target, &seen, REFRESH_NOW).await?;
            if result.access_token != seen.access_token {
                return Ok(result);
            }
            seen = result;
        }
        Ok(seen)
    }

    /// Joins the refresh under way for this server, or starts one. The refresh runs as its
    /// own task: a caller that goes away (a closed connection) cannot stop it between the
    /// token endpoint's answer and the save, which would lose a rotated refresh token.
    pub(super) async fn shared_refresh(
        self: &Arc<Self>,
        target: &ServerTarget,
        seen: &StoredCredentials,
        min_validity_secs: u32,
    ) -> RefreshOutcome {
        let slot = target.key().storage_key();
        let refresh = {
            let mut in_flight = self.lock_refreshes();
            match in_flight.get(&slot) {
                Some((_, refresh)) => refresh.clone(),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let service = self.clone();
                    let (target, seen) = (target.clone(), seen.clone());
                    let slot_of_task = slot.clone();
                    // The task is spawned on the first poll, after the map's lock is
                    // released: a task the runtime drops at once (shutting down) takes that
                    // lock in its guard. The id keeps the guard from removing a successor.
                    let refresh = async move {
                        let (name, endpoint) = (target.name.clone(), seen.token_endpoint.clone());
                        let guard = InFlightGuard {
                            service: service.clone(),
                            slot: slot_of_task,
                            id,
                        };
                        let task = tokio::spawn(async move {
                            let _guard = guard;
                            service
                                .refresh(&target, seen, min_validity_secs)
                                .await
                                .map_err(Arc::new)
                        });
                        task.await.unwrap_or_else(|e| {
                            tracing::error!(server = %name, error = %e, "the refresh task failed");
                            Err(Arc::new(if e.is_cancelled() {
                                LoginError::ShuttingDown
                            } else {
                                LoginError::RefreshTransient {
                                    name,
                                    error: TokenError::Invalid {
                                        endpoint,
                                        reason: "the refresh stopped unexpectedly".into(),
                                    },
                                }
                            }))
                        })
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(slot, (id, refresh.clone()));
                    refresh
                }
            }
        };
        refresh.await
    }

    pub(super) fn lock_refreshes(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, (u64, InFlightRefresh)>> {
        self.refreshes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Takes a finished (or failed, or cancelled) refresh out of the in-flight map, so that a
/// later caller starts a new one instead of joining a stale result.
pub(super) struct InFlightGuard {
    service: Arc<OAuthService>,
    slot: String,
    id: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut in_flight = self.service.lock_refreshes();
        if in_flight
            .get(&self.slot)
            .is_some_and(|(id, _)| *id == self.id)
        {
            in_flight.remove(&self.slot);
        }
    }
}

/// The result of one refresh, shared by every caller that waited for it.
pub(super) type RefreshOutcome = Result<StoredCredentials, Arc<LoginError>>;
pub(super) type InFlightRefresh = Shared<BoxFuture<'static, RefreshOutcome>>;

/// How long shutdown waits for refreshes (and code exchanges) under way to save what the
/// server answered: one whole token request ([`TOTAL_TIMEOUT`]) and the save after it, so a
/// refresh token the server rotated is never lost to a SIGTERM.
pub(super) const REFRESH_SETTLE_TIMEOUT: Duration =
    Duration::from_secs(TOTAL_TIMEOUT.as_secs() + 5);

/// New tokens can be had without the user: the server's configured grant runs again (it
/// needs no browser), or the refresh token is presented.
pub(super) fn can_renew(target: &ServerTarget, creds: &StoredCredentials) -> bool {
    target.grant.is_machine() || creds.refresh_token.is_some()
}

/// Credentials that may be handed out or refreshed (owned, or shared with the store).
pub(super) fn usable<C: Borrow<StoredCredentials>>(
    creds: Option<C>,
    name: &str,
) -> Result<C, LoginError> {
    let creds = creds.ok_or_else(|| LoginError::NotLoggedIn(name.to_string()))?;
    if creds.borrow().reauthentication_required {
        return Err(LoginError::ReauthenticationRequired {
            name: name.to_string(),
            reason: "the authorization server refused an earlier refresh".into(),
        });
    }
    Ok(creds)
}

/// Without a refresh token the access token serves until it expires: handed out while it
/// is valid (its `expires_at` tells the caller how long), a new login after that.
pub(super) fn unrefreshable(
    creds: StoredCredentials,
    name: &str,
) -> Result<StoredCredentials, LoginError> {
    check_unexpired(&creds, name)?;
    Ok(creds)
}

/// [`unrefreshable`] without taking the credentials.
fn check_unexpired(creds: &StoredCredentials, name: &str) -> Result<(), LoginError> {
    if creds.expires_at.is_some_and(|t| t <= unix_now()) {
        return Err(LoginError::ReauthenticationRequired {
            name: name.to_string(),
            reason: "the access token expired and the server issued no refresh token".into(),
        });
    }
    Ok(())
}

pub(super) fn fresh_enough(creds: &StoredCredentials, min_validity_secs: u32) -> bool {
    if min_validity_secs == REFRESH_NOW {
        return false;
    }
    match creds.expires_at {
        None => true,
        // Saturating: a hand-edited `expiresAt` may be anything.
        Some(t) => t.saturating_sub(unix_now()) > i64::from(min_validity_secs),
    }
}

pub(super) fn apply_tokens(creds: &mut StoredCredentials, tokens: TokenResponse) {
    creds.access_token = tokens.access_token;
    creds.token_type = tokens.token_type;
    if let Some(rt) = tokens.refresh_token {
        creds.refresh_token = Some(rt);
    }
    // The parser clamps `expires_in`; saturating keeps any value from overflowing.
    creds.expires_at = tokens
        .expires_in
        .map(|s| unix_now().saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
    if let Some(scopes) = tokens.scopes {
        creds.scopes = scopes;
    }
    creds.reauthentication_required = false;
    creds.updated_at = unix_now();
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use crate::credentials::StoredClient;
    use crate::engine::StatusInfo;
    use crate::oauth::token::TokenResponse;
    use mcp_app_server_protocol::{McpAuthStatus, RegistrationKind};

    fn credentials(name: &str, url: &str) -> StoredCredentials {
        StoredCredentials {
            server_name: name.to_owned(),
            server_url: url.to_owned(),
            access_token: format!("at-secret-{name}"),
            token_type: "Bearer".to_owned(),
            refresh_token: Some(format!("rt-secret-{name}")),
            expires_at: Some(1_900_000_000),
            scopes: vec!["read".to_owned(), "offline_access".to_owned()],
            issuer: "https://auth.example.com".to_owned(),
            token_endpoint: "https://auth.example.com/token".to_owned(),
            revocation_endpoint: None,
            resource: url.to_owned(),
            client: StoredClient {
                kind: RegistrationKind::Dcr,
                client_id: "client-123".to_owned(),
                client_secret: None,
                token_endpoint_auth_method: "none".to_owned(),
            },
            reauthentication_required: false,
            grant: None,
            dpop_key: None,
            updated_at: 1_800_000_000,
        }
    }

    fn tokens(refresh_token: Option<&str>, expires_in: Option<u64>) -> TokenResponse {
        TokenResponse {
            access_token: "at-new".into(),
            token_type: "Bearer".into(),
            refresh_token: refresh_token.map(str::to_string),
            expires_in,
            scopes: None,
        }
    }

    #[test]
    fn applied_tokens_keep_what_the_response_leaves_out() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.reauthentication_required = true;
        apply_tokens(&mut creds, tokens(None, Some(600)));
        assert_eq!(creds.access_token, "at-new");
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-secret-a"));
        assert_eq!(creds.scopes, ["read", "offline_access"]);
        assert!(!creds.reauthentication_required);
        let expires_at = creds.expires_at.unwrap();
        assert!((unix_now() + 590..=unix_now() + 600).contains(&expires_at));

        apply_tokens(&mut creds, tokens(Some("rt-rotated"), None));
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-rotated"));
        assert_eq!(creds.expires_at, None);
    }

    #[test]
    fn huge_lifetimes_and_expiries_do_not_overflow() {
        let mut creds = credentials("a", "https://a.example/mcp");
        apply_tokens(&mut creds, tokens(None, Some(u64::MAX)));
        assert_eq!(creds.expires_at, Some(i64::MAX));
        assert!(fresh_enough(&creds, MAX_MIN_VALIDITY_SECS));
        creds.expires_at = Some(i64::MIN);
        assert!(!fresh_enough(&creds, 0));
    }

    #[test]
    fn freshness_is_measured_against_the_asked_validity() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.expires_at = Some(unix_now() + 120);
        assert!(fresh_enough(&creds, 60));
        assert!(!fresh_enough(&creds, 120));
        creds.expires_at = None;
        assert!(fresh_enough(&creds, MAX_MIN_VALIDITY_SECS));
        // A forced refresh ignores the expiry, or its absence.
        assert!(!fresh_enough(&creds, REFRESH_NOW));
        creds.expires_at = Some(unix_now() + 3600);
        assert!(!fresh_enough(&creds, REFRESH_NOW));
    }

    #[test]
    fn credentials_without_refresh_token_serve_until_they_expire() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.refresh_token = None;
        creds.expires_at = Some(unix_now() + 5);
        assert!(unrefreshable(creds.clone(), "a").is_ok());
        creds.expires_at = Some(unix_now() - 1);
        assert!(matches!(
            unrefreshable(creds, "a"),
            Err(LoginError::ReauthenticationRequired { .. })
        ));
    }

    #[test]
    fn status_follows_the_stored_credentials() {
        assert_eq!(
            StatusInfo::from_credentials(None).status,
            McpAuthStatus::NotLoggedIn
        );
        let mut creds = credentials("a", "https://a.example/mcp");
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::LoggedIn);
        assert_eq!(info.registration, Some(RegistrationKind::Dcr));
        assert_eq!(info.issuer.as_deref(), Some("https://auth.example.com"));
        assert_eq!(info.expires_at, Some(1_900_000_000));

        // Expired with a refresh token: the next token request refreshes, still logged in.
        creds.expires_at = Some(unix_now() - 1);
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::LoggedIn);
        creds.refresh_token = None;
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::Expired);
        creds.reauthentication_required = true;
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::ReauthenticationRequired);
    }
}

//! Token vending: a valid access token per request, with one shared refresh per server.

use std::collections::HashMap;
use std::sync::Arc;

use futures::FutureExt;

use crate::credentials::StoredCredentials;
use crate::engine::error::VendError;
use crate::engine::service::OAuthService;
use crate::engine::state::refreshes::{InFlightRefresh, RefreshOutcome};
use crate::engine::stored::{can_renew, check_unexpired, fresh_enough, usable};
use crate::engine::target::ServerTarget;
use crate::engine::types::REFRESH_NOW;
use crate::oauth::token::TokenError;

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
    ) -> Result<Arc<StoredCredentials>, Arc<VendError>> {
        // Shared with the store's copy: a fresh token is handed out without copying it.
        let stored = self
            .queue
            .load_shared(target.lookup_key())
            .await
            .map_err(VendError::from)?;
        let mut seen = usable(stored, &target.name)?;
        // A second round only when the refresh joined had started from older credentials.
        for _ in 0..3 {
            if fresh_enough(&seen, min_validity_secs) {
                return Ok(seen);
            }
            if !can_renew(target, &seen) {
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
    ) -> Result<StoredCredentials, Arc<VendError>> {
        let stored = self.load(&target.key()).await.map_err(VendError::from)?;
        let mut seen = usable(stored, &target.name)?;
        // A second round only when the refresh joined had started from older credentials
        // and handed back the very ones refused.
        for _ in 0..2 {
            if !can_renew(target, &seen) {
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
        // One renewal per entry: servers sharing a login (rule 85) share its renewal.
        let slot = seen.entry_key().storage_key();
        let refresh = {
            let mut in_flight = self.lock_refreshes();
            match in_flight.get(&slot) {
                Some((_, refresh)) => refresh.clone(),
                None => {
                    let id = self.new_id();
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
                                VendError::ShuttingDown
                            } else {
                                VendError::RefreshTransient {
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
pub(crate) struct InFlightGuard {
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

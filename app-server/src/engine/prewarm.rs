//! Pre-warm: at start and after a config reload, every configured HTTP server is discovered
//! in the background, a few at a time, so the first login already finds it in the discovery
//! cache and answers without a request. Only what discovery sends anyway goes out (the
//! unauthenticated probe and metadata GETs); failures are logged at debug level and
//! discovery simply runs again at login. `mcp_oauth_prewarm = false` turns it off.
//!
//! Servers the user is logged in to are left out: their tokens are refreshed at the token
//! endpoint they were issued by, without discovery, and a start with many of them would
//! otherwise send each one unauthenticated requests every time. One that needs a login
//! again (its entry marked for re-authentication) is discovered like the others.
//!
//! A server whose first login will use Dynamic Client Registration (no configured client,
//! no usable Client ID Metadata Document) also gets its client registered here, for the
//! redirect URI of its sticky callback port (`login/preregister.rs`), so that login too
//! answers without a request. `mcp_oauth_preregister = false` keeps pre-warm to discovery.

use std::sync::Arc;

use futures::StreamExt as _;

use crate::engine::service::OAuthService;
use crate::engine::target::ServerTarget;
use crate::oauth::discovery::discover;
use crate::oauth::http::header_map;

/// Servers discovered at once.
pub const PREWARM_CONCURRENCY: usize = 4;

impl OAuthService {
    /// Discovers `targets` in the background (replacing a pre-warm still under way); with
    /// `register`, also registers a client for those that will need Dynamic Client
    /// Registration. Returns at once.
    pub fn prewarm(self: &Arc<Self>, targets: Vec<ServerTarget>, register: bool) {
        let service = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let targets = match service.upgrade() {
                Some(service) => service.not_logged_in(targets).await,
                None => return,
            };
            futures::stream::iter(targets)
                .for_each_concurrent(PREWARM_CONCURRENCY, |target| {
                    let service = service.clone();
                    async move {
                        let Some(service) = service.upgrade() else {
                            return;
                        };
                        service.prewarm_one(&target, register).await;
                    }
                })
                .await;
        });
        let mut slot = self.prewarm.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(older) = slot.replace(task) {
            older.abort();
        }
    }

    /// `targets` without the servers that have a usable stored login. All of them when the
    /// store cannot be read (discovery does no harm).
    async fn not_logged_in(&self, targets: Vec<ServerTarget>) -> Vec<ServerTarget> {
        let stored = match self.stored_set().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::debug!(error = %e, "pre-warm could not read the store; discovering every server");
                return targets;
            }
        };
        targets
            .into_iter()
            .filter(|t| {
                stored
                    .get(&t.key())
                    .is_none_or(|c| c.reauthentication_required)
            })
            .collect()
    }

    async fn prewarm_one(&self, target: &ServerTarget, register: bool) {
        // Held from before the discovery: a login to this server that starts meanwhile
        // waits for the registration instead of making one of its own.
        let _running = register.then(|| self.preregistrations.begin(&target.name));
        let Ok(headers) = header_map(
            target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        ) else {
            return;
        };
        let http = self.server_http(target).await;
        match discover(
            &http,
            &target.url,
            &headers,
            target.resource_override.as_deref(),
            target.discovery_overrides(),
            &self.cache,
        )
        .await
        {
            Ok(found) => {
                tracing::debug!(server = %target.name, issuer = %found.issuer, "pre-warmed discovery");
                if register {
                    match self.preregister(target, &http, &found).await {
                        Ok(true) => {
                            tracing::debug!(server = %target.name, "pre-registered a client for the first login")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::debug!(server = %target.name, error = %e, "pre-registration failed; the login registers")
                        }
                    }
                }
            }
            Err(e) => {
                tracing::debug!(server = %target.name, error = %e, "pre-warm discovery failed; it runs again at login")
            }
        }
    }

    /// Stops a pre-warm under way (shutdown).
    pub(super) fn stop_prewarm(&self) {
        if let Some(task) = self
            .prewarm
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

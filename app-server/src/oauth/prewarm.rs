//! Pre-warm: at start and after a config reload, every configured HTTP server is discovered
//! in the background, a few at a time, so the first login already finds it in the discovery
//! cache and answers without a request. Only what discovery sends anyway goes out (the
//! unauthenticated probe and metadata GETs); failures are logged at debug level and
//! discovery simply runs again at login. `mcp_oauth_prewarm = false` turns it off.

use std::sync::Arc;

use futures::StreamExt as _;

use super::discovery::discover;
use super::http::header_map;
use super::service::OAuthService;
use super::target::ServerTarget;

/// Servers discovered at once.
pub const PREWARM_CONCURRENCY: usize = 4;

impl OAuthService {
    /// Discovers `targets` in the background (replacing a pre-warm still under way). Returns
    /// at once.
    pub fn prewarm(self: &Arc<Self>, targets: Vec<ServerTarget>) {
        let service = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            futures::stream::iter(targets)
                .for_each_concurrent(PREWARM_CONCURRENCY, |target| {
                    let service = service.clone();
                    async move {
                        let Some(service) = service.upgrade() else {
                            return;
                        };
                        service.prewarm_one(&target).await;
                    }
                })
                .await;
        });
        let mut slot = self.prewarm.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(older) = slot.replace(task) {
            older.abort();
        }
    }

    async fn prewarm_one(&self, target: &ServerTarget) {
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
            &self.cache,
        )
        .await
        {
            Ok(found) => {
                tracing::debug!(server = %target.name, issuer = %found.issuer, "pre-warmed discovery")
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

//! What frontends see of credentials stays live: the status last announced per server (so
//! only real changes are announced, whoever noticed them first), the servers whose tokens
//! frontends are using, and the background refresh planned for each.
//!
//! The timers and the background refresh run in [`super::expiry`]; noticing other
//! processes' writes is [`super::store_watch`]. This file holds the state they share with
//! the request path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::credentials::{CredentialKey, LookupKey};
use crate::engine::service::OAuthService;
use crate::engine::state::live::{AnnouncedStatus, InUse, lock};
use crate::engine::target::ServerTarget;

/// How long shutdown waits for the scheduler and the watcher to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

impl OAuthService {
    /// Starts the live state: the expiry timers and background refreshes, and, for the file
    /// store, the watch on `watched_file` that notices other processes' writes. Needs a
    /// tokio runtime; without one (a plain constructor call) nothing is started. Once only.
    pub fn start_live(self: &Arc<Self>, watched_file: Option<PathBuf>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let Some(stop) = self.live.stop_receiver() else {
            return;
        };
        let scheduler = tokio::spawn(OAuthService::run_expiry(
            Arc::downgrade(self),
            self.live.wake.clone(),
            self.live.wake_added.clone(),
            stop.clone(),
        ));
        self.live.add_task(scheduler);
        if let Some(path) = watched_file {
            let watcher = tokio::spawn(super::store_watch::watch(
                path,
                self.live.wake.clone(),
                stop,
            ));
            self.live.add_task(watcher);
        }
    }

    /// Ends the scheduler and the watcher (bounded). Refreshes they started finish on their
    /// own and are waited for by [`OAuthService::shutdown`].
    pub(super) async fn stop_live(&self) {
        if let Some(stop) = lock(&self.live.stop).as_ref() {
            stop.send_replace(true);
        }
        let tasks = std::mem::take(&mut *lock(&self.live.tasks));
        let _ = tokio::time::timeout(STOP_TIMEOUT, futures::future::join_all(tasks)).await;
    }

    /// The configured HTTP servers (at start and after every reload): statuses are tracked
    /// and announced for these only, and servers no longer configured stop being refreshed.
    pub fn set_servers(&self, servers: Vec<(String, CredentialKey)>) {
        let by_name: HashMap<&str, &CredentialKey> =
            servers.iter().map(|(n, k)| (n.as_str(), k)).collect();
        lock(&self.live.in_use).retain(|name, u| {
            by_name
                .get(name.as_str())
                .is_some_and(|k| k.same_server(&u.target.key()))
        });
        let keys = servers.iter().cloned().collect();
        drop(by_name);
        *lock(&self.live.configured_keys) = keys;
        *lock(&self.live.configured) = servers
            .into_iter()
            .map(|(name, key)| (name, LookupKey::new(key)))
            .collect();
        self.live.wake.notify_one();
    }

    /// A frontend asked for this server's token: keep it refreshed in the background for the
    /// next [`IN_USE_WINDOW`](crate::engine::state::live::IN_USE_WINDOW). A server asked for again costs one map lookup (the target
    /// resolved for this configuration is the same `Arc`); a server new in use wakes the
    /// scheduler to plan that server alone.
    pub fn token_used(&self, target: &Arc<ServerTarget>) {
        let mut in_use = lock(&self.live.in_use);
        if let Some(u) = in_use.get_mut(&target.name)
            && (Arc::ptr_eq(&u.target, target) || u.target == *target)
        {
            u.last = Instant::now();
            return;
        }
        let new = in_use
            .get(&target.name)
            .is_none_or(|u| u.target.key() != target.key());
        in_use.insert(
            target.name.clone(),
            InUse {
                target: target.clone(),
                last: Instant::now(),
            },
        );
        drop(in_use);
        if new {
            lock(&self.live.added).insert(target.name.clone());
            self.live.wake_added.notify_one();
        }
    }

    /// Whether a login for `name` is pending, and when its token is next refreshed in the
    /// background (unix seconds), for status listings.
    pub fn live_status(&self, name: &str) -> (bool, Option<i64>) {
        let pending = self.lock_logins().contains_key(name);
        (pending, lock(&self.live.planned).get(name).copied())
    }

    /// Records an announcement; false when `status` is what `name` was last announced with
    /// (then it is not announced again).
    pub(super) fn record_status(&self, name: &str, status: AnnouncedStatus) -> bool {
        let mut announced = self.live.announced();
        announced.epoch += 1;
        announced.status.insert(name.to_string(), status) != Some(status)
    }
}

//! What frontends see of credentials stays live: the status last announced per server (so
//! only real changes are announced, whoever noticed them first), the servers whose tokens
//! frontends are using, and the background refresh planned for each.
//!
//! The timers and the background refresh run in [`super::expiry`]; noticing other
//! processes' writes is [`super::store_watch`]. This file holds the state they share with
//! the request path.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mcp_app_server_protocol::McpAuthStatus;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::service::OAuthService;
use super::target::ServerTarget;
use crate::config::Config;
use crate::credentials::{CredentialKey, LookupKey};

/// A server counts as in use for this long after a frontend last asked for its token.
pub const IN_USE_WINDOW: Duration = Duration::from_secs(600);

/// How long shutdown waits for the scheduler and the watcher to stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by the request path, the scheduler and the store watcher.
#[derive(Default)]
pub(super) struct Live {
    announced: Mutex<Announced>,
    /// The configured HTTP servers and the credential key of each (config order), with
    /// its storage key worked out once: every whole round looks each one up.
    configured: Mutex<Arc<[(String, LookupKey)]>>,
    /// The same, by name.
    configured_keys: Mutex<HashMap<String, CredentialKey>>,
    /// Servers whose token a frontend asked for, by name, and when it last did.
    in_use: Mutex<HashMap<String, InUse>>,
    /// Servers that came into use since the scheduler last looked (at most one entry per
    /// server in use): it plans just these, without a look at every stored entry.
    added: Mutex<HashSet<String>>,
    /// The next background refresh planned per server, unix seconds.
    planned: Mutex<HashMap<String, i64>>,
    /// Wakes the scheduler for a whole round: the store changed, the config changed.
    pub(super) wake: Arc<Notify>,
    /// Wakes the scheduler for the servers in [`Live::added`] only.
    pub(super) wake_added: Arc<Notify>,
    /// Whole rounds run so far (each reads every stored entry).
    pub(super) full_rounds: AtomicU64,
    /// Rounds that planned only servers newly in use.
    pub(super) added_rounds: AtomicU64,
    stop: Mutex<Option<watch::Sender<bool>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The status each server was last announced with. `epoch` counts announcements, so a
/// rescan that read the store before an announcement does not undo it.
#[derive(Default)]
pub(super) struct Announced {
    pub status: HashMap<String, McpAuthStatus>,
    pub epoch: u64,
}

#[derive(Clone)]
pub(super) struct InUse {
    pub target: Arc<ServerTarget>,
    pub last: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    pub(super) fn announced(&self) -> MutexGuard<'_, Announced> {
        lock(&self.announced)
    }

    pub(super) fn configured(&self) -> Arc<[(String, LookupKey)]> {
        Arc::clone(&lock(&self.configured))
    }

    /// Whether `name` is configured with the credential key `key`.
    pub(super) fn is_configured(&self, name: &str, key: &CredentialKey) -> bool {
        lock(&self.configured_keys).get(name) == Some(key)
    }

    /// The servers in use now; those idle past [`IN_USE_WINDOW`] are dropped.
    pub(super) fn in_use(&self, now: Instant) -> Vec<InUse> {
        let mut in_use = lock(&self.in_use);
        in_use.retain(|_, u| now.duration_since(u.last) < IN_USE_WINDOW);
        in_use.values().cloned().collect()
    }

    /// The servers among `names` still in use now.
    pub(super) fn in_use_of(&self, names: &HashSet<String>) -> Vec<InUse> {
        let in_use = lock(&self.in_use);
        names
            .iter()
            .filter_map(|n| in_use.get(n).cloned())
            .collect()
    }

    /// The servers that came into use since the last call (or the last whole round).
    pub(super) fn take_added(&self) -> HashSet<String> {
        std::mem::take(&mut *lock(&self.added))
    }

    pub(super) fn set_planned(&self, planned: HashMap<String, i64>) {
        *lock(&self.planned) = planned;
    }

    pub(super) fn plan(&self, name: &str, at: Option<i64>) {
        let mut planned = lock(&self.planned);
        match at {
            Some(at) => planned.insert(name.to_string(), at),
            None => planned.remove(name),
        };
    }

    pub(super) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn stop_receiver(&self) -> Option<watch::Receiver<bool>> {
        let mut stop = lock(&self.stop);
        if stop.is_some() {
            return None;
        }
        let (tx, rx) = watch::channel(false);
        *stop = Some(tx);
        Some(rx)
    }

    pub(super) fn add_task(&self, task: JoinHandle<()>) {
        lock(&self.tasks).push(task);
    }
}

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
        let scheduler = tokio::spawn(super::expiry::run(
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
        lock(&self.live.in_use)
            .retain(|name, u| by_name.get(name.as_str()) == Some(&&u.target.key()));
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
    /// next [`IN_USE_WINDOW`]. A server asked for again costs one map lookup (the target
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
    pub(super) fn record_status(&self, name: &str, status: McpAuthStatus) -> bool {
        let mut announced = self.live.announced();
        announced.epoch += 1;
        announced.status.insert(name.to_string(), status) != Some(status)
    }
}

/// The configured HTTP servers of `config` and their credential keys.
pub fn configured_servers(config: &Config) -> Vec<(String, CredentialKey)> {
    config
        .servers
        .values()
        .filter_map(|s| {
            s.http().map(|h| {
                (
                    s.name.clone(),
                    CredentialKey::new(s.name.clone(), h.url.to_string()),
                )
            })
        })
        .collect()
}

//! The live status the engine keeps: what was announced per server, which servers are in
//! use, and the configured servers the background refresh plans for.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mcp_app_server_protocol::{McpAuthStatus, McpAuthStatusReason};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::credentials::{CredentialKey, LookupKey};
use crate::engine::target::ServerTarget;

/// A server counts as in use for this long after a frontend last asked for its token.
pub const IN_USE_WINDOW: Duration = Duration::from_secs(600);

/// State shared by the request path, the scheduler and the store watcher.
#[derive(Default)]
pub(crate) struct Live {
    pub(crate) announced: Mutex<Announced>,
    /// The configured HTTP servers and the credential key of each (config order), with
    /// its storage key worked out once: every whole round looks each one up.
    pub(crate) configured: Mutex<Arc<[(String, LookupKey)]>>,
    /// The same, by name.
    pub(crate) configured_keys: Mutex<HashMap<String, CredentialKey>>,
    /// Servers whose token a frontend asked for, by name, and when it last did.
    pub(crate) in_use: Mutex<HashMap<String, InUse>>,
    /// Servers that came into use since the scheduler last looked (at most one entry per
    /// server in use): it plans just these, without a look at every stored entry.
    pub(crate) added: Mutex<HashSet<String>>,
    /// The next background refresh planned per server, unix seconds.
    pub(crate) planned: Mutex<HashMap<String, i64>>,
    /// Wakes the scheduler for a whole round: the store changed, the config changed.
    pub(crate) wake: Arc<Notify>,
    /// Wakes the scheduler for the servers in [`Live::added`] only.
    pub(crate) wake_added: Arc<Notify>,
    /// Whole rounds run so far (each reads every stored entry).
    pub(crate) full_rounds: AtomicU64,
    /// Rounds that planned only servers newly in use.
    pub(crate) added_rounds: AtomicU64,
    pub(crate) stop: Mutex<Option<watch::Sender<bool>>>,
    pub(crate) tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// A status as announced: the status and why a login is needed; a change of either is
/// announced.
pub(crate) type AnnouncedStatus = (McpAuthStatus, Option<McpAuthStatusReason>);

/// The status each server was last announced with. `epoch` counts announcements, so a
/// rescan that read the store before an announcement does not undo it.
#[derive(Default)]
pub(crate) struct Announced {
    pub status: HashMap<String, AnnouncedStatus>,
    pub epoch: u64,
}

#[derive(Clone)]
pub(crate) struct InUse {
    pub target: Arc<ServerTarget>,
    pub last: Instant,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Live {
    pub(crate) fn announced(&self) -> MutexGuard<'_, Announced> {
        lock(&self.announced)
    }

    pub(crate) fn configured(&self) -> Arc<[(String, LookupKey)]> {
        Arc::clone(&lock(&self.configured))
    }

    /// Whether `name` is configured with the credential key `key`.
    pub(crate) fn is_configured(&self, name: &str, key: &CredentialKey) -> bool {
        // Any account of the configured server (rule 80).
        lock(&self.configured_keys)
            .get(name)
            .is_some_and(|k| k.same_server(key))
    }

    /// The servers in use now; those idle past [`IN_USE_WINDOW`] are dropped.
    pub(crate) fn in_use(&self, now: Instant) -> Vec<InUse> {
        let mut in_use = lock(&self.in_use);
        in_use.retain(|_, u| now.duration_since(u.last) < IN_USE_WINDOW);
        in_use.values().cloned().collect()
    }

    /// The servers among `names` still in use now.
    pub(crate) fn in_use_of(&self, names: &HashSet<String>) -> Vec<InUse> {
        let in_use = lock(&self.in_use);
        names
            .iter()
            .filter_map(|n| in_use.get(n).cloned())
            .collect()
    }

    /// The servers that came into use since the last call (or the last whole round).
    pub(crate) fn take_added(&self) -> HashSet<String> {
        std::mem::take(&mut *lock(&self.added))
    }

    pub(crate) fn set_planned(&self, planned: HashMap<String, i64>) {
        *lock(&self.planned) = planned;
    }

    pub(crate) fn plan(&self, name: &str, at: Option<i64>) {
        let mut planned = lock(&self.planned);
        match at {
            Some(at) => planned.insert(name.to_string(), at),
            None => planned.remove(name),
        };
    }

    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn stop_receiver(&self) -> Option<watch::Receiver<bool>> {
        let mut stop = lock(&self.stop);
        if stop.is_some() {
            return None;
        }
        let (tx, rx) = watch::channel(false);
        *stop = Some(tx);
        Some(rx)
    }

    pub(crate) fn add_task(&self, task: JoinHandle<()>) {
        lock(&self.tasks).push(task);
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

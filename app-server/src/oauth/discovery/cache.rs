//! The discovery cache: validated discovery results (PRM, authorization server metadata,
//! issuer) per MCP server, kept in memory and in `state_dir/discovery-cache.json`, so a
//! login to a server known from this process or an earlier one starts without a request.
//!
//! An entry lives for the smallest `Cache-Control: max-age` of the documents it was built
//! from, else [`DEFAULT_TTL`], never longer than [`MAX_TTL`]; `no-store`/`no-cache`/`max-age=0`
//! keep it out. The file is bounded ([`MAX_ENTRIES`], [`MAX_FILE_BYTES`]), replaced
//! atomically (mode 0600) off the async workers, and ignored when missing or corrupt.
//!
//! Several processes may share the state directory. Each write takes the file's lock
//! (`discovery-cache.json.lock`), reads what the others wrote and merges it in: the union
//! by server, the entry stored last winning. A dropped entry leaves a removal mark (in the
//! file too) so that the merge does not bring it back from an older copy, in this process or
//! another. Entries the other processes wrote are taken into memory at the same time.

use super::hatches::Overrides;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::outcome::Discovery;
use crate::config::EscapeHatches;
use crate::oauth::state_file::{lock_exclusive, read_bounded, write_atomically};

/// Lifetime of an entry when no document said how long it may be kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Upper bound on any lifetime, whatever the server says.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Servers remembered at most; the entry that expires first makes room. Removal marks are
/// bounded by the same number (the oldest go first).
pub const MAX_ENTRIES: usize = 256;
/// A larger file is not read (it was not written by this daemon).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The file's name in the state directory.
pub const FILE_NAME: &str = "discovery-cache.json";
/// How long a write waits for another process's write to finish; past it the write is
/// skipped (the next change, or shutdown, writes again).
const FILE_LOCK_WAIT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// Milliseconds since the Unix epoch.
    expires_at_ms: u64,
    /// When it was stored (ms since the epoch): of two copies of an entry, the later wins.
    /// 0 in files of earlier builds.
    #[serde(default)]
    stored_at_ms: u64,
    /// Shared with the logins that use it: 1,000 pending logins to one server hold one
    /// copy.
    #[serde(with = "shared")]
    discovery: Arc<Discovery>,
}

/// An [`Arc`]'d discovery in the file: the discovery itself.
mod shared {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Discovery;

    pub fn serialize<S: Serializer>(d: &Arc<Discovery>, s: S) -> Result<S::Ok, S::Error> {
        d.as_ref().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Discovery>, D::Error> {
        Discovery::deserialize(d).map(Arc::new)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileDoc {
    version: u32,
    entries: HashMap<String, Entry>,
    /// Removal marks: key -> when it was dropped (ms since the epoch).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    removed: HashMap<String, u64>,
}

const FILE_VERSION: u32 = 1;

/// The entries and the removal marks not yet older than [`MAX_TTL`] (no entry stored before
/// a mark can outlive it).
#[derive(Debug, Default)]
struct Table {
    entries: HashMap<String, Entry>,
    removed: HashMap<String, u64>,
}

impl Table {
    fn remove(&mut self, key: &str, now: u64) -> bool {
        let was = self.entries.remove(key).is_some();
        self.removed.insert(key.to_string(), now);
        was
    }

    /// Takes in what another process wrote: the union by key, the later-stored entry
    /// winning, and nothing stored before a removal mark of its key. Then drops what expired
    /// and bounds both maps.
    fn merge(&mut self, other: FileDoc, now: u64) {
        for (key, at) in other.removed {
            let mark = self.removed.entry(key).or_insert(at);
            *mark = (*mark).max(at);
        }
        for (key, entry) in other.entries {
            let newer = self
                .entries
                .get(&key)
                .is_none_or(|mine| entry.stored_at_ms > mine.stored_at_ms);
            if newer {
                self.entries.insert(key, entry);
            }
        }
        let removed = &self.removed;
        self.entries.retain(|key, e| {
            e.expires_at_ms > now && removed.get(key).is_none_or(|&at| e.stored_at_ms > at)
        });
        let oldest_mark = now.saturating_sub(MAX_TTL.as_millis() as u64);
        self.removed.retain(|_, at| *at > oldest_mark);
        keep_largest(&mut self.entries, MAX_ENTRIES, |e| e.expires_at_ms);
        keep_largest(&mut self.removed, MAX_ENTRIES, |at| *at);
    }
}

/// Keeps the `max` values of `map` with the largest `by`.
fn keep_largest<V>(map: &mut HashMap<String, V>, max: usize, by: impl Fn(&V) -> u64) {
    if map.len() <= max {
        return;
    }
    let mut order: Vec<u64> = map.values().map(&by).collect();
    order.sort_unstable_by(|a, b| b.cmp(a));
    let cut = order[max - 1];
    // All above the cut stay; of those at it, as many as fit.
    let mut room_at_cut = max - order.iter().filter(|&&v| v > cut).count();
    map.retain(|_, v| match by(v) {
        v if v > cut => true,
        v if v == cut && room_at_cut > 0 => {
            room_at_cut -= 1;
            true
        }
        _ => false,
    });
}

#[derive(Debug, Default)]
struct Inner {
    table: Mutex<Table>,
    file: OnceLock<PathBuf>,
    loaded: tokio::sync::OnceCell<()>,
    /// A write is scheduled and has not taken its snapshot yet.
    write_scheduled: AtomicBool,
    /// Serializes the writes of this process.
    write_lock: Mutex<()>,
    /// One discovery at a time per key: a login that starts while a pre-warm (or another
    /// login) discovers the same server waits for its result instead of asking again.
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// Held while one key is being discovered; see [`DiscoveryCache::gate`].
pub struct Gate {
    inner: Arc<Inner>,
    key: String,
    held: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Gate {
    fn drop(&mut self) {
        let mut gates = lock(&self.inner.gates);
        let guard = self.held.take();
        drop(guard);
        // Nobody else holds or waits for it: forget it (the map stays as small as the
        // number of discoveries under way).
        if gates
            .get(&self.key)
            .is_some_and(|g| Arc::strong_count(g) == 1)
        {
            gates.remove(&self.key);
        }
    }
}

/// The discovery cache. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryCache {
    inner: Arc<Inner>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl DiscoveryCache {
    /// A cache in memory only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also keep the cache in `state_dir` (read at the first use, written on every change).
    /// Only the first call counts.
    pub fn persist_in(&self, state_dir: &Path) {
        let _ = self.inner.file.set(state_dir.join(FILE_NAME));
    }

    /// Reads the file now, in the background, so that the first login does not wait for
    /// it. Without a file, or outside a runtime, it does nothing (the first use reads it).
    pub fn preload(&self) {
        if self.inner.file.get().is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let this = self.clone();
            runtime.spawn(async move { this.load().await });
        }
    }

    /// The cache key of a server: its URL, the configured `oauth_resource`, a digest of
    /// the configured headers (they may change what the server answers; their values are
    /// never written out), and of the configured escape hatches (they change what discovery
    /// accepts and finds: one server's must never serve another's discovery, rule 64).
    pub fn key(
        server_url: &Url,
        extra_headers: &HeaderMap,
        resource_override: Option<&str>,
        hatches: &EscapeHatches,
    ) -> String {
        let mut key = server_url.clone();
        key.set_fragment(None);
        let mut out = key.to_string();
        if let Some(resource) = resource_override {
            out.push_str(" resource=");
            out.push_str(resource);
        }
        if !extra_headers.is_empty() {
            let mut pairs: Vec<(String, &[u8])> = extra_headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.as_bytes()))
                .collect();
            pairs.sort();
            let mut digest = Sha256::new();
            for (k, v) in pairs {
                digest.update(k.as_bytes());
                digest.update([0]);
                digest.update(v);
                digest.update([0]);
            }
            let hash = digest.finalize();
            out.push_str(" headers=");
            for b in &hash[..12] {
                out.push_str(&format!("{b:02x}"));
            }
        }
        if !hatches.is_empty() {
            let mut digest = Sha256::new();
            let urls = [
                &hatches.authorization_server_metadata_url,
                &hatches.authorization_endpoint,
                &hatches.token_endpoint,
                &hatches.registration_endpoint,
                &hatches.revocation_endpoint,
            ];
            for value in urls
                .into_iter()
                .map(|u| u.as_ref().map(Url::as_str))
                .chain([hatches.issuer.as_deref()])
            {
                // Absent and empty differ: a marker byte, then the value and a separator.
                digest.update(match value {
                    Some(v) => [&[1u8][..], v.as_bytes(), &[0]].concat(),
                    None => vec![2u8],
                });
            }
            let hash = digest.finalize();
            out.push_str(" hatches=");
            for b in &hash[..12] {
                out.push_str(&format!("{b:02x}"));
            }
        }
        out
    }

    /// [`DiscoveryCache::key`] of a server discovered with `overrides`: one that presents a
    /// client certificate gets the `mtls_endpoint_aliases` in place of the endpoints, so
    /// its discovery never serves one that does not, nor the other way round.
    pub fn key_for(
        server_url: &Url,
        extra_headers: &HeaderMap,
        resource_override: Option<&str>,
        overrides: Overrides<'_>,
    ) -> String {
        let mut key = Self::key(
            server_url,
            extra_headers,
            resource_override,
            overrides.hatches,
        );
        if overrides.mutual_tls {
            key.push_str(" mtls");
        }
        key
    }

    /// Waits until no other discovery of `key` is under way, and holds that until the
    /// returned gate is dropped.
    pub async fn gate(&self, key: &str) -> Gate {
        let mutex = lock(&self.inner.gates)
            .entry(key.to_string())
            .or_default()
            .clone();
        let held = mutex.lock_owned().await;
        Gate {
            inner: self.inner.clone(),
            key: key.to_string(),
            held: Some(held),
        }
    }

    /// The unexpired result for `key`.
    pub async fn get(&self, key: &str) -> Option<Discovery> {
        self.get_shared(key).await.map(Arc::unwrap_or_clone)
    }

    /// The unexpired result for `key`, shared with the cache.
    pub async fn get_shared(&self, key: &str) -> Option<Arc<Discovery>> {
        self.load().await;
        let mut table = self.lock();
        match table.entries.get(key) {
            Some(e) if e.expires_at_ms > now_ms() => Some(e.discovery.clone()),
            Some(_) => {
                table.entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `discovery` for `max_age` (the smallest the documents gave), else
    /// [`DEFAULT_TTL`]; a zero age keeps nothing (and drops what was there).
    pub async fn insert(&self, key: &str, discovery: &Discovery, max_age: Option<Duration>) {
        self.insert_shared(key, Arc::new(discovery.clone()), max_age)
            .await
    }

    /// [`DiscoveryCache::insert`] of a result the caller keeps too.
    pub async fn insert_shared(
        &self,
        key: &str,
        discovery: Arc<Discovery>,
        max_age: Option<Duration>,
    ) {
        self.load().await;
        let ttl = max_age.unwrap_or(DEFAULT_TTL).min(MAX_TTL);
        {
            let mut table = self.lock();
            let now = now_ms();
            if ttl.is_zero() {
                if !table.entries.contains_key(key) {
                    return;
                }
                table.remove(key, now);
            } else {
                table.entries.retain(|_, e| e.expires_at_ms > now);
                if !table.entries.contains_key(key) && table.entries.len() >= MAX_ENTRIES {
                    let first = table
                        .entries
                        .iter()
                        .min_by_key(|(_, e)| e.expires_at_ms)
                        .map(|(k, _)| k.clone());
                    if let Some(first) = first {
                        table.entries.remove(&first);
                    }
                }
                // Stored after any removal mark of its key, so merges keep it.
                let stored_at_ms = table.removed.remove(key).map_or(now, |at| now.max(at + 1));
                table.entries.insert(
                    key.to_string(),
                    Entry {
                        expires_at_ms: now.saturating_add(ttl.as_millis() as u64),
                        stored_at_ms,
                        discovery,
                    },
                );
            }
        }
        self.schedule_write();
    }

    /// Drops the entry of `key` (its documents turned out wrong).
    pub async fn invalidate(&self, key: &str) {
        self.load().await;
        if self.lock().remove(key, now_ms()) {
            self.schedule_write();
        }
    }

    /// Drops every entry naming `issuer` (a login with its metadata failed).
    pub async fn invalidate_issuer(&self, issuer: &str) {
        self.load().await;
        let removed = {
            let mut table = self.lock();
            let now = now_ms();
            let keys: Vec<String> = table
                .entries
                .iter()
                .filter(|(_, e)| e.discovery.issuer == issuer)
                .map(|(k, _)| k.clone())
                .collect();
            for key in &keys {
                table.remove(key, now);
            }
            !keys.is_empty()
        };
        if removed {
            self.schedule_write();
        }
    }

    /// Reads the file once, off the async workers.
    async fn load(&self) {
        let Some(path) = self.inner.file.get().cloned() else {
            return;
        };
        let inner = self.inner.clone();
        self.inner
            .loaded
            .get_or_init(|| async move {
                let read = tokio::task::spawn_blocking(move || read_file(&path)).await;
                if let Ok(from_file) = read {
                    lock(&inner.table).merge(from_file, now_ms());
                }
            })
            .await;
    }

    fn schedule_write(&self) {
        if self.inner.file.get().is_none()
            || self.inner.write_scheduled.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || write_now(&inner));
    }

    /// Writes the cache now (after the pending changes), off the async workers.
    pub async fn flush(&self) {
        if self.inner.file.get().is_none() {
            return;
        }
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || write_now(&inner)).await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        lock(&self.inner.table)
    }
}

/// Under the file's lock: what the other processes wrote is merged in, then the union is
/// written. The table's lock is held only for the merge, never across file I/O.
fn write_now(inner: &Inner) {
    let _serial = lock(&inner.write_lock);
    inner.write_scheduled.store(false, Ordering::Release);
    let Some(path) = inner.file.get() else { return };
    let Some(_file_lock) = lock_exclusive(path, FILE_LOCK_WAIT) else {
        tracing::debug!(path = %path.display(), "discovery cache busy (another process is writing it); not saved this time");
        return;
    };
    let on_disk = read_file(path);
    let doc = {
        let mut table = lock(&inner.table);
        table.merge(on_disk, now_ms());
        FileDoc {
            version: FILE_VERSION,
            entries: table.entries.clone(),
            removed: table.removed.clone(),
        }
    };
    let bytes = serde_json::to_vec(&doc).expect("the cache serializes");
    if let Err(e) = write_atomically(path, &bytes) {
        tracing::debug!(path = %path.display(), error = %e, "discovery cache not saved");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The file's unexpired entries and its removal marks; nothing when it is missing, too
/// large, corrupt or of another version.
fn read_file(path: &Path) -> FileDoc {
    let Some(bytes) = read_bounded(path, MAX_FILE_BYTES) else {
        return FileDoc::default();
    };
    match serde_json::from_slice::<FileDoc>(&bytes) {
        Ok(mut doc) if doc.version == FILE_VERSION => {
            let now = now_ms();
            doc.entries.retain(|_, e| e.expires_at_ms > now);
            keep_largest(&mut doc.entries, MAX_ENTRIES, |e| e.expires_at_ms);
            keep_largest(&mut doc.removed, MAX_ENTRIES, |at| *at);
            doc
        }
        Ok(_) => FileDoc::default(),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "discovery cache file corrupt; ignored");
            FileDoc::default()
        }
    }
}

#[cfg(test)]
mod tests;

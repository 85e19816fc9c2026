//! The discovery cache: validated discovery results (PRM, authorization server metadata,
//! issuer) per MCP server, kept in memory and in `state_dir/discovery-cache.json`, so a
//! login to a server known from this process or an earlier one starts without a request.
//!
//! An entry lives for the smallest `Cache-Control: max-age` of the documents it was built
//! from, else [`DEFAULT_TTL`], never longer than [`MAX_TTL`]; `no-store`/`no-cache`/`max-age=0`
//! keep it out. The file is bounded ([`MAX_ENTRIES`], [`MAX_FILE_BYTES`]), replaced
//! atomically (mode 0600) off the async workers, and ignored when missing or corrupt.
//! Several processes sharing the state directory each write their own view: the last
//! writer wins and an entry lost that way is fetched again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::Discovery;
use crate::oauth::state_file::{read_bounded, write_atomically};

/// Lifetime of an entry when no document said how long it may be kept.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Upper bound on any lifetime, whatever the server says.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Servers remembered at most; the entry that expires first makes room.
pub const MAX_ENTRIES: usize = 256;
/// A larger file is not read (it was not written by this daemon).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The file's name in the state directory.
pub const FILE_NAME: &str = "discovery-cache.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    /// Milliseconds since the Unix epoch.
    expires_at_ms: u64,
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
}

const FILE_VERSION: u32 = 1;

#[derive(Debug, Default)]
struct Inner {
    entries: Mutex<HashMap<String, Entry>>,
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

    /// The cache key of a server: its URL, the configured `oauth_resource`, and a digest of
    /// the configured headers (they may change what the server answers; their values are
    /// never written out).
    pub fn key(
        server_url: &Url,
        extra_headers: &HeaderMap,
        resource_override: Option<&str>,
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
        out
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
        let mut entries = self.lock();
        match entries.get(key) {
            Some(e) if e.expires_at_ms > now_ms() => Some(e.discovery.clone()),
            Some(_) => {
                entries.remove(key);
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
            let mut entries = self.lock();
            if ttl.is_zero() {
                if entries.remove(key).is_none() {
                    return;
                }
            } else {
                let now = now_ms();
                entries.retain(|_, e| e.expires_at_ms > now);
                if !entries.contains_key(key) && entries.len() >= MAX_ENTRIES {
                    let first = entries
                        .iter()
                        .min_by_key(|(_, e)| e.expires_at_ms)
                        .map(|(k, _)| k.clone());
                    if let Some(first) = first {
                        entries.remove(&first);
                    }
                }
                entries.insert(
                    key.to_string(),
                    Entry {
                        expires_at_ms: now.saturating_add(ttl.as_millis() as u64),
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
        if self.lock().remove(key).is_some() {
            self.schedule_write();
        }
    }

    /// Drops every entry naming `issuer` (a login with its metadata failed).
    pub async fn invalidate_issuer(&self, issuer: &str) {
        self.load().await;
        let removed = {
            let mut entries = self.lock();
            let before = entries.len();
            entries.retain(|_, e| e.discovery.issuer != issuer);
            entries.len() != before
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
                    let mut entries = lock(&inner.entries);
                    for (key, entry) in from_file {
                        entries.entry(key).or_insert(entry);
                    }
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        lock(&self.inner.entries)
    }
}

fn write_now(inner: &Inner) {
    let _serial = lock(&inner.write_lock);
    inner.write_scheduled.store(false, Ordering::Release);
    let doc = FileDoc {
        version: FILE_VERSION,
        entries: lock(&inner.entries).clone(),
    };
    let Some(path) = inner.file.get() else { return };
    let bytes = serde_json::to_vec(&doc).expect("the cache serializes");
    if let Err(e) = write_atomically(path, &bytes) {
        tracing::debug!(path = %path.display(), error = %e, "discovery cache not saved");
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The unexpired entries of the file; nothing when it is missing, too large, corrupt or of
/// another version.
fn read_file(path: &Path) -> HashMap<String, Entry> {
    let Some(bytes) = read_bounded(path, MAX_FILE_BYTES) else {
        return HashMap::new();
    };
    match serde_json::from_slice::<FileDoc>(&bytes) {
        Ok(doc) if doc.version == FILE_VERSION => {
            let now = now_ms();
            let mut entries: Vec<(String, Entry)> = doc
                .entries
                .into_iter()
                .filter(|(_, e)| e.expires_at_ms > now)
                .collect();
            entries.sort_by_key(|(_, e)| std::cmp::Reverse(e.expires_at_ms));
            entries.truncate(MAX_ENTRIES);
            entries.into_iter().collect()
        }
        Ok(_) => HashMap::new(),
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "discovery cache file corrupt; ignored");
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::discovery::AuthServerMetadata;

    fn discovery(issuer: &str) -> Discovery {
        let origin = Url::parse(issuer).unwrap();
        Discovery {
            resource: "https://mcp.example/mcp".into(),
            protected_resource_url: None,
            protected_resource: None,
            challenge: None,
            issuer: issuer.into(),
            metadata: AuthServerMetadata::legacy_defaults(&origin),
            legacy: true,
            default_endpoints: true,
            cached: false,
        }
    }

    #[tokio::test]
    async fn entries_persist_expire_and_a_corrupt_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = DiscoveryCache::new();
        cache.persist_in(dir.path());
        let d = discovery("https://as.example");
        cache.insert("a", &d, None).await;
        cache.insert("gone", &d, Some(Duration::ZERO)).await;
        cache
            .insert(
                "short",
                &discovery("https://b.example"),
                Some(Duration::from_millis(1)),
            )
            .await;
        assert_eq!(cache.get("a").await, Some(d.clone()));
        assert_eq!(cache.get("gone").await, None);
        cache.flush().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(cache.get("short").await, None);

        let path = dir.path().join(FILE_NAME);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A new process reads what the last one wrote.
        let again = DiscoveryCache::new();
        again.persist_in(dir.path());
        assert_eq!(again.get("a").await, Some(d.clone()));
        again.invalidate_issuer("https://as.example").await;
        assert_eq!(again.get("a").await, None);

        std::fs::write(&path, b"{ not json").unwrap();
        let corrupt = DiscoveryCache::new();
        corrupt.persist_in(dir.path());
        assert_eq!(corrupt.get("a").await, None);
        corrupt.insert("b", &d, None).await;
        assert_eq!(corrupt.get("b").await, Some(d));
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let cache = DiscoveryCache::new();
        let d = discovery("https://as.example");
        for i in 0..MAX_ENTRIES + 10 {
            cache
                .insert(
                    &format!("k{i}"),
                    &d,
                    Some(Duration::from_secs(1000 + i as u64)),
                )
                .await;
        }
        assert_eq!(cache.lock().len(), MAX_ENTRIES);
        // The ones expiring first made room.
        assert_eq!(cache.get("k0").await, None);
        assert!(cache.get(&format!("k{}", MAX_ENTRIES + 9)).await.is_some());
    }

    #[test]
    fn keys_differ_by_resource_and_headers_and_hide_header_values() {
        let url = Url::parse("https://mcp.example/mcp#frag").unwrap();
        let plain = DiscoveryCache::key(&url, &HeaderMap::new(), None);
        assert_eq!(plain, "https://mcp.example/mcp");
        let with_resource = DiscoveryCache::key(&url, &HeaderMap::new(), Some("https://r"));
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", "SECRET-VALUE".parse().unwrap());
        let with_headers = DiscoveryCache::key(&url, &headers, None);
        assert_ne!(plain, with_resource);
        assert_ne!(plain, with_headers);
        assert!(!with_headers.contains("SECRET"));
    }
}

//! Sticky callback ports: the loopback port each server's Dynamic Client Registration was
//! made for, kept in `state_dir/callback-ports.json`, so later logins (in this process or
//! the next) listen there again while it is free. The redirect URI stays the same, and with
//! it the stored registration is reused instead of a new one being made at every login.
//! A configured port always wins; the file is bounded and a corrupt one is ignored.
//! Daemons sharing the state directory merge on write, under an OS lock on
//! `callback-ports.json.lock`: a port this process remembered since its last write wins,
//! every other server takes the file's (another daemon's newer) port.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::credentials::CredentialKey;
use crate::oauth::state_file::{lock_exclusive, read_bounded, write_atomically};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "callback-ports.json";
/// Servers remembered at most (the oldest entry makes room).
pub const MAX_ENTRIES: usize = 1024;
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// How long a write waits for another process's write; past it that write is skipped.
const FILE_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Port by server, with the order of insertion for eviction.
#[derive(Debug, Default)]
struct Ports {
    by_server: HashMap<String, u16>,
    counter: u64,
    order: HashMap<String, u64>,
    /// Remembered by this process and not yet written.
    unsaved: HashSet<String>,
}

impl Ports {
    fn insert(&mut self, key: String, port: u16) {
        if !self.by_server.contains_key(&key) && self.by_server.len() >= MAX_ENTRIES {
            let oldest = self
                .order
                .iter()
                .min_by_key(|(_, n)| **n)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                self.by_server.remove(&oldest);
                self.order.remove(&oldest);
                self.unsaved.remove(&oldest);
            }
        }
        self.counter += 1;
        self.order.insert(key.clone(), self.counter);
        self.by_server.insert(key, port);
    }
}

#[derive(Debug, Default)]
struct Inner {
    ports: Mutex<Ports>,
    file: OnceLock<PathBuf>,
    loaded: tokio::sync::OnceCell<()>,
    /// A write is scheduled and has not taken its snapshot yet: changes made meanwhile go
    /// into that write (1,000 logins started at once make a few writes, not 1,000).
    write_scheduled: AtomicBool,
    write_lock: Mutex<()>,
}

/// The remembered ports. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct StickyPorts {
    inner: Arc<Inner>,
}

fn key_of(key: &CredentialKey) -> String {
    format!("{} {}", key.server_name, key.server_url)
}

impl StickyPorts {
    /// Also keep the ports in `state_dir`. Only the first call counts.
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

    /// The port remembered for a server.
    pub async fn get(&self, key: &CredentialKey) -> Option<u16> {
        self.load().await;
        lock(&self.inner.ports).by_server.get(&key_of(key)).copied()
    }

    /// Remembers `port` for a server (written out when it changed).
    pub async fn remember(&self, key: &CredentialKey, port: u16) {
        self.load().await;
        let key = key_of(key);
        {
            let mut ports = lock(&self.inner.ports);
            if ports.by_server.get(&key) == Some(&port) {
                return;
            }
            ports.unsaved.insert(key.clone());
            ports.insert(key, port);
        }
        // Written off the login's path: the answer does not wait for the disk.
        if self.inner.file.get().is_none()
            || self.inner.write_scheduled.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || write_now(&inner));
    }

    /// Writes the ports now, off the async workers.
    pub async fn flush(&self) {
        let inner = self.inner.clone();
        let _ = tokio::task::spawn_blocking(move || write_now(&inner)).await;
    }

    async fn load(&self) {
        let Some(path) = self.inner.file.get().cloned() else {
            return;
        };
        let inner = self.inner.clone();
        self.inner
            .loaded
            .get_or_init(|| async move {
                let read = tokio::task::spawn_blocking(move || read_file(&path)).await;
                if let Ok(Some(map)) = read {
                    let mut ports = lock(&inner.ports);
                    for (key, port) in map.into_iter().take(MAX_ENTRIES) {
                        if !ports.by_server.contains_key(&key) {
                            ports.insert(key, port);
                        }
                    }
                }
            })
            .await;
    }
}

/// The file's ports (zeros dropped); `None` when it is missing, too large or corrupt.
fn read_file(path: &Path) -> Option<HashMap<String, u16>> {
    let bytes = read_bounded(path, MAX_FILE_BYTES)?;
    match serde_json::from_slice::<HashMap<String, u16>>(&bytes) {
        Ok(mut map) => {
            map.retain(|_, port| *port != 0);
            Some(map)
        }
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "callback ports file corrupt; ignored");
            None
        }
    }
}

/// Under the file's lock: the other processes' ports merged in (this process's unsaved
/// ones win), then the union written. The ports' lock is never held across file I/O.
fn write_now(inner: &Inner) {
    let Some(path) = inner.file.get() else {
        return;
    };
    let _serial = lock(&inner.write_lock);
    // Changes made from here on schedule a write of their own (also when this one is skipped).
    inner.write_scheduled.store(false, Ordering::Release);
    let Some(_file_lock) = lock_exclusive(path, FILE_LOCK_WAIT) else {
        tracing::debug!(path = %path.display(), "callback ports busy (another process is writing them); not saved this time");
        return;
    };
    let on_disk = read_file(path).unwrap_or_default();
    let (snapshot, written) = {
        let mut ports = lock(&inner.ports);
        for (key, port) in on_disk.into_iter().take(MAX_ENTRIES) {
            if !ports.unsaved.contains(&key) && ports.by_server.get(&key) != Some(&port) {
                ports.insert(key, port);
            }
        }
        let written: Vec<(String, u16)> = ports
            .unsaved
            .iter()
            .filter_map(|k| ports.by_server.get(k).map(|p| (k.clone(), *p)))
            .collect();
        (ports.by_server.clone(), written)
    };
    let bytes = serde_json::to_vec(&snapshot).expect("a map of ports serializes");
    if let Err(e) = write_atomically(path, &bytes) {
        tracing::debug!(path = %path.display(), error = %e, "callback ports not saved");
        return;
    }
    // Saved: from now on the file's value of those servers counts (unless remembered anew).
    let mut ports = lock(&inner.ports);
    for (key, port) in written {
        if ports.by_server.get(&key) == Some(&port) {
            ports.unsaved.remove(&key);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ports_survive_a_restart_and_a_corrupt_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let key = CredentialKey::new("s", "https://mcp.example/mcp");
        let ports = StickyPorts::default();
        ports.persist_in(dir.path());
        assert_eq!(ports.get(&key).await, None);
        ports.remember(&key, 49152).await;
        assert_eq!(ports.get(&key).await, Some(49152));
        ports.flush().await;

        let next = StickyPorts::default();
        next.persist_in(dir.path());
        assert_eq!(next.get(&key).await, Some(49152));

        std::fs::write(dir.path().join(FILE_NAME), b"[1,2").unwrap();
        let corrupt = StickyPorts::default();
        corrupt.persist_in(dir.path());
        assert_eq!(corrupt.get(&key).await, None);
        corrupt.remember(&key, 50000).await;
        assert_eq!(corrupt.get(&key).await, Some(50000));
    }

    #[tokio::test]
    async fn processes_sharing_the_file_keep_each_others_ports() {
        let dir = tempfile::tempdir().unwrap();
        let on = || {
            let ports = StickyPorts::default();
            ports.persist_in(dir.path());
            ports
        };
        let (one, two, three) = (
            CredentialKey::new("one", "https://one.example/mcp"),
            CredentialKey::new("two", "https://two.example/mcp"),
            CredentialKey::new("three", "https://three.example/mcp"),
        );
        let (a, b) = (on(), on());
        // Both read the (empty) file before either wrote.
        assert_eq!(a.get(&one).await, None);
        assert_eq!(b.get(&one).await, None);
        a.remember(&one, 50001).await;
        a.flush().await;
        b.remember(&two, 50002).await;
        b.flush().await;
        a.remember(&three, 50003).await;
        a.flush().await;
        let fresh = on();
        assert_eq!(fresh.get(&one).await, Some(50001));
        assert_eq!(fresh.get(&two).await, Some(50002));
        assert_eq!(fresh.get(&three).await, Some(50003));
        assert_eq!(a.get(&two).await, Some(50002));

        // B moves server one to another port later; A's next write keeps B's.
        b.remember(&one, 50011).await;
        b.flush().await;
        a.flush().await;
        assert_eq!(on().get(&one).await, Some(50011));
        assert_eq!(a.get(&one).await, Some(50011));
    }
}

//! Sticky callback ports: the loopback port each server's Dynamic Client Registration was
//! made for, kept in `state_dir/callback-ports.json`, so later logins (in this process or
//! the next) listen there again while it is free. The redirect URI stays the same, and with
//! it the stored registration is reused instead of a new one being made at every login.
//! A configured port always wins; the file is bounded and a corrupt one is ignored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::credentials::CredentialKey;
use crate::oauth::state_file::{read_bounded, write_atomically};

/// The file's name in the state directory.
pub const FILE_NAME: &str = "callback-ports.json";
/// Servers remembered at most (the oldest entry makes room).
pub const MAX_ENTRIES: usize = 1024;
const MAX_FILE_BYTES: u64 = 256 * 1024;

/// Port by server, with the order of insertion for eviction.
#[derive(Debug, Default)]
struct Ports {
    by_server: HashMap<String, u16>,
    counter: u64,
    order: HashMap<String, u64>,
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
            let mut guard = lock(&self.inner.ports);
            let Ports {
                by_server: ports,
                counter,
                order,
            } = &mut *guard;
            if ports.get(&key) == Some(&port) {
                return;
            }
            if !ports.contains_key(&key) && ports.len() >= MAX_ENTRIES {
                let oldest = order
                    .iter()
                    .min_by_key(|(_, n)| **n)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    ports.remove(&oldest);
                    order.remove(&oldest);
                }
            }
            *counter += 1;
            order.insert(key.clone(), *counter);
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
                let read = tokio::task::spawn_blocking(move || {
                    let bytes = read_bounded(&path, MAX_FILE_BYTES)?;
                    match serde_json::from_slice::<HashMap<String, u16>>(&bytes) {
                        Ok(map) => Some(map),
                        Err(e) => {
                            tracing::debug!(path = %path.display(), error = %e, "callback ports file corrupt; ignored");
                            None
                        }
                    }
                })
                .await;
                if let Ok(Some(map)) = read {
                    let mut guard = lock(&inner.ports);
                    let Ports {
                        by_server: ports,
                        counter,
                        order,
                    } = &mut *guard;
                    for (key, port) in map.into_iter().take(MAX_ENTRIES) {
                        if port != 0 && !ports.contains_key(&key) {
                            *counter += 1;
                            order.insert(key.clone(), *counter);
                            ports.insert(key, port);
                        }
                    }
                }
            })
            .await;
    }
}

fn write_now(inner: &Inner) {
    let Some(path) = inner.file.get() else {
        return;
    };
    let _serial = lock(&inner.write_lock);
    inner.write_scheduled.store(false, Ordering::Release);
    let snapshot = lock(&inner.ports).by_server.clone();
    let bytes = serde_json::to_vec(&snapshot).expect("a map of ports serializes");
    if let Err(e) = write_atomically(path, &bytes) {
        tracing::debug!(path = %path.display(), error = %e, "callback ports not saved");
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
}

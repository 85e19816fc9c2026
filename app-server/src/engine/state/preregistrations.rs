//! Pre-registrations under way, by server: pre-warm holds its server's entry from the start
//! of its discovery to the stored registration, and a login to that server waits for it
//! before it picks its callback port and client, so the two never register twice. At most
//! one entry per configured server (pre-warm runs a few at a time).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

type Entries = Arc<Mutex<HashMap<String, Arc<AsyncMutex<()>>>>>;

#[derive(Debug, Default)]
pub struct Preregistrations {
    entries: Entries,
}

/// One pre-registration under way; dropping it (done, failed or aborted) lets the logins
/// waiting for it go on.
pub struct Running {
    entries: Entries,
    server: String,
    lock: Arc<AsyncMutex<()>>,
    _held: OwnedMutexGuard<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut entries = lock_map(&self.entries);
        if entries
            .get(&self.server)
            .is_some_and(|l| Arc::ptr_eq(l, &self.lock))
        {
            entries.remove(&self.server);
        }
    }
}

impl Preregistrations {
    /// Marks `server`'s pre-registration as under way (a newer one replaces the mark).
    pub fn begin(&self, server: &str) -> Running {
        let lock = Arc::new(AsyncMutex::new(()));
        let held = lock.clone().try_lock_owned().expect("a new lock is free");
        lock_map(&self.entries).insert(server.to_string(), lock.clone());
        Running {
            entries: self.entries.clone(),
            server: server.to_string(),
            lock,
            _held: held,
        }
    }

    /// Waits until no pre-registration of `server` is under way.
    pub async fn wait(&self, server: &str) {
        let running = lock_map(&self.entries).get(server).cloned();
        if let Some(running) = running {
            drop(running.lock().await);
        }
    }
}

fn lock_map<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_login_waits_for_the_pre_registration_of_its_server_only() {
        let p = Preregistrations::default();
        let running = p.begin("a");
        // Another server does not wait.
        tokio::time::timeout(std::time::Duration::from_secs(10), p.wait("b"))
            .await
            .unwrap();
        let waiting = p.wait("a");
        tokio::pin!(waiting);
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), &mut waiting)
                .await
                .is_err()
        );
        drop(running);
        tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
            .await
            .unwrap();
        assert!(lock_map(&p.entries).is_empty());
    }
}

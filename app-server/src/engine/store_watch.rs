//! Noticing writes of other processes (a second daemon, the CLI) to the file store.
//!
//! Every write replaces `credentials.json` by renaming a new file over it, so its identity
//! (device and inode), size or modification time changes with each one. A short timer
//! compares them; on a change the scheduler is woken, re-reads the store and announces the
//! statuses that differ. With the keyring backend the file holds the index of stored
//! servers, so logins and logouts are noticed; refreshes happen inside the keyring and are
//! not (their status does not change).

use std::fs::Metadata;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{Notify, watch};
use tokio::time::MissedTickBehavior;

/// How often the file is looked at: changes are announced within about this long.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// What tells one version of the file from the next; `None` when there is no file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<SystemTime>,
}

impl FileIdentity {
    pub(super) fn of(meta: &Metadata) -> Self {
        #[cfg(unix)]
        let (device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (device, inode) = (0, 0);
        FileIdentity {
            device,
            inode,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

async fn identity(path: &PathBuf) -> Option<FileIdentity> {
    tokio::fs::metadata(path)
        .await
        .ok()
        .map(|m| FileIdentity::of(&m))
}

/// Wakes `wake` whenever the file at `path` changes (appears, goes, is replaced), until
/// `stop`.
pub(super) async fn watch(path: PathBuf, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut last = identity(&path).await;
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stop| *stop) => break,
            _ = tick.tick() => {}
        }
        let now = identity(&path).await;
        if now != last {
            last = now;
            wake.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_replaced_file_is_a_change_and_an_untouched_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        assert_eq!(identity(&path).await, None);
        std::fs::write(&path, b"{}").unwrap();
        let first = identity(&path).await.unwrap();
        assert_eq!(identity(&path).await, Some(first));
        // Same size, same content, renamed over: still another file.
        let temp = dir.path().join(".credentials.json.tmp");
        std::fs::write(&temp, b"{}").unwrap();
        std::fs::rename(&temp, &path).unwrap();
        assert_ne!(identity(&path).await, Some(first));
    }

    #[tokio::test]
    async fn the_watcher_wakes_on_a_write_and_stops_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials.json");
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(watch(path.clone(), wake.clone(), stop_rx));
        // Let it take the first look before the file appears.
        tokio::time::sleep(WATCH_INTERVAL * 2).await;
        std::fs::write(&path, b"{}").unwrap();
        tokio::time::timeout(Duration::from_secs(10), wake.notified())
            .await
            .expect("woken after the write");
        stop.send_replace(true);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("stopped")
            .unwrap();
    }
}

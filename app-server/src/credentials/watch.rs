//! Hearing of every change to `credentials.json` without touching the file system, so the
//! in-memory copy can answer a token request on the calling thread (see `cache.rs`).
//!
//! On Linux an inotify watch on the state directory: the kernel queues an event for a
//! change to one of the directory's entries (a file renamed over it, created, removed,
//! written in place, its times or mode changed) while the change is made, before the
//! writer's call returns. Reading that queue is a non-blocking call that never waits for a
//! disk or a network file system. So when the queue holds nothing about the file, a copy
//! checked against the file after the queue was last read is still the file's content.
//! The file in place is watched as well (followed from one save to the next), because a
//! write through another name of it, such as a hard link made in another directory,
//! makes no event in this one; making that link changes its link count, which does.
//!
//! Elsewhere, and where inotify cannot be had (a sandbox, the per-user limit of inotify
//! instances reached), there is no watch and every use checks the file as before.

use std::ffi::OsStr;
use std::path::Path;

/// What the queue held since it was last read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Heard {
    /// Nothing about the file.
    Nothing,
    /// One new file was renamed over it, and nothing else happened to it: what a save
    /// makes. The store tells its own save from another's by the count (see `cache.rs`).
    Renamed,
    /// The file may have changed (or events were lost: the queue overflowed).
    Change,
    /// The watch no longer sees the directory (removed, moved, unmounted) or cannot be
    /// read: it is given up.
    Lost,
}

#[cfg(target_os = "linux")]
mod imp {
    use std::mem::MaybeUninit;
    use std::os::fd::OwnedFd;
    use std::sync::atomic::{AtomicI32, Ordering};

    use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
    use rustix::io::Errno;

    use super::*;

    /// An inotify instance watching one directory for changes to one of its entries, and
    /// the file that entry names for changes made through any other name of it.
    #[derive(Debug)]
    pub(in crate::credentials) struct DirWatch {
        fd: OwnedFd,
        name: Vec<u8>,
        dir: i32,
        /// The watch on the file now followed; `NONE` when none is.
        file: AtomicI32,
    }

    const NONE: i32 = -1;

    /// What is heard about the file itself: written, its times, mode or link count
    /// changed (a hard link made to it elsewhere), removed or moved by any name.
    const FILE_CHANGES: WatchFlags = WatchFlags::MODIFY
        .union(WatchFlags::CLOSE_WRITE)
        .union(WatchFlags::ATTRIB)
        .union(WatchFlags::DELETE_SELF)
        .union(WatchFlags::MOVE_SELF)
        .union(WatchFlags::DONT_FOLLOW);

    impl DirWatch {
        /// Watches `dir` for changes to its entry `name`; `None` when inotify cannot be had.
        pub(in crate::credentials) fn new(dir: &Path, name: &OsStr) -> Option<DirWatch> {
            use std::os::unix::ffi::OsStrExt;
            let fd = inotify::init(CreateFlags::CLOEXEC | CreateFlags::NONBLOCK)
                .inspect_err(
                    |e| tracing::debug!(error = %e, "no inotify instance for the credential store"),
                )
                .ok()?;
            let changes = WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MODIFY
                | WatchFlags::CLOSE_WRITE
                | WatchFlags::ATTRIB
                | WatchFlags::MOVED_FROM
                | WatchFlags::MOVED_TO
                | WatchFlags::DELETE_SELF
                | WatchFlags::MOVE_SELF
                | WatchFlags::ONLYDIR;
            let dir_wd = inotify::add_watch(&fd, dir, changes)
                .inspect_err(|e| tracing::debug!(error = %e, dir = %dir.display(), "cannot watch the state directory"))
                .ok()?;
            Some(DirWatch {
                fd,
                name: name.as_bytes().to_vec(),
                dir: dir_wd,
                file: AtomicI32::new(NONE),
            })
        }

        /// Follows the file now at `path` (the entry watched), so a change made to it
        /// through another name is heard too; stops following the one followed before.
        /// `false` when it cannot be followed (the per-user limit of watches reached): the
        /// copy must not be vouched for then. No file: nothing to follow, `true`.
        pub(in crate::credentials) fn follow_file(&self, path: &Path) -> bool {
            match inotify::add_watch(&self.fd, path, FILE_CHANGES) {
                Ok(wd) => {
                    let old = self.file.swap(wd, Ordering::SeqCst);
                    if old != NONE && old != wd {
                        let _ = inotify::remove_watch(&self.fd, old);
                    }
                    true
                }
                Err(e) => {
                    self.forget_file();
                    if e != Errno::NOENT {
                        tracing::debug!(error = %e, "cannot follow the credential file");
                    }
                    e == Errno::NOENT
                }
            }
        }

        /// Stops following the file: a save is about to replace it.
        pub(in crate::credentials) fn forget_file(&self) {
            let old = self.file.swap(NONE, Ordering::SeqCst);
            if old != NONE {
                let _ = inotify::remove_watch(&self.fd, old);
            }
        }

        /// Reads everything queued since the last call, without waiting.
        pub(in crate::credentials) fn drain(&self) -> Heard {
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(&self.fd, &mut buf);
            // Renames over the file, and whether anything else was heard about it.
            let (mut renamed, mut other) = (0_u32, false);
            loop {
                let event = match reader.next() {
                    Ok(event) => event,
                    Err(Errno::AGAIN) => {
                        return match (renamed, other) {
                            (0, false) => Heard::Nothing,
                            (1, false) => Heard::Renamed,
                            _ => Heard::Change,
                        };
                    }
                    Err(Errno::INTR) => continue,
                    Err(e) => {
                        tracing::debug!(error = %e, "the credential store's watch failed");
                        return Heard::Lost;
                    }
                };
                let flags = event.events();
                if flags.contains(ReadFlags::QUEUE_OVERFLOW) {
                    other = true;
                    continue;
                }
                if event.wd() != self.dir {
                    // The file followed: anything is a change. A file followed before and
                    // replaced since (its removal, its watch's end) is not ours any more.
                    let followed = self.file.load(Ordering::SeqCst);
                    other |= followed != NONE && event.wd() == followed;
                    continue;
                }
                if flags.intersects(
                    ReadFlags::IGNORED
                        | ReadFlags::UNMOUNT
                        | ReadFlags::DELETE_SELF
                        | ReadFlags::MOVE_SELF,
                ) {
                    return Heard::Lost;
                }
                let ours = event
                    .file_name()
                    .is_none_or(|n| n.to_bytes() == self.name.as_slice());
                if ours {
                    if flags == ReadFlags::MOVED_TO {
                        renamed = renamed.saturating_add(1);
                    } else {
                        other = true;
                    }
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use super::*;

    /// No watch on this platform: every use checks the file.
    #[derive(Debug)]
    pub(in crate::credentials) struct DirWatch;

    impl DirWatch {
        pub(in crate::credentials) fn new(_: &Path, _: &OsStr) -> Option<DirWatch> {
            None
        }

        pub(in crate::credentials) fn drain(&self) -> Heard {
            Heard::Lost
        }

        pub(in crate::credentials) fn follow_file(&self, _: &Path) -> bool {
            false
        }

        pub(in crate::credentials) fn forget_file(&self) {}
    }
}

pub(super) use imp::DirWatch;

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn watch(dir: &Path) -> DirWatch {
        DirWatch::new(dir, OsStr::new("credentials.json")).expect("inotify on Linux")
    }

    #[test]
    fn every_kind_of_change_to_the_file_is_heard_and_others_files_are_not() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let file = dir.join("credentials.json");
        let w = watch(dir);
        assert_eq!(w.drain(), Heard::Nothing);

        // Other entries of the directory: a temporary file, a lock, another state file.
        std::fs::write(dir.join(".credentials.json.tmp"), b"{}").unwrap();
        std::fs::write(dir.join("credentials.json.lock"), b"").unwrap();
        std::fs::write(dir.join("discovery-cache.json"), b"{}").unwrap();
        std::fs::create_dir(dir.join("locks")).unwrap();
        std::fs::write(dir.join("locks").join("x.lock"), b"").unwrap();
        assert_eq!(w.drain(), Heard::Nothing);

        // Renamed over (how the store writes), created, written in place, touched,
        // chmod-ed, removed: each is heard, once.
        let changes: [&dyn Fn(); 6] = [
            &|| std::fs::rename(dir.join(".credentials.json.tmp"), &file).unwrap(),
            &|| {
                std::fs::remove_file(&file).unwrap();
                std::fs::write(&file, b"{}").unwrap();
            },
            &|| {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&file)
                    .unwrap();
                f.write_all(b" ").unwrap();
            },
            &|| {
                let f = std::fs::File::options().write(true).open(&file).unwrap();
                f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
            },
            &|| {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            },
            &|| std::fs::remove_file(&file).unwrap(),
        ];
        for (i, change) in changes.iter().enumerate() {
            change();
            // A rename over it is told apart from the rest: what a save makes.
            let expected = if i == 0 {
                Heard::Renamed
            } else {
                Heard::Change
            };
            assert_eq!(w.drain(), expected, "change {i}");
            assert_eq!(w.drain(), Heard::Nothing, "change {i} heard once");
        }
    }

    #[test]
    fn only_a_single_rename_with_nothing_else_is_heard_as_one() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let file = dir.join("credentials.json");
        let w = watch(dir);
        let rename_over = |n: u32| {
            let temp = dir.join(format!(".credentials.json.{n}.tmp"));
            std::fs::write(&temp, b"{}").unwrap();
            std::fs::rename(&temp, &file).unwrap();
        };
        // A save, and a removal of its temp file's name by others: one rename.
        rename_over(0);
        assert_eq!(w.drain(), Heard::Renamed);
        // Two saves between two reads of the queue.
        rename_over(1);
        rename_over(2);
        assert_eq!(w.drain(), Heard::Change);
        // A save and a write in place after it.
        rename_over(3);
        std::fs::write(&file, b"{ }").unwrap();
        assert_eq!(w.drain(), Heard::Change);
        // A directory renamed to the file's name.
        std::fs::remove_file(&file).unwrap();
        assert_eq!(w.drain(), Heard::Change);
        std::fs::create_dir(dir.join("d")).unwrap();
        std::fs::rename(dir.join("d"), &file).unwrap();
        assert_eq!(w.drain(), Heard::Change);
    }

    #[test]
    fn a_removed_or_moved_directory_loses_the_watch() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        let w = watch(&dir);
        std::fs::rename(&dir, tmp.path().join("moved")).unwrap();
        assert_eq!(w.drain(), Heard::Lost);

        std::fs::create_dir(&dir).unwrap();
        let w = watch(&dir);
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(w.drain(), Heard::Lost);
    }

    #[test]
    fn a_flood_of_events_is_read_in_one_call() {
        let tmp = tempfile::tempdir().unwrap();
        let w = watch(tmp.path());
        // Far more events than one read's buffer holds, most of them about other files.
        for i in 0..2000 {
            std::fs::write(tmp.path().join(format!("other-{i}")), b"x").unwrap();
        }
        std::fs::write(tmp.path().join("credentials.json"), b"{}").unwrap();
        assert_eq!(w.drain(), Heard::Change);
        assert_eq!(w.drain(), Heard::Nothing);
        // A queue that overflowed is a change even when the rest is one rename.
        // Each write queues two events; the kernel's bound is per instance.
        let bound: usize = std::fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(16_384)
            .min(1 << 20);
        for i in 0..bound {
            std::fs::write(tmp.path().join(format!("other-{}", i % 50)), b"x").unwrap();
        }
        let temp = tmp.path().join(".credentials.json.tmp");
        std::fs::write(&temp, b"{}").unwrap();
        std::fs::rename(&temp, tmp.path().join("credentials.json")).unwrap();
        assert_eq!(w.drain(), Heard::Change);
    }
}

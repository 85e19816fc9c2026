//! The credential document held in memory by [`super::cache::CachedFileStore`], and what
//! the watch on the state directory told about the file since that copy was taken.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::document::Document;
use super::file::{Stamp, Stamped};
use super::watch::{DirWatch, Heard};

/// How much older than its stamp a cached copy's modification time must be to be trusted
/// without a read; well above the timestamp granularity of common file systems.
pub(super) const RACY_WINDOW: Duration = Duration::from_millis(100);

/// The copy, and what the watch told about the file so far.
#[derive(Debug, Default)]
pub(super) struct Held {
    pub(crate) snapshot: Option<Snapshot>,
    /// Changes heard so far: a check vouches for its copy only when none was heard while
    /// it looked at the file.
    pub(crate) heard: u64,
    /// The watch was given up: every use checks the file.
    pub(crate) lost: bool,
    /// What was heard about the file since the save now being made read the queue under
    /// the file's lock, whoever read it since; with the number of that save.
    save: Option<(u64, SaveWindow)>,
    /// Saves numbered so far.
    saves: u64,
}

/// What the reads of the queue heard during one save.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SaveWindow {
    /// Reads that heard exactly one rename over the file and nothing else.
    renamed: u32,
    /// Anything else was heard (or the watch was lost).
    other: bool,
}

impl SaveWindow {
    /// The save's own rename, and nothing else, was heard: the file is what it wrote.
    pub(crate) fn only_its_rename(&self) -> bool {
        self.renamed == 1 && !self.other
    }
}

#[derive(Debug)]
pub(super) struct Snapshot {
    pub(crate) stamp: Option<Stamp>,
    /// When `stamp` was taken (before the document was read, or right after it was written).
    pub(crate) taken_at: SystemTime,
    pub(crate) doc: Arc<Document>,
    /// Checked against the file after the watch's queue was read, with nothing heard
    /// since: the file's content until the watch hears of a change.
    pub(crate) vouched: bool,
}

impl Snapshot {
    pub(crate) fn new(stamped: Stamped, taken_at: SystemTime) -> Snapshot {
        Snapshot {
            stamp: stamped.stamp,
            taken_at,
            doc: Arc::new(stamped.doc),
            vouched: false,
        }
    }

    /// Whether the file stamped `now` is this copy's document.
    pub(crate) fn matches(&self, now: Option<&Stamp>) -> bool {
        if self.stamp.as_ref() != now {
            return false;
        }
        match now.map(|s| s.modified) {
            // No file: nothing to be racy about (a created file has a stamp).
            None => true,
            Some(Some(modified)) => modified
                .checked_add(RACY_WINDOW)
                .is_some_and(|safe| safe <= self.taken_at),
            // A platform without modification times: identity and size only.
            Some(None) => true,
        }
    }
}

impl Held {
    pub(crate) fn hear(&mut self, heard: Heard) {
        match heard {
            Heard::Nothing => return,
            Heard::Renamed | Heard::Change => self.heard += 1,
            Heard::Lost => self.lost = true,
        }
        if let Some(snapshot) = self.snapshot.as_mut() {
            snapshot.vouched = false;
        }
    }

    /// Reads the watch's queue and takes in what it held.
    pub(crate) fn drain(&mut self, watch: &DirWatch) {
        let heard = watch.drain();
        if let Some((_, window)) = self.save.as_mut() {
            match heard {
                Heard::Nothing => {}
                Heard::Renamed => window.renamed += 1,
                Heard::Change | Heard::Lost => window.other = true,
            }
        }
        self.hear(heard);
    }

    /// Starts hearing for a save about to be made; its number.
    pub(crate) fn begin_save(&mut self) -> u64 {
        self.saves += 1;
        self.save = Some((self.saves, SaveWindow::default()));
        self.saves
    }

    /// What was heard during save `number`; `None` when another save began since.
    pub(crate) fn end_save(&mut self, number: u64) -> Option<SaveWindow> {
        match self.save {
            Some((n, window)) if n == number => {
                self.save = None;
                Some(window)
            }
            _ => None,
        }
    }

    /// Whether nothing was heard since the watch's queue was read with `heard` changes.
    pub(crate) fn still(&self, heard: Option<u64>) -> bool {
        !self.lost && heard == Some(self.heard)
    }
}

//! Which version of the document is on disk: [`Stamp`], and a document read with the stamp
//! of the file it came from ([`Stamped`]).

use std::time::SystemTime;

use super::super::document::Document;

/// A document and the stamp of the file it came from.
#[derive(Debug)]
pub(crate) struct Stamped {
    pub(crate) stamp: Option<Stamp>,
    pub(crate) doc: Document,
    /// The document was just renamed into place by this process (one save), not read.
    pub(crate) written: bool,
}

/// The file's identity (device and inode), size and modification time: every save renames
/// a new file over the old one, so a changed document has a changed stamp. Equal stamps
/// can hide a change only within the file system's timestamp granularity, which the cache
/// guards against (see `cache.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    pub(crate) modified: Option<SystemTime>,
}

impl Stamp {
    pub(super) fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let (dev, ino) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (dev, ino) = (0, 0);
        Stamp {
            dev,
            ino,
            len: meta.len(),
            modified: meta.modified().ok(),
        }
    }
}

//! How much of a list a server sends the daemon keeps. A response body may hold 1 MiB
//! (`http::MAX_BODY_BYTES`), room for hundreds of thousands of short entries, and the daemon
//! does its work on one async worker thread: every list a server gives (scopes, methods,
//! algorithms, grant and response types, authorization servers, redirect URIs) is cut to
//! [`MAX_LIST_ENTRIES`] while it is parsed, so nothing later (dedup, merge, storage, the
//! status list) ever sees more.
//!
//! A longer list keeps its first [`MAX_LIST_ENTRIES`] entries (the rest is skipped without
//! being allocated) and a warning is logged; an entry longer than [`MAX_NAME_BYTES`] (names:
//! scopes, methods, algorithms, types) or [`MAX_URL_BYTES`] (URLs) is dropped the same way:
//! no real server's name is that long, and one that is cannot be what the daemon looks for.
//! An entry of the wrong type (not a string) is an error, as before.

use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, SeqAccess, Visitor};

/// Entries kept of any list a server sends.
pub const MAX_LIST_ENTRIES: usize = 1024;
/// Longest name kept (a scope, a method, an algorithm, a grant or response type).
pub const MAX_NAME_BYTES: usize = 512;
/// Longest URL kept in a list (an authorization server, a redirect URI).
pub const MAX_URL_BYTES: usize = 2048;

/// A list of names, cut to the bounds while it is deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names(pub Vec<String>);

/// A list of URLs, cut to the bounds while it is deserialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls(pub Vec<String>);

/// What was left out of one list.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Entries past [`MAX_LIST_ENTRIES`].
    pub past_count: usize,
    /// Entries longer than the entry bound.
    pub too_long: usize,
}

impl Cut {
    fn is_empty(&self) -> bool {
        self.past_count == 0 && self.too_long == 0
    }

    /// Logs what was cut (once per list).
    pub fn warn(&self, what: &str, max_entry: usize) {
        if self.is_empty() {
            return;
        }
        tracing::warn!(
            list = what,
            kept = MAX_LIST_ENTRIES,
            past_count = self.past_count,
            too_long = self.too_long,
            max_entry_bytes = max_entry,
            "a server sent a list longer than the daemon keeps; the rest was ignored"
        );
    }
}

/// Keeps at most [`MAX_LIST_ENTRIES`] entries of `entries`, each at most `max_entry` bytes
/// long, in order; says what was left out. Entries without a value (whitespace-split
/// scopes) are never allocated past the bound.
pub fn bounded<'a>(entries: impl Iterator<Item = &'a str>, max_entry: usize) -> (Vec<String>, Cut) {
    let mut kept = Vec::new();
    let mut cut = Cut::default();
    for entry in entries {
        if entry.len() > max_entry {
            cut.too_long += 1;
        } else if kept.len() < MAX_LIST_ENTRIES {
            kept.push(entry.to_string());
        } else {
            cut.past_count += 1;
        }
    }
    (kept, cut)
}

/// A space-delimited scope string (a challenge's `scope`, a token response's `scope`),
/// bounded like every list.
pub fn scope_string(scope: &str, what: &str) -> Vec<String> {
    let (kept, cut) = bounded(scope.split_whitespace(), MAX_NAME_BYTES);
    cut.warn(what, MAX_NAME_BYTES);
    kept
}

struct BoundedVisitor {
    max_entry: usize,
}

impl<'de> Visitor<'de> for BoundedVisitor {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        let mut cut = Cut::default();
        loop {
            if kept.len() >= MAX_LIST_ENTRIES {
                // Past the bound: still checked to be JSON, never allocated.
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    cut.past_count += 1;
                }
                break;
            }
            let Some(entry) = seq.next_element::<EntryString>()? else {
                break;
            };
            if entry.0.len() > self.max_entry {
                cut.too_long += 1;
            } else {
                kept.push(entry.0);
            }
        }
        cut.warn(
            if self.max_entry == MAX_URL_BYTES {
                "urls"
            } else {
                "names"
            },
            self.max_entry,
        );
        Ok(kept)
    }
}

/// One entry: a string (borrowed from the input where possible, copied only when kept).
struct EntryString(String);

impl<'de> Deserialize<'de> for EntryString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(EntryString)
    }
}

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BoundedVisitor {
            max_entry: MAX_NAME_BYTES,
        })
        .map(Names)
    }
}

impl<'de> Deserialize<'de> for Urls {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(BoundedVisitor {
            max_entry: MAX_URL_BYTES,
        })
        .map(Urls)
    }
}

/// `deserialize_with` for an optional list of names (`null` and absent are `None`).
pub fn opt_names<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Ok(Option::<Names>::deserialize(d)?.map(|n| n.0))
}

/// `deserialize_with` for a list of URLs (`null` is empty).
pub fn urls<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<Urls>::deserialize(d)?
        .map(|u| u.0)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests;

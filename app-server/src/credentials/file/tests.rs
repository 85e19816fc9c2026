//! The file backend against temp state dirs, one file a topic: entries saved, read and
//! deleted ([`entries`]), the document on disk ([`on_disk`]), and writers and lock holders
//! in several threads and instances ([`locking`]).

mod entries;
mod locking;
mod on_disk;

use std::collections::BTreeSet;
use std::sync::Arc;

use super::super::model::fixtures;
use super::*;

fn store(dir: &Path) -> FileStore {
    FileStore::open(&Home::at(dir)).unwrap()
}

fn key(name: &str) -> CredentialKey {
    CredentialKey::new(name, format!("https://{name}.example.com/mcp"))
}

fn creds(name: &str) -> StoredCredentials {
    let k = key(name);
    fixtures::credentials(&k.server_name, &k.server_url)
}

/// Names of the files in `dir`, without the lock files and the locks dir.
fn data_files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != LOCK_NAME && n != "locks")
        .collect()
}

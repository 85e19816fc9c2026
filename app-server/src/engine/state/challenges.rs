//! What the engine remembers of each server's refusals: the step-up logins made per scope
//! set and the protected resource metadata discovery used. Memory only, bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use url::Url;

use crate::credentials::CredentialKey;
use crate::engine::refusal::MAX_STEP_UPS;

/// Scope sets remembered per server; the oldest is forgotten first.
pub(crate) const MAX_SCOPE_SETS_PER_SERVER: usize = 32;

/// Servers remembered at once; beyond that the state starts over (it only ever saves work).
pub(crate) const MAX_SERVERS: usize = 1024;

/// What the daemon remembers about refusals, per server: the protected resource metadata
/// URL the last discovery used, and how often each scope set was stepped up to. Bounded.
#[derive(Debug, Default)]
pub struct ChallengeState {
    pub(crate) servers: Mutex<HashMap<String, ServerChallenges>>,
}

#[derive(Debug, Default)]
pub(crate) struct ServerChallenges {
    /// `None`: no discovery ran in this process; `Some(None)`: it found no document.
    pub(crate) discovered_prm: Option<Option<Url>>,
    /// Sorted scope sets and the step-ups started for each, oldest first.
    pub(crate) step_ups: VecDeque<(Vec<String>, u32)>,
    /// SHA-256 of an access token the MCP server refused (401) before it expired, while
    /// the renewal that follows runs: a refusal of that renewal means the grant was
    /// revoked.
    pub(crate) refused_unexpired: Option<[u8; 32]>,
}

impl ChallengeState {
    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ServerChallenges>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn with_server<T>(
        &self,
        key: &CredentialKey,
        f: impl FnOnce(&mut ServerChallenges) -> T,
    ) -> T {
        let mut servers = self.lock();
        let slot = key.storage_key();
        if !servers.contains_key(&slot) && servers.len() >= MAX_SERVERS {
            servers.clear();
        }
        f(servers.entry(slot).or_default())
    }

    /// The MCP server refused `access_token` although it had not expired.
    pub(crate) fn refused_unexpired(&self, key: &CredentialKey, access_token: &str) {
        let digest = token_digest(access_token);
        self.with_server(key, |s| s.refused_unexpired = Some(digest));
    }

    /// Whether the MCP server refused `access_token` before it expired (forgets it).
    pub(crate) fn take_refused_unexpired(&self, key: &CredentialKey, access_token: &str) -> bool {
        let digest = token_digest(access_token);
        self.lock()
            .get_mut(&key.storage_key())
            .and_then(|s| s.refused_unexpired.take_if(|d| *d == digest))
            .is_some()
    }

    /// Discovery for this server used `prm_url` (none: it found no document).
    pub fn discovered(&self, key: &CredentialKey, prm_url: Option<&Url>) {
        self.with_server(key, |s| s.discovered_prm = Some(prm_url.cloned()));
    }

    pub(crate) fn known_prm(&self, key: &CredentialKey) -> Option<Option<Url>> {
        self.lock()
            .get(&key.storage_key())
            .and_then(|s| s.discovered_prm.clone())
    }

    /// Counts a step-up for `scopes`; refused (with the count so far) once
    /// [`MAX_STEP_UPS`] were started for the same set.
    pub fn begin_step_up(&self, key: &CredentialKey, scopes: &[String]) -> Result<(), u32> {
        let set = scope_set(scopes);
        self.with_server(key, |s| {
            if let Some(entry) = s.step_ups.iter_mut().find(|(k, _)| *k == set) {
                if entry.1 >= MAX_STEP_UPS {
                    return Err(entry.1);
                }
                entry.1 += 1;
                return Ok(());
            }
            if s.step_ups.len() >= MAX_SCOPE_SETS_PER_SERVER {
                s.step_ups.pop_front();
            }
            s.step_ups.push_back((set, 1));
            Ok(())
        })
    }

    /// Takes back a counted step-up whose login did not start.
    pub fn undo_step_up(&self, key: &CredentialKey, scopes: &[String]) {
        let set = scope_set(scopes);
        self.with_server(key, |s| {
            if let Some(entry) = s.step_ups.iter_mut().find(|(k, _)| *k == set) {
                entry.1 = entry.1.saturating_sub(1);
            }
        });
    }

    /// A login the user asked for starts the counts over.
    pub fn forget_step_ups(&self, key: &CredentialKey) {
        if let Some(s) = self.lock().get_mut(&key.storage_key()) {
            s.step_ups.clear();
        }
    }
}

pub(crate) fn scope_set(scopes: &[String]) -> Vec<String> {
    let mut set = scopes.to_vec();
    set.sort();
    set.dedup();
    set
}

fn token_digest(token: &str) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    Sha256::digest(token.as_bytes()).into()
}

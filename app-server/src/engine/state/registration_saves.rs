//! DCR registrations saved off the login's answer, many in one write.
//!
//! A new registration is worth keeping (the next login to the server reuses it), but losing
//! it in a crash only costs registering again, so the login answers with its authorization
//! URL first and the flow task saves the registration afterwards. Saves made while one
//! write is queued join it: 1,000 logins started at once make a few writes of the
//! credential document, not 1,000 synced rewrites of it one after another, and the store's
//! write lane holds at most one queued registration write, so it never splits the group
//! commits of the token saves queued around it.
//!
//! Until its write is done a registration is kept here too, so that another login to the
//! same server and redirect URI in that time (a second click, a newer login replacing the
//! first) uses it instead of registering again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

use crate::credentials::{StoreError, StoreQueue, StoredRegistration};

/// Registrations waiting for their write; shared by the service's logins.
#[derive(Debug, Default)]
pub struct RegistrationSaves {
    /// The batch whose write is queued and has not started yet. Bounded by the number of
    /// logins under way (each waits for its own save).
    pub(crate) waiting: Arc<Mutex<Option<Batch>>>,
    /// Every registration saved and not written yet (queued or being written), by issuer
    /// and redirect URI. Bounded the same way.
    pub(crate) unwritten: Arc<Mutex<HashMap<(String, String), StoredRegistration>>>,
}

#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub(crate) regs: Vec<StoredRegistration>,
    pub(crate) replies: Vec<oneshot::Sender<Result<(), Arc<StoreError>>>>,
}

impl RegistrationSaves {
    /// Saves `reg` together with every registration saved meanwhile; returns once the
    /// write that took it is done, with its outcome.
    pub async fn save(
        &self,
        queue: &StoreQueue,
        reg: StoredRegistration,
    ) -> Result<(), Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        lock(&self.unwritten).insert(key_of(&reg), reg.clone());
        let first = {
            let mut waiting = lock(&self.waiting);
            let first = waiting.is_none();
            let batch = waiting.get_or_insert_with(Batch::default);
            batch.regs.push(reg);
            batch.replies.push(reply);
            first
        };
        if first {
            let (waiting, unwritten) = (self.waiting.clone(), self.unwritten.clone());
            let queued = queue
                .write(move |store| {
                    let Some(batch) = lock(&waiting).take() else {
                        return Ok(());
                    };
                    let result = store.save_registrations(&batch.regs).map_err(Arc::new);
                    // Written (or lost: then the next login registers again). A newer
                    // registration saved for the same key meanwhile stays.
                    let mut unwritten = lock(&unwritten);
                    for reg in &batch.regs {
                        if let Some(kept) = unwritten.get(&key_of(reg))
                            && kept.client_id == reg.client_id
                        {
                            unwritten.remove(&key_of(reg));
                        }
                    }
                    drop(unwritten);
                    for reply in batch.replies {
                        let _ = reply.send(result.clone());
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = queued {
                return Err(Arc::new(e));
            }
        }
        answer.await.unwrap_or_else(|_| {
            Err(Arc::new(StoreError::Io {
                path: Default::default(),
                source: std::io::Error::other("the credential store's worker thread stopped"),
            }))
        })
    }
}

impl RegistrationSaves {
    /// The registration saved for `issuer` and `redirect_uri` whose write is not done yet.
    pub fn unwritten(&self, issuer: &str, redirect_uri: &str) -> Option<StoredRegistration> {
        lock(&self.unwritten)
            .get(&(issuer.to_string(), redirect_uri.to_string()))
            .cloned()
    }

    /// Drops the unwritten registration for `issuer` and `redirect_uri` (the authorization
    /// server no longer knows it; its stored copy is deleted after the write).
    pub fn forget(&self, issuer: &str, redirect_uri: &str) {
        lock(&self.unwritten).remove(&(issuer.to_string(), redirect_uri.to_string()));
    }
}

pub(crate) fn key_of(reg: &StoredRegistration) -> (String, String) {
    (reg.issuer.clone(), reg.redirect_uri.clone())
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;

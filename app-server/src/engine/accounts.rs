//! Several accounts per server (rules 80-82): which account a request is for, and which
//! account the server's requests that name none use.
//!
//! Each account's tokens are an entry of their own in the store ([`CredentialKey`] carries
//! the label). A request that names no account uses the server's account chosen last, as
//! the store records it (`selected_at`), so every process sharing the store and a restart
//! agree; a login and a request naming an account choose it.

use std::sync::Arc;

use crate::clock::unix_millis;
use crate::credentials::{CurrentAccounts, StoreError, StoredSet, Update, chosen_last};
use crate::engine::service::OAuthService;
use crate::engine::target::ServerTarget;

impl OAuthService {
    /// `target` (a server as configured, no account) for a request that names `account`
    /// (checked by the caller with [`crate::credentials::check_account`]), or for the
    /// server's account chosen last when it names none (rule 81). With `choose`, a named
    /// account that is stored and was not the one chosen last becomes it (the request uses
    /// that account: later requests naming none follow it); a logout does not choose.
    pub async fn for_account(
        &self,
        target: Arc<ServerTarget>,
        account: Option<&str>,
        choose: bool,
    ) -> Result<Arc<ServerTarget>, StoreError> {
        let stored = self.stored_set().await?;
        let Some(account) = account else {
            let current = if target.account.is_none() {
                self.current_accounts(stored)
                    .label(&target.lookup_key())
                    .map(str::to_owned)
            } else {
                stored
                    .current(&target.as_account(None).lookup_key())
                    .and_then(|c| c.account.clone())
            };
            return Ok(match current {
                Some(account) if target.account.as_deref() != Some(&account) => {
                    Arc::new(target.as_account(Some(account)))
                }
                _ => target,
            });
        };
        let target = if target.account.as_deref() == Some(account) {
            target
        } else {
            Arc::new(target.as_account(Some(account.to_string())))
        };
        if choose {
            self.choose_account(&stored, &target).await?;
        }
        Ok(target)
    }

    /// The index of the accounts used last for `stored`: the one kept when it was made
    /// from this version of the store's document, else a new one (once per change).
    pub(super) fn current_accounts(&self, stored: StoredSet) -> Arc<CurrentAccounts> {
        let mut kept = self
            .current_accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match kept.as_ref() {
            Some(index) if index.is_of(&stored) => index.clone(),
            _ => {
                let index = Arc::new(CurrentAccounts::of(stored));
                *kept = Some(index.clone());
                index
            }
        }
    }

    /// Records `target`'s account as the server's account chosen last, when it is stored
    /// and another one is that now. One write per change of account, none otherwise.
    async fn choose_account(
        &self,
        stored: &StoredSet,
        target: &ServerTarget,
    ) -> Result<(), StoreError> {
        let key = target.lookup_key();
        let Some(entry) = stored.lookup(&key) else {
            return Ok(());
        };
        let last = chosen_last(stored.accounts_of(&target.name, target.url.as_str()));
        let Some(last) = last.filter(|l| l.account != entry.account) else {
            return Ok(());
        };
        // After the one chosen last even when clocks of processes sharing the store differ.
        let stamp = unix_millis().max(last.selected_at.unwrap_or(0).saturating_add(1));
        self.store_update(
            key.key().clone(),
            Box::new(move |old| match old {
                Some(old) if old.selected_at.is_none_or(|at| at < stamp) => {
                    let mut chosen = old.clone();
                    chosen.selected_at = Some(stamp);
                    Update::Save(chosen)
                }
                _ => Update::Keep,
            }),
        )
        .await?;
        Ok(())
    }
}

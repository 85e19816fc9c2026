//! Renewal: new tokens for stored credentials without the user, from one of
//! interchangeable sources behind [`TokenSource`]: the refresh token (`refresh.rs`), the
//! server's configured grant run again (`grants.rs`), or a new enterprise token exchange
//! (`enterprise.rs`). Which one applies is decided once, by `stored::renewal_for`, and
//! [`source_for`] maps it to its source.
//!
//! [`OAuthService::refresh`] is the renewal itself: under the cross-process refresh lock
//! (rule 20) it reads the store again and asks the source only when the credentials are
//! still the ones the caller saw and still not fresh enough. The single flight that shares
//! one renewal per server among every caller waiting for it is `vending.rs`'s, as a reusing
//! cache wraps a token source.

use futures::future::BoxFuture;

use crate::credentials::StoredCredentials;
use crate::engine::error::VendError;
use crate::engine::service::OAuthService;
use crate::engine::stored::{Renewal, fresh_enough, renewal_for, unrefreshable, usable};
use crate::engine::target::ServerTarget;

/// One way to obtain new tokens for `current` without the user. Called under the refresh
/// lock, once the caller made sure a renewal is due; saves what it obtained (compare-and-
/// save against `current`) and answers with what is stored afterwards.
pub(crate) trait TokenSource: Sync {
    fn renew<'a>(
        &'a self,
        service: &'a OAuthService,
        target: &'a ServerTarget,
        current: StoredCredentials,
    ) -> BoxFuture<'a, Result<StoredCredentials, VendError>>;
}

/// The refresh token grant (RFC 6749 6).
struct RefreshToken;

/// The server's configured grant that needs no browser (client credentials, JWT bearer).
struct ConfiguredGrant;

/// Enterprise-managed authorization: a new ID-JAG exchange at the identity provider.
struct EnterpriseExchange;

/// The refresh token of the server these tokens were obtained through (rule 86).
struct ThroughOwner;

impl TokenSource for ThroughOwner {
    fn renew<'a>(
        &'a self,
        service: &'a OAuthService,
        target: &'a ServerTarget,
        current: StoredCredentials,
    ) -> BoxFuture<'a, Result<StoredCredentials, VendError>> {
        Box::pin(service.renew_through_owner(target, current))
    }
}

impl TokenSource for RefreshToken {
    fn renew<'a>(
        &'a self,
        service: &'a OAuthService,
        target: &'a ServerTarget,
        current: StoredCredentials,
    ) -> BoxFuture<'a, Result<StoredCredentials, VendError>> {
        Box::pin(service.renew_with_refresh_token(target, current))
    }
}

impl TokenSource for ConfiguredGrant {
    fn renew<'a>(
        &'a self,
        service: &'a OAuthService,
        target: &'a ServerTarget,
        current: StoredCredentials,
    ) -> BoxFuture<'a, Result<StoredCredentials, VendError>> {
        Box::pin(service.renew_with_grant(target, current))
    }
}

impl TokenSource for EnterpriseExchange {
    fn renew<'a>(
        &'a self,
        service: &'a OAuthService,
        target: &'a ServerTarget,
        current: StoredCredentials,
    ) -> BoxFuture<'a, Result<StoredCredentials, VendError>> {
        Box::pin(service.enterprise_renew(target, current))
    }
}

/// The source that renews `creds` of `target`, if one can (the choice is
/// `stored::renewal_for`'s, which vending and challenges consult too).
fn source_for(
    target: &ServerTarget,
    creds: &StoredCredentials,
) -> Option<&'static dyn TokenSource> {
    Some(match renewal_for(target, creds)? {
        Renewal::RefreshToken => &RefreshToken,
        Renewal::ConfiguredGrant => &ConfiguredGrant,
        Renewal::EnterpriseExchange => &EnterpriseExchange,
        Renewal::ThroughOwner => &ThroughOwner,
    })
}

impl OAuthService {
    /// The renewal itself, under the cross-process lock (rule 20). `seen` is what the caller
    /// decided on; anything else in the store now was written meanwhile and is returned.
    /// Credentials no source can renew serve until they expire.
    pub(super) async fn refresh(
        &self,
        target: &ServerTarget,
        seen: StoredCredentials,
        min_validity_secs: u32,
    ) -> Result<StoredCredentials, VendError> {
        let name = &target.name;
        let key = target.key();
        // A shared login's tokens are guarded by the lock of the entry that holds them
        // (rule 85): every server sharing them takes the same lock.
        let lock_key = seen.entry_key();
        let _cross_process = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let current = usable(self.load(&key).await?, name)?;
        if current != seen || fresh_enough(&current, min_validity_secs) {
            return Ok(current);
        }
        match source_for(target, &current) {
            Some(source) => source.renew(self, target, current).await,
            None => unrefreshable(current, name),
        }
    }
}

//! The refreshes under way, shared by every caller that needs the same server's token
//! while one runs (single flight).

use std::sync::Arc;
use std::time::Duration;

use futures::future::{BoxFuture, Shared};

use crate::credentials::StoredCredentials;
use crate::engine::error::VendError;
use crate::oauth::http::TOTAL_TIMEOUT;

/// The result of one refresh, shared by every caller that waited for it.
pub(crate) type RefreshOutcome = Result<StoredCredentials, Arc<VendError>>;

pub(crate) type InFlightRefresh = Shared<BoxFuture<'static, RefreshOutcome>>;

/// How long shutdown waits for refreshes (and code exchanges) under way to save what the
/// server answered: one whole token request ([`TOTAL_TIMEOUT`]) and the save after it, so a
/// refresh token the server rotated is never lost to a SIGTERM.
pub(crate) const REFRESH_SETTLE_TIMEOUT: Duration =
    Duration::from_secs(TOTAL_TIMEOUT.as_secs() + 5);

// A refresh or code exchange holds its refresh lock for at most one request; the credential
// store's lock wait must outlast it, so a waiter only times out behind a stuck holder.
const _: () = assert!(TOTAL_TIMEOUT.as_secs() < crate::credentials::DEFAULT_LOCK_WAIT.as_secs());

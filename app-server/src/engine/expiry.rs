//! The scheduler: one task with one timer, set to the earliest of the moments something
//! happens to a configured server by itself (a token without a refresh token expires, a
//! token in use is due for its background refresh, a retry is due, a server falls out of
//! use). Each round re-reads the store, announces status changes and re-plans; the store
//! watcher and the request path wake it early.
//!
//! Background refreshes go through [`OAuthService::token`], the shared single-flight
//! refresh, so they never race a frontend's refresh or another process's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::credentials::{LookupKey, StoredCredentials, StoredSet, unix_now};
use crate::engine::error::VendError;
use crate::engine::service::OAuthService;
use crate::engine::state::live::{IN_USE_WINDOW, InUse, Live};
use crate::engine::status::StatusInfo;
use crate::engine::types::OAuthEvent;

/// A token in use is refreshed this long before it expires, or at half its lifetime when
/// that is sooner. Longer than the default `minValiditySecs` (60 s), so that token requests
/// answer from memory in steady state.
pub const REFRESH_LEAD_SECS: i64 = 90;
/// At least this long between two background refreshes of one server.
const MIN_SPACING: Duration = Duration::from_secs(5);
/// First retry after a failed background refresh; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Without anything planned, the scheduler still looks again this often.
const IDLE_ROUND: Duration = Duration::from_secs(3600);
/// A rescan that keeps losing to announcements gives up after this many reads.
const RESCAN_ATTEMPTS: usize = 3;
/// How often an unreadable store is tried again without a change to the file.
const UNREADABLE_ROUND: Duration = Duration::from_secs(60);

/// When a server may next be refreshed in the background, after a refresh or a failure.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hold {
    failures: u32,
    until: Instant,
}

/// The scheduler's own state, kept between rounds.
#[derive(Default)]
struct Scheduler {
    holds: HashMap<String, Hold>,
    running: HashSet<String>,
}

type Finished = (String, Result<Arc<StoredCredentials>, Arc<VendError>>);

/// What the scheduler does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Read every stored entry, announce, plan every server in use.
    Whole,
    /// Plan only the servers that came into use since the last round.
    Added,
}

impl OAuthService {
    /// The expiry scheduler: runs until `stop` or until the service is gone. `wake` asks for
    /// a whole round, `wake_added` for a round that plans only the servers newly in use.
    pub(super) async fn run_expiry(
        service: Weak<OAuthService>,
        wake: Arc<Notify>,
        wake_added: Arc<Notify>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut scheduler = Scheduler::default();
        let mut refreshes: JoinSet<Finished> = JoinSet::new();
        let mut round = Round::Whole;
        let mut next = Instant::now();
        loop {
            let Some(strong) = service.upgrade() else {
                break;
            };
            next = match round {
                Round::Whole => strong.live_round(&mut scheduler, &mut refreshes).await,
                Round::Added => next.min(strong.added_round(&mut scheduler, &mut refreshes).await),
            };
            drop(strong);
            round = tokio::select! {
                _ = stop.wait_for(|stop| *stop) => break,
                _ = wake.notified() => Round::Whole,
                _ = wake_added.notified() => Round::Added,
                _ = tokio::time::sleep_until(next) => Round::Whole,
                Some(done) = refreshes.join_next(), if !refreshes.is_empty() => {
                    if let Ok((name, result)) = done {
                        scheduler.finished(&name, &result, Instant::now());
                    }
                    Round::Whole
                }
            };
        }
        refreshes.abort_all();
    }
}

impl Scheduler {
    fn finished(
        &mut self,
        name: &str,
        result: &Result<Arc<StoredCredentials>, Arc<VendError>>,
        now: Instant,
    ) {
        self.running.remove(name);
        let hold = match result.as_ref().map_err(|e| e.as_ref()) {
            Ok(_) => Hold {
                failures: 0,
                until: now + MIN_SPACING,
            },
            Err(VendError::RefreshTransient { .. } | VendError::Store(_)) => {
                let failures = self.holds.get(name).map_or(0, |h| h.failures) + 1;
                tracing::debug!(server = %name, failures, "background refresh failed; retrying later");
                Hold {
                    failures,
                    until: now + backoff(failures),
                }
            }
            // Refused for good (announced as reauthenticationRequired by the refresh), logged
            // out, shutting down: nothing to retry; the next store change re-plans.
            Err(_) => Hold {
                failures: 0,
                until: now + MIN_SPACING,
            },
        };
        self.holds.insert(name.to_string(), hold);
    }
}

impl OAuthService {
    /// One whole round: read the store, announce what changed, start the refreshes that
    /// are due, and answer when the next round is needed.
    async fn live_round(
        self: &Arc<Self>,
        scheduler: &mut Scheduler,
        refreshes: &mut JoinSet<Finished>,
    ) -> Instant {
        Live::count(&self.live.full_rounds);
        // Every server in use is planned below, those new in use included.
        self.live.take_added();
        let configured = self.live.configured();
        let Some(stored) = self.rescan(&configured).await else {
            // The store cannot be read (the error was logged): the watcher wakes the
            // scheduler when the file changes, and it looks again now and then.
            return Instant::now() + UNREADABLE_ROUND;
        };
        let (now, unix_ms) = (Instant::now(), unix_millis());
        let mut next = now + IDLE_ROUND;

        // Tokens without a refresh token turn `expired` when they run out (of each
        // server's account used last, whose status is announced).
        let currents = self.current_accounts(stored.clone());
        for (_, key) in configured.iter() {
            if let Some(creds) = currents.current(key)
                && let Some(at) = expiry_moment(creds)
            {
                next = next.min(instant_at(at, now, unix_ms));
            }
        }

        let in_use = self.live.in_use(now);
        let names: HashSet<&str> = in_use.iter().map(|u| u.target.name.as_str()).collect();
        scheduler
            .holds
            .retain(|name, _| names.contains(name.as_str()));
        let mut planned = HashMap::new();
        for (i, u) in in_use.into_iter().enumerate() {
            let_others_run(i).await;
            let (at, planned_unix) = self.plan(scheduler, refreshes, u, &stored, now, unix_ms);
            next = next.min(at);
            if let Some((name, unix)) = planned_unix {
                planned.insert(name, unix);
            }
        }
        self.live.set_planned(planned);
        next
    }

    /// Plans the servers that came into use since the last round, from one look at the
    /// store (shared, not copied); answers the earliest moment one of them needs a round.
    async fn added_round(
        self: &Arc<Self>,
        scheduler: &mut Scheduler,
        refreshes: &mut JoinSet<Finished>,
    ) -> Instant {
        let added = self.live.take_added();
        let now = Instant::now();
        let mut next = now + IDLE_ROUND;
        if added.is_empty() {
            return next;
        }
        Live::count(&self.live.added_rounds);
        let stored = match self.stored_set().await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the credential store to plan refreshes");
                return now + UNREADABLE_ROUND;
            }
        };
        let (now, unix_ms) = (Instant::now(), unix_millis());
        for (i, u) in self.live.in_use_of(&added).into_iter().enumerate() {
            let_others_run(i).await;
            let name = u.target.name.clone();
            let (at, planned_unix) = self.plan(scheduler, refreshes, u, &stored, now, unix_ms);
            next = next.min(at);
            self.live.plan(&name, planned_unix.map(|(_, unix)| unix));
        }
        next
    }

    /// Plans one server in use: starts its background refresh when due. Answers when it
    /// next needs a round, and its planned refresh (name, unix seconds), if any.
    fn plan(
        self: &Arc<Self>,
        scheduler: &mut Scheduler,
        refreshes: &mut JoinSet<Finished>,
        InUse { target, last }: InUse,
        stored: &StoredSet,
        now: Instant,
        unix_ms: i64,
    ) -> (Instant, Option<(String, i64)>) {
        let mut next = last + IN_USE_WINDOW;
        let key = target.lookup_key();
        let Some(creds) = stored
            .lookup(&key)
            .filter(|_| self.live.is_configured(&target.name, key.key()))
        else {
            return (next, None);
        };
        let Some(due_unix) = refresh_due(creds) else {
            return (next, None);
        };
        let mut due = instant_at(due_unix, now, unix_ms);
        let mut planned_unix = due_unix.max(unix_ms.div_euclid(1000));
        if let Some(hold) = scheduler.holds.get(&target.name)
            && hold.until > due
        {
            due = hold.until;
            planned_unix = unix_ms.div_euclid(1000) + secs_until(due, now);
        }
        let planned = Some((target.name.clone(), planned_unix));
        if scheduler.running.contains(&target.name) {
            return (next, planned);
        }
        if due <= now {
            scheduler.running.insert(target.name.clone());
            let min_validity = refresh_lead(creds) as u32 + 1;
            let service = self.clone();
            refreshes.spawn(async move {
                let result = service.token(&target, min_validity).await;
                (target.name.clone(), result)
            });
        } else {
            next = next.min(due);
        }
        (next, planned)
    }

    /// Reads the store and announces every configured server whose status differs from the
    /// one last announced. Servers seen for the first time (at start, after a reload) are
    /// recorded without an announcement. `None` when the store cannot be read.
    async fn rescan(&self, configured: &[(String, LookupKey)]) -> Option<StoredSet> {
        for attempt in 1..=RESCAN_ATTEMPTS {
            let epoch = self.live.announced().epoch;
            let stored = match self.stored_set().await {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the credential store to follow its changes");
                    return None;
                }
            };
            let mut changes = Vec::new();
            let currents = self.current_accounts(stored.clone());
            {
                let mut announced = self.live.announced();
                if announced.epoch != epoch {
                    if attempt == RESCAN_ATTEMPTS {
                        // Plan with what was read; compare again in the next round.
                        self.live.wake.notify_one();
                        return Some(stored);
                    }
                    continue;
                }
                // Updated in place: a round allocates only for what changed.
                for (name, key) in configured {
                    // The server's status is its account used last (rule 81).
                    let info = StatusInfo::from_credentials(currents.current(key));
                    let status = (info.status, info.reason);
                    match announced.status.get_mut(name) {
                        Some(old) if *old != status => {
                            *old = status;
                            changes.push((name.clone(), status));
                        }
                        Some(_) => {}
                        None => {
                            announced.status.insert(name.clone(), status);
                        }
                    }
                }
                if announced.status.len() != configured.len() {
                    // Servers no longer configured are forgotten.
                    let names: HashSet<&str> = configured.iter().map(|(n, _)| n.as_str()).collect();
                    announced
                        .status
                        .retain(|name, _| names.contains(name.as_str()));
                }
                if !changes.is_empty() {
                    announced.epoch += 1;
                }
            }
            for (name, (status, reason)) in changes {
                tracing::info!(server = %name, status = ?status, reason = ?reason, "credential status changed");
                (self.events)(OAuthEvent::AuthStatusChanged {
                    name,
                    status,
                    reason,
                });
            }
            return Some(stored);
        }
        None
    }
}

/// Servers planned between two yields to the other tasks of the worker: planning a
/// thousand servers in use in one go would hold up the token requests queued behind it
/// for milliseconds.
const PLANNED_PER_TURN: usize = 64;

/// Lets the worker's other tasks run before the `i`-th server is planned, every
/// [`PLANNED_PER_TURN`] servers.
async fn let_others_run(i: usize) {
    if i > 0 && i.is_multiple_of(PLANNED_PER_TURN) {
        tokio::task::yield_now().await;
    }
}

/// When stored credentials turn `expired` by themselves: a token without a refresh token
/// that is still valid (consistent with [`StatusInfo`]: with a refresh token they stay
/// `loggedIn`, the next token request refreshes).
fn expiry_moment(creds: &StoredCredentials) -> Option<i64> {
    if creds.reauthentication_required || creds.renewable() {
        return None;
    }
    creds.expires_at.filter(|t| *t > unix_now())
}

/// How long before expiry a token in use is refreshed: [`REFRESH_LEAD_SECS`], or half its
/// lifetime (from its last write to its expiry) when that is shorter; at least 1 s.
fn refresh_lead(creds: &StoredCredentials) -> i64 {
    let life = creds.expires_at.map_or(0, |t| t - creds.updated_at);
    (life / 2).clamp(1, REFRESH_LEAD_SECS)
}

/// When credentials in use are due for a background refresh (unix seconds): never for
/// tokens that do not expire, cannot be refreshed, or were refused.
fn refresh_due(creds: &StoredCredentials) -> Option<i64> {
    if creds.reauthentication_required || !creds.renewable() {
        return None;
    }
    creds.expires_at.map(|t| t - refresh_lead(creds))
}

fn backoff(failures: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1u32 << failures.saturating_sub(1).min(16))
        .min(MAX_BACKOFF)
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The instant at which the wall clock reads `unix_secs` (a moment in the past is `now`).
/// A few milliseconds late, so that `unix_now()` then reads at least `unix_secs`.
fn instant_at(unix_secs: i64, now: Instant, now_unix_ms: i64) -> Instant {
    let wait_ms = unix_secs.saturating_mul(1000).saturating_sub(now_unix_ms);
    if wait_ms <= 0 {
        return now;
    }
    now + Duration::from_millis(wait_ms as u64 + 20)
}

fn secs_until(at: Instant, now: Instant) -> i64 {
    let d = at.saturating_duration_since(now);
    i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;

//! What one request to a listener gets, decided without sockets: the `Host` check (DNS
//! rebinding), the method, the path of a waiting login, and handing that login its outcome.
//! Only a response that proves the login's `state` takes the login's one outcome; everything
//! else gets a page and leaves the login waiting.
//!
//! A listener remembers how its last logins ended ([`ENDINGS_REMEMBERED`] of them, for
//! [`ENDING_MEMORY`]), so a redirect that comes back after its login ended (cancelled, timed
//! out, replaced, or a reload after success) gets the page that says so, not a bare 404.
//! Only a request carrying that login's `state` gets it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};
use url::Url;

use super::super::ending::{LoginEnding, PageNames};
use super::super::page::{self, Page, Who};
use super::super::response::{
    CallbackError, CallbackOutcome, ExpectedCallback, ParsedCallback, constant_time_eq,
    parse_callback, single_state, split_target,
};

/// Endings of past logins one listener remembers.
pub(in crate::oauth::callback) const ENDINGS_REMEMBERED: usize = 32;
/// How long a listener remembers how a login ended.
pub(in crate::oauth::callback) const ENDING_MEMORY: Duration = Duration::from_secs(10 * 60);

/// The logins one listener routes to, by callback path.
pub(super) struct Routes {
    pub(super) by_path: HashMap<String, Route>,
    /// The accept loop gave up (the socket failed); the port must be bound anew.
    pub(super) failed: bool,
    /// Logins that ended here, oldest first; at most [`ENDINGS_REMEMBERED`], none older than
    /// [`ENDING_MEMORY`].
    ended: VecDeque<Ended>,
    /// Bumped whenever a login's ending becomes known; a redirect waiting for its login's
    /// code exchange watches it.
    endings: watch::Sender<u64>,
    /// Since when no login waits here (the listener lingers for late redirects).
    pub(super) idle_since: Option<Instant>,
}

impl Default for Routes {
    fn default() -> Self {
        Self {
            by_path: HashMap::new(),
            failed: false,
            ended: VecDeque::new(),
            endings: watch::channel(0).0,
            idle_since: None,
        }
    }
}

/// A login that ended, as remembered for its late redirects.
struct Ended {
    route_id: u64,
    path: String,
    state: String,
    names: PageNames,
    /// `None`: the login stopped without saying how.
    ending: Option<LoginEnding>,
    at: Instant,
}

impl Routes {
    /// Remembers a route that stopped routing (deregistered or replaced).
    pub(super) fn remember(&mut self, path: &str, route: Route, replaced: bool) {
        let now = Instant::now();
        self.forget_old(now);
        if self.ended.len() >= ENDINGS_REMEMBERED {
            self.ended.pop_front();
        }
        let ending = match (route.ending, replaced) {
            (Some(ending), _) => Some(ending),
            (None, true) => Some(LoginEnding::Superseded),
            (None, false) => None,
        };
        self.ended.push_back(Ended {
            route_id: route.id,
            path: path.to_owned(),
            state: route.expected.state,
            names: route.names,
            ending,
            at: now,
        });
        self.endings.send_modify(|n| *n += 1);
    }

    /// Records how the login of `route_id` ended, whether it still routes or not.
    pub(super) fn set_ending(&mut self, path: &str, route_id: u64, ending: LoginEnding) {
        if let Some(route) = self.by_path.get_mut(path).filter(|r| r.id == route_id) {
            route.ending = Some(ending);
        } else if let Some(ended) = self.ended.iter_mut().find(|e| e.route_id == route_id) {
            ended.ending = Some(ending);
        } else {
            return;
        }
        self.endings.send_modify(|n| *n += 1);
    }

    /// The names of the route of `route_id`, if it still routes.
    pub(super) fn set_names(&mut self, path: &str, route_id: u64, names: PageNames) {
        if let Some(route) = self.by_path.get_mut(path).filter(|r| r.id == route_id) {
            route.names = names;
        }
    }

    fn forget_old(&mut self, now: Instant) {
        while self
            .ended
            .front()
            .is_some_and(|e| now.duration_since(e.at) >= ENDING_MEMORY)
        {
            self.ended.pop_front();
        }
    }

    /// The page for the login on `path` with `state` once its ending is known; `None` while
    /// it still waits or finishes.
    pub(super) fn settled(&mut self, path: &str, state: &str, default_app: &str) -> Option<Page> {
        if let Some(route) = self
            .by_path
            .get(path)
            .filter(|r| constant_time_eq(&r.expected.state, state))
        {
            let who = Who::new(&route.names, default_app);
            return route
                .ending
                .as_ref()
                .map(|ending| page::for_ending(ending, &who));
        }
        self.forget_old(Instant::now());
        let ended = self
            .ended
            .iter()
            .rev()
            .find(|e| e.path == path && constant_time_eq(&e.state, state))?;
        let who = Who::new(&ended.names, default_app);
        Some(match &ended.ending {
            Some(ending) => page::for_ending(ending, &who),
            None => page::no_longer_waiting(&who),
        })
    }

    /// Notifications of new endings, for a request waiting for one.
    pub(super) fn watch_endings(&self) -> watch::Receiver<u64> {
        self.endings.subscribe()
    }
}

pub(super) struct Route {
    pub(super) id: u64,
    pub(super) expected: ExpectedCallback,
    /// `None` once the login took its outcome.
    pub(super) sender: Option<oneshot::Sender<CallbackOutcome>>,
    /// Who the pages name.
    pub(super) names: PageNames,
    /// How the login ended, once the engine said so.
    pub(super) ending: Option<LoginEnding>,
    /// The host of the configured redirect base (`mcp_oauth_callback_url`), which a browser
    /// going through a forwarder names in `Host`.
    pub(super) forwarded_host: Option<Authority>,
}

/// A host and port a request may name in `Host`, compared as a browser writes it: the host
/// without case, the port explicit or the scheme's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Authority {
    host: String,
    port: u16,
    /// The port a `Host` without one means.
    default_port: Option<u16>,
}

impl Authority {
    /// `127.0.0.1:<port>`: the address the listener is bound to.
    pub(super) fn loopback(port: u16) -> Self {
        Self {
            host: "127.0.0.1".to_owned(),
            port,
            default_port: Some(80),
        }
    }

    /// The host and port of a redirect base; `None` for a URL without a host or port.
    pub(super) fn of_url(url: &Url) -> Option<Self> {
        Some(Self {
            host: url.host_str()?.to_ascii_lowercase(),
            port: url.port_or_known_default()?,
            default_port: match url.scheme() {
                "http" => Some(80),
                "https" => Some(443),
                _ => None,
            },
        })
    }

    /// Whether a `Host` value (or the authority of an absolute-form target) names this.
    pub(super) fn matches(&self, value: &str) -> bool {
        let Some((host, port)) = split_host(value) else {
            return false;
        };
        host.eq_ignore_ascii_case(&self.host) && port.or(self.default_port) == Some(self.port)
    }
}

/// Splits `host[:port]` (`[v6]:port` for IPv6); `None` when the port is not a port. The host
/// is only ever compared for equality, so it needs no further check.
fn split_host(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let end = value.find(']')?;
        let (host, rest) = value.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None => None,
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// What the listener needs of one request: never its body.
pub(super) struct Request<'a> {
    pub(super) method: &'a str,
    /// Path and query as received.
    pub(super) target: &'a str,
    /// The `Host` header, or the authority of an absolute-form target (which replaces it).
    /// `None` when absent or given more than once.
    pub(super) host: Option<&'a str>,
}

/// What a request gets: a page now, or the page of its login's ending once the code
/// exchange is done (bounded by the caller).
pub(super) enum Answer {
    Page(Page),
    AfterExchange {
        path: String,
        state: String,
        /// The page if the exchange does not finish in time.
        meanwhile: Page,
        endings: watch::Receiver<u64>,
    },
}

/// Decides the answer to one request and hands the outcome to its login. Logs paths only
/// (a path carries no secret; the query does).
pub(super) fn answer(
    request: &Request<'_>,
    routes: &Mutex<Routes>,
    own: &Authority,
    default_app: &str,
) -> Answer {
    let (path, query) = split_target(request.target);
    let mut routes = lock(routes);
    let Some(host) = request.host else {
        tracing::debug!(path, "request without a single Host header; answered 400");
        return Answer::Page(page::bad_host());
    };
    let served = own.matches(host)
        || routes
            .by_path
            .values()
            .filter_map(|route| route.forwarded_host.as_ref())
            .any(|forwarded| forwarded.matches(host));
    if !served {
        tracing::info!(
            path,
            "request naming a host this listener does not serve (DNS rebinding?); answered 421"
        );
        return Answer::Page(page::misdirected());
    }
    if request.method != "GET" {
        tracing::debug!(
            method = request.method,
            path,
            "request with a method other than GET; answered 405"
        );
        return Answer::Page(page::method_not_allowed());
    }
    let state = single_state(query);
    let live = routes.by_path.get(path);
    let taken = live.is_some_and(|route| route.sender.is_none());
    let ours = live
        .zip(state.as_deref())
        .is_some_and(|(route, state)| constant_time_eq(&route.expected.state, state));
    // A login that ended (or whose code is being exchanged): the page of its ending.
    if let Some(state) = &state
        && (!ours || taken)
    {
        if let Some(page) = routes.settled(path, state, default_app) {
            tracing::info!(
                path,
                "redirect of a login that already ended; answered with its ending"
            );
            return Answer::Page(page);
        }
        if ours {
            // A reload while the code is exchanged.
            let who = Who::new(&live_names(&routes, path), default_app);
            return Answer::AfterExchange {
                path: path.to_owned(),
                state: state.clone(),
                meanwhile: page::approved_finishing(&who),
                endings: routes.watch_endings(),
            };
        }
    }
    let Some(route) = routes.by_path.get_mut(path) else {
        tracing::debug!(path, "request for a path no login waits on; answered 404");
        return Answer::Page(page::not_found());
    };
    let who = Who::new(&route.names, default_app);
    if route.sender.is_none() {
        return Answer::Page(page::already_finished(&who));
    }
    let outcome = match parse_callback(request.method, request.target, &route.expected) {
        ParsedCallback::Outcome(outcome) => outcome,
        ParsedCallback::Discarded(reason) => {
            tracing::info!(
                path,
                kind = reason.kind(),
                "callback that does not prove the login's state discarded; the login keeps waiting"
            );
            return Answer::Page(page::discarded(reason, &who));
        }
        ParsedCallback::NotOurs => return Answer::Page(page::not_found()),
    };
    let page = page::for_outcome(&outcome, &who);
    let is_code = matches!(outcome, CallbackOutcome::Code { .. });
    match &outcome {
        CallbackOutcome::Code { .. } => tracing::info!(path, "login callback received a code"),
        CallbackOutcome::Error(error) => {
            tracing::info!(
                path,
                kind = error.kind(),
                "login callback ended the login with an error"
            );
        }
    }
    let Some(sender) = route.sender.take() else {
        return Answer::Page(page::already_finished(&who));
    };
    if sender.send(outcome).is_err() {
        return Answer::Page(page::no_longer_waiting(&who));
    }
    match (is_code, state) {
        (true, Some(state)) => Answer::AfterExchange {
            path: path.to_owned(),
            state,
            meanwhile: page,
            endings: routes.watch_endings(),
        },
        _ => Answer::Page(page),
    }
}

fn live_names(routes: &Routes, path: &str) -> PageNames {
    routes
        .by_path
        .get(path)
        .map(|route| route.names.clone())
        .unwrap_or_default()
}

/// Ends every login still waiting on a listener with [`CallbackError::ListenerClosed`].
pub(super) fn fail_pending(routes: &Mutex<Routes>, reason: &str) {
    for route in lock(routes).by_path.values_mut() {
        if let Some(sender) = route.sender.take() {
            let _ = sender.send(CallbackOutcome::Error(CallbackError::ListenerClosed {
                reason: reason.to_owned(),
            }));
        }
    }
}

/// A panic while holding a lock leaves plain data behind; keep serving.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

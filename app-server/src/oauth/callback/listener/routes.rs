//! What one request to a listener gets, decided without sockets: the `Host` check (DNS
//! rebinding), the method, the path of a waiting login, and handing that login its outcome.
//! Only a response that proves the login's `state` takes the login's one outcome; everything
//! else gets a page and leaves the login waiting.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use url::Url;

use super::super::page::{self, Page};
use super::super::response::{
    CallbackError, CallbackOutcome, ExpectedCallback, ParsedCallback, constant_time_eq,
    parse_callback, single_state, split_target,
};

/// The logins one listener routes to, by callback path.
#[derive(Default)]
pub(super) struct Routes {
    pub(super) by_path: HashMap<String, Route>,
    /// The accept loop gave up (the socket failed); the port must be bound anew.
    pub(super) failed: bool,
}

pub(super) struct Route {
    pub(super) id: u64,
    pub(super) expected: ExpectedCallback,
    /// `None` once the login took its outcome; later visits get "already finished".
    pub(super) sender: Option<oneshot::Sender<CallbackOutcome>>,
    /// States of the logins this one replaced on the same path.
    pub(super) superseded_states: Vec<String>,
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

/// Decides the answer to one request and hands the outcome to its login. Logs paths only
/// (a path carries no secret; the query does).
pub(super) fn answer(
    request: &Request<'_>,
    routes: &Mutex<Routes>,
    own: &Authority,
    app_name: &str,
) -> Page {
    let (path, query) = split_target(request.target);
    let mut routes = lock(routes);
    let Some(host) = request.host else {
        tracing::debug!(path, "request without a single Host header; answered 400");
        return page::bad_host();
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
        return page::misdirected();
    }
    if request.method != "GET" {
        tracing::debug!(
            method = request.method,
            path,
            "request with a method other than GET; answered 405"
        );
        return page::method_not_allowed();
    }
    let Some(route) = routes.by_path.get_mut(path) else {
        tracing::debug!(path, "request for a path no login waits on; answered 404");
        return page::not_found();
    };
    if route.sender.is_none() {
        return page::already_finished(app_name);
    }
    if let Some(state) = single_state(query)
        && route
            .superseded_states
            .iter()
            .any(|old| constant_time_eq(old, &state))
    {
        tracing::info!(
            path,
            "redirect of a replaced login; the newer login keeps waiting"
        );
        return page::superseded(app_name);
    }
    let outcome = match parse_callback(request.method, request.target, &route.expected) {
        ParsedCallback::Outcome(outcome) => outcome,
        ParsedCallback::Discarded(reason) => {
            tracing::info!(
                path,
                kind = reason.kind(),
                "callback that does not prove the login's state discarded; the login keeps waiting"
            );
            return page::discarded(reason, app_name);
        }
        ParsedCallback::NotOurs => return page::not_found(),
    };
    let page = page::for_outcome(&outcome, app_name);
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
        return page::already_finished(app_name);
    };
    match sender.send(outcome) {
        Ok(()) => page,
        Err(_) => page::no_longer_waiting(app_name),
    }
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

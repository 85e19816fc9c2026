//! The loopback listener: tiny_http on 127.0.0.1, one listener per port shared by every
//! pending login and routed on the callback path, so two servers can log in at once on one
//! fixed port. Logins without a fixed port share one ephemeral listener.
//!
//! tiny_http blocks, so each listener runs on its own thread; outcomes go to the waiting login
//! through a tokio oneshot (sending works from any thread). A listener closes, and its port is
//! free again, when its last registration is dropped.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::page::{self, Page};
use super::{
    CallbackError, CallbackOutcome, ExpectedCallback, ParsedCallback, constant_time_eq,
    parse_callback, single_state, split_target,
};

/// Named in the success page when no other name is given.
const DEFAULT_APP_NAME: &str = "your editor";

/// States of replaced logins kept per path, to recognise their tabs (see the module policy).
const MAX_SUPERSEDED_STATES: usize = 8;

/// tiny_http releases the socket on its own accept thread shortly after the server is
/// dropped; closing waits (at most this long) until the port can be bound again.
const PORT_RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a listener could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CallbackListenError {
    #[error(
        "the login callback port 127.0.0.1:{port} is in use by another program: free that port, \
         or configure another `mcp_oauth_callback_port` (or a per-server `callback_port`)"
    )]
    PortInUse { port: u16 },
    #[error(
        "cannot listen for the login callback on 127.0.0.1:{port}: {source}; configure another \
         `mcp_oauth_callback_port`, or leave it unset for an ephemeral port"
    )]
    Bind {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the login callback listener on 127.0.0.1:{port}: {message}")]
    Start { port: u16, message: String },
    #[error("the callback path `{path}` is not an absolute path without query or fragment")]
    InvalidCallbackPath { path: String },
    #[error("the daemon is shutting down; no new login can start")]
    ShutDown,
}

/// The process-wide set of callback listeners, keyed by port. Share it as `Arc`.
pub struct CallbackServer {
    registry: Mutex<Registry>,
    app_name: Arc<str>,
}

#[derive(Default)]
struct Registry {
    listeners: HashMap<u16, Listener>,
    /// The listener shared by logins that asked for no fixed port.
    shared_ephemeral: Option<u16>,
    next_route_id: u64,
    shut_down: bool,
}

/// One running tiny_http server and the logins it routes to.
struct Listener {
    port: u16,
    routes: Arc<Mutex<Routes>>,
    stop: Arc<AtomicBool>,
    /// `None` once closing; the thread holds the other reference.
    server: Option<Arc<tiny_http::Server>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Routes {
    by_path: HashMap<String, Route>,
    /// The listener thread ended on its own (accept failed); the port must be bound anew.
    failed: bool,
}

struct Route {
    id: u64,
    expected: ExpectedCallback,
    /// `None` once the login took its outcome; later visits get "already finished".
    sender: Option<oneshot::Sender<CallbackOutcome>>,
    /// States of the logins this one replaced on the same path.
    superseded_states: Vec<String>,
}

/// A pending login's place on a listener. Dropping it deregisters the login; the listener of
/// a port closes with its last registration.
pub struct CallbackRegistration {
    /// The port the listener is bound to (the redirect URI is built from it).
    pub port: u16,
    /// Receives the login's outcome once. If a newer login registers the same path on the
    /// same port, this one receives [`CallbackError::Superseded`]; on
    /// [`CallbackServer::shutdown`] it receives [`CallbackError::ListenerClosed`].
    pub outcome: oneshot::Receiver<CallbackOutcome>,
    server: Arc<CallbackServer>,
    path: String,
    route_id: u64,
}

impl std::fmt::Debug for CallbackRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackRegistration")
            .field("port", &self.port)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Drop for CallbackRegistration {
    fn drop(&mut self) {
        self.server.deregister(self.port, &self.path, self.route_id);
    }
}

impl CallbackServer {
    pub fn new() -> Arc<Self> {
        Self::with_app_name(DEFAULT_APP_NAME)
    }

    /// `app_name` is what the browser pages tell the person to return to.
    pub fn with_app_name(app_name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            registry: Mutex::new(Registry::default()),
            app_name: Arc::from(app_name.into()),
        })
    }

    /// Registers a pending login. Starts a listener on 127.0.0.1:`port` (`None` or `Some(0)`:
    /// the shared ephemeral listener) or joins the one already running there. A login with
    /// the same callback path on that port is replaced (it receives
    /// [`CallbackError::Superseded`]).
    pub fn register(
        self: &Arc<Self>,
        port: Option<u16>,
        expected: ExpectedCallback,
    ) -> Result<CallbackRegistration, CallbackListenError> {
        let path = expected.callback_path.clone();
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(CallbackListenError::InvalidCallbackPath { path });
        }
        let mut registry = lock(&self.registry);
        if registry.shut_down {
            return Err(CallbackListenError::ShutDown);
        }
        let port = match port.filter(|&port| port != 0) {
            Some(port) => {
                if !registry.is_running(port) {
                    registry.remove_listener(port);
                    let listener = Listener::start(port, &self.app_name)?;
                    registry.listeners.insert(port, listener);
                }
                port
            }
            None => match registry
                .shared_ephemeral
                .filter(|&port| registry.is_running(port))
            {
                Some(port) => port,
                None => {
                    if let Some(stale) = registry.shared_ephemeral.take() {
                        registry.remove_listener(stale);
                    }
                    let listener = Listener::start(0, &self.app_name)?;
                    let port = listener.port;
                    registry.listeners.insert(port, listener);
                    registry.shared_ephemeral = Some(port);
                    port
                }
            },
        };

        let route_id = registry.next_route_id;
        registry.next_route_id += 1;
        let (sender, outcome) = oneshot::channel();
        let Some(listener) = registry.listeners.get(&port) else {
            // Inserted above under the same lock.
            return Err(CallbackListenError::Start {
                port,
                message: "the listener vanished while registering".to_owned(),
            });
        };
        let mut routes = lock(&listener.routes);
        let mut superseded_states = Vec::new();
        if let Some(old) = routes.by_path.remove(&path) {
            superseded_states = old.superseded_states;
            superseded_states.push(old.expected.state);
            if superseded_states.len() > MAX_SUPERSEDED_STATES {
                superseded_states.remove(0);
            }
            if let Some(old_sender) = old.sender {
                let _ = old_sender.send(CallbackOutcome::Error(CallbackError::Superseded));
            }
            tracing::info!(port, path = %path, "a newer login replaced the pending one on this callback path");
        }
        routes.by_path.insert(
            path.clone(),
            Route {
                id: route_id,
                expected,
                sender: Some(sender),
                superseded_states,
            },
        );
        drop(routes);
        tracing::debug!(port, path = %path, "login waiting for its callback");
        Ok(CallbackRegistration {
            port,
            outcome,
            server: Arc::clone(self),
            path,
            route_id,
        })
    }

    /// Ports with a running listener, ascending.
    pub fn active_ports(&self) -> Vec<u16> {
        let registry = lock(&self.registry);
        let mut ports: Vec<u16> = registry
            .listeners
            .keys()
            .copied()
            .filter(|&port| registry.is_running(port))
            .collect();
        ports.sort_unstable();
        ports
    }

    /// Stops every listener; pending logins receive [`CallbackError::ListenerClosed`] and no
    /// new login can register. Returns once the ports are free.
    pub fn shutdown(&self) {
        let mut registry = lock(&self.registry);
        registry.shut_down = true;
        registry.shared_ephemeral = None;
        let listeners: Vec<Listener> = registry.listeners.drain().map(|(_, l)| l).collect();
        for listener in &listeners {
            fail_pending(&listener.routes, "the daemon is shutting down");
        }
        // Dropping closes each listener; the registry stays locked so that no register() can
        // race for a port that is still being released.
        drop(listeners);
    }

    fn deregister(&self, port: u16, path: &str, route_id: u64) {
        let mut registry = lock(&self.registry);
        let Some(listener) = registry.listeners.get(&port) else {
            return;
        };
        let now_empty = {
            let mut routes = lock(&listener.routes);
            if routes.by_path.get(path).is_some_and(|r| r.id == route_id) {
                routes.by_path.remove(path);
            }
            routes.by_path.is_empty()
        };
        if now_empty {
            // Closed with the registry locked: a register() for this port waits until the
            // port is free instead of failing with PortInUse.
            registry.remove_listener(port);
            tracing::debug!(
                port,
                "no login waits on this port any more; listener closed"
            );
        }
    }
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Registry {
    fn is_running(&self, port: u16) -> bool {
        self.listeners
            .get(&port)
            .is_some_and(|listener| !lock(&listener.routes).failed)
    }

    /// Removes and closes a listener (a no-op for a port without one).
    fn remove_listener(&mut self, port: u16) {
        if self.shared_ephemeral == Some(port) {
            self.shared_ephemeral = None;
        }
        drop(self.listeners.remove(&port));
    }
}

impl Listener {
    fn start(port: u16, app_name: &Arc<str>) -> Result<Self, CallbackListenError> {
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                CallbackListenError::PortInUse { port }
            } else {
                CallbackListenError::Bind { port, source }
            }
        })?;
        let port = socket
            .local_addr()
            .map_err(|source| CallbackListenError::Bind { port, source })?
            .port();
        let server = tiny_http::Server::from_listener(socket, None)
            .map_err(|err| CallbackListenError::Start {
                port,
                message: err.to_string(),
            })
            .map(Arc::new)?;
        let routes = Arc::new(Mutex::new(Routes::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name(format!("oauth-callback-{port}"))
            .spawn({
                let server = Arc::clone(&server);
                let routes = Arc::clone(&routes);
                let stop = Arc::clone(&stop);
                let app_name = Arc::clone(app_name);
                move || serve(&server, &routes, &stop, &app_name, port)
            })
            .map_err(|err| CallbackListenError::Start {
                port,
                message: err.to_string(),
            })?;
        tracing::info!(port, "login callback listener started on 127.0.0.1");
        Ok(Self {
            port,
            routes,
            stop,
            server: Some(server),
            thread: Some(thread),
        })
    }
}

impl Drop for Listener {
    /// Stops the thread, drops the server (tiny_http then closes its socket) and waits until
    /// the port can be bound again, so "closed" means "free".
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(server) = self.server.take() {
            server.unblock();
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!(
                port = self.port,
                "the login callback listener thread panicked"
            );
        }
        wait_until_port_free(self.port);
    }
}

/// The listener thread: answers requests until stopped or until accepting fails.
fn serve(
    server: &tiny_http::Server,
    routes: &Mutex<Routes>,
    stop: &AtomicBool,
    app_name: &str,
    port: u16,
) {
    loop {
        match server.recv() {
            Ok(request) => answer(request, routes, app_name),
            Err(err) => {
                if !stop.load(Ordering::SeqCst) {
                    tracing::warn!(port, error = %err, "the login callback listener stopped accepting connections");
                    lock(routes).failed = true;
                    fail_pending(routes, &format!("accepting connections failed: {err}"));
                }
                return;
            }
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
    }
}

fn answer(request: tiny_http::Request, routes: &Mutex<Routes>, app_name: &str) {
    let page = route_request(request.method().as_str(), request.url(), routes, app_name);
    let mut response = tiny_http::Response::from_string(page.html).with_status_code(page.status);
    for (name, value) in [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
    ] {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    if let Err(err) = request.respond(response) {
        tracing::debug!(error = %err, "could not send the callback page to the browser");
    }
}

/// Decides the answer to one request and hands the outcome to its login. Logs paths only.
fn route_request(method: &str, target: &str, routes: &Mutex<Routes>, app_name: &str) -> Page {
    let (path, query) = split_target(target);
    let mut routes = lock(routes);
    let Some(route) = routes.by_path.get_mut(path) else {
        tracing::debug!(
            method,
            path,
            "request for a path no login waits on; answered 404"
        );
        return page::not_found();
    };
    if method != "GET" {
        tracing::debug!(
            method,
            path,
            "non-GET request on a callback path; answered 404"
        );
        return page::not_found();
    }
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
    let outcome = match parse_callback(method, target, &route.expected) {
        ParsedCallback::Outcome(outcome) => outcome,
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

fn fail_pending(routes: &Mutex<Routes>, reason: &str) {
    for route in lock(routes).by_path.values_mut() {
        if let Some(sender) = route.sender.take() {
            let _ = sender.send(CallbackOutcome::Error(CallbackError::ListenerClosed {
                reason: reason.to_owned(),
            }));
        }
    }
}

fn wait_until_port_free(port: u16) {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + PORT_RELEASE_TIMEOUT;
    loop {
        match TcpListener::bind(address) {
            Ok(_) => return,
            Err(err) if err.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(err) => {
                tracing::debug!(port, error = %err, "could not confirm the callback port was released");
                return;
            }
        }
    }
}

/// A panic while holding a lock leaves plain data behind; keep serving.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests;

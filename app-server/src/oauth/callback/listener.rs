//! The loopback listeners: one per port on 127.0.0.1, shared by every pending login and routed
//! on the callback path, so two servers can log in at once on one fixed port. Logins without
//! a fixed port share one ephemeral listener.
//!
//! Each listener is a task on the tokio runtime serving HTTP/1 with hyper under strict limits
//! (`serve`), answering each request from its head alone (`routes`); outcomes go to the
//! waiting login through a oneshot. The login tells the listener how it ended
//! ([`CallbackRegistration::finish`]) so that the browser's page says so. A listener closes,
//! and its port is free again, [`Limits::linger`] after its last registration is dropped
//! (at once on shutdown), so a late redirect still gets a page saying how its login ended. Registering, deregistering and shutting down only bind or
//! close a socket and abort a task: nothing here blocks or waits, so they may run on the
//! runtime's threads.

mod routes;
mod serve;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use super::ending::{LoginEnding, PageNames};
use super::response::{CallbackError, CallbackOutcome, ExpectedCallback};
use routes::{Authority, Route, Routes, fail_pending, lock};
use serve::{LISTEN_BACKLOG, Limits, Site, Socket, accept_loop};

/// Named in the pages when the login gave no frontend name.
const DEFAULT_APP_NAME: &str = "your editor";

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
    limits: Limits,
}

#[derive(Default)]
struct Registry {
    listeners: HashMap<u16, Listener>,
    /// The listener shared by logins that asked for no fixed port.
    shared_ephemeral: Option<u16>,
    next_route_id: u64,
    shut_down: bool,
}

/// One running listener and the logins it routes to.
struct Listener {
    routes: Arc<Mutex<Routes>>,
    socket: Arc<Socket>,
    task: JoinHandle<()>,
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

impl CallbackRegistration {
    /// Names the frontend and the server on this login's pages.
    pub fn describe(&self, names: PageNames) {
        self.server.with_routes(self.port, |routes| {
            routes.set_names(&self.path, self.route_id, names);
        });
    }

    /// Tells the listener how the login ended: the browser's page for its redirect (which
    /// waits for this after delivering a code, see [`Limits::exchange_wait`]) and for any
    /// later visit says so.
    pub fn finish(&self, ending: LoginEnding) {
        self.server.with_routes(self.port, |routes| {
            routes.set_ending(&self.path, self.route_id, ending);
        });
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
        Self::with_limits(app_name, Limits::default())
    }

    pub(in crate::oauth::callback) fn with_limits(
        app_name: impl Into<String>,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Self {
            registry: Mutex::new(Registry::default()),
            app_name: Arc::from(app_name.into()),
            limits,
        })
    }

    /// Registers a pending login. Starts a listener on 127.0.0.1:`port` (`None` or `Some(0)`:
    /// the shared ephemeral listener) or joins the one already running there. A login with
    /// the same callback path on that port is replaced (it receives
    /// [`CallbackError::Superseded`]).
    ///
    /// `callback_url` is the configured redirect base (`mcp_oauth_callback_url`), if any: a
    /// request naming its host in `Host` is served besides `127.0.0.1:<port>`; any other host
    /// is refused (DNS rebinding). Must be called within a tokio runtime, which the listener
    /// then runs on.
    pub fn register(
        self: &Arc<Self>,
        port: Option<u16>,
        callback_url: Option<&Url>,
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
                    let (port, listener) = self.start_listener(port)?;
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
                    let (port, listener) = self.start_listener(0)?;
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
        routes.idle_since = None;
        if let Some(mut old) = routes.by_path.remove(&path) {
            if let Some(old_sender) = old.sender.take() {
                let _ = old_sender.send(CallbackOutcome::Error(CallbackError::Superseded));
            }
            routes.remember(&path, old, true);
            tracing::info!(port, path = %path, "a newer login replaced the pending one on this callback path");
        }
        routes.by_path.insert(
            path.clone(),
            Route {
                id: route_id,
                expected,
                sender: Some(sender),
                names: PageNames::default(),
                ending: None,
                forwarded_host: callback_url.and_then(Authority::of_url),
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

    #[cfg(test)]
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
    /// new login can register. The ports are free when this returns.
    pub fn shutdown(&self) {
        let mut registry = lock(&self.registry);
        registry.shut_down = true;
        registry.shared_ephemeral = None;
        for (_, listener) in registry.listeners.drain() {
            fail_pending(&listener.routes, "the daemon is shutting down");
            drop(listener);
        }
    }

    fn deregister(self: &Arc<Self>, port: u16, path: &str, route_id: u64) {
        let mut registry = lock(&self.registry);
        let Some(listener) = registry.listeners.get(&port) else {
            return;
        };
        let now_empty = {
            let mut routes = lock(&listener.routes);
            if routes.by_path.get(path).is_some_and(|r| r.id == route_id)
                && let Some(route) = routes.by_path.remove(path)
            {
                routes.remember(path, route, false);
            }
            let empty = routes.by_path.is_empty();
            if empty {
                routes.idle_since = Some(Instant::now());
            }
            empty
        };
        if !now_empty {
            return;
        }
        let linger = self.limits.linger;
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if !linger.is_zero() => {
                let server = Arc::downgrade(self);
                runtime.spawn(async move {
                    tokio::time::sleep(linger).await;
                    if let Some(server) = Weak::upgrade(&server) {
                        server.close_if_idle(port);
                    }
                });
                tracing::debug!(
                    port,
                    linger_secs = linger.as_secs(),
                    "no login waits on this port any more; the listener stays for late redirects"
                );
            }
            _ => {
                registry.remove_listener(port);
                tracing::debug!(
                    port,
                    "no login waits on this port any more; listener closed"
                );
            }
        }
    }

    /// Closes the listener of `port` if no login has waited on it for [`Limits::linger`].
    fn close_if_idle(&self, port: u16) {
        let mut registry = lock(&self.registry);
        let idle = registry.listeners.get(&port).is_some_and(|listener| {
            let routes = lock(&listener.routes);
            routes.by_path.is_empty()
                && routes
                    .idle_since
                    .is_some_and(|since| since.elapsed() >= self.limits.linger)
        });
        if idle {
            registry.remove_listener(port);
            tracing::debug!(port, "the login callback listener closed after lingering");
        }
    }

    /// Runs `change` on the routes of the listener of `port`, if it still runs.
    fn with_routes(&self, port: u16, change: impl FnOnce(&mut Routes)) {
        let registry = lock(&self.registry);
        if let Some(listener) = registry.listeners.get(&port) {
            change(&mut lock(&listener.routes));
        }
    }

    /// Binds 127.0.0.1:`port` (0: ephemeral) and starts serving it on the current runtime.
    fn start_listener(&self, port: u16) -> Result<(u16, Listener), CallbackListenError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| CallbackListenError::Start {
                port,
                message: "no tokio runtime is running to serve it".to_owned(),
            })?;
        let bind_error = |source: io::Error| {
            if source.kind() == io::ErrorKind::AddrInUse {
                CallbackListenError::PortInUse { port }
            } else {
                CallbackListenError::Bind { port, source }
            }
        };
        // Bound and listening here, with a backlog deep enough for a connection flood
        // (serve.rs); inside the runtime, which the socket registers with.
        let socket = {
            let _runtime = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4().map_err(bind_error)?;
            // As std's `TcpListener::bind` does on Unix: a port whose last connections are in
            // TIME_WAIT can be bound again at once (a second listener still cannot).
            #[cfg(unix)]
            socket.set_reuseaddr(true).map_err(bind_error)?;
            socket
                .bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                .map_err(bind_error)?;
            socket.listen(LISTEN_BACKLOG).map_err(bind_error)?
        };
        let port = socket.local_addr().map_err(bind_error)?.port();
        let socket = Arc::new(Socket::new(socket));
        let routes = Arc::new(Mutex::new(Routes::default()));
        let site = Arc::new(Site {
            port,
            routes: Arc::clone(&routes),
            own: Authority::loopback(port),
            app_name: Arc::clone(&self.app_name),
        });
        let task = runtime.spawn(accept_loop(Arc::clone(&socket), site, self.limits.clone()));
        tracing::info!(port, "login callback listener started on 127.0.0.1");
        Ok((
            port,
            Listener {
                routes,
                socket,
                task,
            },
        ))
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
            .is_some_and(|listener| !listener.task.is_finished() && !lock(&listener.routes).failed)
    }

    /// Removes and closes a listener (a no-op for a port without one).
    fn remove_listener(&mut self, port: u16) {
        if self.shared_ephemeral == Some(port) {
            self.shared_ephemeral = None;
        }
        drop(self.listeners.remove(&port));
    }
}

impl Drop for Listener {
    /// Closes the socket at once (so "closed" means "free") and stops the accept loop, which
    /// takes its connections with it.
    fn drop(&mut self) {
        self.socket.close();
        self.task.abort();
    }
}

#[cfg(test)]
mod tests;

//! The host's HTTP/1 server: hyper's connection driver under an accept loop of our own, with
//! the limits a port facing the internet needs (requirements rule 38).
//!
//! - A new connection must deliver a complete request head within
//!   [`Limits::header_timeout`]; after a request, a kept-alive connection must deliver the
//!   next complete head within [`Limits::idle_timeout`]. Otherwise it is closed (slowloris,
//!   silent and idle connections).
//! - At most [`Limits::max_connections`] connections are open. When a new one arrives at the
//!   cap, the connection that has gone longest without a request is closed to make room
//!   (a "second chance" sweep in accept order: a connection that made a request since the
//!   last sweep is passed over once). A flood of idle connections therefore evicts itself and
//!   a real request still gets through.
//! - On shutdown the listening socket is closed at once, idle connections are closed, those
//!   with a request under way finish it, and after [`Limits::shutdown_timeout`] whatever is
//!   left is closed.
//! - Request bodies are never read; hyper closes a connection whose request had a body it
//!   did not drain.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::document::DocumentHost;
use super::respond::respond;

/// What the host tolerates from its clients.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections open at once; at the cap, the idlest one is closed for a new one.
    pub max_connections: usize,
    /// Time from accepting a connection to its first complete request head.
    pub header_timeout: Duration,
    /// Time from a request to the next complete request head on the same connection.
    pub idle_timeout: Duration,
    /// Time requests under way get to finish after shutdown begins.
    pub shutdown_timeout: Duration,
    /// Size of the request line and headers together (hyper's minimum buffer is 8 KiB).
    pub max_header_bytes: usize,
    /// Number of request headers.
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS as usize,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(5),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
        }
    }
}

/// Connections open at once unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 4096;
/// Pending connections the kernel keeps for the accept loop (Linux caps it at
/// `net.core.somaxconn`, 4096 by default).
pub const DEFAULT_BACKLOG: u32 = 4096;
/// Pause after an accept error other than running out of file descriptors.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// At most one warning about the connection cap in this long.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(60);

/// Listens on `address` with a backlog of `backlog` pending connections.
pub fn bind(address: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(backlog)
}

/// Serves `host` on `listener` with the default [`Limits`] until `shutdown` completes.
/// Tests run it in-process.
pub async fn serve(
    listener: TcpListener,
    host: DocumentHost,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(listener, host, Limits::default(), shutdown).await
}

/// Serves `host` on `listener` within `limits` until `shutdown` completes, then shuts down
/// within [`Limits::shutdown_timeout`].
pub async fn serve_with(
    listener: TcpListener,
    host: DocumentHost,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .max_headers(limits.max_headers);
    let shared = Arc::new(Shared {
        host,
        http,
        epoch: Instant::now(),
        open: AtomicUsize::new(0),
        limits,
    });
    let (stop, stopped) = watch::channel(false);
    let mut accept = AcceptLoop {
        shared: Arc::clone(&shared),
        connections: JoinSet::new(),
        order: VecDeque::new(),
        last_cap_warning: None,
    };
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => accept.accepted(accepted, &stopped).await,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let mut connections = accept.connections;
    let grace = shared.limits.shutdown_timeout;
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            open = connections.len(),
            "requests still under way after the shutdown timeout; closing their connections"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
    Ok(())
}

/// What every connection reads.
struct Shared {
    host: DocumentHost,
    http: http1::Builder,
    /// Time zero of [`Slot::last_request`].
    epoch: Instant,
    /// Connections counted against the cap (evicted ones no longer count).
    open: AtomicUsize,
    limits: Limits,
}

/// The accept loop's state: the connection tasks and their order of arrival.
struct AcceptLoop {
    shared: Arc<Shared>,
    connections: JoinSet<()>,
    /// Open connections in the order they were accepted (entries of closed ones are
    /// dropped as the sweep meets them, or when they make up half of it).
    order: VecDeque<Arc<Slot>>,
    last_cap_warning: Option<Instant>,
}

impl AcceptLoop {
    async fn accepted(
        &mut self,
        accepted: io::Result<(TcpStream, SocketAddr)>,
        stopped: &watch::Receiver<bool>,
    ) {
        // Finished connections are reaped here, so the set holds at most the open ones and
        // those that ended since the last accept.
        while self.connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(error) => {
                if is_out_of_descriptors(&error) {
                    // Something else holds descriptors: make room rather than spin.
                    self.evict_one();
                }
                tracing::warn!(%error, "accepting a connection failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
                return;
            }
        };
        let max = self.shared.limits.max_connections;
        if self.shared.open.load(Ordering::Acquire) >= max {
            self.warn_cap();
            if !self.evict_one() {
                tracing::debug!("every connection is busy at the cap; closed a new one");
                return;
            }
            // Let the evicted connection's task close its socket before the next accept,
            // so a burst of evictions does not hold more descriptors than the cap.
            tokio::task::yield_now().await;
        }
        if self.order.len() > 2 * max {
            self.order.retain(|slot| slot.is_open());
        }
        let slot = Arc::new(Slot::default());
        self.shared.open.fetch_add(1, Ordering::AcqRel);
        self.order.push_back(Arc::clone(&slot));
        self.connections.spawn(serve_connection(
            stream,
            slot,
            Arc::clone(&self.shared),
            stopped.clone(),
        ));
    }

    /// Closes the connection that has gone longest without a request; false when there is
    /// none to close.
    fn evict_one(&mut self) -> bool {
        let mut budget = 2 * self.order.len();
        while budget > 0 {
            budget -= 1;
            let Some(slot) = self.order.pop_front() else {
                return false;
            };
            if !slot.is_open() {
                continue;
            }
            if slot.requested.swap(false, Ordering::AcqRel) {
                self.order.push_back(slot);
                continue;
            }
            if slot.evict(&self.shared.open) {
                return true;
            }
        }
        false
    }

    fn warn_cap(&mut self) {
        let now = Instant::now();
        if self
            .last_cap_warning
            .is_none_or(|at| now.duration_since(at) >= CAP_WARNING_INTERVAL)
        {
            self.last_cap_warning = Some(now);
            tracing::warn!(
                limit = self.shared.limits.max_connections,
                "the connection limit is reached; closing the idlest connections to make room"
            );
        }
    }
}

fn is_out_of_descriptors(error: &io::Error) -> bool {
    // EMFILE and ENFILE on Linux and the BSDs.
    matches!(error.raw_os_error(), Some(23 | 24))
}

const OPEN: u8 = 0;
const EVICTED: u8 = 1;
const CLOSED: u8 = 2;

/// One connection as the accept loop sees it.
#[derive(Default)]
struct Slot {
    /// [`OPEN`], [`EVICTED`] or [`CLOSED`].
    state: AtomicU8,
    /// Set by every request, cleared by the eviction sweep: its second chance.
    requested: AtomicBool,
    /// Milliseconds after [`Shared::epoch`] of the last request, plus one (0: none yet).
    last_request: AtomicU64,
    evicted: Notify,
}

impl Slot {
    fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// Tells the connection to close and stops counting it; false if it already ended.
    fn evict(&self, open: &AtomicUsize) -> bool {
        let won = self
            .state
            .compare_exchange(OPEN, EVICTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if won {
            open.fetch_sub(1, Ordering::AcqRel);
            self.evicted.notify_one();
        }
        won
    }

    fn note_request(&self, epoch: Instant) {
        let millis = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_request.store(millis + 1, Ordering::Release);
        self.requested.store(true, Ordering::Release);
    }

    /// When the connection times out if no new request arrives.
    fn deadline(&self, accepted: Instant, shared: &Shared) -> Instant {
        match self.last_request.load(Ordering::Acquire) {
            0 => accepted + shared.limits.header_timeout,
            at => shared.epoch + Duration::from_millis(at - 1) + shared.limits.idle_timeout,
        }
    }
}

/// Stops counting a connection when its task ends, however it ends (aborted included).
struct Closing<'a>(&'a Slot, &'a AtomicUsize);

impl Drop for Closing<'_> {
    fn drop(&mut self) {
        if self.0.state.swap(CLOSED, Ordering::AcqRel) == OPEN {
            self.1.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

async fn serve_connection(
    stream: TcpStream,
    slot: Arc<Slot>,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let accepted = Instant::now();
    let _closing = Closing(&slot, &shared.open);
    let _ = stream.set_nodelay(true);
    let service = {
        let slot = Arc::clone(&slot);
        let shared = Arc::clone(&shared);
        service_fn(move |request: hyper::Request<Incoming>| {
            slot.note_request(shared.epoch);
            let response = respond(&request, &shared.host);
            std::future::ready(Ok::<_, Infallible>(response))
        })
    };
    let mut connection = pin!(shared.http.serve_connection(TokioIo::new(stream), service));
    let mut timer = pin!(tokio::time::sleep_until(slot.deadline(accepted, &shared)));
    let mut draining = *stopped.borrow_and_update();
    if draining {
        connection.as_mut().graceful_shutdown();
    }
    // Made once, not on every wake-up of the connection (each wake-up is a request or
    // part of one): each completes at most once, and the loop then ends or stops polling it.
    let mut evicted = pin!(slot.evicted.notified());
    let mut stop = pin!(stopped.changed());
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "a connection ended with an error");
                }
                return;
            }
            () = &mut timer => {
                let deadline = slot.deadline(accepted, &shared);
                if Instant::now() >= deadline {
                    tracing::debug!("a connection sent no complete request in time; closed");
                    return;
                }
                timer.as_mut().reset(deadline);
            }
            () = &mut evicted => {
                tracing::debug!("closed an idle connection to make room for a new one");
                return;
            }
            _ = &mut stop, if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

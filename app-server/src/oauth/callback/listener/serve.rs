//! The HTTP side of one listener: hyper's HTTP/1 server on the tokio runtime, with the limits
//! a port that every local process (and, through the browser, every web page) can reach needs
//! (requirements rule 34).
//!
//! - One accept loop task per port; each connection is a task, at most
//!   [`Limits::max_connections`] at once. When they are all taken, a new connection takes the
//!   place of the oldest one that has sent nothing yet, else of the oldest one still sending
//!   its request head (a browser sends its whole request at once, so it is never the one
//!   evicted); when every connection is already being answered, accepting pauses and new
//!   connections wait in the kernel's backlog ([`LISTEN_BACKLOG`]). A flood of silent or
//!   slow connections therefore only evicts itself, and the browser's redirect is served.
//! - After each accepted connection the accept loop yields to the runtime, so a connection
//!   whose request is already in the socket reads it before the next accept can evict it.
//!   A connection younger than [`EVICTION_GRACE`] is never evicted either: a client that is
//!   slow to write after its connect (a busy machine) still gets its request read, while a
//!   flood is worked through the backlog at up to `max_connections` per grace period.
//! - The request head must arrive within [`Limits::header_read_timeout`] and fit in
//!   [`Limits::max_header_bytes`] and [`Limits::max_headers`]; hyper answers 431 or closes
//!   otherwise. A connection lives at most [`Limits::connection_lifetime`], whatever the
//!   client does.
//! - The body is never read: the request is answered from its head alone and the connection
//!   closed (no keep-alive), so a huge or false `Content-Length` costs nothing.

use std::convert::Infallible;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinSet};

use super::super::page::Page;
use super::routes::{self, Answer, Authority, Request, Routes, lock};

/// How long a new connection may stay silent before a flood's newer connections can evict
/// it: far longer than a browser takes to send its request after connecting, far shorter
/// than the wait of a connection queued behind a flood (at 64 places, 3,200 accepts a
/// second).
const EVICTION_GRACE: Duration = Duration::from_millis(20);

/// Accept errors in a row (each followed by [`ACCEPT_RETRY_PAUSE`]) after which the socket is
/// taken to be broken and the waiting logins are told.
const MAX_CONSECUTIVE_ACCEPT_ERRORS: u32 = 50;
/// Pause after a failed accept (out of file descriptors, typically) before the next.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Connections the kernel queues for the listener while it is not accepting (capped by
/// `net.core.somaxconn`, 4096 on current Linux). Large enough that a flood of a thousand
/// connections leaves room for the browser's, which then waits its turn instead of having
/// its SYN dropped (a 1 s retry each time).
pub(super) const LISTEN_BACKLOG: u32 = 4096;

/// What one listener tolerates from its clients.
#[derive(Debug, Clone)]
pub(in crate::oauth::callback) struct Limits {
    /// Connections served at once; a new one beyond them evicts the oldest that has not
    /// sent its request head (see the module documentation).
    pub max_connections: usize,
    /// Time for the whole request head to arrive (slowloris).
    pub header_read_timeout: Duration,
    /// Time a connection may live at all, reading and writing included.
    pub connection_lifetime: Duration,
    /// Size of the request line and headers together (hyper's minimum buffer is 8 KiB).
    pub max_header_bytes: usize,
    /// Number of headers.
    pub max_headers: usize,
    /// How long the answer to a redirect carrying a code waits for the login to exchange it,
    /// to say "logged in" or what failed; then it says "approved, finishing".
    pub exchange_wait: Duration,
    /// How long the listener stays open after its last login ended, so that a late redirect
    /// gets a page saying how its login ended instead of "site can't be reached".
    pub linger: Duration,
}

impl Default for Limits {
    /// A browser sends one small request (a long URL and ~20 headers, cookies of other local
    /// apps included) per connection, at once; these leave it ample room.
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(15),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            exchange_wait: Duration::from_secs(8),
            linger: Duration::from_secs(120),
        }
    }
}

/// The listening socket, owned so that closing it is immediate: the port is free again the
/// moment [`Socket::close`] returns, without waiting for the accept loop to notice.
pub(super) struct Socket(Mutex<Option<TcpListener>>);

impl Socket {
    pub(super) fn new(listener: TcpListener) -> Self {
        Self(Mutex::new(Some(listener)))
    }

    pub(super) fn close(&self) {
        drop(lock(&self.0).take());
    }

    /// `Ready(None)` once closed. The lock is held only for a non-blocking poll.
    fn poll_accept(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<(TcpStream, SocketAddr)>>> {
        match lock(&self.0).as_ref() {
            Some(listener) => listener.poll_accept(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

/// What every connection of one listener answers from.
pub(super) struct Site {
    pub(super) port: u16,
    pub(super) routes: Arc<Mutex<Routes>>,
    /// `127.0.0.1:<port>`.
    pub(super) own: Authority,
    pub(super) app_name: Arc<str>,
}

/// How far a connection got; the accept loop evicts the least advanced first.
const SILENT: u8 = 0;
/// Some bytes of the request head arrived.
const SENDING: u8 = 1;
/// The head is complete: the request is being answered (briefly, or while the code
/// exchange finishes); never evicted.
const ANSWERING: u8 = 2;

/// One live connection, as the accept loop sees it (in accept order).
struct Tracked {
    progress: Arc<AtomicU8>,
    task: AbortHandle,
    accepted_at: tokio::time::Instant,
}

/// Whether a full listener can make room, and when.
enum Room {
    /// Evict the connection at this index now.
    Now(usize),
    /// A connection becomes evictable when its grace ends at this instant.
    At(tokio::time::Instant),
    /// Every connection is being answered.
    Never,
}

/// The connections of one listener, oldest first, at most `Limits::max_connections`.
struct Connections {
    tracked: VecDeque<Tracked>,
    tasks: JoinSet<()>,
    max: usize,
}

impl Connections {
    fn new(max: usize) -> Self {
        Self {
            tracked: VecDeque::with_capacity(max),
            tasks: JoinSet::new(),
            max: max.max(1),
        }
    }

    /// Forgets the connections that ended.
    fn reap(&mut self) {
        while self.tasks.try_join_next().is_some() {}
        self.tracked.retain(|c| !c.task.is_finished());
    }

    fn full(&self) -> bool {
        self.tracked.len() >= self.max
    }

    /// The oldest silent connection past its grace, else the oldest still sending its head
    /// past its grace; else when the first of them comes out of its grace.
    fn room(&self, now: tokio::time::Instant) -> Room {
        let mut soonest: Option<tokio::time::Instant> = None;
        for stage in [SILENT, SENDING] {
            for (index, c) in self.tracked.iter().enumerate() {
                if c.progress.load(Ordering::Relaxed) != stage {
                    continue;
                }
                let ready = c.accepted_at + EVICTION_GRACE;
                if ready <= now {
                    return Room::Now(index);
                }
                soonest = Some(soonest.map_or(ready, |s| s.min(ready)));
            }
        }
        soonest.map_or(Room::Never, Room::At)
    }

    /// Whether some connection has not sent a complete head (evictable now or soon).
    fn has_evictable(&self) -> bool {
        self.tracked
            .iter()
            .any(|c| c.progress.load(Ordering::Relaxed) != ANSWERING)
    }

    /// Closes the connection at `index`, which has not sent a complete head.
    fn evict(&mut self, index: usize, port: u16) {
        if let Some(evicted) = self.tracked.remove(index) {
            let stage = evicted.progress.load(Ordering::Relaxed);
            evicted.task.abort();
            tracing::debug!(
                port,
                silent = stage == SILENT,
                "the login callback listener is full; closed its oldest connection without a request"
            );
        }
    }

    /// Makes one place, evicting or waiting for a connection to end or come out of its grace.
    async fn make_room(&mut self, port: u16) {
        while self.full() {
            match self.room(tokio::time::Instant::now()) {
                Room::Now(index) => self.evict(index, port),
                Room::At(when) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(when) => {}
                        () = self.wait_for_one() => {}
                    }
                }
                Room::Never => self.wait_for_one().await,
            }
        }
    }

    /// Waits until some connection ends (every one is being answered, which is brief).
    async fn wait_for_one(&mut self) {
        if self.tasks.join_next().await.is_none() {
            self.tracked.clear();
        }
        self.reap();
    }
}

/// Accepts connections until the socket is closed (or fails for good). Dropping this future
/// (the task aborted) drops every connection task with it.
pub(super) async fn accept_loop(socket: Arc<Socket>, site: Arc<Site>, limits: Limits) {
    let mut connections = Connections::new(limits.max_connections);
    let mut errors_in_a_row = 0;
    loop {
        connections.reap();
        // Every place taken by a request being answered: leave new connections in the
        // kernel's backlog until one is done.
        while connections.full() && !connections.has_evictable() {
            connections.wait_for_one().await;
        }
        let accepted = poll_fn(|cx| socket.poll_accept(cx)).await;
        match accepted {
            None => return,
            Some(Ok((stream, _peer))) => {
                errors_in_a_row = 0;
                connections.reap();
                connections.make_room(site.port).await;
                let progress = Arc::new(AtomicU8::new(SILENT));
                let task = connections.tasks.spawn(serve_connection(
                    stream,
                    Arc::clone(&progress),
                    Arc::clone(&site),
                    limits.clone(),
                ));
                connections.tracked.push_back(Tracked {
                    progress,
                    task,
                    accepted_at: tokio::time::Instant::now(),
                });
                // Lets the new connection (and the runtime's I/O) run before the next accept:
                // a request already in its socket is read before anything can evict it.
                tokio::task::yield_now().await;
            }
            Some(Err(error)) => {
                errors_in_a_row += 1;
                if errors_in_a_row >= MAX_CONSECUTIVE_ACCEPT_ERRORS {
                    tracing::warn!(port = site.port, %error, "the login callback listener stopped accepting connections");
                    lock(&site.routes).failed = true;
                    routes::fail_pending(
                        &site.routes,
                        &format!("accepting connections failed: {error}"),
                    );
                    return;
                }
                tracing::debug!(port = site.port, %error, "accepting a connection failed; retrying");
                tokio::time::sleep(ACCEPT_RETRY_PAUSE).await;
            }
        }
    }
}

/// A connection's stream that records when its first bytes arrive.
struct Watched {
    stream: TcpStream,
    progress: Arc<AtomicU8>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            let _ = self.progress.compare_exchange(
                SILENT,
                SENDING,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves the one request of a connection, within the limits, then closes it.
async fn serve_connection(
    stream: TcpStream,
    progress: Arc<AtomicU8>,
    site: Arc<Site>,
    limits: Limits,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(false)
        .max_buf_size(limits.max_header_bytes)
        .max_header_size(limits.max_header_bytes)
        .max_headers(limits.max_headers);
    let answering = Arc::clone(&progress);
    let exchange_wait = limits.exchange_wait;
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        answering.store(ANSWERING, Ordering::Relaxed);
        let answer = respond(&request, &site);
        // The body is dropped unread; hyper then closes instead of reading it.
        drop(request);
        let site = Arc::clone(&site);
        async move {
            let page = match answer {
                Answer::Page(page) => page,
                Answer::AfterExchange {
                    path,
                    state,
                    meanwhile,
                    endings,
                } => after_exchange(&site, &path, &state, meanwhile, endings, exchange_wait).await,
            };
            Ok::<_, Infallible>(html_response(page))
        }
    });
    let stream = Watched { stream, progress };
    let connection = http.serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(limits.connection_lifetime, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::debug!(%error, "a connection to the login callback listener ended with an error")
        }
        Err(_) => tracing::debug!(
            "a connection to the login callback listener outlived its time limit; closed"
        ),
    }
}

/// Waits, at most `wait`, for the login whose code this request delivered (or reloaded) to
/// end, and gives the page of its ending; `meanwhile` if it has not ended by then.
async fn after_exchange(
    site: &Site,
    path: &str,
    state: &str,
    meanwhile: Page,
    mut endings: tokio::sync::watch::Receiver<u64>,
    wait: Duration,
) -> Page {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(page) = lock(&site.routes).settled(path, state, &site.app_name) {
            return page;
        }
        match tokio::time::timeout_at(deadline, endings.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => return meanwhile,
        }
    }
}

fn respond(request: &hyper::Request<Incoming>, site: &Site) -> Answer {
    let uri = request.uri();
    let host = match uri.authority() {
        // An absolute-form target names the host itself (RFC 9112 §3.2.2).
        Some(authority) => Some(authority.as_str()),
        None => {
            let mut hosts = request.headers().get_all(header::HOST).iter();
            match (hosts.next(), hosts.next()) {
                (Some(host), None) => host.to_str().ok(),
                _ => None,
            }
        }
    };
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    routes::answer(
        &Request {
            method: request.method().as_str(),
            target,
            host,
        },
        &site.routes,
        &site.own,
        &site.app_name,
    )
}

fn html_response(page: Page) -> Response<String> {
    let status = StatusCode::from_u16(page.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = Response::new(page.html);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; \
             form-action 'none'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

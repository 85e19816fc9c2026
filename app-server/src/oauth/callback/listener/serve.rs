//! The HTTP side of one listener: hyper's HTTP/1 server on the tokio runtime, with the limits
//! a port that every local process (and, through the browser, every web page) can reach needs
//! (requirements rule 34).
//!
//! - One accept loop task per port; each connection is a task holding one of
//!   [`Limits::max_connections`] permits. A connection beyond them is closed at once, so
//!   idle or half-sent connections cannot pile up.
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
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::super::page::Page;
use super::routes::{self, Authority, Request, Routes, lock};

/// Accept errors in a row (each followed by [`ACCEPT_RETRY_PAUSE`]) after which the socket is
/// taken to be broken and the waiting logins are told.
const MAX_CONSECUTIVE_ACCEPT_ERRORS: u32 = 50;
/// Pause after a failed accept (out of file descriptors, typically) before the next.
const ACCEPT_RETRY_PAUSE: Duration = Duration::from_millis(100);

/// What one listener tolerates from its clients.
#[derive(Debug, Clone)]
pub(in crate::oauth::callback) struct Limits {
    /// Connections served at once; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Time for the whole request head to arrive (slowloris).
    pub header_read_timeout: Duration,
    /// Time a connection may live at all, reading and writing included.
    pub connection_lifetime: Duration,
    /// Size of the request line and headers together (hyper's minimum buffer is 8 KiB).
    pub max_header_bytes: usize,
    /// Number of headers.
    pub max_headers: usize,
}

impl Default for Limits {
    /// A browser sends one small request (a long URL and ~20 headers, cookies of other local
    /// apps included) per connection, at once; these leave it ample room.
    fn default() -> Self {
        Self {
            max_connections: 64,
            header_read_timeout: Duration::from_secs(5),
            connection_lifetime: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
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

/// Accepts connections until the socket is closed (or fails for good). Dropping this future
/// (the task aborted) drops every connection task with it.
pub(super) async fn accept_loop(socket: Arc<Socket>, site: Arc<Site>, limits: Limits) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = JoinSet::new();
    let mut errors_in_a_row = 0;
    loop {
        // Finished connections are reaped here, so the set holds at most the permitted ones
        // and those that ended since the last accept.
        while connections.try_join_next().is_some() {}
        let accepted = poll_fn(|cx| socket.poll_accept(cx)).await;
        match accepted {
            None => return,
            Some(Ok((stream, _peer))) => {
                errors_in_a_row = 0;
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    tracing::debug!(
                        port = site.port,
                        limit = limits.max_connections,
                        "too many connections to the login callback listener; closed a new one"
                    );
                    drop(stream);
                    continue;
                };
                connections.spawn(serve_connection(
                    stream,
                    permit,
                    Arc::clone(&site),
                    limits.clone(),
                ));
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

/// Serves the one request of a connection, within the limits, then closes it.
async fn serve_connection(
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
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
    let service = service_fn(move |request: hyper::Request<Incoming>| {
        let response = respond(&request, &site);
        // The body is dropped unread; hyper then closes instead of reading it.
        drop(request);
        std::future::ready(Ok::<_, Infallible>(response))
    });
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

fn respond(request: &hyper::Request<Incoming>, site: &Site) -> Response<String> {
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
    let page = routes::answer(
        &Request {
            method: request.method().as_str(),
            target,
            host,
        },
        &site.routes,
        &site.own,
        &site.app_name,
    );
    html_response(page)
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
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        headers.insert(header::ALLOW, HeaderValue::from_static("GET"));
    }
    response
}

//! One connection: reads framed messages, answers requests concurrently, writes replies and
//! notifications through one writer task in the client's framing. At most
//! [`MAX_IN_FLIGHT`] requests are read ahead of their replies being written; with all of them
//! taken, reading pauses and the client's pipe fills (backpressure).

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use mcp_app_server_protocol::{
    ClientRequest, ErrorCode, ErrorKind, InitializeParams, InitializeResponse, JsonRpcError,
    PROTOCOL_VERSION, RequestId, RequestParseError, ServerInfo, ServerNotification,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::envelope::{self, Parsed, parse_envelope};
use super::error::{AppError, RequestError};
use super::handlers::{self, Peer, PendingAnswer};
use super::outgoing::{MAX_IN_FLIGHT, OutgoingSender, Slot, WRITE_GRACE, start_writer};
use super::reply::{error_value, json_array, reply_bytes, too_large};
use super::state::ServerState;
use super::token_call;
use super::types::{Answer, Ending};
use crate::transport::{
    Framing, Incoming, InputEnded, MessageReader, READ_AHEAD_BYTES, read_ahead,
};

/// How long in-flight requests may run after the input ended before the connection closes.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Serves one connection until its input ends, the daemon shuts down or the connection is
/// closed (its client stopped reading). Replies already queued are written before this
/// returns, or dropped after a grace period when the client does not read them.
pub(super) async fn serve_connection<R, W>(
    state: Arc<ServerState>,
    reader: R,
    writer: W,
    ending: Ending,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let framing: Arc<OnceLock<Framing>> = Arc::new(OnceLock::new());
    let (out, writer) = start_writer(writer, framing.clone());
    let conn_id = state.connections().add(out.clone());
    let conn = Conn {
        state: state.clone(),
        id: conn_id,
        out: out.clone(),
        dpop: Arc::new(AtomicBool::new(false)),
        client_certificate: Arc::new(AtomicBool::new(false)),
    };
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (reader, mut input_ended) = read_ahead(reader, READ_AHEAD_BYTES);
    let mut reader = MessageReader::new(BufReader::new(reader), state.max_message_bytes);
    let mut shutdown = state.shutdown_signal();
    let mut closed = out.closed();
    let mut in_flight = JoinSet::new();

    loop {
        // No next message before a slot is free: that is the backpressure on the client.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = closed.wait_for(|c| *c) => break,
            _ = unread_after_end(&mut input_ended) => break,
        };
        let next = tokio::select! {
            next = reader.next() => next,
            _ = shutdown.wait_for(|stop| *stop) => break,
            _ = closed.wait_for(|c| *c) => break,
        };
        if let Some(f) = reader.framing() {
            let _ = framing.set(f);
        }
        let bytes = match next {
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "input stream failed; closing the connection");
                break;
            }
            Ok(Some(Incoming::TooLarge { size })) => {
                conn.reply_later(
                    error_value(
                        None,
                        too_large(format!(
                            "message of {size} bytes exceeds the limit of {} bytes",
                            state.max_message_bytes
                        )),
                    ),
                    slot,
                    &mut in_flight,
                );
                continue;
            }
            Ok(Some(Incoming::BadHeader(reason))) => {
                conn.reply_later(
                    error_value(
                        None,
                        JsonRpcError {
                            code: ErrorCode::ParseError.code(),
                            message: format!("bad message header: {reason}"),
                            data: None,
                        },
                    ),
                    slot,
                    &mut in_flight,
                );
                continue;
            }
            Ok(Some(Incoming::Message(bytes))) => bytes,
        };
        // A token request read straight from its bytes; it runs as any other request does.
        if let Some((id, params)) = token_call::read(&bytes) {
            let reply = conn.call(id, ClientRequest::OauthToken(params));
            conn.run(reply, slot, &mut in_flight);
            while in_flight.try_join_next().is_some() {}
            continue;
        }
        match envelope::parse(&bytes) {
            Err(reply) => conn.reply_later(reply, slot, &mut in_flight),
            Ok(Value::Array(items)) => {
                // One slot per element, up to the limit: a batch counts as the requests in it.
                let wanted = items.len().min(MAX_IN_FLIGHT) as u32;
                let mut slot = slot;
                if wanted > 1 {
                    let more = tokio::select! {
                        more = slots.clone().acquire_many_owned(wanted - 1) => more,
                        _ = shutdown.wait_for(|stop| *stop) => break,
                        _ = closed.wait_for(|c| *c) => break,
                        _ = unread_after_end(&mut input_ended) => break,
                    };
                    match more {
                        Ok(more) => slot.merge(more),
                        Err(_) => break,
                    }
                }
                conn.run_batch(items, wanted as usize, slot, &mut in_flight);
            }
            Ok(single) => conn.run(conn.start(parse_envelope(single)), slot, &mut in_flight),
        }
        while in_flight.try_join_next().is_some() {}
    }

    // Let requests already running finish (bounded).
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    in_flight.shutdown().await;
    if ending == Ending::Daemon {
        state.shut_down().await;
    }
    state.connections().remove(conn_id);
    drop(conn);
    drop(out);
    writer.finish().await;
}

/// Resolves when the input has ended and a free slot was then awaited for longer than
/// [`WRITE_GRACE`]: the client closed its input and does not read the replies, so the
/// messages still unread are given up (while it reads, slots free up and everything it sent
/// is answered).
async fn unread_after_end(input_ended: &mut InputEnded) {
    let _ = input_ended.wait_for(|ended| *ended).await;
    tokio::time::sleep(WRITE_GRACE).await;
    tracing::warn!(
        grace = ?WRITE_GRACE,
        "the input ended and the client does not read the replies; not answering the rest"
    );
}

#[derive(Clone)]
struct Conn {
    state: Arc<ServerState>,
    id: u64,
    out: OutgoingSender,
    /// `capabilities.dpop` of this connection's `initialize`.
    dpop: Arc<AtomicBool>,
    /// `capabilities.clientCertificate` of this connection's `initialize`.
    client_certificate: Arc<AtomicBool>,
}

/// The reply to one element of the input: encoded already, or once its handler answers.
enum Reply {
    /// The encoded reply, or nothing to send (a notification, a client's reply).
    Ready(Option<Vec<u8>>),
    /// A request in its handler; its answer is encoded once, straight into the reply.
    Pending {
        id: RequestId,
        answer: PendingAnswer,
    },
}

impl Future for Reply {
    type Output = Option<Vec<u8>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Vec<u8>>> {
        match self.get_mut() {
            Reply::Ready(bytes) => Poll::Ready(bytes.take()),
            Reply::Pending { id, answer } => answer
                .as_mut()
                .poll(cx)
                .map(|result| Some(reply_bytes(id, result))),
        }
    }
}

impl Conn {
    /// Queues a reply from a task of its own: the queue may be full, and the reading loop
    /// must stay free to notice a shutdown.
    fn reply_later(&self, reply: Vec<u8>, slot: Slot, in_flight: &mut JoinSet<()>) {
        let out = self.out.clone();
        in_flight.spawn(async move { out.reply(reply, Some(slot)).await });
    }

    /// Runs a batch with as many elements at once as it holds slots, and answers it with
    /// one array (or not at all when it held only notifications).
    fn run_batch(
        &self,
        items: Vec<Value>,
        concurrency: usize,
        slot: Slot,
        in_flight: &mut JoinSet<()>,
    ) {
        // Initialize is handled in order, before the rest of the batch runs.
        let pending: Vec<Reply> = items
            .into_iter()
            .map(|item| self.start(parse_envelope(item)))
            .collect();
        let out = self.out.clone();
        in_flight.spawn(async move {
            let replies: Vec<Vec<u8>> = futures::stream::iter(pending)
                .buffered(concurrency.max(1))
                .filter_map(std::future::ready)
                .collect()
                .await;
            if !replies.is_empty() {
                out.reply(json_array(&replies), Some(slot)).await;
            }
        });
    }

    fn run(&self, mut reply: Reply, slot: Slot, in_flight: &mut JoinSet<()>) {
        // Answered at once (a token from memory, an error): queued from here, on this
        // thread, without a task of its own. Otherwise, or when the queue is full, the
        // rest runs as its own task: the reading loop never waits.
        let slot = match (&mut reply).now_or_never() {
            Some(None) => return,
            Some(Some(bytes)) => match self.out.try_reply(bytes, slot) {
                Ok(()) => return,
                Err((bytes, slot)) => return self.reply_later(bytes, slot, in_flight),
            },
            None => slot,
        };
        let out = self.out.clone();
        in_flight.spawn(async move {
            if let Some(reply) = reply.await {
                out.reply(reply, Some(slot)).await;
            }
        });
    }

    /// Handles the synchronous part now (the envelope, the handshake, the params) and
    /// returns the rest as a future that yields the reply, if any.
    fn start(&self, parsed: Parsed) -> Reply {
        match parsed {
            Parsed::ClientReply => Reply::Ready(None),
            Parsed::Notification { method } => {
                match method.as_str() {
                    "initialized" | "notifications/initialized" | "exit" => {}
                    other => tracing::debug!(method = other, "ignoring client notification"),
                }
                Reply::Ready(None)
            }
            Parsed::Invalid { id, message } => Reply::Ready(Some(error_value(
                id,
                RequestError::InvalidRequest(message).into(),
            ))),
            Parsed::Request { id, method, params } => match ClientRequest::parse(&method, params) {
                Ok(request) => self.call(id, request),
                Err(RequestParseError::UnknownMethod(m)) => Reply::Ready(Some(error_value(
                    Some(id),
                    RequestError::MethodNotFound(m).into(),
                ))),
                Err(RequestParseError::InvalidParams(m)) => Reply::Ready(Some(error_value(
                    Some(id),
                    RequestError::InvalidParams(m).into(),
                ))),
            },
        }
    }

    /// Every request, however it was read: `initialize` is this connection's handshake,
    /// anything else before it is refused, and the rest goes to [`handlers::dispatch`].
    fn call(&self, id: RequestId, request: ClientRequest) -> Reply {
        if let ClientRequest::Initialize(params) = request {
            let result = self.initialize(params).map(Answer::Json);
            return Reply::Ready(Some(reply_bytes(&id, result.map_err(RequestError::from))));
        }
        if let Some(refused) = self.uninitialized(&id, request.method()) {
            return Reply::Ready(Some(refused));
        }
        Reply::Pending {
            id,
            answer: handlers::dispatch(
                self.state.clone(),
                request,
                Peer {
                    dpop: self.dpop.load(Ordering::Relaxed),
                    client_certificate: self.client_certificate.load(Ordering::Relaxed),
                    frontend: self.state.connections().frontend(self.id),
                },
            ),
        }
    }

    /// The error reply to a request made before `initialize`, if this one was.
    fn uninitialized(&self, id: &RequestId, method: &str) -> Option<Vec<u8>> {
        if self.state.connections().is_initialized(self.id) {
            return None;
        }
        let err = AppError::new(
            ErrorKind::NotInitialized,
            format!("`{method}` before `initialize`: send `initialize` first"),
        );
        Some(error_value(Some(id.clone()), err.into()))
    }

    fn initialize(&self, params: InitializeParams) -> Result<Value, AppError> {
        let capabilities = params.capabilities.unwrap_or_default();
        let opt_out: HashSet<String> = capabilities
            .opt_out_notification_methods
            .unwrap_or_default()
            .into_iter()
            .collect();
        let info = &params.client_info;
        let frontend = info
            .title
            .as_deref()
            .filter(|title| !title.trim().is_empty())
            .unwrap_or(&info.name);
        let frontend = (!frontend.trim().is_empty()).then(|| frontend.to_owned());
        if !self
            .state
            .connections()
            .initialize(self.id, opt_out, frontend)
        {
            return Err(AppError::new(
                ErrorKind::AlreadyInitialized,
                "`initialize` was already sent on this connection",
            ));
        }
        // Set before this answer is queued: every later request of the connection sees it.
        self.dpop
            .store(capabilities.dpop.unwrap_or(false), Ordering::Relaxed);
        self.client_certificate.store(
            capabilities.client_certificate.unwrap_or(false),
            Ordering::Relaxed,
        );
        tracing::info!(client = %params.client_info.name, version = %params.client_info.version, "client connected");
        let response = InitializeResponse {
            server_info: ServerInfo {
                name: "mcp-app-server".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
            protocol_version: PROTOCOL_VERSION.into(),
            methods: ClientRequest::METHODS
                .iter()
                .map(|m| m.to_string())
                .collect(),
            notifications: ServerNotification::METHODS
                .iter()
                .map(|m| m.to_string())
                .collect(),
        };
        serde_json::to_value(response)
            .map_err(|e| AppError::new(ErrorKind::ShuttingDown, e.to_string()))
    }
}

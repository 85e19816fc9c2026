//! One connection: reads framed messages, answers requests concurrently, writes replies and
//! notifications through one writer task in the client's framing.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use mcp_app_server_protocol::{
    ClientRequest, ErrorCode, ErrorKind, InitializeParams, InitializeResponse, JsonRpcError,
    JsonRpcErrorResponse, JsonRpcResponse, RequestId, RequestParseError, ServerInfo,
    ServerNotification,
};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::error::{AppError, RequestError};
use super::handlers;
use super::server::ServerState;
use crate::transport::{Framing, Incoming, MessageReader, write_message};

/// How long in-flight requests may run after the input ended before the connection closes.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// Serves one connection until its input ends or the daemon shuts down. Replies already
/// queued are written before this returns.
pub(crate) async fn serve_connection<R, W>(state: Arc<ServerState>, reader: R, mut writer: W)
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let framing: Arc<OnceLock<Framing>> = Arc::new(OnceLock::new());
    let writer_framing = framing.clone();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            let f = writer_framing.get().copied().unwrap_or(Framing::Lines);
            if let Err(e) = write_message(&mut writer, f, &bytes).await {
                tracing::warn!(error = %e, "writing to the client failed; closing the connection");
                break;
            }
        }
    });

    let conn_id = state.connections().add(tx.clone());
    let conn = Conn {
        state: state.clone(),
        id: conn_id,
        tx,
    };
    let mut reader = MessageReader::new(BufReader::new(reader), state.max_message_bytes);
    let mut shutdown = state.shutdown_signal();
    let mut in_flight = JoinSet::new();

    loop {
        let next = tokio::select! {
            next = reader.next() => next,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        if let Some(f) = reader.framing() {
            let _ = framing.set(f);
        }
        match next {
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(error = %e, "input stream failed; closing the connection");
                break;
            }
            Ok(Some(Incoming::TooLarge { size })) => conn.send_error(
                None,
                JsonRpcError {
                    code: ErrorCode::InvalidRequest.code(),
                    message: format!(
                        "message of {size} bytes exceeds the limit of {} bytes",
                        state.max_message_bytes
                    ),
                    data: Some(serde_json::json!({"kind": ErrorKind::MessageTooLarge.as_str()})),
                },
            ),
            Ok(Some(Incoming::BadHeader(reason))) => conn.send_error(
                None,
                JsonRpcError {
                    code: ErrorCode::ParseError.code(),
                    message: format!("bad message header: {reason}"),
                    data: None,
                },
            ),
            Ok(Some(Incoming::Message(bytes))) => conn.handle_bytes(&bytes, &mut in_flight),
        }
        while in_flight.try_join_next().is_some() {}
    }

    // Let requests already running finish (bounded), then flush what is queued.
    let _ = tokio::time::timeout(DRAIN_GRACE, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    in_flight.abort_all();
    state.connections().remove(conn_id);
    drop(conn);
    let _ = writer_task.await;
}

#[derive(Clone)]
struct Conn {
    state: Arc<ServerState>,
    id: u64,
    tx: mpsc::UnboundedSender<Vec<u8>>,
}

/// What one element of the input asked for.
enum Parsed {
    Request {
        id: RequestId,
        method: String,
        params: Option<Value>,
    },
    Notification {
        method: String,
    },
    /// A reply from the client (the daemon sends no requests): ignored.
    ClientReply,
    Invalid {
        id: Option<RequestId>,
        message: String,
    },
}

impl Conn {
    fn send_value<T: serde::Serialize>(&self, value: &T) {
        match serde_json::to_vec(value) {
            Ok(bytes) => {
                let _ = self.tx.send(bytes);
            }
            Err(e) => tracing::error!(error = %e, "could not serialise a reply"),
        }
    }

    fn send_error(&self, id: Option<RequestId>, error: JsonRpcError) {
        self.send_value(&JsonRpcErrorResponse::new(id, error));
    }

    fn handle_bytes(&self, bytes: &[u8], in_flight: &mut JoinSet<()>) {
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                return self.send_error(
                    None,
                    JsonRpcError {
                        code: ErrorCode::ParseError.code(),
                        message: format!("parse error: {e}"),
                        data: None,
                    },
                );
            }
        };
        match value {
            Value::Array(items) if items.is_empty() => self.send_error(
                None,
                JsonRpcError {
                    code: ErrorCode::InvalidRequest.code(),
                    message: "invalid request: empty batch".into(),
                    data: None,
                },
            ),
            Value::Array(items) => {
                // Initialize is handled in order, before the rest of the batch runs.
                let mut pending = Vec::new();
                for item in items {
                    pending.push(self.start(parse_envelope(item)));
                }
                let conn = self.clone();
                in_flight.spawn(async move {
                    let mut replies = Vec::new();
                    for reply in futures::future::join_all(pending)
                        .await
                        .into_iter()
                        .flatten()
                    {
                        replies.push(reply);
                    }
                    if !replies.is_empty() {
                        conn.send_value(&replies);
                    }
                });
            }
            single => {
                let reply = self.start(parse_envelope(single));
                let conn = self.clone();
                in_flight.spawn(async move {
                    if let Some(reply) = reply.await {
                        conn.send_value(&reply);
                    }
                });
            }
        }
    }

    /// Handles the synchronous part now (handshake, validation) and returns the rest as a
    /// future that yields the reply, if any.
    fn start(
        &self,
        parsed: Parsed,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<Value>> + Send>> {
        let ready = |v: Option<Value>| -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Option<Value>> + Send>,
        > { Box::pin(std::future::ready(v)) };
        match parsed {
            Parsed::ClientReply => ready(None),
            Parsed::Notification { method } => {
                match method.as_str() {
                    "initialized" | "notifications/initialized" | "exit" => {}
                    other => tracing::debug!(method = other, "ignoring client notification"),
                }
                ready(None)
            }
            Parsed::Invalid { id, message } => ready(Some(error_value(
                id,
                RequestError::InvalidRequest(message).into(),
            ))),
            Parsed::Request { id, method, params } => {
                let request = match ClientRequest::parse(&method, params) {
                    Ok(r) => r,
                    Err(RequestParseError::UnknownMethod(m)) => {
                        return ready(Some(error_value(
                            Some(id),
                            RequestError::MethodNotFound(m).into(),
                        )));
                    }
                    Err(RequestParseError::InvalidParams(m)) => {
                        return ready(Some(error_value(
                            Some(id),
                            RequestError::InvalidParams(m).into(),
                        )));
                    }
                };
                if let ClientRequest::Initialize(params) = request {
                    let result = self.initialize(params);
                    return ready(Some(reply_value(id, result.map_err(RequestError::from))));
                }
                if !self.state.connections().is_initialized(self.id) {
                    let err = AppError::new(
                        ErrorKind::NotInitialized,
                        format!("`{method}` before `initialize`: send `initialize` first"),
                    );
                    return ready(Some(error_value(Some(id), err.into())));
                }
                let state = self.state.clone();
                Box::pin(async move {
                    let result = handlers::dispatch(&state, request).await;
                    Some(reply_value(id, result))
                })
            }
        }
    }

    fn initialize(&self, params: InitializeParams) -> Result<Value, AppError> {
        let opt_out: HashSet<String> = params
            .capabilities
            .and_then(|c| c.opt_out_notification_methods)
            .unwrap_or_default()
            .into_iter()
            .collect();
        if !self.state.connections().initialize(self.id, opt_out) {
            return Err(AppError::new(
                ErrorKind::AlreadyInitialized,
                "`initialize` was already sent on this connection",
            ));
        }
        tracing::info!(client = %params.client_info.name, version = %params.client_info.version, "client connected");
        let response = InitializeResponse {
            server_info: ServerInfo {
                name: "mcp-app-server".into(),
                version: env!("CARGO_PKG_VERSION").into(),
            },
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

fn reply_value(id: RequestId, result: Result<Value, RequestError>) -> Value {
    match result {
        Ok(v) => serde_json::to_value(JsonRpcResponse::new(id, v)).unwrap_or(Value::Null),
        Err(e) => error_value(Some(id), e.into()),
    }
}

fn error_value(id: Option<RequestId>, error: JsonRpcError) -> Value {
    serde_json::to_value(JsonRpcErrorResponse::new(id, error)).unwrap_or(Value::Null)
}

/// Validates the JSON-RPC envelope of one message.
fn parse_envelope(value: Value) -> Parsed {
    let Value::Object(mut obj) = value else {
        return Parsed::Invalid {
            id: None,
            message: "invalid request: expected an object".into(),
        };
    };
    let id = match obj.remove("id") {
        None => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(n) => Some(Ok(RequestId::Number(n))),
            None => Some(Err("invalid request: `id` must be an integer or a string")),
        },
        Some(Value::String(s)) => Some(Ok(RequestId::String(s))),
        Some(_) => Some(Err("invalid request: `id` must be an integer or a string")),
    };
    let id = match id {
        Some(Err(m)) => {
            return Parsed::Invalid {
                id: None,
                message: m.into(),
            };
        }
        Some(Ok(id)) => Some(id),
        None => None,
    };
    if let Some(v) = obj.get("jsonrpc")
        && v != "2.0"
    {
        return Parsed::Invalid {
            id,
            message: "invalid request: `jsonrpc` must be \"2.0\"".into(),
        };
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => {
            return Parsed::Invalid {
                id,
                message: "invalid request: `method` must be a string".into(),
            };
        }
        None if obj.contains_key("result") || obj.contains_key("error") => {
            return Parsed::ClientReply;
        }
        None => {
            return Parsed::Invalid {
                id,
                message: "invalid request: `method` is missing".into(),
            };
        }
    };
    let params = obj.remove("params");
    if let Some(p) = &params
        && !(p.is_object() || p.is_array() || p.is_null())
    {
        return Parsed::Invalid {
            id,
            message: "invalid request: `params` must be an object".into(),
        };
    }
    match id {
        Some(id) => Parsed::Request { id, method, params },
        None => Parsed::Notification { method },
    }
}

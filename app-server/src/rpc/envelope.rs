//! The JSON-RPC envelope of what a client sends: one message or a batch, each element a
//! request, a notification or a reply, checked before any method is looked at.

use mcp_app_server_protocol::{ErrorCode, JsonRpcError, RequestId};
use serde_json::Value;

use super::reply::{error_value, too_large};

/// Most elements in one batch. Each element's reply is held until the whole batch is
/// answered, so without a cap one 4 MiB message of tiny elements would be answered by
/// hundreds of megabytes.
pub(super) const MAX_BATCH: usize = 1024;

/// The message as JSON, or the error reply to send instead.
pub(super) fn parse(bytes: &[u8]) -> Result<Value, Vec<u8>> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        error_value(
            None,
            JsonRpcError {
                code: ErrorCode::ParseError.code(),
                message: format!("parse error: {e}"),
                data: None,
            },
        )
    })?;
    match &value {
        Value::Array(items) if items.is_empty() => Err(error_value(
            None,
            JsonRpcError {
                code: ErrorCode::InvalidRequest.code(),
                message: "invalid request: empty batch".into(),
                data: None,
            },
        )),
        Value::Array(items) if items.len() > MAX_BATCH => Err(error_value(
            None,
            too_large(format!(
                "a batch of {} messages exceeds the limit of {MAX_BATCH}; send it as several batches",
                items.len()
            )),
        )),
        _ => Ok(value),
    }
}

/// What one element of the input asked for.
pub(super) enum Parsed {
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

/// Validates the JSON-RPC envelope of one message.
pub(super) fn parse_envelope(value: Value) -> Parsed {
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

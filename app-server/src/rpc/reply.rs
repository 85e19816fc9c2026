//! Replies as the client reads them, encoded once, straight from the typed result.

use mcp_app_server_protocol::{
    ErrorCode, ErrorKind, JsonRpcError, JsonRpcErrorResponse, RequestId,
};

use super::error::RequestError;
use super::types::Answer;

/// A success reply, as [`mcp_app_server_protocol::JsonRpcResponse`] puts it, encoded
/// straight from the typed result.
#[derive(serde::Serialize)]
struct Success<'a> {
    jsonrpc: &'static str,
    id: &'a RequestId,
    result: &'a Answer,
}

pub(super) fn reply_bytes(id: &RequestId, result: Result<Answer, RequestError>) -> Vec<u8> {
    match result {
        Ok(answer) => {
            let success = Success {
                jsonrpc: "2.0",
                id,
                result: &answer,
            };
            let mut bytes = Vec::with_capacity(answer.encoded_size_hint());
            serde_json::to_writer(&mut bytes, &success)
                .map(|()| bytes)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "could not serialise a reply");
                    error_value(
                        Some(id.clone()),
                        RequestError::Internal("the reply could not be encoded".into()).into(),
                    )
                })
        }
        Err(e) => error_value(Some(id.clone()), e.into()),
    }
}

/// An error reply.
pub(super) fn error_value(id: Option<RequestId>, error: JsonRpcError) -> Vec<u8> {
    // Numbers, strings and values: nothing in it can fail to encode.
    serde_json::to_vec(&JsonRpcErrorResponse::new(id, error)).unwrap_or_default()
}

/// Encoded replies as one JSON array (a batch's answer).
pub(super) fn json_array(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum::<usize>() + 1);
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.push(b']');
    out
}

/// A refusal of a message or a batch for its size.
pub(super) fn too_large(message: String) -> JsonRpcError {
    JsonRpcError {
        code: ErrorCode::InvalidRequest.code(),
        message,
        data: Some(serde_json::json!({"kind": ErrorKind::MessageTooLarge.as_str()})),
    }
}

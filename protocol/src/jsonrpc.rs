//! JSON-RPC 2.0 envelopes.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The only JSON-RPC version spoken.
pub const JSONRPC_VERSION: &str = "2.0";

/// A request id: a string or an integer, echoed back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    Number(i64),
    String(String),
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestId::Number(n) => write!(f, "{n}"),
            RequestId::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// A request from the client. `jsonrpc` may be absent on input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcRequest {
    #[serde(default = "version", skip_deserializing)]
    pub jsonrpc: String,
    pub id: RequestId,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// A notification (no id, no reply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcNotification {
    #[serde(default = "version", skip_deserializing)]
    pub jsonrpc: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcResponse {
    #[serde(default = "version", skip_deserializing)]
    pub jsonrpc: String,
    pub id: RequestId,
    pub result: Value,
}

/// A failed reply. `id` is null when the request id could not be read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcErrorResponse {
    #[serde(default = "version", skip_deserializing)]
    pub jsonrpc: String,
    pub id: Option<RequestId>,
    pub error: JsonRpcError,
}

/// The error object of a failed reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonRpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

/// Any single message, as sent by the daemon.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum JsonRpcMessage {
    Request(JsonRpcRequest),
    Notification(JsonRpcNotification),
    Response(JsonRpcResponse),
    Error(JsonRpcErrorResponse),
}

fn version() -> String {
    JSONRPC_VERSION.to_string()
}

impl JsonRpcResponse {
    pub fn new(id: RequestId, result: Value) -> Self {
        Self {
            jsonrpc: version(),
            id,
            result,
        }
    }
}

impl JsonRpcErrorResponse {
    pub fn new(id: Option<RequestId>, error: JsonRpcError) -> Self {
        Self {
            jsonrpc: version(),
            id,
            error,
        }
    }
}

impl JsonRpcNotification {
    pub fn new(method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            jsonrpc: version(),
            method: method.into(),
            params,
        }
    }
}

impl JsonRpcRequest {
    pub fn new(id: RequestId, method: impl Into<String>, params: Option<Value>) -> Self {
        Self {
            jsonrpc: version(),
            id,
            method: method.into(),
            params,
        }
    }
}

/// Standard JSON-RPC error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub enum ErrorCode {
    ParseError = -32700,
    InvalidRequest = -32600,
    MethodNotFound = -32601,
    InvalidParams = -32602,
    InternalError = -32603,
    /// Application errors; `data.kind` says which (see [`crate::ErrorKind`]).
    ServerError = -32000,
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        self as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trips_with_number_and_string_ids() {
        for id in [json!(7), json!("abc")] {
            let raw = json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": {}});
            let req: JsonRpcRequest = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(serde_json::to_value(&req).unwrap(), raw);
        }
    }

    #[test]
    fn missing_jsonrpc_field_is_accepted_and_added_on_output() {
        let req: JsonRpcRequest = serde_json::from_value(json!({"id": 1, "method": "m"})).unwrap();
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"jsonrpc": "2.0", "id": 1, "method": "m"})
        );
    }

    #[test]
    fn error_response_serialises_null_id() {
        let e = JsonRpcErrorResponse::new(
            None,
            JsonRpcError {
                code: ErrorCode::ParseError.code(),
                message: "bad".into(),
                data: None,
            },
        );
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": "bad"}})
        );
    }
}

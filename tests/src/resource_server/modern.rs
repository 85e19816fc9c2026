//! The MCP server at revision 2026-07-28 (stateless Streamable HTTP): the request metadata
//! headers checked against the body as the revision requires a server to, `server/discover`,
//! and the result fields the revision adds. No session is ever assigned.

use axum::Json;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::mcp::{Dispatch, rpc_error};

pub(crate) const REVISION: &str = "2026-07-28";
const HEADER_MISMATCH: i64 = -32020;
const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A mirrored header value with its `=?base64?…?=` form decoded and surrounding
/// whitespace dropped.
fn decoded(value: &str) -> Option<String> {
    let value = value.trim();
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok()),
        None => Some(value.to_string()),
    }
}

fn reject(id: Value, code: i64, message: &str) -> Response {
    (StatusCode::BAD_REQUEST, Json(rpc_error(id, code, message))).into_response()
}

/// The answer to request `id` of `method`.
pub(super) fn answer(
    headers: &HeaderMap,
    method: &str,
    id: Value,
    params: Option<&Value>,
    dispatch: Dispatch,
) -> Response {
    if method == "initialize" {
        return reject(
            id,
            -32600,
            "initialize is not part of MCP 2026-07-28; this server supports only 2026-07-28",
        );
    }
    let Some(version) = header(headers, "mcp-protocol-version") else {
        return reject(id, HEADER_MISMATCH, "Missing MCP-Protocol-Version header");
    };
    let meta = params.and_then(|p| p.get("_meta"));
    let meta_version = meta
        .and_then(|m| m.get("io.modelcontextprotocol/protocolVersion"))
        .and_then(Value::as_str);
    let has_capabilities = meta
        .and_then(|m| m.get("io.modelcontextprotocol/clientCapabilities"))
        .is_some_and(Value::is_object);
    let (Some(meta_version), true) = (meta_version, has_capabilities) else {
        return reject(
            id,
            -32602,
            "Invalid params: _meta needs io.modelcontextprotocol/protocolVersion and clientCapabilities",
        );
    };
    if meta_version != version {
        return reject(
            id,
            HEADER_MISMATCH,
            "MCP-Protocol-Version header does not match _meta protocolVersion",
        );
    }
    if version != REVISION {
        let error = json!({"code": UNSUPPORTED_PROTOCOL_VERSION,
            "message": "Unsupported protocol version",
            "data": {"supported": [REVISION], "requested": version}});
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"jsonrpc": "2.0", "id": id, "error": error})),
        )
            .into_response();
    }
    if header(headers, "mcp-method") != Some(method) {
        return reject(
            id,
            HEADER_MISMATCH,
            "Mcp-Method header does not match the body",
        );
    }
    let name_field = match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        _ => None,
    };
    if let Some(field) = name_field {
        let body = params.and_then(|p| p.get(field)).and_then(Value::as_str);
        let sent = header(headers, "mcp-name").and_then(decoded);
        if body.is_none() || sent.as_deref() != body {
            return reject(
                id,
                HEADER_MISMATCH,
                "Mcp-Name header does not match the body",
            );
        }
    }
    let result = if method == "server/discover" {
        Ok(json!({
            "supportedVersions": [REVISION],
            "capabilities": {"tools": {}},
            "ttlMs": 0,
            "cacheScope": "private",
            "_meta": {"io.modelcontextprotocol/serverInfo":
                {"name": "mcp-app-server-testkit", "version": env!("CARGO_PKG_VERSION")}},
        }))
    } else {
        dispatch(method, params)
    };
    let reply = match result {
        Ok(Value::Object(mut result)) => {
            result.insert("resultType".into(), json!("complete"));
            json!({"jsonrpc": "2.0", "id": id, "result": result})
        }
        Ok(other) => json!({"jsonrpc": "2.0", "id": id, "result": other}),
        Err((-32601, message)) => {
            return (StatusCode::NOT_FOUND, Json(rpc_error(id, -32601, message))).into_response();
        }
        Err((code, message)) => rpc_error(id, code, message),
    };
    Json(reply).into_response()
}

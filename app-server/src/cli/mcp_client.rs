//! A small MCP Streamable HTTP client for both eras of the protocol (see
//! [`crate::mcp_wire`]): JSON-RPC requests POSTed to the endpoint, answers as
//! `application/json` or as a `text/event-stream` that carries the response among other
//! messages. On the modern wire (2026-07-28) every request carries the request metadata
//! headers and `_meta`, and there is no session; on the legacy wire (2025-03-26 to
//! 2025-11-25) `initialize` opens, the server may assign an `Mcp-Session-Id`, and later
//! requests carry the negotiated `MCP-Protocol-Version`. Which era a server speaks is decided
//! by the caller (`connect`) from the answers; authorization failures are returned, not
//! handled: the caller decides whether to log in.

use crate::config::network::ServerNetwork;
use crate::oauth::http::with_server_network;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use std::sync::Arc;

use super::mcp_sse::SseParser;
use crate::mcp_wire::{
    Era, PROTOCOL_VERSION_HEADER, SESSION_HEADER, encode_header_value, modern_request,
};
use crate::oauth::dpop::{self, NONCE_HEADER, ProofRequest, USE_DPOP_NONCE};
use crate::oauth::jose::SigningKey;
use crate::oauth::www_authenticate::{BearerChallenge, bearer_challenge};

/// The access token a request carries and, for a DPoP-bound one, the key its proofs are
/// signed with. `Debug` shows neither.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub dpop_key: Option<Arc<SigningKey>>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("dpop", &self.dpop_key.is_some())
            .finish()
    }
}

/// Bound on one answer (a JSON body, or the event stream up to our response).
const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Bound on the body of an error status that is read for a JSON-RPC error.
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// What the server answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The JSON-RPC `result` (`null` for an accepted notification).
    Result(Value),
    /// 401: a token is needed, or the one sent is no longer good.
    Unauthorized(Option<BearerChallenge>),
    /// 403 `insufficient_scope`: the token lacks scopes (step-up, rule 9).
    InsufficientScope(BearerChallenge),
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl RpcError {
    fn from_value(error: &Value) -> Option<Self> {
        let code = error.get("code").and_then(Value::as_i64)?;
        Some(Self {
            code,
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string(),
            data: error.get("data").cloned(),
        })
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error("cannot reach the MCP server at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the MCP server at {url} answered `{method}` with HTTP {status}{body}")]
    Status {
        url: String,
        method: String,
        status: u16,
        body: String,
        /// The JSON-RPC error the body carried, if any.
        rpc: Option<Box<RpcError>>,
    },
    #[error("the MCP server at {url} sent an invalid answer to `{method}`: {reason}")]
    Invalid {
        url: String,
        method: String,
        reason: String,
    },
    #[error("`{method}` failed on the MCP server: {} (JSON-RPC error {})", .error.message, .error.code)]
    Rpc {
        method: String,
        error: Box<RpcError>,
    },
}

impl McpError {
    /// The JSON-RPC error of the answer, whether it came with HTTP 200 or an error status.
    pub fn rpc_error(&self) -> Option<&RpcError> {
        match self {
            McpError::Status { rpc, .. } => rpc.as_deref(),
            McpError::Rpc { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP error status of the answer, if that is what failed.
    pub fn status(&self) -> Option<u16> {
        match self {
            McpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// How requests are framed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Wire {
    /// 2026-07-28 and later: metadata headers and `_meta` on every request.
    Modern(String),
    /// `initialize` era; the version once `initialize` negotiated one.
    Legacy(Option<String>),
}

/// One MCP connection: the endpoint, the wire in use and, on the legacy wire, the session
/// the server assigned.
pub struct McpClient {
    http: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    wire: Wire,
    session_id: Option<String>,
    next_id: i64,
    /// The latest `DPoP-Nonce` the server sent (RFC 9449 9).
    dpop_nonce: Option<String>,
}

impl McpClient {
    /// A connection that reaches the server as its configuration says (proxy, certificate
    /// authorities, client certificate). Reads the TLS files on first use: call it on a
    /// blocking thread.
    pub fn with_network(
        url: Url,
        headers: HeaderMap,
        network: &ServerNetwork,
    ) -> Result<Self, McpError> {
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("mcp-app-server/", env!("CARGO_PKG_VERSION")));
        let http = with_server_network(builder, network)
            .map_err(|e| McpError::Unreachable {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .build()
            .map_err(|e| McpError::Unreachable {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            url,
            headers,
            wire: Wire::Legacy(None),
            session_id: None,
            next_id: 1,
            dpop_nonce: None,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The era requests are framed for.
    pub fn era(&self) -> Era {
        match self.wire {
            Wire::Modern(_) => Era::Modern,
            Wire::Legacy(_) => Era::Legacy,
        }
    }

    /// Frame later requests for the modern wire at `revision`.
    pub fn use_modern(&mut self, revision: &str) {
        self.wire = Wire::Modern(revision.to_string());
        self.session_id = None;
    }

    /// Frame later requests for the legacy wire, before `initialize` (no version header).
    pub fn use_legacy(&mut self) {
        self.wire = Wire::Legacy(None);
        self.session_id = None;
    }

    /// After `initialize`: later requests carry `MCP-Protocol-Version: version`.
    pub fn set_legacy_version(&mut self, version: &str) {
        self.wire = Wire::Legacy(Some(version.to_string()));
    }

    /// Sends a request and waits for its response.
    pub async fn request(
        &mut self,
        method: &str,
        params: Value,
        token: Option<&AccessToken>,
    ) -> Result<Answer, McpError> {
        let id = self.next_id;
        self.next_id += 1;
        let (headers, message) = match &self.wire {
            Wire::Modern(revision) => modern_request(id, revision, method, params),
            Wire::Legacy(version) => {
                let mut headers = HeaderMap::new();
                if let Some(version) = version {
                    headers.insert(PROTOCOL_VERSION_HEADER, encode_header_value(version));
                }
                let message =
                    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
                (headers, message)
            }
        };
        let answer = self
            .post(method, headers, &message, token, Some(id))
            .await?;
        if let (Wire::Modern(_), Answer::Result(result)) = (&self.wire, &answer)
            && result.get("resultType").and_then(Value::as_str) == Some("input_required")
        {
            return Err(McpError::Invalid {
                url: self.url.to_string(),
                method: method.to_string(),
                reason: "the server asks the client for input (a multi round-trip request), \
                         which this client does not support"
                    .into(),
            });
        }
        Ok(answer)
    }

    /// Sends a notification (no response expected; the server answers 202). Only the
    /// legacy wire has client notifications over HTTP.
    pub async fn notify(
        &mut self,
        method: &str,
        token: Option<&AccessToken>,
    ) -> Result<Answer, McpError> {
        let mut headers = HeaderMap::new();
        if let Wire::Legacy(Some(version)) = &self.wire {
            headers.insert(PROTOCOL_VERSION_HEADER, encode_header_value(version));
        }
        let message = json!({"jsonrpc": "2.0", "method": method});
        self.post(method, headers, &message, token, None).await
    }

    async fn post(
        &mut self,
        method: &str,
        wire_headers: HeaderMap,
        message: &Value,
        token: Option<&AccessToken>,
        id: Option<i64>,
    ) -> Result<Answer, McpError> {
        let mut headers = self.headers.clone();
        headers.extend(wire_headers);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(session) = self.session_id.as_deref().and_then(|s| s.parse().ok()) {
            headers.insert(SESSION_HEADER, session);
        }
        let body = serde_json::to_vec(message).expect("a JSON value serializes");
        // A DPoP-bound token is sent again, once, with the nonce of a use_dpop_nonce refusal.
        let mut nonce_retried = false;
        let mut response = loop {
            let mut headers = headers.clone();
            if let Some(token) = token {
                self.authorize(&mut headers, token, &body, method)?;
            }
            let response = self
                .http
                .post(self.url.clone())
                .headers(headers)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| McpError::Unreachable {
                    url: self.url.to_string(),
                    reason: error_chain(&e),
                })?;
            let sent_nonce = self.dpop_nonce.clone();
            if let Some(nonce) = response
                .headers()
                .get(NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .filter(|n| !n.is_empty() && n.len() <= 512)
            {
                self.dpop_nonce = Some(nonce.to_string());
            }
            let asks_nonce = response.status() == StatusCode::UNAUTHORIZED
                && token.is_some_and(|t| t.dpop_key.is_some())
                && bearer_challenge(response.headers())
                    .is_some_and(|c| c.error.as_deref() == Some(USE_DPOP_NONCE));
            if asks_nonce && !nonce_retried && self.dpop_nonce != sent_nonce {
                nonce_retried = true;
                continue;
            }
            break response;
        };
        let status = response.status();
        match status {
            StatusCode::UNAUTHORIZED => {
                return Ok(Answer::Unauthorized(bearer_challenge(response.headers())));
            }
            StatusCode::FORBIDDEN => {
                if let Some(challenge) = bearer_challenge(response.headers())
                    && challenge.error.as_deref() == Some("insufficient_scope")
                {
                    return Ok(Answer::InsufficientScope(challenge));
                }
            }
            _ => {}
        }
        if !status.is_success() {
            let body = read_limited(&mut response, MAX_ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            let rpc = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(RpcError::from_value))
                .map(Box::new);
            let text: String = String::from_utf8_lossy(&body)
                .trim()
                .chars()
                .take(500)
                .collect();
            return Err(McpError::Status {
                url: self.url.to_string(),
                method: method.to_string(),
                status: status.as_u16(),
                body: if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                },
                rpc,
            });
        }
        if self.era() == Era::Legacy
            && let Some(session) = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
        {
            self.session_id = Some(session.to_string());
        }
        let Some(id) = id else {
            return Ok(Answer::Result(Value::Null));
        };
        let invalid = |reason: String| McpError::Invalid {
            url: self.url.to_string(),
            method: method.to_string(),
            reason,
        };
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let reply = if content_type.starts_with("text/event-stream") {
            read_event_stream(&mut response, id)
                .await
                .map_err(invalid)?
        } else if content_type.starts_with("application/json") {
            let body = read_limited(&mut response, MAX_ANSWER_BYTES)
                .await
                .map_err(invalid)?;
            let value: Value = serde_json::from_slice(&body)
                .map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
            find_response(value, id)
                .ok_or_else(|| invalid(format!("the body holds no response with id {id}")))?
        } else {
            return Err(invalid(format!(
                "unexpected Content-Type {content_type:?} (expected application/json or text/event-stream)"
            )));
        };
        into_result(reply, method)
    }
}

impl McpClient {
    /// `Authorization` for `token`: `DPoP` with a fresh proof over this request (its
    /// `ath`, and the body's `content_digest` the MCP profile asks for), else `Bearer`.
    fn authorize(
        &self,
        headers: &mut HeaderMap,
        token: &AccessToken,
        body: &[u8],
        method: &str,
    ) -> Result<(), McpError> {
        let invalid = |reason: &str| McpError::Invalid {
            url: self.url.to_string(),
            method: method.to_string(),
            reason: reason.to_string(),
        };
        let scheme = if token.dpop_key.is_some() {
            "DPoP"
        } else {
            "Bearer"
        };
        let mut value = HeaderValue::from_str(&format!("{scheme} {}", token.token))
            .map_err(|_| invalid("the stored access token is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
        if let Some(key) = &token.dpop_key {
            let proof = dpop::proof(
                key,
                ProofRequest {
                    method: "POST",
                    url: &self.url,
                    access_token: Some(&token.token),
                    nonce: self.dpop_nonce.as_deref(),
                    body: Some(body),
                },
                crate::credentials::unix_now(),
            )
            .map_err(|e| invalid(&format!("the DPoP proof could not be made ({e})")))?;
            let value = HeaderValue::from_str(&proof)
                .map_err(|_| invalid("the DPoP proof is not a valid header value"))?;
            headers.insert("dpop", value);
        }
        Ok(())
    }
}

/// The response with `id` in a message or a batch.
fn find_response(value: Value, id: i64) -> Option<Value> {
    match value {
        Value::Array(items) => items.into_iter().find_map(|v| find_response(v, id)),
        v if is_response_to(&v, id) => Some(v),
        _ => None,
    }
}

fn is_response_to(v: &Value, id: i64) -> bool {
    v.get("id").and_then(Value::as_i64) == Some(id)
        && (v.get("result").is_some() || v.get("error").is_some())
}

fn into_result(reply: Value, method: &str) -> Result<Answer, McpError> {
    if let Some(error) = reply.get("error") {
        return Err(McpError::Rpc {
            method: method.to_string(),
            error: Box::new(RpcError::from_value(error).unwrap_or(RpcError {
                code: 0,
                message: "an error without a code".into(),
                data: None,
            })),
        });
    }
    Ok(Answer::Result(
        reply.get("result").cloned().unwrap_or(Value::Null),
    ))
}

async fn read_limited(response: &mut reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the body failed: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(format!("the body exceeds {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads events until the response with `id` arrives; other messages (server requests,
/// notifications, priming events without data) are skipped.
async fn read_event_stream(response: &mut reqwest::Response, id: i64) -> Result<Value, String> {
    let mut parser = SseParser::default();
    let mut seen = 0usize;
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the event stream failed: {}", error_chain(&e)))?
    {
        seen += chunk.len();
        if seen > MAX_ANSWER_BYTES {
            return Err(format!(
                "the event stream exceeded {MAX_ANSWER_BYTES} bytes without the response"
            ));
        }
        for event in parser.push(&chunk) {
            if event.event.as_deref().is_some_and(|e| e != "message") || event.data.is_empty() {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&event.data) else {
                tracing::debug!("skipping an event whose data is not JSON");
                continue;
            };
            if let Some(reply) = find_response(value, id) {
                return Ok(reply);
            }
        }
    }
    Err(format!(
        "the event stream ended before the response with id {id}"
    ))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_found_by_id_in_batches() {
        let batch = json!([
            {"jsonrpc": "2.0", "method": "notifications/progress"},
            {"jsonrpc": "2.0", "id": 3, "method": "ping"},
            {"jsonrpc": "2.0", "id": 3, "result": {"ok": true}},
        ]);
        assert_eq!(find_response(batch, 3).unwrap()["result"]["ok"], true);
        assert!(find_response(json!({"jsonrpc": "2.0", "id": 4, "result": {}}), 3).is_none());
    }

    #[test]
    fn rpc_errors_become_errors() {
        let e = into_result(
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32601, "message": "nope"}}),
            "tools/call",
        )
        .unwrap_err();
        assert!(e.to_string().contains("nope") && e.to_string().contains("tools/call"));
    }
}

//! A small MCP Streamable HTTP client (MCP 2025-11-25, basic/transports): JSON-RPC requests
//! POSTed to the endpoint, answers as `application/json` or as a `text/event-stream` that
//! carries the response among other messages, and the `Mcp-Session-Id` the server may assign
//! at `initialize`. Authorization failures are returned, not handled: the caller decides
//! whether to log in.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::{Value, json};
use url::Url;

use crate::oauth::www_authenticate::{BearerChallenge, bearer_challenge};

/// The protocol revision this client speaks.
pub const PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL_HEADER: &str = "mcp-protocol-version";
/// Bound on one answer (a JSON body, or the event stream up to our response).
const MAX_ANSWER_BYTES: usize = 8 << 20;
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
    },
    #[error("the MCP server at {url} sent an invalid answer to `{method}`: {reason}")]
    Invalid {
        url: String,
        method: String,
        reason: String,
    },
    #[error("`{method}` failed on the MCP server: {message} (JSON-RPC error {code})")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
}

/// One MCP connection: the endpoint, the session the server assigned, the negotiated
/// protocol revision.
pub struct McpClient {
    http: reqwest::Client,
    url: Url,
    headers: HeaderMap,
    session_id: Option<String>,
    protocol_version: Option<String>,
    next_id: i64,
}

impl McpClient {
    pub fn new(url: Url, headers: HeaderMap) -> Result<Self, McpError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("mcp-app-server/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| McpError::Unreachable {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            http,
            url,
            headers,
            session_id: None,
            protocol_version: None,
            next_id: 1,
        })
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// After `initialize`: later requests carry `MCP-Protocol-Version`.
    pub fn set_protocol_version(&mut self, version: &str) {
        self.protocol_version = Some(version.to_string());
    }

    /// The `initialize` params this client sends.
    pub fn initialize_params() -> Value {
        json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-app-server", "version": env!("CARGO_PKG_VERSION")},
        })
    }

    /// Sends a request and waits for its response.
    pub async fn request(
        &mut self,
        method: &str,
        params: Value,
        token: Option<&str>,
    ) -> Result<Answer, McpError> {
        let id = self.next_id;
        self.next_id += 1;
        let message = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.post(method, &message, token, Some(id)).await
    }

    /// Sends a notification (no response expected; the server answers 202).
    pub async fn notify(&mut self, method: &str, token: Option<&str>) -> Result<Answer, McpError> {
        let message = json!({"jsonrpc": "2.0", "method": method});
        self.post(method, &message, token, None).await
    }

    async fn post(
        &mut self,
        method: &str,
        message: &Value,
        token: Option<&str>,
        id: Option<i64>,
    ) -> Result<Answer, McpError> {
        let mut headers = self.headers.clone();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        if let Some(session) = self.session_id.as_deref().and_then(|s| s.parse().ok()) {
            headers.insert(SESSION_HEADER, session);
        }
        if let Some(version) = self
            .protocol_version
            .as_deref()
            .and_then(|v| v.parse().ok())
        {
            headers.insert(PROTOCOL_HEADER, version);
        }
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                McpError::Invalid {
                    url: self.url.to_string(),
                    method: method.to_string(),
                    reason: "the stored access token is not a valid header value".into(),
                }
            })?;
            headers.insert(AUTHORIZATION, value);
        }
        let body = serde_json::to_vec(message).expect("a JSON value serializes");
        let mut response = self
            .http
            .post(self.url.clone())
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| McpError::Unreachable {
                url: self.url.to_string(),
                reason: error_chain(&e),
            })?;
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
            let body = read_limited(&mut response, 2048).await.unwrap_or_default();
            let text = String::from_utf8_lossy(&body).trim().to_string();
            return Err(McpError::Status {
                url: self.url.to_string(),
                method: method.to_string(),
                status: status.as_u16(),
                body: if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                },
            });
        }
        if let Some(session) = response
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
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_string(),
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

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// An incremental `text/event-stream` parser (WHATWG HTML, server-sent events): lines end
/// with LF, CRLF or CR; `data` lines join with LF; a blank line dispatches; `:` starts a
/// comment. Chunks may split lines and UTF-8 sequences anywhere.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The previous chunk ended with CR: an LF at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: Option<String>,
    id: Option<String>,
}

impl SseParser {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &byte in chunk {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&String::from_utf8_lossy(&line)) {
                        out.push(event);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        out
    }

    fn line_done(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(SseEvent {
                event: self.event.take(),
                data,
                id: self.id.clone(),
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            "event" => self.event = Some(value.to_string()),
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            _ => {}
        }
        None
    }
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

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        chunks.iter().flat_map(|c| p.push(c)).collect()
    }

    #[test]
    fn sse_events_across_chunks_and_line_endings() {
        let events = parse_all(&[
            b": comment\r\nid: 7\r\nevent: message\r\nda",
            b"ta: {\"a\":\r\ndata: 1}\r\n\r\n",
            b"data: x\rdata: y\r",
            b"\n\ndata:z\n\n",
        ]);
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event: Some("message".into()),
                    data: "{\"a\":\n1}".into(),
                    id: Some("7".into())
                },
                SseEvent {
                    event: None,
                    data: "x\ny".into(),
                    id: Some("7".into())
                },
                SseEvent {
                    event: None,
                    data: "z".into(),
                    id: Some("7".into())
                },
            ]
        );
    }

    #[test]
    fn sse_priming_event_without_data_is_not_dispatched() {
        assert!(parse_all(&[b"id: 1\nretry: 500\n\n"]).is_empty());
    }

    #[test]
    fn sse_split_utf8_survives() {
        let text = "data: \u{e9}t\u{e9}\n\n".as_bytes();
        let (a, b) = text.split_at(7);
        assert_eq!(parse_all(&[a, b])[0].data, "\u{e9}t\u{e9}");
    }

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

//! Rule 1 (and 32): the unauthenticated request that starts discovery.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use url::Url;

use super::error::DiscoveryError;
use crate::mcp_wire;
use crate::oauth::http::HttpClient;
use crate::oauth::www_authenticate::{BearerChallenge, bearer_challenge};

/// MCP protocol revision the legacy (`initialize`) discovery probe offers.
pub const PROBE_PROTOCOL_VERSION: &str = mcp_wire::LEGACY_REVISION;

/// Result of the unauthenticated probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: StatusCode,
    pub challenge: Option<BearerChallenge>,
}

/// Rule 1 (and 32): the unauthenticated request that starts discovery, one that servers of
/// every revision the daemon speaks answer with 401 when they need a token. First a
/// 2026-07-28 `server/discover` with the request metadata headers and `_meta`: modern
/// servers know it, and legacy servers that let `initialize` through unauthenticated still
/// protect every other method. When that gets neither 401/403 nor a modern answer, a legacy
/// `initialize` (2025-11-25) follows, for servers that judge the protocol version before
/// the token. Any other status goes on to the well-known lookups (a 400, 405 or 406 does not
/// end discovery where the metadata exists).
pub async fn probe(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
) -> Result<Probe, DiscoveryError> {
    let (wire_headers, body) = mcp_wire::modern_request(
        0,
        mcp_wire::MODERN_REVISION,
        mcp_wire::DISCOVER_METHOD,
        serde_json::json!({}),
    );
    let modern = probe_once(http, server_url, extra_headers, wire_headers, &body).await?;
    if modern.status.is_success() || is_challenge(modern.status) || modern.modern_error {
        return Ok(modern.probe);
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": mcp_wire::initialize_params(PROBE_PROTOCOL_VERSION),
    });
    let legacy = probe_once(http, server_url, extra_headers, HeaderMap::new(), &body).await?;
    if legacy.status.is_success() || is_challenge(legacy.status) {
        return Ok(legacy.probe);
    }
    Ok(modern.probe)
}

fn is_challenge(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

struct ProbeAnswer {
    status: StatusCode,
    /// The body is a JSON-RPC error only a 2026-07-28 server sends.
    modern_error: bool,
    probe: Probe,
}

async fn probe_once(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    wire_headers: HeaderMap,
    body: &serde_json::Value,
) -> Result<ProbeAnswer, DiscoveryError> {
    let mut headers = extra_headers.clone();
    headers.extend(wire_headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    let response = http.post_probe(server_url, bytes, &headers).await?;
    let modern_error = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(serde_json::Value::as_i64))
        .is_some_and(mcp_wire::is_modern_error);
    Ok(ProbeAnswer {
        status: response.status,
        modern_error,
        probe: Probe {
            status: response.status,
            challenge: bearer_challenge(&response.headers),
        },
    })
}

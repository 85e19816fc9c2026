//! `/mcp`: bearer token validation (RFC 6750 challenges pointing at PRM) in front of a
//! minimal MCP Streamable HTTP server that answers with `application/json`, at the revision
//! the config names (the 2026-07-28 request checks are in `modern`).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::modern;
use crate::authorization_server::errors::is_content_type;
use crate::config::{McpRevision, PrmMode};
use crate::counters::bump;
use crate::dpop::{
    RS_NONCE, access_token_hash, content_digest, proof_header, unix_now, verify_proof,
};
use crate::faults::{Endpoint, lock};
use crate::kit::Shared;

const PROTOCOL_VERSION: &str = "2025-11-25";
/// The revisions the legacy server accepts in `MCP-Protocol-Version`.
const LEGACY_VERSIONS: [&str; 3] = ["2025-11-25", "2025-06-18", "2025-03-26"];

/// Quoted-string escaping for auth-param values.
fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `Bearer` challenge with `error`, `error_description`, `scope` and `resource_metadata`
/// as applicable.
fn challenge(s: &Shared, error: Option<(&str, &str)>, scope: Option<&str>) -> String {
    let mut params = Vec::new();
    if let Some((code, description)) = error {
        params.push(format!("error={}", quote(code)));
        params.push(format!("error_description={}", quote(description)));
    }
    if let Some(scope) = scope {
        params.push(format!("scope={}", quote(scope)));
    }
    if s.config.prm == PrmMode::HeaderAndPath {
        params.push(format!("resource_metadata={}", quote(&s.urls.prm_path_url)));
    }
    if params.is_empty() {
        "Bearer".to_owned()
    } else {
        format!("Bearer {}", params.join(", "))
    }
}

fn with_challenge(status: StatusCode, value: String, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&value) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The token of an `Authorization: Bearer` or `DPoP` header, and whether the scheme was
/// `DPoP`; other schemes count as no token.
fn bearer_token(headers: &HeaderMap) -> Option<(&str, bool)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let dpop = scheme.eq_ignore_ascii_case("dpop");
    (dpop || scheme.eq_ignore_ascii_case("bearer")).then(|| (token.trim(), dpop))
}

/// A 401 with a `DPoP` challenge (RFC 9449 7.1) naming what failed.
fn dpop_refusal(s: &Shared, code: &str, description: &str) -> Response {
    let mut value = format!(
        "DPoP algs=\"ES256\", error={}, error_description={}",
        quote(code),
        quote(description)
    );
    if s.config.prm == PrmMode::HeaderAndPath {
        value.push_str(&format!(
            ", resource_metadata={}",
            quote(&s.urls.prm_path_url)
        ));
    }
    let mut response = with_challenge(
        StatusCode::UNAUTHORIZED,
        value,
        json!({"error": code, "error_description": description}),
    );
    if code == "use_dpop_nonce" {
        response
            .headers_mut()
            .insert("dpop-nonce", HeaderValue::from_static(RS_NONCE));
    }
    response
}

fn refused(s: &Shared, code: &str, description: &str) -> Box<Response> {
    Box::new(dpop_refusal(s, code, description))
}

/// RFC 9449 7 and the MCP profile for a request carrying `token`: a bound token needs the
/// `DPoP` scheme and a proof of its key over this request (`htm`, `htu`, `ath`,
/// `content_digest`, a fresh `jti`, the nonce in nonce mode); an unbound one must not use
/// the `DPoP` scheme.
fn check_dpop(
    s: &Shared,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    token: &str,
    dpop_scheme: bool,
) -> Result<(), Box<Response>> {
    let bound = lock(&s.dpop).bound.get(token).cloned();
    let Some(jkt) = bound else {
        if dpop_scheme {
            return Err(refused(s, "invalid_token", "the token is not DPoP-bound"));
        }
        if s.config.dpop_required {
            return Err(refused(
                s,
                "invalid_token",
                "this resource accepts DPoP-bound tokens only",
            ));
        }
        return Ok(());
    };
    if !dpop_scheme {
        return Err(refused(
            s,
            "invalid_token",
            "the token is DPoP-bound: present it with the DPoP scheme and a proof",
        ));
    }
    let proof = match proof_header(headers) {
        Ok(Some(proof)) => proof,
        Ok(None) => return Err(refused(s, "invalid_dpop_proof", "no DPoP proof")),
        Err(why) => return Err(refused(s, "invalid_dpop_proof", why)),
    };
    let verified = verify_proof(proof, method.as_str(), &s.urls.mcp_url, unix_now())
        .map_err(|why| refused(s, "invalid_dpop_proof", why))?;
    let claims = &verified.claims;
    if claims["ath"] != access_token_hash(token) {
        return Err(refused(
            s,
            "invalid_dpop_proof",
            "ath does not match the token",
        ));
    }
    if verified.jkt != jkt {
        return Err(refused(
            s,
            "invalid_dpop_proof",
            "the proof's key is not the token's",
        ));
    }
    if claims["content_digest"] != content_digest(body) {
        return Err(refused(
            s,
            "invalid_dpop_proof",
            "content_digest does not match the body",
        ));
    }
    if !lock(&s.dpop).fresh_jti(claims["jti"].as_str().unwrap_or_default()) {
        return Err(refused(
            s,
            "invalid_dpop_proof",
            "the proof's jti was used before",
        ));
    }
    if s.config.dpop_rs_nonce && claims["nonce"] != RS_NONCE {
        return Err(refused(
            s,
            "use_dpop_nonce",
            "the MCP server requires a DPoP nonce",
        ));
    }
    lock(&s.records).mcp_dpop_requests += 1;
    Ok(())
}

pub(crate) async fn mcp(
    State(s): State<Arc<Shared>>,
    conn: crate::mtls::Connection,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&s.counters.mcp);
    if let Some(fault) = s.faults.intercept(Endpoint::Mcp).await {
        return fault;
    }
    let Some((token, dpop_scheme)) = bearer_token(&headers) else {
        if let Some(code) = s.config.unauthenticated_status {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
            return (status, "this server refuses the request").into_response();
        }
        let value = challenge(&s, None, s.config.challenge_scope.as_deref());
        return with_challenge(
            StatusCode::UNAUTHORIZED,
            value,
            json!({"error": "unauthorized", "error_description": "a bearer token is required"}),
        );
    };
    let checked = lock(&s.store)
        .validate_access(token, &s.urls.resource)
        .map(|at| at.scopes.clone());
    let scopes = match checked {
        Ok(scopes) => {
            if let Err(why) = crate::mtls::check_binding(&s, token, &conn) {
                bump(&s.counters.bound_token_refusals);
                let value = challenge(
                    &s,
                    Some(("invalid_token", why)),
                    s.config.challenge_scope.as_deref(),
                );
                return with_challenge(
                    StatusCode::UNAUTHORIZED,
                    value,
                    json!({"error": "invalid_token", "error_description": why}),
                );
            }
            if let Err(refusal) = check_dpop(&s, &method, &headers, &body, token, dpop_scheme) {
                return *refusal;
            }
            scopes
        }
        Err(why) => {
            let value = challenge(
                &s,
                Some(("invalid_token", why)),
                s.config.challenge_scope.as_deref(),
            );
            return with_challenge(
                StatusCode::UNAUTHORIZED,
                value,
                json!({"error": "invalid_token", "error_description": why}),
            );
        }
    };
    if let Some(required) = &s.config.required_scope {
        let missing = required
            .split(' ')
            .filter(|r| !r.is_empty())
            .any(|r| !scopes.iter().any(|have| have == r));
        if missing {
            let description = "the access token lacks a required scope";
            let value = challenge(
                &s,
                Some(("insufficient_scope", description)),
                Some(required),
            );
            return with_challenge(
                StatusCode::FORBIDDEN,
                value,
                json!({"error": "insufficient_scope", "error_description": description}),
            );
        }
    }
    if method != Method::POST {
        // No server-initiated SSE stream and no sessions to delete.
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    json_rpc(&s, &headers, &body)
}

pub(super) fn rpc_error(id: Value, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

fn json_rpc(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    if !is_content_type(headers, "application/json") {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "MCP requests must be application/json",
        )
            .into_response();
    }
    let Ok(message) = serde_json::from_slice::<Value>(body) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(rpc_error(Value::Null, -32700, "Parse error")),
        )
            .into_response();
    };
    let Some(obj) = message.as_object() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(rpc_error(
                Value::Null,
                -32600,
                "Invalid Request: expected one JSON-RPC message",
            )),
        )
            .into_response();
    };
    let id = obj.get("id").cloned();
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return (
            StatusCode::BAD_REQUEST,
            Json(rpc_error(
                id.unwrap_or(Value::Null),
                -32600,
                "Invalid Request: jsonrpc must be \"2.0\"",
            )),
        )
            .into_response();
    }
    let method = obj.get("method").and_then(Value::as_str);
    match (method, id) {
        // Notifications and responses are accepted without a body.
        (Some(_), None) => StatusCode::ACCEPTED.into_response(),
        (None, _) if obj.contains_key("result") || obj.contains_key("error") => {
            StatusCode::ACCEPTED.into_response()
        }
        (None, id) => (
            StatusCode::BAD_REQUEST,
            Json(rpc_error(
                id.unwrap_or(Value::Null),
                -32600,
                "Invalid Request: method is missing",
            )),
        )
            .into_response(),
        (Some(method), Some(id)) => {
            let version = headers
                .get("mcp-protocol-version")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            {
                let mut records = lock(&s.records);
                if records.mcp_methods.len() < 10_000 {
                    records
                        .mcp_methods
                        .push((method.to_string(), version.clone()));
                }
            }
            if s.config.mcp_revision == McpRevision::Modern {
                return modern::answer(headers, method, id, obj.get("params"), dispatch);
            }
            if method != "initialize"
                && let Some(version) = version.filter(|v| !LEGACY_VERSIONS.contains(&v.as_str()))
            {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(rpc_error(
                        id,
                        -32000,
                        &format!("Bad Request: Unsupported protocol version: {version}"),
                    )),
                )
                    .into_response();
            }
            let reply = match dispatch(method, obj.get("params")) {
                Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
                Err((code, message)) => rpc_error(id, code, message),
            };
            Json(reply).into_response()
        }
    }
}

pub(super) type Dispatch = fn(&str, Option<&Value>) -> Result<Value, (i64, &'static str)>;

fn dispatch(method: &str, params: Option<&Value>) -> Result<Value, (i64, &'static str)> {
    match method {
        "initialize" => Ok(json!({
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "mcp-app-server-testkit", "version": env!("CARGO_PKG_VERSION")},
        })),
        "ping" => Ok(json!({})),
        "tools/list" => Ok(json!({"tools": [{
            "name": "test-tool",
            "description": "Answers \"ok\"",
            "inputSchema": {"type": "object", "properties": {}},
        }]})),
        "tools/call" => match params.and_then(|p| p.get("name")).and_then(Value::as_str) {
            Some("test-tool") => {
                Ok(json!({"content": [{"type": "text", "text": "ok"}], "isError": false}))
            }
            _ => Err((-32602, "Unknown tool")),
        },
        _ => Err((-32601, "Method not found")),
    }
}

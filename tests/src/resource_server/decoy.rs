//! A decoy authorization server on the MCP server's origin (`decoy_as_on_mcp_origin`):
//! metadata that is valid on its own, naming the MCP origin as issuer, with endpoints that
//! refuse and count every request. The PRM names the kit's real authorization server.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::counters::bump;
use crate::kit::Shared;

pub(crate) async fn metadata(State(s): State<Arc<Shared>>) -> Response {
    let issuer = s.urls.rs_origin.clone();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/decoy/authorize"),
        "token_endpoint": format!("{issuer}/decoy/token"),
        "registration_endpoint": format!("{issuer}/decoy/register"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "client_id_metadata_document_supported": true,
    }))
    .into_response()
}

pub(crate) async fn refuse(State(s): State<Arc<Shared>>) -> Response {
    bump(&s.counters.decoy);
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": "invalid_request", "error_description": "decoy"})),
    )
        .into_response()
}

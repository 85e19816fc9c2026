//! The MCP resource server: Protected Resource Metadata (RFC 9728), bearer token checks
//! with RFC 6750 challenges, and a minimal Streamable HTTP MCP server.

mod mcp;
mod modern;
mod prm;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get};

use crate::kit::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/mcp", any(mcp::mcp))
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(prm::path_form),
        )
        .route("/.well-known/oauth-protected-resource", get(prm::root_form))
        .with_state(shared)
}

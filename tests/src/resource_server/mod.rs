//! The MCP resource server: Protected Resource Metadata (RFC 9728), bearer token checks
//! with RFC 6750 challenges, and a minimal Streamable HTTP MCP server.

mod decoy;
mod mcp;
mod modern;
mod prm;

use std::sync::Arc;

use axum::Router;
use axum::routing::{any, get, post};

use crate::kit::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let mut router = Router::new()
        .route("/mcp", any(mcp::mcp))
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(prm::path_form),
        )
        .route("/.well-known/oauth-protected-resource", get(prm::root_form));
    if shared.config.decoy_as_on_mcp_origin {
        router = router
            .route(
                "/.well-known/oauth-authorization-server",
                get(decoy::metadata),
            )
            .route("/.well-known/openid-configuration", get(decoy::metadata))
            .route("/decoy/authorize", get(decoy::refuse))
            .route("/decoy/token", post(decoy::refuse))
            .route("/decoy/register", post(decoy::refuse));
    }
    router.with_state(shared)
}

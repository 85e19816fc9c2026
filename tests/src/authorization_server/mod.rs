//! The reference OAuth 2.1 authorization server: metadata (RFC 8414 / OIDC discovery),
//! authorization (PKCE, RFC 8707 `resource`, RFC 9207 `iss`), token, registration
//! (RFC 7591), Client ID Metadata Documents and revocation (RFC 7009).

pub(crate) mod authorize;
pub(crate) mod cimd;
mod client_auth;
pub(crate) mod device;
mod entra;
pub(crate) mod errors;
mod grants;
pub(crate) mod metadata;
mod registration;
mod revocation;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::kit::Shared;

/// Endpoints live under the issuer path (`/t1/token`); metadata at the RFC 8414 locations
/// for that issuer plus the OIDC path-appended one.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    let p = shared.urls.issuer_path.clone();
    let mut router = Router::new()
        .route(&format!("{p}/authorize"), get(authorize::authorize))
        .route(
            &format!("{p}/authorize/decision"),
            post(authorize::decision),
        )
        .route(&format!("{p}/token"), post(token::token_old))
        .route(&format!("{p}/register"), post(registration::register_old))
        .route(&format!("{p}/v2/token"), post(token::token))
        .route(&format!("{p}/v2/register"), post(registration::register))
        .route(&format!("{p}/revoke"), post(revocation::revoke))
        .route(
            &format!("{p}/device_authorization"),
            post(device::device_authorization),
        )
        .route(
            &format!("/.well-known/oauth-authorization-server{p}"),
            get(metadata::oauth_metadata),
        )
        .route(
            &format!("/.well-known/openid-configuration{p}"),
            get(metadata::openid_metadata),
        );
    if !p.is_empty() {
        router = router.route(
            &format!("{p}/.well-known/openid-configuration"),
            get(metadata::openid_metadata),
        );
    }
    if let Some(path) = &shared.config.metadata_path {
        router = router.route(path, get(metadata::custom_metadata));
    }
    router.with_state(shared)
}

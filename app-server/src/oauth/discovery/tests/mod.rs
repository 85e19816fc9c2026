//! Discovery against loopback test servers, one file a topic: the well-known URL tables and
//! merging ([`tables`]), the protected resource metadata ([`prm`]), the authorization
//! server metadata ([`metadata`]), the probe ([`probing`]), and the cache ([`cache`]).

mod cache;
mod hatches;
mod metadata;
mod mtls_aliases;
mod prm;
mod probing;
mod tables;

use super::*;
use crate::oauth::http::header_map;
use crate::oauth::test_server::{Recorded, TestServer, json, serve, status, with_headers};
use crate::oauth::www_authenticate::BearerChallenge;
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

pub(super) fn as_doc(base: &Url, issuer_path: &str) -> serde_json::Value {
    let issuer = format!("{}{}", base.as_str().trim_end_matches('/'), issuer_path);
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["read", "offline_access"],
    })
}

/// An MCP server at `/mcp` answering 401 with `challenge`; `prm` answers the PRM paths.
pub(super) async fn mcp_server<F>(challenge: Option<String>, prm: F) -> TestServer
where
    F: Fn(&Recorded, &Url) -> Option<Response> + Send + Sync + 'static,
{
    serve(move |req, base| {
        if req.path == "/mcp" {
            return match &challenge {
                Some(c) => with_headers(401, &[("www-authenticate", c.as_str())], ""),
                None => status(401),
            };
        }
        prm(req, base).unwrap_or_else(|| status(404))
    })
    .await
}

/// The issuer `as_doc(base, "")` publishes: the origin without a trailing `/`.
pub(super) fn issuer_of(base: &Url) -> String {
    base.as_str().trim_end_matches('/').to_string()
}

pub(super) fn prm_doc(resource: &Url, as_issuer: &str) -> serde_json::Value {
    json!({
        "resource": resource.as_str(),
        "authorization_servers": [as_issuer],
        "scopes_supported": ["read"],
    })
}

pub(super) async fn run(
    server: &TestServer,
    cache: &DiscoveryCache,
) -> Result<Discovery, DiscoveryError> {
    discover(
        &HttpClient::for_tests(),
        &server.url("/mcp"),
        &HeaderMap::new(),
        None,
        Overrides::NONE,
        cache,
    )
    .await
}

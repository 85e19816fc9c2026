//! Token endpoint tests against small local servers, one file a topic: what each grant
//! sends ([`grants`]), how answers and refusals are sorted ([`refusals`]), revocation
//! ([`revocation`]), DPoP proofs and the nonce retry ([`dpop_nonce`]).

mod dpop_nonce;
mod grants;
mod refusals;
mod revocation;

use super::*;
use crate::oauth::dpop;
use crate::oauth::test_server::{Recorded, TestServer, json, serve, status, with_headers};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mcp_app_server_protocol::RegistrationKind;
use serde_json::json;

pub(super) fn public() -> ClientRegistration {
    ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: "public-client".into(),
        client_secret: None,
        auth_method: TokenAuthMethod::None,
    }
}

pub(super) fn confidential(method: TokenAuthMethod) -> ClientRegistration {
    ClientRegistration {
        kind: RegistrationKind::Preregistered,
        client_id: "id:with space".into(),
        client_secret: Some("s3cret&+/".into()),
        auth_method: method,
    }
}

pub(super) fn tokens() -> Response {
    json(
        200,
        json!({
            "access_token": "at-1",
            "token_type": "bearer",
            "refresh_token": "rt-1",
            "expires_in": 3600,
            "scope": "read offline_access",
        }),
    )
}

pub(super) async fn token_server<F>(answer: F) -> TestServer
where
    F: Fn(&Recorded) -> Response + Send + Sync + 'static,
{
    serve(move |req, _| match req.path.as_str() {
        "/token" | "/revoke" => answer(req),
        _ => status(404),
    })
    .await
}

pub(super) async fn exchange(
    server: &TestServer,
    reg: &ClientRegistration,
) -> Result<TokenResponse, TokenError> {
    exchange_code(
        &HttpClient::for_tests(),
        &server.url("/token"),
        reg,
        "the-code",
        "the-verifier",
        &Url::parse("http://127.0.0.1:8765/callback/abc").unwrap(),
        "https://mcp.example.com/mcp",
        None,
    )
    .await
}

pub(super) fn form_of(req: &Recorded) -> std::collections::BTreeMap<String, String> {
    req.form().into_iter().collect()
}

//! The token endpoint: authorization code (PKCE, exact redirect URI, `resource`) and
//! refresh token grants (rotation with replay detection).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::client_auth::{authenticate, basic_client_id};
use super::errors::{OAuthError, is_content_type};
use crate::checks::{Form, is_valid_code_verifier, s256_challenge, split_scopes};
use crate::counters::bump;
use crate::faults::{Endpoint, lock};
use crate::kit::{Shared, TokenRequestRecord};
use crate::store::{Client, IssuedTokens};

/// The token endpoint at its first location: gone once the endpoints moved.
pub(crate) async fn token_old(s: State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if s.endpoints_moved.load(std::sync::atomic::Ordering::SeqCst) {
        return super::errors::not_found();
    }
    token(s, headers, body).await
}

pub(crate) async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    bump(match form.get("grant_type") {
        Some("authorization_code") => &s.counters.token_code,
        Some("refresh_token") => &s.counters.token_refresh,
        _ => &s.counters.token_other,
    });
    lock(&s.records).token_requests.push(TokenRequestRecord {
        form: form.to_map(),
        authorization_header: headers.contains_key(header::AUTHORIZATION),
        basic_client_id: basic_client_id(&headers),
    });
    if let Some(fault) = s.faults.intercept(Endpoint::Token).await {
        return fault;
    }
    match exchange(&s, &headers, &form) {
        Ok(issued) => token_response(&issued),
        Err(error) => {
            if error.code == "invalid_grant" {
                bump(&s.counters.invalid_grant);
            }
            error.into_response()
        }
    }
}

fn token_response(issued: &IssuedTokens) -> Response {
    let mut body = Map::new();
    body.insert("access_token".into(), json!(issued.access_token));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("expires_in".into(), json!(issued.expires_in));
    if let Some(refresh) = &issued.refresh_token {
        body.insert("refresh_token".into(), json!(refresh));
    }
    if !issued.scopes.is_empty() {
        body.insert("scope".into(), json!(issued.scopes.join(" ")));
    }
    let mut response = Json(Value::Object(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

fn exchange(s: &Shared, headers: &HeaderMap, form: &Form) -> Result<IssuedTokens, OAuthError> {
    if !is_content_type(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "token requests must be application/x-www-form-urlencoded",
        ));
    }
    if let Some(dup) = form.duplicate(&["resource"]) {
        return Err(OAuthError::invalid_request(format!(
            "parameter {dup} is repeated"
        )));
    }
    let client = authenticate(s, headers, form)
        .and_then(|client| {
            if s.config.reject_cimd_at_token && client.from_metadata_document {
                Err(OAuthError::invalid_client(
                    "this server no longer accepts this client metadata document",
                ))
            } else {
                Ok(client)
            }
        })
        .inspect_err(|_| {
            // Strict servers burn the code when client authentication fails.
            if form.get("grant_type") == Some("authorization_code")
                && let Some(code) = form.get("code")
            {
                lock(&s.store).burn_code(code);
            }
        })?;
    match form.get_nonempty("grant_type") {
        Some("authorization_code") => code_grant(s, &client, form),
        Some("refresh_token") => refresh_grant(s, &client, form),
        None => Err(OAuthError::invalid_request("grant_type is missing")),
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "only authorization_code and refresh_token are supported",
        )),
    }
}

/// The single `resource` of a token request, which must equal `expected`.
fn check_resource(form: &Form, expected: &str) -> Result<(), OAuthError> {
    match form.all("resource").as_slice() {
        [] => Err(OAuthError::invalid_target(
            "resource is required (RFC 8707)",
        )),
        [one] if *one == expected => Ok(()),
        [_] => Err(OAuthError::invalid_target(
            "resource differs from the one the grant was issued for",
        )),
        _ => Err(OAuthError::invalid_target(
            "exactly one resource is expected",
        )),
    }
}

fn code_grant(s: &Shared, client: &Client, form: &Form) -> Result<IssuedTokens, OAuthError> {
    let code = form
        .get_nonempty("code")
        .ok_or_else(|| OAuthError::invalid_request("code is missing"))?;
    let mut store = lock(&s.store);
    let grant = store
        .take_code(code)
        .map_err(|refused| OAuthError::invalid_grant(refused.0))?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "code was issued to another client",
        ));
    }
    match form.get("redirect_uri") {
        None => return Err(OAuthError::invalid_request("redirect_uri is missing")),
        Some(uri) if uri != grant.redirect_uri => {
            return Err(OAuthError::invalid_grant(
                "redirect_uri differs from the one in the authorization request",
            ));
        }
        Some(_) => {}
    }
    let verifier = form
        .get_nonempty("code_verifier")
        .ok_or_else(|| OAuthError::invalid_grant("code_verifier is missing"))?;
    if !is_valid_code_verifier(verifier) {
        return Err(OAuthError::invalid_grant("code_verifier is malformed"));
    }
    if s256_challenge(verifier) != grant.code_challenge {
        return Err(OAuthError::invalid_grant("PKCE verification failed"));
    }
    check_resource(form, &grant.resource)?;
    Ok(store.issue_for_code(&grant, s.token_policy()))
}

fn refresh_grant(s: &Shared, client: &Client, form: &Form) -> Result<IssuedTokens, OAuthError> {
    let token = form
        .get_nonempty("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let mut store = lock(&s.store);
    let rt = store
        .check_refresh(token, &client.client_id)
        .map_err(|refused| OAuthError::invalid_grant(refused.0))?;
    check_resource(form, &rt.resource)?;
    let scopes = match form.get_nonempty("scope") {
        None => rt.scopes.clone(),
        Some(scope) => {
            let requested = split_scopes(scope);
            if requested.iter().any(|sc| !rt.scopes.contains(sc)) {
                return Err(OAuthError::new(
                    "invalid_scope",
                    "a refresh cannot add scopes the grant does not have",
                ));
            }
            requested
        }
    };
    Ok(store.issue_for_refresh(token, &rt, scopes, s.token_policy()))
}

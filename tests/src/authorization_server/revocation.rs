//! Token revocation (RFC 7009).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::client_auth::authenticate;
use super::errors::{OAuthError, is_content_type, not_found};
use crate::checks::Form;
use crate::counters::bump;
use crate::faults::{Endpoint, lock};
use crate::kit::Shared;
use crate::mtls::Connection;

pub(crate) async fn revoke(
    State(s): State<Arc<Shared>>,
    conn: Connection,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&s.counters.revoke);
    if let Some(fault) = s.faults.intercept(Endpoint::Revoke).await {
        return fault;
    }
    if !s.config.revocation {
        return not_found();
    }
    match revoke_token(&s, &headers, &Form::parse(&body), &conn) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    }
}

fn revoke_token(
    s: &Shared,
    headers: &HeaderMap,
    form: &Form,
    conn: &Connection,
) -> Result<(), OAuthError> {
    if !is_content_type(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "revocation requests must be application/x-www-form-urlencoded",
        ));
    }
    if s.config.revocation_requires_client_secret_field && form.get("client_secret").is_none() {
        return Err(OAuthError::invalid_request("client_secret: Field required"));
    }
    let client = authenticate(s, headers, form, conn)?;
    let token = form
        .get_nonempty("token")
        .ok_or_else(|| OAuthError::invalid_request("token is missing"))?;
    // token_type_hint only speeds up the lookup (RFC 7009 2.1); both tables are searched.
    let revoked = lock(&s.store)
        .revoke(token, &client.client_id)
        .map_err(|()| {
            OAuthError::new(
                "unauthorized_client",
                "the token was issued to another client",
            )
        })?;
    if revoked {
        lock(&s.records).revoked.push(token.to_owned());
    }
    Ok(())
}

//! Client authentication at the token, revocation and device authorization endpoints
//! (RFC 6749 2.3, RFC 8705 2), as strict servers do it: exactly one method, and the one the
//! client registered.

use axum::http::{HeaderMap, header};

use super::errors::OAuthError;
use crate::checks::{Form, decode_basic};
use crate::faults::lock;
use crate::kit::Shared;
use crate::mtls::{Connection, check_client_certificate};
use crate::store::{AuthMethod, Client};

/// The client id an `Authorization: Basic` header names, if any.
pub(crate) fn basic_client_id(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    decode_basic(value).map(|(id, _)| id)
}

/// The client a request authenticates; `conn`: what its connection presented (for the
/// RFC 8705 methods).
pub(crate) fn authenticate(
    s: &Shared,
    headers: &HeaderMap,
    form: &Form,
    conn: &Connection,
) -> Result<Client, OAuthError> {
    let body_id = form.get_nonempty("client_id");
    let body_secret = form.get_nonempty("client_secret");
    let lookup = |id: &str| lock(&s.store).clients.get(id).cloned();

    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        if headers.contains_key(header::AUTHORIZATION) || body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "client used more than one authentication method (a client assertion and a secret)",
            ));
        }
        return super::grants::authenticate_assertion(s, form);
    }

    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let (id, secret) = value.to_str().ok().and_then(decode_basic).ok_or_else(|| {
            OAuthError::invalid_client("Authorization header is not HTTP Basic client credentials")
        })?;
        if body_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "client used more than one authentication method (Authorization header and client_secret)",
            ));
        }
        if body_id.is_some_and(|b| b != id) {
            return Err(OAuthError::invalid_client(
                "client_id in the body differs from the one in the Authorization header",
            ));
        }
        let client = lookup(&id).ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        return match client.auth_method {
            AuthMethod::None => Err(OAuthError::invalid_client(
                "a public client (token_endpoint_auth_method none) must not send an Authorization header; send client_id in the body",
            )),
            AuthMethod::ClientSecretPost => Err(OAuthError::invalid_client(
                "client is registered for client_secret_post, not client_secret_basic",
            )),
            AuthMethod::ClientSecretBasic if client.secret.as_deref() == Some(secret.as_str()) => {
                Ok(client)
            }
            AuthMethod::ClientSecretBasic => {
                Err(OAuthError::invalid_client("client authentication failed"))
            }
            AuthMethod::PrivateKeyJwt => Err(OAuthError::invalid_client(
                "client is registered for private_key_jwt; send a client assertion",
            )),
            AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
                Err(OAuthError::invalid_client(
                    "client authenticates with its TLS client certificate (RFC 8705): send client_id in the body and no Authorization header",
                ))
            }
        };
    }

    let id = body_id.ok_or_else(|| {
        OAuthError::invalid_client("client_id is missing and no client authentication was sent")
    })?;
    let client = lookup(id).ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    match client.auth_method {
        AuthMethod::None if body_secret.is_some() => Err(OAuthError::invalid_client(
            "a public client must not send a client_secret",
        )),
        AuthMethod::None => Ok(client),
        AuthMethod::ClientSecretPost
            if body_secret.is_some() && client.secret.as_deref() == body_secret =>
        {
            Ok(client)
        }
        AuthMethod::ClientSecretPost => {
            Err(OAuthError::invalid_client("client authentication failed"))
        }
        AuthMethod::ClientSecretBasic => Err(OAuthError::invalid_client(
            "client is registered for client_secret_basic; authenticate with the Authorization header",
        )),
        AuthMethod::PrivateKeyJwt => Err(OAuthError::invalid_client(
            "client is registered for private_key_jwt; send a client assertion",
        )),
        AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
            if body_secret.is_some() =>
        {
            Err(OAuthError::invalid_client(
                "client authenticates with its TLS client certificate (RFC 8705) and must not send a client_secret",
            ))
        }
        AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth => {
            check_client_certificate(s, &client, conn).map_err(OAuthError::invalid_client)?;
            Ok(client)
        }
    }
}

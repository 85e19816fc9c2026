//! Revocation (rule 21, RFC 7009) with the client authentication of the token endpoint.

use reqwest::header::{AUTHORIZATION, HeaderMap};
use url::Url;

use super::error::TokenError;
use super::form::basic_authorization;
use super::refusal::{from_http, refusal};
use crate::oauth::http::HttpClient;
use crate::oauth::registration::{ClientRegistration, TokenAuthMethod};

/// Which token [`revoke`] revokes (RFC 7009 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// RFC 7009 revocation with the same client authentication as the token endpoint. Any 2xx
/// is success (RFC 7009 says 200, also for tokens the server does not know; some servers
/// answer 204).
///
/// A public client sends only `client_id` (RFC 7009 §5). Servers built on the MCP Python SDK
/// (and FastMCP, which uses its handlers) require the `client_secret` field to be present
/// anyway and refuse with `invalid_request` naming `client_secret`; for that refusal the
/// request is sent once more with an empty `client_secret`, which those servers accept for a
/// public client and which authenticates nothing anywhere else.
pub async fn revoke(
    http: &HttpClient,
    revocation_endpoint: &Url,
    registration: &ClientRegistration,
    token: &str,
    hint: Option<TokenTypeHint>,
) -> Result<(), TokenError> {
    let mut form: Vec<(&str, &str)> = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint.as_str()));
    }
    let mut headers = HeaderMap::new();
    let public = match (registration.auth_method, registration.secret_to_send()) {
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => {
            headers.insert(
                AUTHORIZATION,
                basic_authorization(&registration.client_id, secret),
            );
            false
        }
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => {
            form.push(("client_id", &registration.client_id));
            form.push(("client_secret", secret));
            false
        }
        _ => {
            form.push(("client_id", &registration.client_id));
            true
        }
    };
    match send_revocation(http, revocation_endpoint, &form, &headers).await {
        Err(e) if public && refused_for_missing_secret(&e) => {
            tracing::debug!(
                endpoint = %revocation_endpoint,
                "revocation refused without a client_secret field; retrying with an empty one"
            );
            form.push(("client_secret", ""));
            send_revocation(http, revocation_endpoint, &form, &headers).await
        }
        other => other,
    }
}

/// The refusal of a server that wants a `client_secret` field even from a public client:
/// `invalid_request` whose description names `client_secret` (the MCP Python SDK answers
/// `client_secret: Field required`).
fn refused_for_missing_secret(error: &TokenError) -> bool {
    matches!(
        error,
        TokenError::OAuth { error, description: Some(description), .. }
            if error == "invalid_request" && description.contains("client_secret")
    )
}

async fn send_revocation(
    http: &HttpClient,
    revocation_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<(), TokenError> {
    let endpoint = revocation_endpoint.to_string();
    let response = http
        .post_form(revocation_endpoint, form, headers)
        .await
        .map_err(|e| from_http(&endpoint, e))?;
    let status = response.status;
    if status.is_success() {
        return Ok(());
    }
    Err(refusal(endpoint, &response))
}

//! The token endpoint (rules 18, 20) and revocation (rule 21, RFC 7009).
//!
//! Code exchange and refresh go through the oauth2 crate over our bounded [`HttpClient`];
//! `resource` (RFC 8707) is sent on every request. Public clients put `client_id` in the form
//! body and never send a Basic header: strict servers burn the one-time code otherwise.
//!
//! Every grant takes an optional [`TokenDpop`]: the request then carries a DPoP proof
//! (RFC 9449 5) and, when the server answers `use_dpop_nonce` with a `DPoP-Nonce`, is sent
//! once more with a proof holding that nonce ([`with_dpop`]).

//!
//! One seam per file: the DPoP proof and nonce retry ([`dpop_retry`]), the form POST of the
//! grants oauth2 has no builder for ([`form`]), revocation ([`revocation`]), the sorting of
//! refusals into [`TokenError`] ([`refusal`]), and the lenient parser of success answers
//! ([`response`]).

use std::borrow::Cow;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
};
use oauth2::{
    AuthType, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, StandardRevocableToken, TokenUrl,
};
use reqwest::header::HeaderMap;
use url::Url;

use super::dpop::TokenDpop;
use super::http::HttpClient;
use super::registration::{ClientRegistration, TokenAuthMethod};

pub mod binding;
mod dpop_retry;
mod error;
mod form;
mod refusal;
mod response;
mod revocation;

use dpop_retry::with_dpop;
pub use error::TokenError;
use form::post_token_form;
pub use form::{basic_auth_header, request_token_body};
use refusal::classify;
pub use response::{MAX_EXPIRES_IN, TokenResponse};
use response::{WireTokenResponse, convert};
pub use revocation::{TokenTypeHint, revoke};

/// The oauth2 client with our lenient success-answer parser ([`response`]).
type TokenClient = Client<
    BasicErrorResponse,
    WireTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn token_client(registration: &ClientRegistration, token_endpoint: &Url) -> TokenClient {
    let client: TokenClient = Client::new(ClientId::new(registration.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(token_endpoint.clone()));
    match (registration.auth_method, registration.secret_to_send()) {
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => client
            .set_client_secret(ClientSecret::new(secret.to_string()))
            .set_auth_type(AuthType::BasicAuth),
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => client
            .set_client_secret(ClientSecret::new(secret.to_string()))
            .set_auth_type(AuthType::RequestBody),
        // Public client (or a secret method without a secret): client_id in the body only.
        _ => client.set_auth_type(AuthType::RequestBody),
    }
}

/// Exchanges an authorization code (rule 18): `grant_type=authorization_code`, `code`,
/// `redirect_uri`, `code_verifier`, client authentication or `client_id`, and `resource`.
// Each argument is one field of RFC 6749 4.1.3 or the request's context.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_code(
    http: &HttpClient,
    token_endpoint: &Url,
    registration: &ClientRegistration,
    code: &str,
    pkce_verifier: &str,
    redirect_uri: &Url,
    resource: &str,
    dpop: Option<TokenDpop<'_>>,
) -> Result<TokenResponse, TokenError> {
    let client = token_client(registration, token_endpoint);
    with_dpop(dpop, token_endpoint, |headers| async {
        let adapter = http.oauth2_adapter_with(headers);
        let result = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
            .add_extra_param("resource", resource.to_string())
            .request_async(&adapter)
            .await;
        let result = result
            .map(convert)
            .map_err(|e| classify(token_endpoint, adapter.last_status(), e));
        (result, adapter.last_nonce())
    })
    .await
}

/// Refreshes (rule 20) with the same `resource`. `scopes` narrows the request; `None` asks
/// for what was granted. When the server sends no new refresh token, the old one is returned
/// in the response so callers keep it.
pub async fn refresh(
    http: &HttpClient,
    token_endpoint: &Url,
    registration: &ClientRegistration,
    refresh_token: &str,
    resource: &str,
    scopes: Option<&[String]>,
    dpop: Option<TokenDpop<'_>>,
) -> Result<TokenResponse, TokenError> {
    let client = token_client(registration, token_endpoint);
    let token = RefreshToken::new(refresh_token.to_string());
    let scopes: Vec<Scope> = scopes
        .unwrap_or_default()
        .iter()
        .map(|s| Scope::new(s.clone()))
        .collect();
    let mut response = with_dpop(dpop, token_endpoint, |headers| async {
        let adapter = http.oauth2_adapter_with(headers);
        let result = client
            .exchange_refresh_token(&token)
            .add_scopes(scopes.clone())
            .add_extra_param("resource", resource.to_string())
            .request_async(&adapter)
            .await;
        let result = result
            .map(convert)
            .map_err(|e| classify(token_endpoint, adapter.last_status(), e));
        (result, adapter.last_nonce())
    })
    .await?;
    if response.refresh_token.is_none() {
        response.refresh_token = Some(refresh_token.to_string());
    }
    Ok(response)
}

/// A token request of any grant that oauth2's client has no builder for (client
/// credentials with `private_key_jwt`, the JWT bearer grant): `form` is the whole body and
/// `headers` carries any client authentication. The answer goes through the same parser and
/// error classification as code exchange and refresh. Redirects are not followed.
pub async fn request_token(
    http: &HttpClient,
    token_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<TokenResponse, TokenError> {
    request_token_dpop(http, token_endpoint, form, headers, None).await
}

/// [`request_token`] with a DPoP proof when `dpop` is given (and the nonce retry).
pub async fn request_token_dpop(
    http: &HttpClient,
    token_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
    dpop: Option<TokenDpop<'_>>,
) -> Result<TokenResponse, TokenError> {
    with_dpop(dpop, token_endpoint, |proof| async move {
        let mut headers = headers.clone();
        headers.extend(proof);
        match post_token_form(http, token_endpoint, form, &headers).await {
            Ok((result, nonce)) => (result, nonce),
            Err(e) => (Err(e), None),
        }
    })
    .await
}

#[cfg(test)]
mod tests;

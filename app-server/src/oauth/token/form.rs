//! The token request as a plain form POST, for the grants oauth2's client has no builder
//! for and for callers that read more of the answer than [`TokenResponse`] holds; and the
//! `client_secret_basic` header.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use super::error::TokenError;
use super::refusal::{from_http, refusal};
use super::response::{TokenResponse, parse_token_response};
use crate::oauth::dpop;
use crate::oauth::http::{HttpClient, HttpResponse};

/// One form POST to the token endpoint: the outcome and the `DPoP-Nonce` the server sent.
pub(super) async fn post_token_form(
    http: &HttpClient,
    token_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<(Result<TokenResponse, TokenError>, Option<String>), TokenError> {
    let endpoint = token_endpoint.to_string();
    let response = http
        .post_form(token_endpoint, form, headers)
        .await
        .map_err(|e| from_http(&endpoint, e))?;
    let nonce = response
        .headers
        .get(dpop::NONCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((token_form_outcome(endpoint, &response), nonce))
}

fn token_form_outcome(
    endpoint: String,
    response: &HttpResponse,
) -> Result<TokenResponse, TokenError> {
    let status = response.status;
    let body = token_body_outcome(endpoint.clone(), response)?;
    parse_token_response(body).map_err(|e| TokenError::Invalid {
        endpoint,
        reason: format!("HTTP {}: {e}", status.as_u16()),
    })
}

/// [`request_token`](super::request_token) for a caller that reads more of the success answer than
/// [`TokenResponse`] holds (an OpenID Connect `id_token`, a token exchange's
/// `issued_token_type`): the body of the 2xx answer, refusals classified as usual. The body
/// holds secrets; it is never logged.
pub async fn request_token_body(
    http: &HttpClient,
    token_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<Vec<u8>, TokenError> {
    let endpoint = token_endpoint.to_string();
    let response = http
        .post_form(token_endpoint, form, headers)
        .await
        .map_err(|e| from_http(&endpoint, e))?;
    token_body_outcome(endpoint, &response).map(<[u8]>::to_vec)
}

/// The body of a 2xx answer; a redirect or a refusal as a [`TokenError`].
fn token_body_outcome(endpoint: String, response: &HttpResponse) -> Result<&[u8], TokenError> {
    let status = response.status;
    if status.is_success() {
        return Ok(&response.body);
    }
    if status.is_redirection() {
        return Err(TokenError::Invalid {
            endpoint,
            reason: format!(
                "HTTP {}: token requests do not follow redirects",
                status.as_u16()
            ),
        });
    }
    Err(refusal(endpoint, response))
}

/// The `Authorization: Basic` header of `client_secret_basic`.
pub fn basic_auth_header(client_id: &str, secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, basic_authorization(client_id, secret));
    headers
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
pub(super) fn basic_authorization(client_id: &str, secret: &str) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

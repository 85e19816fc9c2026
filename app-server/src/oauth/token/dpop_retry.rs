//! DPoP at the token endpoint (RFC 9449 5, 8): the proof on every token request of a
//! key-bound grant, and the one retry with the nonce a `use_dpop_nonce` refusal names.

use reqwest::header::{HeaderMap, HeaderValue};
use url::Url;

use super::error::TokenError;
use super::response::TokenResponse;
use crate::oauth::dpop::{self, ProofRequest, TokenDpop, USE_DPOP_NONCE};
use crate::oauth::jose::JoseError;

/// Sends `send` with a `DPoP` header when `dpop` is given: with the server's last nonce,
/// and once more with the nonce of a `use_dpop_nonce` refusal (RFC 9449 8). Any nonce the
/// server sends, on success or refusal, is remembered for the next request.
pub(super) async fn with_dpop<F, Fut>(
    dpop: Option<TokenDpop<'_>>,
    token_endpoint: &Url,
    mut send: F,
) -> Result<TokenResponse, TokenError>
where
    F: FnMut(HeaderMap) -> Fut,
    Fut: std::future::Future<Output = (Result<TokenResponse, TokenError>, Option<String>)>,
{
    let Some(dpop) = dpop else {
        return send(HeaderMap::new()).await.0;
    };
    let mut nonce = dpop.nonces.get(dpop.slot);
    let mut retried = false;
    loop {
        let headers = proof_header(dpop, token_endpoint, nonce.as_deref())?;
        let (result, answered_nonce) = send(headers).await;
        if let Some(n) = &answered_nonce {
            dpop.nonces.set(dpop.slot, n);
        }
        match result {
            Err(e)
                if !retried
                    && e.oauth_error() == Some(USE_DPOP_NONCE)
                    && answered_nonce.is_some()
                    && answered_nonce != nonce =>
            {
                tracing::debug!(endpoint = %token_endpoint, "the authorization server asked for a DPoP nonce; sending the request again with it");
                retried = true;
                nonce = answered_nonce;
            }
            other => {
                return other.map(|mut tokens| {
                    tokens.token_type = normalize_token_type(&tokens.token_type);
                    tokens
                });
            }
        }
    }
}

/// The `DPoP` header for a token request: no `ath` (no access token yet) and no
/// `content_digest` (the MCP profile leaves it out at the token endpoint).
fn proof_header(
    dpop: TokenDpop<'_>,
    token_endpoint: &Url,
    nonce: Option<&str>,
) -> Result<HeaderMap, TokenError> {
    let signing_failed = |e: JoseError| TokenError::Invalid {
        endpoint: token_endpoint.to_string(),
        reason: format!("the DPoP proof could not be made ({e})"),
    };
    let proof = dpop::proof(
        dpop.key,
        ProofRequest {
            method: "POST",
            url: token_endpoint,
            access_token: None,
            nonce,
            body: None,
        },
        crate::clock::unix_now(),
    )
    .map_err(signing_failed)?;
    let mut value = HeaderValue::from_str(&proof).map_err(|_| TokenError::Invalid {
        endpoint: token_endpoint.to_string(),
        reason: "the DPoP proof is not a valid header value".into(),
    })?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert("dpop", value);
    Ok(headers)
}

/// `DPoP` in any case is `DPoP` (RFC 9449 5: the type is case-insensitive).
fn normalize_token_type(token_type: &str) -> String {
    if token_type.eq_ignore_ascii_case("dpop") {
        "DPoP".to_string()
    } else {
        token_type.to_string()
    }
}

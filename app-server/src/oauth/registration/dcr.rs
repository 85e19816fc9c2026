//! Dynamic Client Registration (RFC 7591, rule 12): register a public native client for one
//! redirect URI.

use mcp_app_server_protocol::RegistrationKind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::oauth::bounds::{MAX_NAME_BYTES, MAX_URL_BYTES};
use url::Url;

use super::client::{ClientRegistration, TokenAuthMethod};
use super::error::RegistrationError;
use super::mutual_tls::{MUTUAL_TLS_MEMBERS, RegistrationAuth};
use super::preregistered::choose_auth_method;
use crate::oauth::http::HttpClient;

/// The RFC 7591 registration request body (rule 12).
pub fn registration_request(
    redirect_uri: &Url,
    client_name: &str,
    scopes: Option<&[String]>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "client_name": client_name,
        "redirect_uris": [redirect_uri.as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    if let (Some(scopes), Some(map)) = (scopes.filter(|s| !s.is_empty()), body.as_object_mut()) {
        map.insert("scope".into(), scopes.join(" ").into());
    }
    body
}

/// The `grant_type` of the device authorization grant (RFC 8628 3.4).
const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Where a device login's DCR registration is kept in the store, in place of a redirect URI
/// (it has none): one per issuer, shared by every device login there.
pub const DEVICE_REGISTRATION_KEY: &str = DEVICE_CODE_GRANT;

/// The RFC 7591 registration request of a client for the device authorization grant
/// (RFC 8628): no redirect URI and no response type, since the user never comes back to the
/// client; a public native client like the browser login's (rule 75).
pub fn device_registration_request(
    client_name: &str,
    scopes: Option<&[String]>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "client_name": client_name,
        "grant_types": [DEVICE_CODE_GRANT, "refresh_token"],
        "response_types": [],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    if let (Some(scopes), Some(map)) = (scopes.filter(|s| !s.is_empty()), body.as_object_mut()) {
        map.insert("scope".into(), scopes.join(" ").into());
    }
    body
}

/// SEP-837, pure: the registration request to send once more after a refusal, or `None`
/// when nothing this client may change would help. Only `invalid_client_metadata` and
/// `invalid_redirect_uri` are answered; the field the `error_description` names decides:
/// - `application_type`: sent without it (servers that do not know the field, or insist on
///   their default; `native` stays right for a loopback redirect, so no other value is
///   tried);
/// - `grant_types` / `refresh_token`: the grant types without `refresh_token` (no refresh
///   token is assumed anyway, SEP-2207);
/// - `scope`, or an `invalid_client_metadata` naming none of these: sent without `scope`,
///   which is optional (RFC 7591 §2) and which some servers (oidc-provider) accept only
///   from their own `scopes_supported` while still granting the resource's scopes at
///   authorization.
///
/// The redirect URI is never changed (rule 16: servers compare it exactly).
pub fn adjusted_request(
    body: &serde_json::Value,
    error: Option<&str>,
    description: Option<&str>,
) -> Option<serde_json::Value> {
    if !matches!(
        error,
        Some("invalid_client_metadata" | "invalid_redirect_uri")
    ) {
        return None;
    }
    let description = description.unwrap_or_default().to_ascii_lowercase();
    // A server that refuses the certificate members (RFC 8705) gets a public client's
    // request: the certificate still goes on every connection that asks for one.
    let mutual_tls = body
        .get("token_endpoint_auth_method")
        .and_then(serde_json::Value::as_str)
        .and_then(TokenAuthMethod::from_name)
        .is_some_and(TokenAuthMethod::is_mutual_tls);
    let names_mutual_tls = [
        "tls",
        "jwks",
        "x5c",
        "certificate",
        "subject_dn",
        "auth_method",
    ]
    .iter()
    .any(|word| description.contains(word));
    let names_other = ["application_type", "grant_type", "refresh_token", "scope"]
        .iter()
        .any(|word| description.contains(word));
    if mutual_tls
        && (names_mutual_tls || (!names_other && error == Some("invalid_client_metadata")))
    {
        let mut public = body.clone();
        let map = public.as_object_mut()?;
        for member in MUTUAL_TLS_MEMBERS {
            map.remove(member);
        }
        map.insert("token_endpoint_auth_method".into(), "none".into());
        return Some(public);
    }
    let names_application_type = description.contains("application_type");
    let names_grant_types =
        description.contains("grant_type") || description.contains("refresh_token");
    let names_scope = description.contains("scope");
    let mut adjusted = body.clone();
    let map = adjusted.as_object_mut()?;
    if names_application_type {
        map.remove("application_type");
    }
    if names_grant_types && let Some(serde_json::Value::Array(grants)) = map.get_mut("grant_types")
    {
        grants.retain(|g| g != "refresh_token");
    }
    let names_nothing_known = !names_application_type && !names_grant_types;
    if names_scope || (names_nothing_known && error == Some("invalid_client_metadata")) {
        map.remove("scope");
    }
    (adjusted != *body).then_some(adjusted)
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

/// `client_secret_expires_at` of a registration response (0: the secret never expires).
#[derive(Deserialize)]
struct SecretExpiry {
    #[serde(default)]
    client_secret_expires_at: Option<serde_json::Value>,
}

/// When the client secret of a registration response expires, unix seconds; `None` when
/// it never does or the server did not say.
pub fn secret_expires_at(body: &[u8]) -> Option<i64> {
    let parsed: SecretExpiry = serde_json::from_slice(body).ok()?;
    parsed
        .client_secret_expires_at?
        .as_i64()
        .filter(|at| *at > 0)
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Registers at `registration_endpoint` (no redirects followed). `advertised_auth_methods` is
/// the server's `token_endpoint_auth_methods_supported`, used when the server hands out a
/// secret without saying how to use it.
#[cfg(test)]
pub async fn register(
    http: &HttpClient,
    registration_endpoint: &Url,
    redirect_uri: &Url,
    client_name: &str,
    scopes: Option<&[String]>,
    advertised_auth_methods: Option<&[String]>,
) -> Result<ClientRegistration, RegistrationError> {
    register_client(
        http,
        registration_endpoint,
        redirect_uri,
        client_name,
        scopes,
        advertised_auth_methods,
        &RegistrationAuth::public(),
    )
    .await
    .map(|(registration, _)| registration)
}

/// [`register`], with when the client secret expires ([`secret_expires_at`]); `auth` says
/// how the client authenticates ([`super::mutual_tls::registration_auth`]).
pub async fn register_client(
    http: &HttpClient,
    registration_endpoint: &Url,
    redirect_uri: &Url,
    client_name: &str,
    scopes: Option<&[String]>,
    advertised_auth_methods: Option<&[String]>,
    auth: &RegistrationAuth,
) -> Result<(ClientRegistration, Option<i64>), RegistrationError> {
    let mut body = registration_request(redirect_uri, client_name, scopes);
    auth.apply(&mut body);
    register_body(http, registration_endpoint, body, advertised_auth_methods).await
}

/// [`register_client`] for the device authorization grant ([`device_registration_request`]).
pub async fn register_device_client(
    http: &HttpClient,
    registration_endpoint: &Url,
    client_name: &str,
    scopes: Option<&[String]>,
    advertised_auth_methods: Option<&[String]>,
    auth: &RegistrationAuth,
) -> Result<(ClientRegistration, Option<i64>), RegistrationError> {
    let mut body = device_registration_request(client_name, scopes);
    auth.apply(&mut body);
    register_body(http, registration_endpoint, body, advertised_auth_methods).await
}

/// Sends one registration request (and its SEP-837 retry) and reads the answer.
async fn register_body(
    http: &HttpClient,
    registration_endpoint: &Url,
    body: serde_json::Value,
    advertised_auth_methods: Option<&[String]>,
) -> Result<(ClientRegistration, Option<i64>), RegistrationError> {
    let mut response = http
        .post_json(registration_endpoint, &body, &HeaderMap::new())
        .await?;
    let url = registration_endpoint.to_string();
    let mut parsed = None;
    if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
        parsed = response.json::<ErrorResponse>().ok();
        // SEP-837: a refusal is retried once, with the metadata adjusted as the error asks,
        // when some adjustment can help; the second answer is final.
        let adjusted = parsed.as_ref().and_then(|p| {
            adjusted_request(&body, p.error.as_deref(), p.error_description.as_deref())
        });
        if let Some(adjusted) = adjusted {
            tracing::debug!(
                endpoint = %registration_endpoint,
                "client registration refused; registering once more with adjusted metadata"
            );
            response = http
                .post_json(registration_endpoint, &adjusted, &HeaderMap::new())
                .await?;
            parsed = None;
        }
    }
    if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
        let parsed = parsed.or_else(|| response.json::<ErrorResponse>().ok());
        return Err(RegistrationError::Rejected {
            url,
            status: response.status.as_u16(),
            error: parsed.as_ref().and_then(|p| p.error.clone()),
            description: parsed.and_then(|p| p.error_description),
        });
    }
    let registration = parse_registration_response(&url, &response.body, advertised_auth_methods)?;
    Ok((registration, secret_expires_at(&response.body)))
}

/// Reads a successful registration response into a [`ClientRegistration`].
pub fn parse_registration_response(
    url: &str,
    body: &[u8],
    advertised_auth_methods: Option<&[String]>,
) -> Result<ClientRegistration, RegistrationError> {
    let parsed: RegistrationResponse =
        serde_json::from_slice(body).map_err(|e| RegistrationError::InvalidResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if parsed.client_id.is_empty() {
        return Err(RegistrationError::InvalidResponse {
            url: url.to_string(),
            reason: "empty client_id".to_string(),
        });
    }
    // Both are stored and sent with every token request: bounded like a URL.
    for (field, value) in [
        ("client_id", Some(&parsed.client_id)),
        ("client_secret", parsed.client_secret.as_ref()),
    ] {
        if value.is_some_and(|v| v.len() > MAX_URL_BYTES) {
            return Err(RegistrationError::InvalidResponse {
                url: url.to_string(),
                reason: format!("`{field}` is longer than {MAX_URL_BYTES} bytes"),
            });
        }
    }
    let secret = parsed.client_secret.filter(|s| !s.is_empty());
    let auth_method = match parsed.token_endpoint_auth_method.as_deref() {
        Some(name) => match TokenAuthMethod::from_name(name) {
            Some(TokenAuthMethod::None) => TokenAuthMethod::None,
            // The certificate authenticates: no secret is needed.
            Some(method) if method.is_mutual_tls() => method,
            Some(method) if secret.is_some() => method,
            // A secret method without a secret: all we can do is act as a public client.
            Some(_) => TokenAuthMethod::None,
            None => {
                return Err(RegistrationError::UnsupportedAuthMethods {
                    advertised: name.chars().take(MAX_NAME_BYTES).collect(),
                });
            }
        },
        None => choose_auth_method(secret.is_some(), advertised_auth_methods)?,
    };
    Ok(ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: parsed.client_id,
        client_secret: secret,
        auth_method,
    })
}

#[cfg(test)]
mod tests;

//! Dynamic Client Registration (RFC 7591).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use url::Url;

use super::errors::{OAuthError, is_content_type, not_found};
use crate::checks::random_token;
use crate::counters::bump;
use crate::faults::{Endpoint, lock};
use crate::kit::Shared;
use crate::store::{AuthMethod, Client};

fn string_list(body: &Value, key: &str, default: &[&str]) -> Result<Vec<String>, String> {
    match body.get(key) {
        None => Ok(default.iter().map(|s| (*s).to_owned()).collect()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| format!("{key} must be an array of strings")),
        Some(_) => Err(format!("{key} must be an array of strings")),
    }
}

/// The registration endpoint at its first location: gone once the endpoints moved.
pub(crate) async fn register_old(
    s: State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if s.endpoints_moved.load(std::sync::atomic::Ordering::SeqCst) {
        return super::errors::not_found();
    }
    register(s, headers, body).await
}

pub(crate) async fn register(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&s.counters.register);
    let parsed = serde_json::from_slice::<Value>(&body);
    if let Ok(value) = &parsed {
        lock(&s.records).registrations.push(value.clone());
    }
    if let Some(fault) = s.faults.intercept(Endpoint::Register).await {
        return fault;
    }
    if !s.config.dcr {
        return not_found();
    }
    if !is_content_type(&headers, "application/json") {
        return OAuthError::new(
            "invalid_client_metadata",
            "registration requests must be application/json",
        )
        .into_response();
    }
    let request = match parsed {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            return OAuthError::new("invalid_client_metadata", "body is not a JSON object")
                .into_response();
        }
    };
    match register_client(&s, request) {
        Ok(response) => (StatusCode::CREATED, Json(response)).into_response(),
        Err(error) => error.into_response(),
    }
}

fn register_client(s: &Shared, mut request: Value) -> Result<Value, OAuthError> {
    let redirect_uris = string_list(&request, "redirect_uris", &[])
        .map_err(|why| OAuthError::new("invalid_redirect_uri", why))?;
    let grant_types = string_list(&request, "grant_types", &["authorization_code"])
        .map_err(|why| OAuthError::new("invalid_client_metadata", why))?;
    let device = s.config.device.is_some();
    // A client for the device grant only (RFC 8628) never redirects.
    let redirects = grant_types.iter().any(|g| g == "authorization_code");
    if redirect_uris.is_empty() && redirects {
        return Err(OAuthError::new(
            "invalid_redirect_uri",
            "redirect_uris is required",
        ));
    }
    for uri in &redirect_uris {
        let valid = Url::parse(uri).is_ok_and(|u| u.fragment().is_none());
        if !valid {
            return Err(OAuthError::new(
                "invalid_redirect_uri",
                format!("redirect URI {uri:?} is not an absolute URL without fragment"),
            ));
        }
    }
    // RFC 7591 2: an omitted method means client_secret_basic.
    let method_name = match request.get("token_endpoint_auth_method") {
        _ if s.config.dcr_confidential_secret_ttl_secs.is_some() => {
            "client_secret_basic".to_owned()
        }
        None => "client_secret_basic".to_owned(),
        Some(Value::String(m)) => m.clone(),
        Some(_) => {
            return Err(OAuthError::new(
                "invalid_client_metadata",
                "token_endpoint_auth_method must be a string",
            ));
        }
    };
    let auth_method = AuthMethod::parse(&method_name)
        .filter(|_| crate::mtls::auth_methods(&s.config).contains(&method_name))
        .ok_or_else(|| {
            OAuthError::new(
                "invalid_client_metadata",
                format!("token_endpoint_auth_method {method_name:?} is not supported"),
            )
        })?;
    if let Some(bad) = grant_types.iter().find(|g| {
        let known = matches!(g.as_str(), "authorization_code" | "refresh_token")
            || (device && *g == super::device::DEVICE_CODE);
        !known
    }) {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            format!("grant type {bad:?} is not supported"),
        ));
    }
    let response_types = string_list(
        &request,
        "response_types",
        if redirects { &["code"] } else { &[] },
    )
    .map_err(|why| OAuthError::new("invalid_client_metadata", why))?;
    if response_types.iter().any(|r| r != "code") {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            "only response type code is supported",
        ));
    }

    let (subject_dn, certificate_sha256) = certificate_metadata(&request, auth_method)?;
    let client_id = random_token();
    let secret = (!matches!(
        auth_method,
        AuthMethod::None | AuthMethod::TlsClientAuth | AuthMethod::SelfSignedTlsClientAuth
    ))
    .then(random_token);
    let issued_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Some(obj) = request.as_object_mut() else {
        return Err(OAuthError::new(
            "invalid_client_metadata",
            "body is not a JSON object",
        ));
    };
    obj.remove("client_secret");
    obj.remove("client_secret_expires_at");
    obj.insert("client_id".into(), json!(client_id));
    obj.insert("client_id_issued_at".into(), json!(issued_at));
    obj.insert("redirect_uris".into(), json!(redirect_uris));
    obj.insert("token_endpoint_auth_method".into(), json!(method_name));
    obj.insert("grant_types".into(), json!(grant_types));
    obj.insert("response_types".into(), json!(response_types));
    if let Some(secret) = &secret {
        obj.insert("client_secret".into(), json!(secret));
        let expires_at = match s.config.dcr_confidential_secret_ttl_secs {
            Some(Some(ttl)) => issued_at + ttl,
            _ => 0,
        };
        obj.insert("client_secret_expires_at".into(), json!(expires_at));
    }
    lock(&s.store).clients.insert(
        client_id.clone(),
        Client {
            client_id,
            secret,
            auth_method,
            redirect_uris,
            from_metadata_document: false,
            jwt_public_key: None,
            tls_client_auth_subject_dn: subject_dn,
            tls_client_certificate_sha256: certificate_sha256,
        },
    );
    Ok(request)
}

/// RFC 8705 2.1.2 and 2.2.2: the subject DN a `tls_client_auth` client registers, or the
/// SHA-256 of the certificate a `self_signed_tls_client_auth` client registers in `jwks`
/// (the first `x5c` entry of the first key).
fn certificate_metadata(
    request: &Value,
    method: AuthMethod,
) -> Result<(Option<String>, Option<[u8; 32]>), OAuthError> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let refuse = |why: &str| Err(OAuthError::new("invalid_client_metadata", why));
    match method {
        AuthMethod::TlsClientAuth => match request.get("tls_client_auth_subject_dn") {
            Some(Value::String(dn)) if !dn.trim().is_empty() => Ok((Some(dn.clone()), None)),
            _ => refuse(
                "tls_client_auth_subject_dn is required for tls_client_auth: a string such as \"CN=alice\"",
            ),
        },
        AuthMethod::SelfSignedTlsClientAuth => {
            let Some(x5c) = request["jwks"]["keys"][0]["x5c"][0].as_str() else {
                return refuse(
                    "jwks is required for self_signed_tls_client_auth: {\"keys\":[{..., \"x5c\":[\"<base64 DER certificate>\"]}]}",
                );
            };
            let der = base64::engine::general_purpose::STANDARD
                .decode(x5c)
                .ok()
                .filter(|der| crate::mtls::subject_dn(der).is_some());
            match der {
                Some(der) => Ok((None, Some(sha2::Sha256::digest(&der).into()))),
                None => refuse("jwks.keys[0].x5c[0] is not a base64 DER certificate"),
            }
        }
        _ => Ok((None, None)),
    }
}

//! The grants with no user: client credentials (the client authenticates with its secret or
//! an RFC 7523 `private_key_jwt` assertion) and the JWT bearer grant with a workload
//! identity token (RFC 7523 section 2.1). Strict the way real servers are: signature, `aud`,
//! `exp`, a short assertion lifetime, no `jti` twice.

use serde_json::Value;

use super::errors::OAuthError;
use super::token::check_resource;
use crate::checks::{Form, split_scopes};
use crate::faults::lock;
use crate::jwt::{audience_is, unix_now, verify_es256};
use crate::kit::Shared;
use crate::store::{AuthMethod, Client, IssuedTokens};

pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub(crate) const CLIENT_ASSERTION_TYPE: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The longest a client assertion may live (`exp` from now).
const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// The audiences this server accepts in an assertion: its issuer (with or without a
/// trailing `/`) and its token endpoint.
fn audiences(s: &Shared) -> [String; 3] {
    let issuer = &s.urls.issuer;
    [
        issuer.clone(),
        format!("{issuer}/"),
        format!("{issuer}/token"),
    ]
}

fn aud_ok(s: &Shared, claims: &Value) -> bool {
    let accepted = audiences(s);
    let accepted: Vec<&str> = accepted.iter().map(String::as_str).collect();
    audience_is(claims, &accepted)
}

/// The claims of a JWS read without checking it, to find whose key verifies it.
fn unverified_claims(jws: &str) -> Option<Value> {
    use base64::Engine as _;
    let payload = jws.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The client a `private_key_jwt` assertion authenticates (RFC 7523 section 3).
pub(crate) fn authenticate_assertion(s: &Shared, form: &Form) -> Result<Client, OAuthError> {
    if form.get("client_assertion_type") != Some(CLIENT_ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client(
            "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ));
    }
    let assertion = form
        .get_nonempty("client_assertion")
        .ok_or_else(|| OAuthError::invalid_client("client_assertion is missing"))?;
    let claimed = unverified_claims(assertion)
        .and_then(|c| c["iss"].as_str().map(str::to_owned))
        .ok_or_else(|| OAuthError::invalid_client("the assertion names no issuer"))?;
    let client = lock(&s.store)
        .clients
        .get(&claimed)
        .cloned()
        .ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
    let key = match (&client.auth_method, &client.jwt_public_key) {
        (AuthMethod::PrivateKeyJwt, Some(key)) => key.clone(),
        _ => {
            return Err(OAuthError::invalid_client(
                "client is not registered for private_key_jwt",
            ));
        }
    };
    let claims = verify_es256(assertion, &key)
        .map_err(|_| OAuthError::invalid_client("the client assertion does not verify"))?;
    if claims["iss"] != claims["sub"] || claims["sub"] != client.client_id.as_str() {
        return Err(OAuthError::invalid_client(
            "iss and sub of the assertion must both be the client id",
        ));
    }
    if form
        .get_nonempty("client_id")
        .is_some_and(|id| id != client.client_id)
    {
        return Err(OAuthError::invalid_client(
            "client_id differs from the assertion's subject",
        ));
    }
    if !aud_ok(s, &claims) {
        return Err(OAuthError::invalid_client(
            "the assertion's aud is not this authorization server",
        ));
    }
    let now = unix_now();
    match claims["exp"].as_i64() {
        Some(exp) if exp <= now => {
            return Err(OAuthError::invalid_client("the assertion expired"));
        }
        Some(exp) if exp - now > MAX_ASSERTION_LIFETIME_SECS => {
            return Err(OAuthError::invalid_client(
                "the assertion lives too long (at most 300 s)",
            ));
        }
        Some(_) => {}
        None => return Err(OAuthError::invalid_client("the assertion has no exp")),
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty())
        .ok_or_else(|| OAuthError::invalid_client("the assertion has no jti"))?;
    if !lock(&s.store).seen_jtis.insert(jti.to_owned()) {
        return Err(OAuthError::invalid_client(
            "the assertion's jti was used before (a replay)",
        ));
    }
    Ok(client)
}

/// Requested scopes, each among `scopes_supported` when the server lists any.
fn requested_scopes(s: &Shared, form: &Form) -> Result<Vec<String>, OAuthError> {
    let scopes = form
        .get_nonempty("scope")
        .map(split_scopes)
        .unwrap_or_default();
    let supported = &s.config.scopes_supported;
    if !supported.is_empty() && scopes.iter().any(|sc| !supported.contains(sc)) {
        return Err(OAuthError::new(
            "invalid_scope",
            "a requested scope is not supported",
        ));
    }
    Ok(scopes)
}

pub(crate) fn client_credentials_grant(
    s: &Shared,
    client: &Client,
    form: &Form,
) -> Result<IssuedTokens, OAuthError> {
    if !s.config.client_credentials {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            "this server does not offer the client credentials grant",
        ));
    }
    if client.auth_method == AuthMethod::None {
        return Err(OAuthError::new(
            "unauthorized_client",
            "a public client cannot use the client credentials grant",
        ));
    }
    check_resource(form, &s.urls.resource)?;
    let scopes = requested_scopes(s, form)?;
    Ok(lock(&s.store).issue_machine(
        &client.client_id,
        &scopes,
        &s.urls.resource,
        s.token_policy(),
    ))
}

/// The JWT bearer grant: the workload identity token is the only credential.
pub(crate) fn jwt_bearer_grant(s: &Shared, form: &Form) -> Result<IssuedTokens, OAuthError> {
    let Some(key) = &s.config.workload_key else {
        return Err(OAuthError::new(
            "unsupported_grant_type",
            "this server does not offer the JWT bearer grant",
        ));
    };
    let assertion = form
        .get_nonempty("assertion")
        .ok_or_else(|| OAuthError::invalid_request("assertion is missing"))?;
    let claims = verify_es256(assertion, key)
        .map_err(|_| OAuthError::invalid_grant("the assertion does not verify"))?;
    if claims["iss"] != s.config.workload_issuer.as_str() {
        return Err(OAuthError::invalid_grant(
            "the assertion comes from an issuer this server does not trust",
        ));
    }
    if !aud_ok(s, &claims) {
        return Err(OAuthError::invalid_grant(
            "the assertion's aud is not this authorization server",
        ));
    }
    if claims["exp"].as_i64().is_none_or(|exp| exp <= unix_now()) {
        return Err(OAuthError::invalid_grant("the assertion expired"));
    }
    let subject = claims["sub"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| OAuthError::invalid_grant("the assertion has no sub"))?
        .to_owned();
    check_resource(form, &s.urls.resource)?;
    let scopes = requested_scopes(s, form)?;
    Ok(lock(&s.store).issue_machine(&subject, &scopes, &s.urls.resource, s.token_policy()))
}

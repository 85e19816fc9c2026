//! The token endpoint: authorization code (PKCE, exact redirect URI, `resource`) and
//! refresh token grants (rotation with replay detection), with DPoP (RFC 9449 5) when the
//! kit offers it: a valid proof binds the tokens to its key, a bound refresh token needs a
//! proof of the same key, and in nonce mode a proof without the server's nonce is refused
//! with `use_dpop_nonce`. The grants with no user are in [`super::grants`].

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::client_auth::{authenticate, basic_client_id};
use super::entra::{entra_granted_mix, entra_refresh_checks};
use super::errors::{OAuthError, is_content_type};
use super::grants;
use crate::checks::{Form, is_valid_code_verifier, s256_challenge, split_scopes};
use crate::counters::bump;
use crate::dpop::{AS_NONCE, proof_header, unix_now, verify_proof};
use crate::faults::{Endpoint, lock};
use crate::kit::{Shared, TokenRequestRecord};
use crate::mtls::{Connection, bind_issued, check_binding};
use crate::store::{Client, IssuedTokens};

/// The token endpoint at its first location: gone once the endpoints moved.
pub(crate) async fn token_old(
    s: State<Arc<Shared>>,
    conn: Connection,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if s.endpoints_moved.load(std::sync::atomic::Ordering::SeqCst) {
        return super::errors::not_found();
    }
    token(s, conn, headers, body).await
}

pub(crate) async fn token(
    State(s): State<Arc<Shared>>,
    conn: Connection,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    bump(match form.get("grant_type") {
        Some("authorization_code") => &s.counters.token_code,
        Some("refresh_token") => &s.counters.token_refresh,
        Some("client_credentials") => &s.counters.token_client_credentials,
        Some(grants::JWT_BEARER) => &s.counters.token_jwt_bearer,
        Some(super::device::DEVICE_CODE) => &s.counters.token_device,
        _ => &s.counters.token_other,
    });
    lock(&s.records).token_requests.push(TokenRequestRecord {
        form: form.to_map(),
        authorization_header: headers.contains_key(header::AUTHORIZATION),
        basic_client_id: basic_client_id(&headers),
        dpop_proof: headers
            .get("dpop")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        client_certificate_sha256: conn.certificate_sha256(),
        at_alias: conn.at_alias,
    });
    if let Some(fault) = s.faults.intercept(Endpoint::Token).await {
        return fault;
    }
    let jkt = match dpop_binding(&s, &headers, &form, conn.at_alias) {
        Ok(jkt) => jkt,
        Err(refusal) => return *refusal,
    };
    match exchange(&s, &headers, &form, &conn) {
        Ok(issued) => {
            bind_issued(&s, &conn, &issued);
            let bound = jkt.filter(|_| !s.config.dpop_unbound_tokens);
            if let Some(jkt) = &bound {
                let mut state = lock(&s.dpop);
                state.bound.insert(issued.access_token.clone(), jkt.clone());
                if let Some(rt) = &issued.refresh_token {
                    state.bound.insert(rt.clone(), jkt.clone());
                }
            }
            let token_type = if bound.is_some() { "DPoP" } else { "Bearer" };
            let user_grant = matches!(
                form.get("grant_type"),
                Some("authorization_code" | "refresh_token")
            );
            if s.config.entra && user_grant {
                let reported = IssuedTokens {
                    scopes: entra_granted_mix(&issued.scopes),
                    ..issued
                };
                return token_response(&reported, token_type);
            }
            token_response(&issued, token_type)
        }
        Err(error) => {
            if error.code == "invalid_grant" {
                bump(&s.counters.invalid_grant);
            }
            error.into_response()
        }
    }
}

/// The key thumbprint the request's proof binds the tokens to; `None` without DPoP. A bad
/// proof, a replayed one, one without the nonce in nonce mode, or a refresh of a bound
/// grant without a proof of its key is refused here.
fn dpop_binding(
    s: &Shared,
    headers: &HeaderMap,
    form: &Form,
    at_alias: bool,
) -> Result<Option<String>, Box<Response>> {
    if !s.config.dpop {
        return Ok(None);
    }
    let refuse =
        |code: &'static str, why: &str| Box::new(OAuthError::new(code, why).into_response());
    let proof = proof_header(headers).map_err(|why| refuse("invalid_dpop_proof", why))?;
    let bound_refresh = match form.get("grant_type") {
        Some("refresh_token") => form
            .get("refresh_token")
            .and_then(|rt| lock(&s.dpop).bound.get(rt).cloned()),
        _ => None,
    };
    let Some(proof) = proof else {
        if bound_refresh.is_some() {
            return Err(refuse(
                "invalid_grant",
                "the refresh token is bound to a DPoP key: a proof is required",
            ));
        }
        return Ok(None);
    };
    // The proof names the endpoint the client posted to: the token endpoint or its alias.
    let origin = match &s.urls.mtls_origin {
        Some(alias) if at_alias => alias,
        _ => &s.urls.as_origin,
    };
    let endpoint = format!("{origin}{}/token", s.urls.issuer_path);
    let verified = verify_proof(proof, "POST", &endpoint, unix_now())
        .map_err(|why| refuse("invalid_dpop_proof", why))?;
    let jti = verified.claims["jti"].as_str().unwrap_or_default();
    if !lock(&s.dpop).fresh_jti(jti) {
        return Err(refuse(
            "invalid_dpop_proof",
            "the proof's jti was used before",
        ));
    }
    if s.config.dpop_as_nonce && verified.claims["nonce"] != AS_NONCE {
        let mut response = refuse(
            USE_DPOP_NONCE,
            "the authorization server requires a DPoP nonce",
        );
        response
            .headers_mut()
            .insert("dpop-nonce", HeaderValue::from_static(AS_NONCE));
        return Err(response);
    }
    if let Some(jkt) = bound_refresh
        && jkt != verified.jkt
    {
        return Err(refuse(
            "invalid_grant",
            "the refresh token is bound to another DPoP key",
        ));
    }
    Ok(Some(verified.jkt))
}

const USE_DPOP_NONCE: &str = "use_dpop_nonce";

fn token_response(issued: &IssuedTokens, token_type: &str) -> Response {
    let mut body = Map::new();
    body.insert("access_token".into(), json!(issued.access_token));
    body.insert("token_type".into(), json!(token_type));
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

fn exchange(
    s: &Shared,
    headers: &HeaderMap,
    form: &Form,
    conn: &Connection,
) -> Result<IssuedTokens, OAuthError> {
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
    // The workload identity token is the JWT bearer grant's credential: a client that
    // sends no authentication of its own needs none. (An ID-JAG comes from a client of
    // this server, authenticated below.)
    if form.get("grant_type") == Some(grants::JWT_BEARER)
        && s.config.trusted_idp.is_none()
        && !headers.contains_key(header::AUTHORIZATION)
        && form.get("client_secret").is_none()
        && form.get("client_assertion").is_none()
    {
        return grants::jwt_bearer_grant(s, form);
    }
    let client = authenticate(s, headers, form, conn)
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
        Some("refresh_token") => refresh_grant(s, &client, form, conn),
        Some(JWT_BEARER) if s.config.trusted_idp.is_some() => id_jag_grant(s, &client, form),
        Some("client_credentials") => grants::client_credentials_grant(s, &client, form),
        Some(super::device::DEVICE_CODE) if s.config.device.is_some() => {
            super::device::device_code_grant(s, &client, form)
        }
        Some(grants::JWT_BEARER) => grants::jwt_bearer_grant(s, form),
        None => Err(OAuthError::invalid_request("grant_type is missing")),
        Some(_) => Err(OAuthError::new(
            "unsupported_grant_type",
            "only authorization_code, refresh_token and the configured grants with no user are supported",
        )),
    }
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The JWT bearer grant with an ID-JAG of the trusted identity provider: signature, `typ`,
/// `iss`, `aud` (this issuer), `resource` (a resource of this server, also the request's),
/// `client_id` (the authenticated client) and `exp` are all checked.
fn id_jag_grant(s: &Shared, client: &Client, form: &Form) -> Result<IssuedTokens, OAuthError> {
    let trusted = s
        .config
        .trusted_idp
        .as_ref()
        .expect("checked by the caller");
    let assertion = form
        .get_nonempty("assertion")
        .ok_or_else(|| OAuthError::invalid_request("assertion is missing"))?;
    let (typ, claims) = crate::identity_provider::verify_typed(&trusted.key, assertion)
        .ok_or_else(|| OAuthError::invalid_grant("the assertion's signature does not verify"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let resource = claims["resource"].as_str().unwrap_or_default().to_owned();
    let known_resource = resource == s.urls.resource || s.config.also_protects.contains(&resource);
    let problem = if typ != "oauth-id-jag+jwt" {
        Some("typ must be oauth-id-jag+jwt")
    } else if claims["iss"] != trusted.issuer.as_str() {
        Some("iss is not the trusted identity provider")
    } else if claims["aud"] != s.urls.issuer.as_str() {
        Some("aud is not this authorization server")
    } else if !known_resource {
        Some("resource is not protected by this authorization server")
    } else if claims["client_id"] != client.client_id.as_str() {
        Some("client_id is not the authenticated client")
    } else if claims["exp"].as_i64().is_none_or(|e| e <= now) {
        Some("the assertion has expired")
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(OAuthError::invalid_grant(problem));
    }
    check_resource(form, &resource)?;
    let scopes = claims["scope"]
        .as_str()
        .map(split_scopes)
        .unwrap_or_default();
    let policy = s.token_policy();
    let access_token = lock(&s.store).mint_access(&scopes, &resource, policy.access_ttl);
    Ok(IssuedTokens {
        access_token,
        expires_in: policy.access_ttl.as_secs(),
        refresh_token: None,
        scopes,
    })
}

/// The single `resource` of a token request, which must equal `expected`.
pub(super) fn check_resource(form: &Form, expected: &str) -> Result<(), OAuthError> {
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

fn refresh_grant(
    s: &Shared,
    client: &Client,
    form: &Form,
    conn: &Connection,
) -> Result<IssuedTokens, OAuthError> {
    let token = form
        .get_nonempty("refresh_token")
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is missing"))?;
    let mut store = lock(&s.store);
    let rt = store
        .check_refresh(token, &client.client_id)
        .map_err(|refused| OAuthError::invalid_grant(refused.0))?;
    // RFC 8705 3: a refresh token bound to a certificate needs that certificate again.
    check_binding(s, token, conn).map_err(OAuthError::invalid_grant)?;
    // RFC 8707 3: a refresh may ask for an access token for another resource of the grant's
    // authorization server, when this one allows it.
    let resource = match form.all("resource").as_slice() {
        [one]
            if s.config.refresh_to_other_resources
                && (*one == s.urls.resource || s.config.also_protects.iter().any(|r| r == one)) =>
        {
            (*one).to_owned()
        }
        _ => {
            check_resource(form, &rt.resource)?;
            rt.resource.clone()
        }
    };
    if s.config.entra {
        entra_refresh_checks(form, &client.client_id)?;
    }
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
    Ok(store.issue_for_refresh(token, &rt, &resource, scopes, s.token_policy()))
}

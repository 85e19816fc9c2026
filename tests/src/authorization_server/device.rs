//! The device authorization grant (RFC 8628): the device authorization endpoint (3.1, 3.2)
//! and the device-code token requests (3.4, 3.5), which answer as the kit's
//! [`crate::DeviceBehaviour`] says. The user's side (entering the code, deciding) is that
//! behaviour: no page is served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::client_auth::authenticate;
use super::errors::{OAuthError, is_content_type, not_found};
use super::token::check_resource;
use crate::checks::{Form, random_token, split_scopes};
use crate::config::DeviceDecision;
use crate::counters::bump;
use crate::faults::lock;
use crate::kit::Shared;
use crate::store::{Client, CodeGrant, IssuedTokens};

pub(crate) const DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// One device authorization.
#[derive(Clone, Debug)]
pub(crate) struct DeviceGrant {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub resource: String,
    pub expires_at: Instant,
    /// Token requests made with this device code so far.
    pub polls: u32,
    /// Tokens were issued: the code is spent.
    pub spent: bool,
}

/// `POST {issuer}/device_authorization`.
pub(crate) async fn device_authorization(
    State(s): State<Arc<Shared>>,
    conn: crate::mtls::Connection,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    bump(&s.counters.device_authorization);
    let Some(behaviour) = s.config.device.clone() else {
        return not_found();
    };
    let form = Form::parse(&body);
    if !is_content_type(&headers, "application/x-www-form-urlencoded") {
        return OAuthError::invalid_request(
            "device authorization requests must be application/x-www-form-urlencoded",
        )
        .into_response();
    }
    let client = match authenticate(&s, &headers, &form, &conn) {
        Ok(client) => client,
        Err(e) => return e.into_response(),
    };
    let resource = match form.all("resource").as_slice() {
        [one] if *one == s.urls.resource || s.config.also_protects.iter().any(|r| r == one) => {
            (*one).to_owned()
        }
        _ => {
            return OAuthError::invalid_target("exactly one known resource is required (RFC 8707)")
                .into_response();
        }
    };
    let scopes = form.get("scope").map(split_scopes).unwrap_or_default();
    let device_code = random_token();
    let user_code = format!("{}-{}", &random_token()[..4], &random_token()[..4]).to_uppercase();
    lock(&s.store).devices.insert(
        device_code.clone(),
        DeviceGrant {
            client_id: client.client_id,
            scopes,
            resource,
            expires_at: Instant::now() + Duration::from_secs(behaviour.expires_in_secs),
            polls: 0,
            spent: false,
        },
    );
    let verification_uri = format!("{}/device", s.urls.issuer);
    let mut answer = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "expires_in": behaviour.expires_in_secs,
    });
    if let Some(interval) = behaviour.interval_secs {
        answer["interval"] = json!(interval);
    }
    if behaviour.complete_uri {
        answer["verification_uri_complete"] =
            json!(format!("{verification_uri}?user_code={user_code}"));
    }
    let mut response = Json(answer).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A device-code token request from an authenticated client.
pub(crate) fn device_code_grant(
    s: &Shared,
    client: &Client,
    form: &Form,
) -> Result<IssuedTokens, OAuthError> {
    let behaviour = s.config.device.clone().expect("checked by the caller");
    lock(&s.records).device_polls.push(Instant::now());
    let code = form
        .get_nonempty("device_code")
        .ok_or_else(|| OAuthError::invalid_request("device_code is missing"))?;
    let mut store = lock(&s.store);
    let grant = store
        .devices
        .get_mut(code)
        .ok_or_else(|| OAuthError::invalid_grant("unknown device code"))?;
    if grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the device code was issued to another client",
        ));
    }
    if grant.spent {
        return Err(OAuthError::invalid_grant("the device code was used"));
    }
    check_resource(form, &grant.resource)?;
    let poll = grant.polls;
    grant.polls += 1;
    if Instant::now() >= grant.expires_at {
        return Err(OAuthError::new("expired_token", "the device code expired"));
    }
    if poll < behaviour.pending_polls {
        return Err(if behaviour.slow_down_polls.contains(&poll) {
            OAuthError::new("slow_down", "polling too fast")
        } else {
            OAuthError::new("authorization_pending", "the user has not decided yet")
        });
    }
    match behaviour.decision {
        DeviceDecision::Approve => {}
        DeviceDecision::Deny => {
            return Err(OAuthError::new("access_denied", "the user refused"));
        }
        DeviceDecision::Expire => {
            return Err(OAuthError::new("expired_token", "the device code expired"));
        }
        DeviceDecision::Never => {
            return Err(OAuthError::new(
                "authorization_pending",
                "the user has not decided yet",
            ));
        }
    }
    grant.spent = true;
    let grant = grant.clone();
    let family = store.new_family();
    let code_grant = CodeGrant {
        client_id: grant.client_id,
        redirect_uri: String::new(),
        code_challenge: String::new(),
        resource: grant.resource,
        scopes: grant.scopes,
        expires_at: grant.expires_at,
        used: true,
        family,
    };
    Ok(store.issue_for_code(&code_grant, s.token_policy()))
}

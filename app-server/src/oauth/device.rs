//! The device authorization grant (RFC 8628), for machines where no browser can reach a
//! loopback listener: the device authorization request (3.1, 3.2), one poll of the token
//! endpoint (3.4), and what each answer of that endpoint means for the polling (3.5). The
//! polling loop and its clock belong to the caller; this step only says how long to wait
//! and whether to go on.

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use url::Url;

use crate::oauth::dpop::TokenDpop;
use crate::oauth::http::{HttpClient, check_secure_url};
use crate::oauth::registration::{ClientRegistration, TokenAuthMethod};
use crate::oauth::token::{
    TokenError, TokenResponse, basic_auth_header, request_token_body, request_token_dpop,
};

/// The `grant_type` of a device access token request (RFC 8628 3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The polling interval when the server names none (RFC 8628 3.2).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// What each `slow_down` adds to the interval (RFC 8628 3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The longest interval kept: a server asking for more (or many `slow_down`s) is polled
/// once a minute, so the user is not left waiting long after approving.
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// The longest a device code is polled for, whatever its `expires_in` says.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The longest `device_code` and `user_code` taken (the user code is typed by a person; the
/// device code is sent back on every poll).
const MAX_DEVICE_CODE_LEN: usize = 4096;
const MAX_USER_CODE_LEN: usize = 64;

/// A device authorization: the code the user enters at the verification URI, and the
/// device code the daemon polls with. `Debug` shows neither code.
#[derive(Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: Url,
    /// The verification URI with the user code in it, for a link or a QR code.
    pub verification_uri_complete: Option<Url>,
    /// How long the codes are good for, at most [`MAX_LIFETIME`].
    pub expires_in: Duration,
    /// How long to wait between polls, 1 s to [`MAX_INTERVAL`].
    pub interval: Duration,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &"<redacted>")
            .field("user_code", &"<redacted>")
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Why a device authorization could not be had.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The endpoint refused the request, failed, or could not be reached (sorted as token
    /// endpoint answers are: transient, OAuth error, unusable).
    #[error("device authorization request failed: {0}")]
    Endpoint(#[from] TokenError),
    /// A 2xx answer that is not a usable device authorization.
    #[error("unusable device authorization from {endpoint}: {reason}")]
    Invalid { endpoint: String, reason: String },
}

/// The client's authentication on a form POST: `client_id` in the body, and the secret as
/// its method says (a Basic header, or in the body).
fn client_form(registration: &ClientRegistration) -> (Vec<(&'static str, String)>, HeaderMap) {
    let mut form = Vec::new();
    let mut headers = HeaderMap::new();
    match (registration.auth_method, registration.secret_to_send()) {
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => {
            headers = basic_auth_header(&registration.client_id, secret);
        }
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => {
            form.push(("client_id", registration.client_id.clone()));
            form.push(("client_secret", secret.to_string()));
        }
        _ => form.push(("client_id", registration.client_id.clone())),
    }
    (form, headers)
}

/// The device authorization request (RFC 8628 3.1) with the `scope` asked for and the
/// RFC 8707 `resource`; the answer checked (3.2).
pub async fn request_device_authorization(
    http: &HttpClient,
    endpoint: &Url,
    registration: &ClientRegistration,
    scope: Option<&str>,
    resource: &str,
) -> Result<DeviceAuthorization, DeviceError> {
    let (mut form, headers) = client_form(registration);
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        form.push(("scope", scope.to_string()));
    }
    form.push(("resource", resource.to_string()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = request_token_body(http, endpoint, &form, &headers).await?;
    parse_device_authorization(endpoint, &body)
}

/// Reads a device authorization answer (RFC 8628 3.2). Pure.
pub fn parse_device_authorization(
    endpoint: &Url,
    body: &[u8],
) -> Result<DeviceAuthorization, DeviceError> {
    #[derive(Deserialize)]
    struct Wire {
        device_code: String,
        user_code: String,
        // Some servers spell it `verification_url`.
        #[serde(alias = "verification_url")]
        verification_uri: String,
        #[serde(default)]
        verification_uri_complete: Option<String>,
        expires_in: serde_json::Number,
        #[serde(default)]
        interval: Option<serde_json::Number>,
    }
    let invalid = |reason: String| DeviceError::Invalid {
        endpoint: endpoint.to_string(),
        reason,
    };
    // The body holds the device code: errors never quote it.
    let wire: Wire = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "not a device authorization (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if wire.device_code.is_empty() || wire.device_code.len() > MAX_DEVICE_CODE_LEN {
        return Err(invalid("device_code is empty or too long".into()));
    }
    if wire.user_code.is_empty()
        || wire.user_code.len() > MAX_USER_CODE_LEN
        || wire.user_code.chars().any(char::is_control)
    {
        return Err(invalid(
            "user_code is empty, too long or not printable".into(),
        ));
    }
    let shown_url = |name: &str, value: &str| -> Result<Url, DeviceError> {
        let url = Url::parse(value).map_err(|e| invalid(format!("{name} is not a URL ({e})")))?;
        // The user is sent there to sign in: https only (loopback for tests).
        check_secure_url(&url).map_err(|e| invalid(format!("{name}: {e}")))?;
        Ok(url)
    };
    let verification_uri = shown_url("verification_uri", &wire.verification_uri)?;
    let verification_uri_complete = wire
        .verification_uri_complete
        .as_deref()
        .map(|v| shown_url("verification_uri_complete", v))
        .transpose()?;
    let secs = |n: &serde_json::Number| n.as_u64().or_else(|| n.as_f64().map(|f| f as u64));
    let expires_in = secs(&wire.expires_in)
        .filter(|s| *s > 0)
        .ok_or_else(|| invalid("expires_in is not a positive number".into()))?;
    let interval = match &wire.interval {
        None => DEFAULT_INTERVAL,
        Some(n) => Duration::from_secs(
            secs(n)
                .ok_or_else(|| invalid("interval is not a number".into()))?
                .max(1),
        ),
    };
    Ok(DeviceAuthorization {
        device_code: wire.device_code,
        user_code: wire.user_code,
        verification_uri,
        verification_uri_complete,
        expires_in: Duration::from_secs(expires_in).min(MAX_LIFETIME),
        interval: interval.min(MAX_INTERVAL),
    })
}

/// One device access token request (RFC 8628 3.4) with the RFC 8707 `resource`.
pub async fn poll_token(
    http: &HttpClient,
    token_endpoint: &Url,
    registration: &ClientRegistration,
    device_code: &str,
    resource: &str,
    dpop: Option<TokenDpop<'_>>,
) -> Result<TokenResponse, TokenError> {
    let (mut form, headers) = client_form(registration);
    form.push(("grant_type", DEVICE_CODE_GRANT.to_string()));
    form.push(("device_code", device_code.to_string()));
    form.push(("resource", resource.to_string()));
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    request_token_dpop(http, token_endpoint, &form, &headers, dpop).await
}

/// What a failed poll means (RFC 8628 3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStep {
    /// `authorization_pending`: the user has not finished; poll again after the interval.
    Pending,
    /// `slow_down`: poll again after the interval grown by [`SLOW_DOWN_STEP`].
    SlowDown,
    /// Network trouble, 5xx or 429: poll again after the interval (the code's lifetime
    /// still bounds the whole).
    Retry,
    /// `access_denied`: the user refused.
    Denied,
    /// `expired_token`: the codes expired; a new login is needed.
    Expired,
    /// Any other refusal or an unusable answer: the login fails.
    Failed,
}

/// Sorts a failed poll. Pure.
pub fn poll_step(error: &TokenError) -> PollStep {
    match error {
        TokenError::Transient { .. } => PollStep::Retry,
        TokenError::OAuth { error, .. } => match error.as_str() {
            "authorization_pending" => PollStep::Pending,
            "slow_down" => PollStep::SlowDown,
            "access_denied" => PollStep::Denied,
            "expired_token" => PollStep::Expired,
            _ => PollStep::Failed,
        },
        TokenError::Invalid { .. } => PollStep::Failed,
    }
}

/// The interval after a poll that went `step`: grown by [`SLOW_DOWN_STEP`] on `slow_down`,
/// never above [`MAX_INTERVAL`]. Pure.
pub fn next_interval(interval: Duration, step: PollStep) -> Duration {
    match step {
        PollStep::SlowDown => interval.saturating_add(SLOW_DOWN_STEP).min(MAX_INTERVAL),
        _ => interval,
    }
}

#[cfg(test)]
mod tests;

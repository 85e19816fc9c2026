//! Reading a token endpoint's success answer (RFC 6749 section 5.1), leniently where servers
//! are known to differ and without ever quoting a value in an error (a malformed answer may
//! still hold a token).
//!
//! `expires_in` is taken in any shape servers send: a whole number, a float (rounded down),
//! a numeric string (`"3600"`). A lifetime above [`MAX_EXPIRES_IN`] is clamped to it. Zero,
//! a negative number, or anything that is not a number counts as absent ("lifetime not
//! given"): the token is used until the resource server refuses it, rather than treated as
//! expired at once, which would break a login that just succeeded.
//!
//! `scope` may be a space-delimited string or an array of strings; another shape counts as
//! absent ("as requested"). `access_token` and `token_type` are required strings and
//! `refresh_token` an optional string: anything else is an error.

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// The longest lifetime believed: ten years. Larger values (`1e30`, `u64::MAX`) mean "does
/// not expire" in practice, and keep the expiry arithmetic far from overflow.
pub const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 3600;

/// A successful token response. Holds secrets: `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    /// As the server spelled it, except that any case of `bearer` is `Bearer`.
    pub token_type: String,
    pub refresh_token: Option<String>,
    /// Lifetime in seconds from the response, when given.
    pub expires_in: Option<u64>,
    /// Granted scopes when the server says (absent means "as requested").
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a success answer cannot be used. Names fields, never values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the answer is not a JSON object")]
    NotAnObject,
    #[error("`{0}` is missing")]
    Missing(&'static str),
    #[error("`{0}` is not a string")]
    NotAString(&'static str),
    #[error("`access_token` is empty")]
    EmptyAccessToken,
}

/// A success answer as the oauth2 crate's client reads it.
#[derive(Debug, Serialize)]
pub(crate) struct WireTokenResponse {
    access_token: AccessToken,
    token_type: BasicTokenType,
    expires_in: Option<u64>,
    refresh_token: Option<RefreshToken>,
    scope: Option<Vec<Scope>>,
}

impl<'de> Deserialize<'de> for WireTokenResponse {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        parse_value(value).map_err(serde::de::Error::custom)
    }
}

impl oauth2::TokenResponse for WireTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<std::time::Duration> {
        self.expires_in.map(std::time::Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scope.as_ref()
    }
}

/// Parses a success answer's bytes (what the token client does with a 2xx body).
pub fn parse_token_response(bytes: &[u8]) -> Result<TokenResponse, ResponseError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|_| ResponseError::NotAnObject)?;
    parse_value(value).map(convert)
}

/// The answer as the daemon keeps it: `token_type` `Bearer` in any case is `Bearer`.
pub(super) fn convert(response: WireTokenResponse) -> TokenResponse {
    let token_type = match response.token_type() {
        BasicTokenType::Bearer => "Bearer".to_string(),
        BasicTokenType::Extension(other) if other.eq_ignore_ascii_case("bearer") => {
            "Bearer".to_string()
        }
        other => other.as_ref().to_string(),
    };
    TokenResponse {
        access_token: response.access_token().secret().clone(),
        token_type,
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in().map(|d| d.as_secs()),
        scopes: response
            .scopes()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
    }
}

fn parse_value(value: Value) -> Result<WireTokenResponse, ResponseError> {
    let Value::Object(mut fields) = value else {
        return Err(ResponseError::NotAnObject);
    };
    let mut take_string = |name: &'static str| match fields.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ResponseError::NotAString(name)),
    };
    let access_token =
        take_string("access_token")?.ok_or(ResponseError::Missing("access_token"))?;
    if access_token.is_empty() {
        return Err(ResponseError::EmptyAccessToken);
    }
    let token_type = take_string("token_type")?.ok_or(ResponseError::Missing("token_type"))?;
    let refresh_token = take_string("refresh_token")?;
    Ok(WireTokenResponse {
        access_token: AccessToken::new(access_token),
        token_type: token_type_of(&token_type),
        expires_in: fields.get("expires_in").and_then(expires_in),
        refresh_token: refresh_token.map(RefreshToken::new),
        scope: fields.get("scope").and_then(scopes),
    })
}

fn token_type_of(name: &str) -> BasicTokenType {
    match name.to_ascii_lowercase().as_str() {
        "bearer" => BasicTokenType::Bearer,
        "mac" => BasicTokenType::Mac,
        _ => BasicTokenType::Extension(name.to_string()),
    }
}

/// The lifetime in whole seconds, `1..=MAX_EXPIRES_IN`; `None` when absent or unusable.
pub(crate) fn expires_in(value: &Value) -> Option<u64> {
    let seconds = match value {
        Value::Number(n) => n
            .as_u64()
            .map(|s| s as f64)
            .or_else(|| n.as_i64().map(|s| s as f64))
            .or_else(|| n.as_f64())?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !seconds.is_finite() || seconds < 1.0 {
        return None;
    }
    // `as` saturates; the clamp keeps it within ten years.
    Some((seconds as u64).min(MAX_EXPIRES_IN))
}

fn scopes(value: &Value) -> Option<Vec<Scope>> {
    let names: Vec<String> = match value {
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<_>>()?,
        _ => return None,
    };
    Some(names.into_iter().map(Scope::new).collect())
}

#[cfg(test)]
mod tests;

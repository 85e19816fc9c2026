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
//! absent ("as requested"). At most 1,024 granted scopes of at most 512 bytes are kept
//! ([`crate::oauth::bounds`]). `access_token` is a required string; `token_type` an optional
//! one (absent means `Bearer`, as most clients read servers that leave it out although RFC
//! 6749 requires it) and `refresh_token` an optional string: anything else is an error.
//! Members the daemon does not read are skipped without being built.

use oauth2::basic::BasicTokenType;
use oauth2::{AccessToken, RefreshToken, Scope, TokenResponse as _};
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::oauth::bounds;

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
        let fields = deserializer.deserialize_map(FieldsVisitor)?;
        fields.into_wire().map_err(serde::de::Error::custom)
    }
}

/// The members of a success answer the daemon reads, taken from the JSON as it is parsed:
/// no tree of the whole answer is built, members the daemon does not read are skipped
/// unread, `scope` is bounded while it is read ([`crate::oauth::bounds`]) and `expires_in`
/// is kept as its JSON text, so a number of any size is clamped instead of failing the
/// parse.
#[derive(Default)]
struct Fields {
    access_token: Option<Value>,
    token_type: Option<Value>,
    refresh_token: Option<Value>,
    expires_in: Option<Box<RawValue>>,
    scope: Option<ScopeField>,
}

struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        // The last occurrence of a member wins, as in a parsed JSON object.
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "access_token" => fields.access_token = Some(map.next_value()?),
                "token_type" => fields.token_type = Some(map.next_value()?),
                "refresh_token" => fields.refresh_token = Some(map.next_value()?),
                "expires_in" => fields.expires_in = Some(map.next_value()?),
                "scope" => fields.scope = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(fields)
    }
}

/// `scope` as sent: a space-delimited string or an array of strings, bounded; any other
/// shape (or an array holding a non-string) counts as absent.
struct ScopeField(Option<Vec<String>>);

impl<'de> Deserialize<'de> for ScopeField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScopeVisitor)
    }
}

struct ScopeVisitor;

impl<'de> Visitor<'de> for ScopeVisitor {
    type Value = ScopeField;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a scope string or an array of scopes")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ScopeField, E> {
        Ok(ScopeField(Some(bounds::scope_string(v, "granted scope"))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScopeField, A::Error> {
        let mut kept = Vec::new();
        let mut all_strings = true;
        let mut cut = bounds::Cut::default();
        while let Some(item) = seq.next_element::<Value>()? {
            match item {
                Value::String(s) if s.len() > bounds::MAX_NAME_BYTES => cut.too_long += 1,
                Value::String(s) if kept.len() < bounds::MAX_LIST_ENTRIES => kept.push(s),
                Value::String(_) => cut.past_count += 1,
                _ => all_strings = false,
            }
        }
        cut.warn("granted scope", bounds::MAX_NAME_BYTES);
        Ok(ScopeField(all_strings.then_some(kept)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScopeField, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ScopeField(None))
    }

    fn visit_bool<E>(self, _: bool) -> Result<ScopeField, E> {
        Ok(ScopeField(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<ScopeField, E> {
        Ok(ScopeField(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<ScopeField, E> {
        Ok(ScopeField(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<ScopeField, E> {
        Ok(ScopeField(None))
    }
    fn visit_unit<E>(self) -> Result<ScopeField, E> {
        Ok(ScopeField(None))
    }
}

impl Fields {
    fn into_wire(self) -> Result<WireTokenResponse, ResponseError> {
        let string = |name: &'static str, value: Option<Value>| match value {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ResponseError::NotAString(name)),
        };
        let access_token = string("access_token", self.access_token)?
            .ok_or(ResponseError::Missing("access_token"))?;
        if access_token.is_empty() {
            return Err(ResponseError::EmptyAccessToken);
        }
        // RFC 6749 5.1 requires `token_type`; many servers leave it out of answers that
        // can only be Bearer tokens. Absent (or null) means Bearer, as most clients read it.
        let token_type = string("token_type", self.token_type)?
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "Bearer".to_string());
        let refresh_token = string("refresh_token", self.refresh_token)?;
        Ok(WireTokenResponse {
            access_token: AccessToken::new(access_token),
            token_type: token_type_of(&token_type),
            expires_in: self.expires_in.as_deref().and_then(expires_in_raw),
            refresh_token: refresh_token.map(RefreshToken::new),
            scope: self
                .scope
                .and_then(|s| s.0)
                .map(|names| names.into_iter().map(Scope::new).collect()),
        })
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
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let fields = de
        .deserialize_map(FieldsVisitor)
        .and_then(|fields| de.end().map(|()| fields))
        .map_err(|_| ResponseError::NotAnObject)?;
    fields.into_wire().map(convert)
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

fn token_type_of(name: &str) -> BasicTokenType {
    match name.to_ascii_lowercase().as_str() {
        "bearer" => BasicTokenType::Bearer,
        "mac" => BasicTokenType::Mac,
        _ => BasicTokenType::Extension(name.to_string()),
    }
}

/// The lifetime in whole seconds, `1..=MAX_EXPIRES_IN`, from the member's JSON text;
/// `None` when absent or unusable. A number too large for any numeric type (a thousand
/// digits) is a very long lifetime, clamped like any other.
fn expires_in_raw(raw: &RawValue) -> Option<u64> {
    let text = raw.get();
    let text = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        // A numeric string: its content, if it has no escapes.
        Some(inner) if !inner.contains('\\') => inner.trim(),
        Some(_) => return None,
        None => text,
    };
    // Rust's float parser reads any number of digits in linear time; a number past
    // f64's range is infinite, and saturates to the clamp below.
    let seconds = text.parse::<f64>().ok()?;
    if seconds.is_nan() || seconds < 1.0 {
        return None;
    }
    // `as` saturates; the clamp keeps it within ten years.
    Some((seconds as u64).min(MAX_EXPIRES_IN))
}

#[cfg(test)]
mod tests;

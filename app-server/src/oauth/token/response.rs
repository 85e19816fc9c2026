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
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn with_expires_in(value: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "access_token": "at-SECRET", "token_type": "bearer", "expires_in": value,
        }))
        .unwrap()
    }

    #[test]
    fn expires_in_in_any_shape() {
        for (value, want) in [
            (json!(3600), Some(3600)),
            (json!("3600"), Some(3600)),
            (json!(" 3600 "), Some(3600)),
            (json!(3600.9), Some(3600)),
            (json!("3600.5"), Some(3600)),
            (json!(1e30), Some(MAX_EXPIRES_IN)),
            (json!(u64::MAX), Some(MAX_EXPIRES_IN)),
            (json!("1e400"), None),
            (json!(i64::MIN), None),
            (json!(-5), None),
            (json!(0), None),
            (json!(0.5), None),
            (json!("soon"), None),
            (json!(null), None),
            (json!(true), None),
            (json!([3600]), None),
            (json!({"s": 3600}), None),
        ] {
            let parsed = parse_token_response(&with_expires_in(value.clone()))
                .unwrap_or_else(|e| panic!("{value}: {e}"));
            assert_eq!(parsed.expires_in, want, "{value}");
            assert_eq!(parsed.access_token, "at-SECRET");
        }
    }

    #[test]
    fn debug_of_the_wire_answer_redacts_tokens() {
        let wire = parse_value(json!({
            "access_token": "at-SECRET", "token_type": "Bearer", "refresh_token": "rt-SECRET",
        }))
        .unwrap();
        let text = format!("{wire:?}");
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn scope_as_string_or_array() {
        let parse = |scope: Value| {
            parse_token_response(
                &serde_json::to_vec(
                    &json!({"access_token": "a", "token_type": "Bearer", "scope": scope}),
                )
                .unwrap(),
            )
            .unwrap()
            .scopes
        };
        let both = Some(vec!["read".to_string(), "write".to_string()]);
        assert_eq!(parse(json!("read  write")), both);
        assert_eq!(parse(json!(["read", "write"])), both);
        assert_eq!(parse(json!(["read", 7])), None);
        assert_eq!(parse(json!(7)), None);
    }

    #[test]
    fn required_fields_and_errors_that_quote_nothing() {
        for (body, want) in [
            (json!([1]), ResponseError::NotAnObject),
            (
                json!({"token_type": "Bearer"}),
                ResponseError::Missing("access_token"),
            ),
            (
                json!({"access_token": "at-SECRET"}),
                ResponseError::Missing("token_type"),
            ),
            (
                json!({"access_token": 5, "token_type": "Bearer"}),
                ResponseError::NotAString("access_token"),
            ),
            (
                json!({"access_token": "", "token_type": "Bearer"}),
                ResponseError::EmptyAccessToken,
            ),
            (
                json!({"access_token": "at-SECRET", "token_type": "Bearer", "refresh_token": ["rt-SECRET"]}),
                ResponseError::NotAString("refresh_token"),
            ),
        ] {
            let err = parse_token_response(&serde_json::to_vec(&body).unwrap()).unwrap_err();
            assert_eq!(err, want, "{body}");
            assert!(!err.to_string().contains("SECRET"), "{err}");
        }
        assert_eq!(
            parse_token_response(b"{\"access_token\":").unwrap_err(),
            ResponseError::NotAnObject
        );
    }

    /// JSON-ish text: fragments of token answers glued together, so the parser sees near
    /// misses as well as noise.
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        let piece = prop_oneof![
            Just("{".to_string()),
            Just("}".to_string()),
            Just("[".to_string()),
            Just("]".to_string()),
            Just(",".to_string()),
            Just(":".to_string()),
            Just("\"access_token\"".to_string()),
            Just("\"token_type\"".to_string()),
            Just("\"expires_in\"".to_string()),
            Just("\"refresh_token\"".to_string()),
            Just("\"scope\"".to_string()),
            Just("\"Bearer\"".to_string()),
            Just("null".to_string()),
            Just("-1e309".to_string()),
            Just("18446744073709551616".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| n.to_string()),
            "\"[^\"\\\\]{0,8}\"",
        ];
        prop_oneof![
            proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat().into_bytes()),
            proptest::collection::vec(any::<u8>(), 0..256),
        ]
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::from),
            any::<i64>().prop_map(|n| Value::from(n.to_string())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::btree_map(".{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes_end_in_a_value_or_a_typed_error(bytes in jsonish()) {
            match parse_token_response(&bytes) {
                Ok(r) => {
                    prop_assert!(!r.access_token.is_empty());
                    prop_assert!(r.expires_in.is_none_or(|s| (1..=MAX_EXPIRES_IN).contains(&s)));
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }

        #[test]
        fn expires_in_of_any_json_type_keeps_the_login(value in any_json()) {
            let parsed = parse_token_response(&with_expires_in(value)).unwrap();
            prop_assert_eq!(parsed.access_token, "at-SECRET");
            prop_assert!(parsed.expires_in.is_none_or(|s| (1..=MAX_EXPIRES_IN).contains(&s)));
        }
    }
}

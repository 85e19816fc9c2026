//! `mcpServer/oauth/token`, the request a frontend makes for every MCP request it sends,
//! read straight from its bytes into its params: no JSON value tree is built for it.
//!
//! This only saves work and never decides anything. A message it does not take exactly as
//! the general reading would (another method, a batch, a `null` where a string belongs, an
//! escaped method name, a duplicate member, an id that is not a whole number) goes the
//! general way, which answers it or says what is wrong with it.

use std::fmt;

use mcp_app_server_protocol::{JSONRPC_VERSION, OauthTokenParams, RequestId};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

/// The method read here.
const METHOD: &str = "mcpServer/oauth/token";

/// A token request's id and params, when `bytes` is one, as the general reading would
/// have it; `None` for anything else.
pub(super) fn read(bytes: &[u8]) -> Option<(RequestId, OauthTokenParams)> {
    let call: TokenCall<'_> = serde_json::from_slice(bytes).ok()?;
    (call.method == METHOD && call.jsonrpc.0 == JSONRPC_VERSION)
        .then_some((call.id.0, call.params.0))
}

/// The envelope. Members it does not name are ignored, as the general reading ignores them.
#[derive(Deserialize)]
struct TokenCall<'a> {
    /// Absent means 2.0 there too; `null` or another value is an error it reports.
    #[serde(default, borrow)]
    jsonrpc: Version<'a>,
    id: Id,
    #[serde(borrow)]
    method: &'a str,
    params: Params,
}

/// The params, from an object only (a derived struct would also take an array).
struct Params(OauthTokenParams);

impl<'de> Deserialize<'de> for Params {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ParamsVisitor)
    }
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Params, A::Error> {
        OauthTokenParams::deserialize(de::value::MapAccessDeserializer::new(map)).map(Params)
    }
}

/// `jsonrpc`: a string without escapes.
struct Version<'a>(&'a str);

impl Default for Version<'_> {
    fn default() -> Self {
        Version(JSONRPC_VERSION)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Version<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <&str>::deserialize(d).map(Version)
    }
}

/// A request id as the general reading accepts it: an integer within `i64`, or a string.
struct Id(RequestId);

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

struct IdVisitor;

impl Visitor<'_> for IdVisitor {
    type Value = Id;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a string")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Id, E> {
        Ok(Id(RequestId::Number(n)))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Id, E> {
        i64::try_from(n)
            .map(|n| Id(RequestId::Number(n)))
            .map_err(|_| E::custom("id out of range"))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Id, E> {
        Ok(Id(RequestId::String(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Id, E> {
        Ok(Id(RequestId::String(s)))
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str, min: Option<u32>) -> OauthTokenParams {
        OauthTokenParams {
            name: name.into(),
            account: None,
            min_validity_secs: min,
        }
    }

    #[test]
    fn token_requests_are_read_with_their_id_and_params() {
        for (text, id, want) in [
            (
                r#"{"jsonrpc":"2.0","id":7,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
                RequestId::Number(7),
                params("a", None),
            ),
            (
                r#"{"params":{"minValiditySecs":300,"name":"b"},"method":"mcpServer/oauth/token","id":"x-1"}"#,
                RequestId::String("x-1".into()),
                params("b", Some(300)),
            ),
            (
                // Escapes in the id and the name are read as the general reading reads them.
                r#" {"id":"q\"1","method":"mcpServer/oauth/token","params":{"name":"n\u00e4me","minValiditySecs":null},"extra":[1]} "#,
                RequestId::String("q\"1".into()),
                params("näme", None),
            ),
            (
                r#"{"id":-9223372036854775808,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
                RequestId::Number(i64::MIN),
                params("a", None),
            ),
        ] {
            assert_eq!(read(text.as_bytes()), Some((id, want)), "{text}");
        }
    }

    #[test]
    fn anything_else_is_left_to_the_general_reading() {
        for text in [
            // Other methods, also with params this method would take.
            r#"{"id":1,"method":"mcpServer/oauth/logout","params":{"name":"a"}}"#,
            r#"{"id":1,"method":"mcpServer/oauth/tokens","params":{"name":"a"}}"#,
            // Escaped method name: the general reading decides.
            r#"{"id":1,"method":"mcpServer\/oauth\/token","params":{"name":"a"}}"#,
            // No id (a notification), or an id the general reading refuses.
            r#"{"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            r#"{"id":null,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            r#"{"id":1.5,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            r#"{"id":9223372036854775808,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            r#"{"id":[1],"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            // A version that is not 2.0, or null.
            r#"{"jsonrpc":"1.0","id":1,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            r#"{"jsonrpc":null,"id":1,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            // Params missing, null, of another shape, with unknown or duplicate members.
            r#"{"id":1,"method":"mcpServer/oauth/token"}"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":null}"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":["a"]}"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":{"name":"a","x":1}}"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":{"name":"a","name":"b"}}"#,
            r#"{"id":1,"id":2,"method":"mcpServer/oauth/token","params":{"name":"a"}}"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":{"name":"a","minValiditySecs":-1}}"#,
            // Not one object.
            r#"[{"id":1,"method":"mcpServer/oauth/token","params":{"name":"a"}}]"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":{"name":"a"}} {}"#,
            r#"{"id":1,"method":"mcpServer/oauth/token","params":{"name":"a"}"#,
            "",
            "\u{0}garbage",
        ] {
            assert_eq!(read(text.as_bytes()), None, "{text}");
        }
    }
}

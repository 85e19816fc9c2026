//! `WWW-Authenticate` parsing (RFC 9110 section 11.6.1, RFC 6750 section 3, RFC 9728
//! section 5.1). Servers send several challenges in one header or in several headers, quote
//! some values and not others, and write scheme and parameter names in any case; the 401 of
//! an MCP server is where discovery starts (rule 1), so this must be forgiving.

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};

/// One authentication challenge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Challenge {
    /// The auth scheme, lowercased (`bearer`, `basic`, ...): schemes are case-insensitive.
    pub scheme: String,
    /// Parameters with lowercased names; the first occurrence of a name wins.
    pub params: BTreeMap<String, String>,
    /// A token68 credential blob (`Negotiate abc==`), when the challenge has one.
    pub token68: Option<String>,
}

/// What a Bearer challenge tells an MCP client.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct BearerChallenge {
    /// RFC 9728 `resource_metadata`: where the Protected Resource Metadata lives.
    pub resource_metadata: Option<String>,
    /// Space-separated scopes the resource wants.
    pub scope: Option<String>,
    /// RFC 6750 error code (`invalid_token`, `insufficient_scope`, ...).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

impl BearerChallenge {
    fn from_challenge(challenge: &Challenge) -> Self {
        let get = |name: &str| challenge.params.get(name).cloned();
        Self {
            resource_metadata: get("resource_metadata"),
            scope: get("scope"),
            error: get("error"),
            error_description: get("error_description"),
        }
    }

    /// The scopes of the challenge, split on whitespace.
    pub fn scopes(&self) -> Vec<String> {
        self.scope
            .as_deref()
            .map(crate::oauth::scopes::parse_scope)
            .unwrap_or_default()
    }
}

/// Parses one `WWW-Authenticate` header value into its challenges. Malformed input never
/// fails: unparseable bytes are skipped.
pub fn parse_www_authenticate(header: &str) -> Vec<Challenge> {
    let mut cursor = Cursor {
        input: header.as_bytes(),
        text: header,
        pos: 0,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        cursor.skip(|b| b == b',' || is_ws(b));
        if cursor.at_end() {
            break;
        }
        let name = cursor.token();
        if name.is_empty() {
            // Not a token start: skip one character (and any quoted string it opens).
            if cursor.peek() == Some(b'"') {
                cursor.quoted_string();
            } else {
                cursor.bump_char();
            }
            continue;
        }
        let after_name = cursor.pos;
        cursor.skip(is_ws);
        if cursor.peek() == Some(b'=') {
            // `name = value` at the start of an item: a parameter of the current challenge.
            cursor.pos += 1;
            cursor.skip(is_ws);
            let value = cursor.param_value();
            if let Some(current) = challenges.last_mut() {
                current
                    .params
                    .entry(name.to_ascii_lowercase())
                    .or_insert(value);
            }
            continue;
        }
        // A new challenge: the scheme, then a token68 or a first parameter, if any.
        cursor.pos = after_name;
        let mut challenge = Challenge {
            scheme: name.to_ascii_lowercase(),
            ..Challenge::default()
        };
        cursor.skip(is_ws);
        if !cursor.at_end() && cursor.peek() != Some(b',') {
            let save = cursor.pos;
            if let Some(token68) = cursor.token68() {
                challenge.token68 = Some(token68);
            } else {
                cursor.pos = save;
            }
        }
        challenges.push(challenge);
    }
    challenges
}

/// All challenges of all `WWW-Authenticate` headers, in order.
pub fn challenges(headers: &HeaderMap) -> Vec<Challenge> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .flat_map(|value| parse_www_authenticate(&String::from_utf8_lossy(value.as_bytes())))
        .collect()
}

/// The first Bearer challenge among all `WWW-Authenticate` headers.
pub fn bearer_challenge(headers: &HeaderMap) -> Option<BearerChallenge> {
    bearer_challenge_from_values(
        headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned()),
    )
}

/// [`bearer_challenge`] over raw header values. A `DPoP` challenge (RFC 9449 7.1) carries
/// the same parameters and is read when there is no `Bearer` one: servers that only accept
/// DPoP-bound tokens send only that.
pub fn bearer_challenge_from_values<S: AsRef<str>>(
    values: impl IntoIterator<Item = S>,
) -> Option<BearerChallenge> {
    let parsed: Vec<_> = values
        .into_iter()
        .flat_map(|value| parse_www_authenticate(value.as_ref()))
        .collect();
    ["bearer", "dpop"].iter().find_map(|scheme| {
        parsed
            .iter()
            .find(|c| c.scheme == *scheme)
            .map(BearerChallenge::from_challenge)
    })
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

struct Cursor<'a> {
    input: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.input.len()
    }

    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn skip(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.pos += 1;
        }
    }

    /// Advances past one (possibly multi-byte) character.
    fn bump_char(&mut self) {
        let len = self.text[self.pos..]
            .chars()
            .next()
            .map_or(1, char::len_utf8);
        self.pos += len;
    }

    fn token(&mut self) -> String {
        let start = self.pos;
        self.skip(is_tchar);
        self.text[start..self.pos].to_string()
    }

    /// A token68 that is the whole rest of the item (up to a comma or the end); `None`
    /// (position unspecified) when the item is a parameter instead.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        self.skip(is_token68_char);
        if self.pos == start {
            return None;
        }
        self.skip(|b| b == b'=');
        let end = self.pos;
        self.skip(is_ws);
        if self.at_end() || self.peek() == Some(b',') {
            Some(self.text[start..end].to_string())
        } else {
            None
        }
    }

    /// A quoted string (backslash escapes any character) or, leniently, any run of
    /// characters up to a comma or whitespace (some servers leave URLs unquoted).
    fn param_value(&mut self) -> String {
        if self.peek() == Some(b'"') {
            return self.quoted_string();
        }
        let start = self.pos;
        self.skip(|b| b != b',' && !is_ws(b));
        self.text[start..self.pos].to_string()
    }

    fn quoted_string(&mut self) -> String {
        debug_assert_eq!(self.peek(), Some(b'"'));
        self.pos += 1;
        let mut value = String::new();
        while let Some(c) = self.text[self.pos..].chars().next() {
            self.pos += c.len_utf8();
            match c {
                '"' => return value,
                '\\' => {
                    if let Some(escaped) = self.text[self.pos..].chars().next() {
                        self.pos += escaped.len_utf8();
                        value.push(escaped);
                    }
                }
                other => value.push(other),
            }
        }
        // Unterminated: keep what was there.
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ch(scheme: &str, pairs: &[(&str, &str)]) -> Challenge {
        Challenge {
            scheme: scheme.to_string(),
            params: params(pairs),
            token68: None,
        }
    }

    #[test]
    fn parses_challenge_table() {
        let cases: Vec<(&str, Vec<Challenge>)> = vec![
            ("Bearer", vec![ch("bearer", &[])]),
            ("bearer", vec![ch("bearer", &[])]),
            (
                r#"Bearer realm="example""#,
                vec![ch("bearer", &[("realm", "example")])],
            ),
            (
                r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
                vec![ch(
                    "bearer",
                    &[(
                        "resource_metadata",
                        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                    )],
                )],
            ),
            (
                r#"BEARER Resource_Metadata="https://x/prm", SCOPE="a b""#,
                vec![ch(
                    "bearer",
                    &[("resource_metadata", "https://x/prm"), ("scope", "a b")],
                )],
            ),
            (
                r#"Bearer error=invalid_token, error_description="The token, it expired""#,
                vec![ch(
                    "bearer",
                    &[
                        ("error", "invalid_token"),
                        ("error_description", "The token, it expired"),
                    ],
                )],
            ),
            (
                r#"Bearer realm="a \"quoted\" \\ value""#,
                vec![ch("bearer", &[("realm", r#"a "quoted" \ value"#)])],
            ),
            (
                r#"Basic realm="simple", Bearer scope="read write""#,
                vec![
                    ch("basic", &[("realm", "simple")]),
                    ch("bearer", &[("scope", "read write")]),
                ],
            ),
            (
                r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
                vec![
                    ch(
                        "newauth",
                        &[
                            ("realm", "apps"),
                            ("type", "1"),
                            ("title", r#"Login to "apps""#),
                        ],
                    ),
                    ch("basic", &[("realm", "simple")]),
                ],
            ),
            (
                "Negotiate abc+/def==, Bearer",
                vec![
                    Challenge {
                        scheme: "negotiate".into(),
                        params: BTreeMap::new(),
                        token68: Some("abc+/def==".into()),
                    },
                    ch("bearer", &[]),
                ],
            ),
            (
                "Bearer realm = \"spaced\" ,  scope\t=\tx",
                vec![ch("bearer", &[("realm", "spaced"), ("scope", "x")])],
            ),
            (
                "Bearer resource_metadata=https://x/.well-known/oauth-protected-resource",
                vec![ch(
                    "bearer",
                    &[(
                        "resource_metadata",
                        "https://x/.well-known/oauth-protected-resource",
                    )],
                )],
            ),
            (
                r#"Bearer scope="first", scope="second""#,
                vec![ch("bearer", &[("scope", "first")])],
            ),
            (
                r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://r/prm""#,
                vec![ch(
                    "bearer",
                    &[
                        ("error", "insufficient_scope"),
                        ("scope", "files:read files:write"),
                        ("resource_metadata", "https://r/prm"),
                    ],
                )],
            ),
            ("", vec![]),
            (" , ,", vec![]),
            (
                r#"Bearer realm="unterminated"#,
                vec![ch("bearer", &[("realm", "unterminated")])],
            ),
            (
                r#"Bearer realm="ünïcode""#,
                vec![ch("bearer", &[("realm", "ünïcode")])],
            ),
            (
                r#"DPoP algs="ES256 PS256", Bearer realm="r""#,
                vec![
                    ch("dpop", &[("algs", "ES256 PS256")]),
                    ch("bearer", &[("realm", "r")]),
                ],
            ),
            ("Basic, Bearer", vec![ch("basic", &[]), ch("bearer", &[])]),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_www_authenticate(input), expected, "input: {input}");
        }
    }

    #[test]
    fn bearer_challenge_from_several_headers() {
        let values = [
            r#"Basic realm="x""#,
            r#"Bearer resource_metadata="https://r/prm", scope="a b", error="invalid_token""#,
        ];
        let challenge = bearer_challenge_from_values(values).expect("bearer found");
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some("https://r/prm")
        );
        assert_eq!(challenge.scopes(), vec!["a".to_string(), "b".to_string()]);
        assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
        assert_eq!(challenge.error_description, None);
    }

    #[test]
    fn bearer_challenge_from_header_map() {
        let mut headers = HeaderMap::new();
        headers.append(WWW_AUTHENTICATE, "Basic realm=\"x\"".parse().unwrap());
        headers.append(
            WWW_AUTHENTICATE,
            "bearer error=\"insufficient_scope\", scope=\"write\""
                .parse()
                .unwrap(),
        );
        let challenge = bearer_challenge(&headers).expect("bearer found");
        assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
        assert_eq!(challenge.scope.as_deref(), Some("write"));
        assert_eq!(challenges(&headers).len(), 2);
    }

    #[test]
    fn a_dpop_challenge_is_read_when_there_is_no_bearer_one() {
        let dpop =
            r#"DPoP algs="ES256", error="use_dpop_nonce", resource_metadata="https://r/prm""#;
        let challenge = bearer_challenge_from_values([dpop]).expect("dpop found");
        assert_eq!(challenge.error.as_deref(), Some("use_dpop_nonce"));
        assert_eq!(
            challenge.resource_metadata.as_deref(),
            Some("https://r/prm")
        );
        // A Bearer challenge wins, in whichever header it comes.
        let both = bearer_challenge_from_values([dpop, r#"Bearer scope="s""#]).unwrap();
        assert_eq!(both.scope.as_deref(), Some("s"));
        assert_eq!(both.error, None);
    }

    #[test]
    fn no_bearer_challenge() {
        assert_eq!(bearer_challenge_from_values([r#"Basic realm="x""#]), None);
        assert_eq!(bearer_challenge(&HeaderMap::new()), None);
    }
}

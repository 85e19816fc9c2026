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
    /// The resource challenged with the `DPoP` scheme only (no `Bearer` challenge): it
    /// accepts DPoP-bound tokens only (RFC 9449 7.1).
    #[serde(default)]
    pub dpop_only: bool,
}

/// Challenges read from all `WWW-Authenticate` values of one response; the rest is ignored.
pub const MAX_CHALLENGES: usize = 64;
/// Parameters read per challenge; the rest is ignored.
pub const MAX_PARAMS: usize = 64;

impl BearerChallenge {
    fn from_challenge(challenge: &Challenge) -> Self {
        let get = |name: &str| challenge.params.get(name).cloned();
        // The scope is kept bounded like every list a server gives (crate::oauth::bounds):
        // at most 1,024 scopes of at most 512 bytes, in order.
        let scope = get("scope")
            .map(|scope| crate::oauth::bounds::scope_string(&scope, "challenge scope").join(" "));
        Self {
            resource_metadata: get("resource_metadata"),
            scope,
            error: get("error"),
            error_description: get("error_description"),
            dpop_only: challenge.scheme == "dpop",
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
        if challenges.len() > MAX_CHALLENGES {
            challenges.truncate(MAX_CHALLENGES);
            tracing::warn!(
                max = MAX_CHALLENGES,
                "a WWW-Authenticate header names more challenges than the daemon reads; the rest was ignored"
            );
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
            if let Some(current) = challenges.last_mut()
                && current.params.len() < MAX_PARAMS
            {
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
        .take(MAX_CHALLENGES)
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
mod tests;

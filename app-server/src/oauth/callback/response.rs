//! Reading an authorization response: the pure checks of a redirect the listener received
//! or a user pasted back, and the redirect URI and callback path a login waits on. A leaf:
//! the listener and the page import it; it imports neither.

use std::fmt;

use url::{Url, form_urlencoded};

/// The first path segment of the default redirect URI (`http://127.0.0.1:<port>/callback/<id>`).
pub(super) const DEFAULT_CALLBACK_PREFIX: &str = "/callback";

/// Authorization-server text longer than this is cut: it ends up in pages and notifications.
pub(super) const MAX_SERVER_TEXT_CHARS: usize = 500;

/// What the callback of one pending login must look like.
#[derive(Clone, PartialEq, Eq)]
pub struct ExpectedCallback {
    /// Path of the redirect URI as sent on the wire (percent-encoded), e.g.
    /// `/callback/XuuuHAzzHOni` or `/prefix/callback/XuuuHAzzHOni`. It depends only on the
    /// server URL, so it is known before the listener's port is.
    pub callback_path: String,
    /// The `state` sent in the authorization request.
    pub state: String,
    /// The issuer the login started with. Compared with `iss` when the response carries one;
    /// pass it whenever discovery gave one.
    pub issuer: Option<String>,
    /// The server advertised `authorization_response_iss_parameter_supported: true`, so a
    /// response without `iss` is refused (RFC 9207 §2.4).
    pub iss_required: bool,
}

impl fmt::Debug for ExpectedCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedCallback")
            .field("callback_path", &self.callback_path)
            .field("state", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("iss_required", &self.iss_required)
            .finish()
    }
}

/// How a login's browser round trip ended.
#[derive(Clone, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// The authorization code, to be exchanged at the token endpoint.
    Code { code: String },
    /// The login ends with this error.
    Error(CallbackError),
}

impl fmt::Debug for CallbackOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Code { .. } => f.debug_struct("Code").field("code", &"<redacted>").finish(),
            Self::Error(error) => f.debug_tuple("Error").field(error).finish(),
        }
    }
}

/// Why a login's callback failed. Messages say what happened and what to do next; they never
/// contain the code or the state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// The authorization server redirected back with `error=` (RFC 6749 §4.1.2.1).
    #[error("{}", oauth_error_message(.error, .description.as_deref(), .uri.as_deref()))]
    OAuth {
        error: String,
        description: Option<String>,
        uri: Option<String>,
    },
    #[error(
        "the authorization response names issuer {got} but this login started at {expected}, \
         so it was discarded and its code not used (RFC 9207: a mix-up attack looks like this, \
         and so does an authorization server whose issuer changed); start the login again, \
         which asks the server for its authorization server anew"
    )]
    IssuerMismatch { expected: String, got: String },
    #[error(
        "the authorization server announces the iss parameter (RFC 9207) but its response has \
         none, so it was discarded; start the login again"
    )]
    MissingIssuer,
    #[error("the authorization response has neither a code nor an error; start the login again")]
    MissingCode,
    #[error(
        "the authorization response repeats the parameter `{name}` (RFC 6749 forbids it), \
         so it was discarded; start the login again"
    )]
    DuplicateParameter { name: String },
    /// A newer login registered the same callback path on the same port.
    #[error("a newer login for the same server replaced this one")]
    Superseded,
    /// The listener stopped (daemon shutdown, or the socket failed) before the browser came back.
    #[error(
        "the callback listener stopped before the browser came back ({reason}); start the login again"
    )]
    ListenerClosed { reason: String },
}

impl CallbackError {
    /// A stable machine-readable name, for logs and `data.kind`-style reporting.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::OAuth { .. } => "oauthError",
            Self::IssuerMismatch { .. } => "issuerMismatch",
            Self::MissingIssuer => "missingIssuer",
            Self::MissingCode => "missingCode",
            Self::DuplicateParameter { .. } => "duplicateParameter",
            Self::Superseded => "superseded",
            Self::ListenerClosed { .. } => "listenerClosed",
        }
    }
}

pub(super) fn oauth_error_message(
    error: &str,
    description: Option<&str>,
    uri: Option<&str>,
) -> String {
    let mut message = format!("the authorization server refused the login: {error}");
    if let Some(description) = description {
        message.push_str(&format!(" ({description})"));
    }
    if let Some(uri) = uri {
        message.push_str(&format!("; see {uri}"));
    }
    message.push_str(match error {
        "access_denied" => "; access was declined: start the login again and approve it",
        "invalid_scope" => "; check the scopes configured for this server, then log in again",
        _ => "; start the login again",
    });
    message
}

/// Why a response on a login's own path was discarded: it cannot be shown to belong to that
/// login, so it must not end it (rule 14). The login keeps waiting for the real redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DiscardReason {
    #[error(
        "the authorization response has no state, so it cannot be matched to the login that \
         is waiting (a reloaded page or a cut-off link)"
    )]
    MissingState,
    #[error(
        "the state of the authorization response is not that of the login that is waiting \
         (an old browser tab, or a link someone else made)"
    )]
    StateMismatch,
    #[error(
        "the authorization response repeats the state parameter (RFC 6749 forbids it), so it \
         cannot be matched to the login that is waiting"
    )]
    RepeatedState,
}

impl DiscardReason {
    /// A stable machine-readable name, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MissingState => "missingState",
            Self::StateMismatch => "stateMismatch",
            Self::RepeatedState => "repeatedState",
        }
    }
}

/// What a request to the listener is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedCallback {
    /// Another path or method (favicon, `/`, another login's id, HEAD): not ours, the login
    /// goes on.
    NotOurs,
    /// A GET on this login's path that cannot be this login's response: answered with a
    /// page, the login goes on.
    Discarded(DiscardReason),
    /// A GET on this login's path with its state: the login ends with this outcome.
    Outcome(CallbackOutcome),
}

/// Checks one request to the listener (`path_and_query` is the request target as received)
/// against a pending login. See the module documentation for the policy.
pub fn parse_callback(
    method: &str,
    path_and_query: &str,
    expected: &ExpectedCallback,
) -> ParsedCallback {
    let (path, query) = split_target(path_and_query);
    if method != "GET" || path != expected.callback_path {
        return ParsedCallback::NotOurs;
    }
    match check_response(query, expected) {
        Ok(outcome) => ParsedCallback::Outcome(outcome),
        Err(reason) => ParsedCallback::Discarded(reason),
    }
}

/// Why a pasted text was not taken as this login's redirect. The login keeps waiting, so the
/// person can paste again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    #[error(
        "nothing was pasted: paste the address the browser shows after you approve access \
         (its path ends with {expected_path})"
    )]
    Empty { expected_path: String },
    #[error(
        "the pasted text is not a URL: copy the whole address from the browser's address bar \
         after you approve access (its path ends with {expected_path})"
    )]
    NotAUrl { expected_path: String },
    #[error(
        "the pasted address (path {got_path}) is not the redirect of this login, whose path ends \
         with {expected_path}: paste the address the browser landed on after you approved \
         access for this server"
    )]
    WrongPath {
        expected_path: String,
        got_path: String,
    },
    #[error(
        "the pasted address has no authorization response in it (no code, state or error \
         after '?'): copy the whole address, including everything after '?'"
    )]
    NoResponse { expected_path: String },
    #[error(
        "{reason}; it was discarded and the login is still waiting: paste the address the \
         browser landed on after you approved the newest authorization URL of this server"
    )]
    Discarded { reason: DiscardReason },
}

/// Checks a redirect URL pasted by a person whose browser could not reach the listener
/// (remote or forwarded setups). Any scheme host and port are accepted, since the browser may
/// have shown a forwarded address; the path must end with the login's callback path. A text
/// without a scheme (`127.0.0.1:8765/callback/..`) or only a path (`/callback/..?code=..`) is
/// read as http. `Ok` ends the login with the outcome, exactly as if the listener had
/// received it; `Err` means the text is not this login's redirect (a wrong or missing state
/// included, as on the listener) and the login keeps waiting.
pub fn parse_pasted_callback(
    url: &str,
    expected: &ExpectedCallback,
) -> Result<CallbackOutcome, PasteError> {
    let expected_path = expected.callback_path.clone();
    let text = url
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '<' | '>'))
        .trim();
    if text.is_empty() {
        return Err(PasteError::Empty { expected_path });
    }
    let parsed = if text.starts_with('/') {
        Url::parse(&format!("http://pasted.invalid{text}"))
    } else if text.contains("://") {
        Url::parse(text)
    } else {
        Url::parse(&format!("http://{text}"))
    };
    let parsed = match parsed {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => parsed,
        _ => return Err(PasteError::NotAUrl { expected_path }),
    };
    if !parsed.path().ends_with(&expected.callback_path) {
        return Err(PasteError::WrongPath {
            expected_path,
            got_path: truncate_chars(parsed.path(), 200),
        });
    }
    let query = parsed.query().unwrap_or("");
    let carries_response = form_urlencoded::parse(query.as_bytes()).any(|(name, value)| {
        matches!(name.as_ref(), "code" | "state" | "error" | "iss") && !value.is_empty()
    });
    if !carries_response {
        return Err(PasteError::NoResponse { expected_path });
    }
    check_response(query, expected).map_err(|reason| PasteError::Discarded { reason })
}

/// The path of the listener for a login: the path of the configured callback URL
/// (`mcp_oauth_callback_url`, trailing `/` dropped) or `/callback`, then `/<callback_id>`.
/// A forwarder in front of the listener must keep the path.
pub fn callback_path(callback_url: Option<&Url>, callback_id: &str) -> String {
    let prefix = callback_url.map_or(DEFAULT_CALLBACK_PREFIX, |url| {
        url.path().trim_end_matches('/')
    });
    format!("{prefix}/{callback_id}")
}

/// The redirect URI sent to the authorization server: the configured callback URL (its
/// scheme, host, port and path prefix; query and fragment dropped) with the callback id
/// appended, or `http://127.0.0.1:<port>/callback/<callback_id>` (RFC 8252 §7.3: the loopback
/// IP, never `localhost`, since servers compare the host exactly).
pub fn redirect_uri(callback_url: Option<&Url>, port: u16, callback_id: &str) -> String {
    match callback_url {
        Some(url) => {
            let mut url = url.clone();
            url.set_query(None);
            url.set_fragment(None);
            let path = callback_path(Some(&url), callback_id);
            url.set_path(&path);
            url.to_string()
        }
        None => format!(
            "http://127.0.0.1:{port}{}",
            callback_path(None, callback_id)
        ),
    }
}

/// Splits a request target into path and query; a fragment (browsers do not send one, a
/// pasted text might) is dropped.
pub(super) fn split_target(target: &str) -> (&str, &str) {
    let target = target.split_once('#').map_or(target, |(before, _)| before);
    target.split_once('?').unwrap_or((target, ""))
}

/// The parameters of an authorization response that matter here. Empty values are `None`.
#[derive(Default)]
pub(super) struct ResponseParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_uri: Option<String>,
    iss: Option<String>,
    /// `state` was given more than once.
    state_repeated: bool,
    /// The first other parameter of these given more than once.
    repeated: Option<&'static str>,
}

/// Reads the response parameters; later copies of a repeated parameter are ignored (and
/// recorded, since the response is refused for them).
pub(super) fn parse_response_params(query: &str) -> ResponseParams {
    let mut params = ResponseParams::default();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let (name, slot): (&'static str, _) = match name.as_ref() {
            "code" => ("code", &mut params.code),
            "state" => ("state", &mut params.state),
            "error" => ("error", &mut params.error),
            "error_description" => ("error_description", &mut params.error_description),
            "error_uri" => ("error_uri", &mut params.error_uri),
            "iss" => ("iss", &mut params.iss),
            _ => continue,
        };
        if slot.is_some() {
            if name == "state" {
                params.state_repeated = true;
            } else {
                params.repeated.get_or_insert(name);
            }
            continue;
        }
        *slot = Some(value.into_owned());
    }
    for slot in [
        &mut params.code,
        &mut params.state,
        &mut params.error,
        &mut params.error_description,
        &mut params.error_uri,
        &mut params.iss,
    ] {
        if slot.as_deref() == Some("") {
            *slot = None;
        }
    }
    params
}

/// The `state` of a request target, if it carries exactly one; lets the listener recognise a
/// redirect of a replaced login before judging it.
pub(super) fn single_state(query: &str) -> Option<String> {
    let params = parse_response_params(query);
    if params.state_repeated {
        return None;
    }
    params.state
}

/// The checks shared by the listener and the paste-back path, in the order of the policy.
/// `Err`: the response is discarded and the login keeps waiting.
pub(super) fn check_response(
    query: &str,
    expected: &ExpectedCallback,
) -> Result<CallbackOutcome, DiscardReason> {
    let params = parse_response_params(query);
    if params.state_repeated {
        return Err(DiscardReason::RepeatedState);
    }
    match params.state.as_deref() {
        None => return Err(DiscardReason::MissingState),
        Some(state) if !constant_time_eq(state, &expected.state) => {
            return Err(DiscardReason::StateMismatch);
        }
        Some(_) => {}
    }
    // From here on the response is this login's: what is wrong with it ends the login.
    if let Some(name) = params.repeated {
        return Ok(CallbackOutcome::Error(CallbackError::DuplicateParameter {
            name: name.to_owned(),
        }));
    }
    match (params.iss.as_deref(), expected.issuer.as_deref()) {
        (Some(got), Some(issuer)) if !issuer_eq(got, issuer) => {
            return Ok(CallbackOutcome::Error(CallbackError::IssuerMismatch {
                expected: issuer.to_owned(),
                got: clean_server_text(got),
            }));
        }
        (None, _) if expected.iss_required => {
            return Ok(CallbackOutcome::Error(CallbackError::MissingIssuer));
        }
        _ => {}
    }
    if let Some(error) = params.error {
        return Ok(CallbackOutcome::Error(CallbackError::OAuth {
            error: clean_server_text(&error),
            description: params.error_description.as_deref().map(clean_server_text),
            uri: params.error_uri.as_deref().map(clean_server_text),
        }));
    }
    Ok(match params.code {
        Some(code) => CallbackOutcome::Code { code },
        None => CallbackOutcome::Error(CallbackError::MissingCode),
    })
}

/// RFC 9207 §2.4 as MCP 2026-07-28 applies it: the decoded `iss` and the recorded issuer are
/// compared as plain strings (RFC 3986 §6.2.1). No scheme or host case folding, no
/// default-port elision, no trailing-slash or percent-encoding normalisation: `https://a/`
/// is not `https://a`.
pub(super) fn issuer_eq(got: &str, expected: &str) -> bool {
    got == expected
}

/// Compares without stopping at the first difference, so response time says nothing about
/// how much of a guessed state was right.
pub(super) fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Authorization-server text goes into pages, logs and notifications: no control characters,
/// bounded length.
pub(super) fn clean_server_text(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    truncate_chars(&cleaned, MAX_SERVER_TEXT_CHARS)
}

pub(super) fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

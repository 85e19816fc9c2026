//! Client ID Metadata Documents (rule 11, draft-ietf-oauth-client-id-metadata-document).
//!
//! The daemon uses `<base>/<callback_id>/client.json?redirect_uri=<redirect URI>` as its
//! client id, and `serve-client-metadata` answers that URL with the document. Both sides use
//! this module, so the `client_id` in the document matches the URL byte for byte.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use url::Url;

use crate::oauth::discovery::AuthServerMetadata;
use crate::oauth::http::is_loopback_host;

/// Everything but RFC 3986 unreserved characters is encoded, so there is exactly one
/// spelling of a client id URL.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The file name under the callback id.
pub const DOCUMENT_NAME: &str = "client.json";

/// Why a client id URL (or base) is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdUrlError {
    #[error("client metadata URL {url:?} is not a URL: {reason}")]
    NotAUrl { url: String, reason: String },
    #[error("client metadata URL {url} must use https (plain http only for loopback hosts)")]
    Insecure { url: String },
    #[error("client metadata URL {url} must not contain a user name or password")]
    UserInfo { url: String },
    #[error("client metadata URL base {url} must not contain a query")]
    Query { url: String },
    #[error("client metadata URL {url} must not contain a fragment")]
    Fragment { url: String },
    #[error("client metadata URL {url} must not contain . or .. path segments")]
    DotSegment { url: String },
    #[error("client metadata URL {url} must have a path (not just /)")]
    RootPath { url: String },
}

/// Checks a `client_metadata_url_base`: https (or loopback http), no userinfo, query,
/// fragment or dot segments (also percent-encoded, which URL parsers silently resolve).
pub fn validate_base(base: &str) -> Result<Url, CimdUrlError> {
    let url = validate_common(base)?;
    if url.query().is_some() {
        return Err(CimdUrlError::Query {
            url: base.to_string(),
        });
    }
    Ok(url)
}

/// Checks a fixed `client_metadata_url`: as [`validate_base`], but a query is allowed and
/// the path must not be the root.
pub fn validate_client_id_url(client_id: &str) -> Result<Url, CimdUrlError> {
    let url = validate_common(client_id)?;
    if url.path() == "/" || url.path().is_empty() {
        return Err(CimdUrlError::RootPath {
            url: client_id.to_string(),
        });
    }
    Ok(url)
}

fn validate_common(text: &str) -> Result<Url, CimdUrlError> {
    let url = Url::parse(text).map_err(|e| CimdUrlError::NotAUrl {
        url: text.to_string(),
        reason: e.to_string(),
    })?;
    let owned = || text.to_string();
    let secure =
        url.scheme() == "https" || (url.scheme() == "http" && is_loopback_host(url.host()));
    if !secure {
        return Err(CimdUrlError::Insecure { url: owned() });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(CimdUrlError::UserInfo { url: owned() });
    }
    if url.fragment().is_some() || text.contains('#') {
        return Err(CimdUrlError::Fragment { url: owned() });
    }
    if has_dot_segment(raw_path(text)) {
        return Err(CimdUrlError::DotSegment { url: owned() });
    }
    Ok(url)
}

/// The path as typed, before a URL parser resolves dot segments away.
fn raw_path(text: &str) -> &str {
    let after_scheme = text.split_once("://").map_or(text, |(_, rest)| rest);
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    let before_query = &after_scheme[..end];
    match before_query.find(['/', '\\']) {
        Some(start) => &before_query[start..],
        None => "",
    }
}

/// True when a path has a `.` or `..` segment, literally or percent-encoded (`%2e`, `%2E`).
fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(is_dot_segment)
}

/// `.` or `..`, each dot literal or percent-encoded; no allocation (the document host runs
/// this on every request).
fn is_dot_segment(segment: &str) -> bool {
    let mut rest = segment.as_bytes();
    let mut dots = 0;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', e, tail @ ..] if e.eq_ignore_ascii_case(&b'e') => tail,
            _ => return false,
        };
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
    dots > 0
}

/// Percent-encodes a query component value (all but unreserved characters).
pub fn encode_component(value: &str) -> String {
    utf8_percent_encode(value, COMPONENT).to_string()
}

/// `<base without trailing />/<callback_id>/client.json?redirect_uri=<encoded>`: a document
/// scoped to one callback, so any ephemeral port works. `base` must have passed
/// [`validate_base`].
pub fn client_metadata_url(base: &Url, callback_id: &str, redirect_uri: &Url) -> Url {
    let text = format!(
        "{}/{}/{}?redirect_uri={}",
        base.as_str().trim_end_matches('/'),
        callback_id,
        DOCUMENT_NAME,
        encode_component(redirect_uri.as_str())
    );
    Url::parse(&text).expect("a validated base with an encoded query parses")
}

/// A valid request for a document, borrowing from the request target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentTarget<'a> {
    pub callback_id: &'a str,
    /// The redirect URI, decoded; as [`Url::as_str`] spells it.
    pub redirect_uri: String,
}

/// Why a document request was refused. `NotFound` maps to 404, the rest to 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CimdRequestError {
    #[error("no client metadata document at this path")]
    NotFound,
    #[error("path contains . or .. segments")]
    DotSegment,
    #[error("the redirect_uri query parameter is required")]
    MissingRedirectUri,
    #[error("unexpected query parameter {0:?}; only redirect_uri is accepted")]
    UnexpectedParameter(String),
    #[error("redirect_uri is refused: {0}")]
    BadRedirectUri(String),
    #[error(
        "the request URL is not in canonical form (percent-encode everything but A-Z a-z 0-9 - . _ ~)"
    )]
    NonCanonical,
}

/// Parses a document request `path_and_query` (as received, still percent-encoded) served
/// under `path_prefix` (the path of the public base URL). Only a loopback `http` redirect URI
/// ending in `/callback/<the same callback_id>` is accepted: anything else would let anyone
/// mint a trusted-looking client that redirects to their own site. The request must be in the
/// canonical form [`client_metadata_url`] produces, so the document's `client_id` is exactly
/// the URL the authorization server fetched.
///
/// A request of the plain shape the daemon produces is recognized in one pass, without a
/// URL parser (`canonical.rs`); any other goes through the URL parser, which also words
/// the refusal.
pub fn check_document_request<'a>(
    path_prefix: &str,
    path_and_query: &'a str,
) -> Result<DocumentTarget<'a>, CimdRequestError> {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    if has_dot_segment(path) {
        return Err(CimdRequestError::DotSegment);
    }
    let prefix = path_prefix.trim_end_matches('/');
    let rest = path
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or(CimdRequestError::NotFound)?;
    let (callback_id, file) = rest.split_once('/').ok_or(CimdRequestError::NotFound)?;
    if file != DOCUMENT_NAME || !is_callback_id(callback_id) {
        return Err(CimdRequestError::NotFound);
    }
    let query = query.ok_or(CimdRequestError::MissingRedirectUri)?;
    if let Some(redirect_uri) = canonical::plain_redirect_query(query, callback_id) {
        return Ok(DocumentTarget {
            callback_id,
            redirect_uri,
        });
    }
    let redirect_uri = check_query(query, callback_id)?;
    Ok(DocumentTarget {
        callback_id,
        redirect_uri: redirect_uri.into(),
    })
}

/// The query of a document request through the URL parser: the one `redirect_uri`, checked.
fn check_query(query: &str, callback_id: &str) -> Result<Url, CimdRequestError> {
    let mut redirect = None;
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name != "redirect_uri" {
            return Err(CimdRequestError::UnexpectedParameter(name.into_owned()));
        }
        if redirect.replace(value.into_owned()).is_some() {
            return Err(CimdRequestError::UnexpectedParameter("redirect_uri".into()));
        }
    }
    let redirect = redirect.ok_or(CimdRequestError::MissingRedirectUri)?;
    let redirect_uri = check_redirect_uri(&redirect, callback_id)?;
    if query != format!("redirect_uri={}", encode_component(redirect_uri.as_str())) {
        return Err(CimdRequestError::NonCanonical);
    }
    Ok(redirect_uri)
}

fn is_callback_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check_redirect_uri(text: &str, callback_id: &str) -> Result<Url, CimdRequestError> {
    let bad = |reason: &str| CimdRequestError::BadRedirectUri(reason.to_string());
    let url = Url::parse(text).map_err(|_| bad("not a URL"))?;
    if has_dot_segment(raw_path(text)) {
        return Err(bad("must not contain . or .. segments"));
    }
    if url.as_str() != text {
        return Err(CimdRequestError::NonCanonical);
    }
    if url.scheme() != "http" || !is_loopback_host(url.host()) {
        return Err(bad("must be http on a loopback host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not contain a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not contain a query or fragment"));
    }
    let mut segments = url.path_segments().map(|s| s.rev()).ok_or(bad("no path"))?;
    if segments.next() != Some(callback_id) || segments.next() != Some("callback") {
        return Err(bad(
            "must end in /callback/<the callback id of this document>",
        ));
    }
    Ok(url)
}

/// The document served at a client id URL (rule 11): `client_id` is the URL itself, a public
/// native client that uses the authorization code and refresh token grants.
pub fn client_metadata_document(
    client_id_url: &Url,
    client_name: &str,
    redirect_uri: &Url,
    client_uri: Option<&Url>,
    logo_uri: Option<&Url>,
) -> serde_json::Value {
    let mut document = serde_json::json!({
        "client_id": client_id_url.as_str(),
        "client_name": client_name,
        "redirect_uris": [redirect_uri.as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    if let Some(map) = document.as_object_mut() {
        if let Some(uri) = client_uri {
            map.insert("client_uri".into(), uri.as_str().into());
        }
        if let Some(uri) = logo_uri {
            map.insert("logo_uri".into(), uri.as_str().into());
        }
    }
    document
}

/// Which CIMD precondition (rule 11) is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CimdUnsupported {
    #[error("the authorization server does not advertise client_id_metadata_document_supported")]
    NotAdvertised,
    #[error(
        "the authorization server does not list \"none\" in token_endpoint_auth_methods_supported"
    )]
    NoPublicClients,
    #[error("the redirect URI is not a loopback http URI")]
    RedirectNotLoopback,
}

/// Rule 11: the server takes metadata document URLs as client ids, accepts public clients,
/// and the redirect is a native loopback one.
pub fn cimd_supported(
    metadata: &AuthServerMetadata,
    redirect_uri: &Url,
) -> Result<(), CimdUnsupported> {
    if !metadata.client_id_metadata_document_supported {
        return Err(CimdUnsupported::NotAdvertised);
    }
    let public = metadata
        .token_endpoint_auth_methods_supported
        .as_ref()
        .is_some_and(|m| m.iter().any(|m| m == "none"));
    if !public {
        return Err(CimdUnsupported::NoPublicClients);
    }
    if redirect_uri.scheme() != "http" || !is_loopback_host(redirect_uri.host()) {
        return Err(CimdUnsupported::RedirectNotLoopback);
    }
    Ok(())
}

mod canonical;

#[cfg(test)]
mod tests;

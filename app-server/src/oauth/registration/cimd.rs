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

/// True when a path has a `.` or `..` segment, literally or percent-encoded (`%2e`).
fn has_dot_segment(path: &str) -> bool {
    path.split(['/', '\\']).any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
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

/// A valid request for a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentRequest {
    pub callback_id: String,
    pub redirect_uri: Url,
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
pub fn parse_document_request(
    path_prefix: &str,
    path_and_query: &str,
) -> Result<DocumentRequest, CimdRequestError> {
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
    Ok(DocumentRequest {
        callback_id: callback_id.to_string(),
        redirect_uri,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "XuuuHAzzHOni";

    fn redirect() -> Url {
        Url::parse("http://127.0.0.1:8765/callback/XuuuHAzzHOni").unwrap()
    }

    #[test]
    fn client_metadata_url_shape() {
        let expected = "https://ide.example.com/mcp/oauth/XuuuHAzzHOni/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni";
        for base in [
            "https://ide.example.com/mcp/oauth",
            "https://ide.example.com/mcp/oauth/",
        ] {
            let base = validate_base(base).unwrap();
            assert_eq!(
                client_metadata_url(&base, ID, &redirect()).as_str(),
                expected
            );
        }
        let root = validate_base("https://ide.example.com").unwrap();
        let url = client_metadata_url(&root, ID, &redirect());
        assert_eq!(url.path(), "/XuuuHAzzHOni/client.json");
        assert!(validate_client_id_url(url.as_str()).is_ok());
    }

    #[test]
    fn validate_base_table() {
        let ok = [
            "https://ide.example.com/mcp/oauth",
            "https://ide.example.com",
            "http://127.0.0.1:9000/meta",
            "http://localhost:9000",
            "http://[::1]:9000/x",
            "http://127.0.0.2:9000/x",
            "HTTPS://IDE.EXAMPLE.COM/Mcp",
        ];
        for base in ok {
            assert!(validate_base(base).is_ok(), "{base}");
        }
        type Check = fn(&CimdUrlError) -> bool;
        let bad: [(&str, Check); 14] = [
            ("http://localhost.evil.example/x", |e| {
                matches!(e, CimdUrlError::Insecure { .. })
            }),
            ("http://127.0.0.1.nip.io/x", |e| {
                matches!(e, CimdUrlError::Insecure { .. })
            }),
            ("https://ide.example.com/x?", |e| {
                matches!(e, CimdUrlError::Query { .. })
            }),
            ("ftp://ide.example.com/x", |e| {
                matches!(e, CimdUrlError::Insecure { .. })
            }),
            ("http://ide.example.com/x", |e| {
                matches!(e, CimdUrlError::Insecure { .. })
            }),
            ("https://user:pw@ide.example.com/x", |e| {
                matches!(e, CimdUrlError::UserInfo { .. })
            }),
            ("https://user@ide.example.com/x", |e| {
                matches!(e, CimdUrlError::UserInfo { .. })
            }),
            ("https://ide.example.com/x?a=b", |e| {
                matches!(e, CimdUrlError::Query { .. })
            }),
            ("https://ide.example.com/x#f", |e| {
                matches!(e, CimdUrlError::Fragment { .. })
            }),
            ("https://ide.example.com/a/../b", |e| {
                matches!(e, CimdUrlError::DotSegment { .. })
            }),
            ("https://ide.example.com/a/./b", |e| {
                matches!(e, CimdUrlError::DotSegment { .. })
            }),
            ("https://ide.example.com/a/%2e%2E/b", |e| {
                matches!(e, CimdUrlError::DotSegment { .. })
            }),
            ("https://ide.example.com/a/.%2e", |e| {
                matches!(e, CimdUrlError::DotSegment { .. })
            }),
            ("not a url", |e| matches!(e, CimdUrlError::NotAUrl { .. })),
        ];
        for (base, check) in bad {
            let err = validate_base(base).unwrap_err();
            assert!(check(&err), "{base}: {err:?}");
        }
        // Scheme and host are normalised, so the daemon and the host agree on the spelling.
        let upper = validate_base("HTTPS://IDE.EXAMPLE.COM/Mcp/").unwrap();
        assert_eq!(
            client_metadata_url(&upper, ID, &redirect()).as_str(),
            "https://ide.example.com/Mcp/XuuuHAzzHOni/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni"
        );
    }

    #[test]
    fn fixed_client_id_url() {
        assert!(
            validate_client_id_url("https://conformance-test.local/client-metadata.json").is_ok()
        );
        assert!(validate_client_id_url("https://c.example/client.json?v=1").is_ok());
        assert!(matches!(
            validate_client_id_url("https://c.example/"),
            Err(CimdUrlError::RootPath { .. })
        ));
        assert!(matches!(
            validate_client_id_url("https://c.example"),
            Err(CimdUrlError::RootPath { .. })
        ));
    }

    #[test]
    fn document_request_round_trips_the_url() {
        let base = validate_base("https://ide.example.com/mcp/oauth").unwrap();
        let url = client_metadata_url(&base, ID, &redirect());
        let path_and_query = format!("{}?{}", url.path(), url.query().unwrap());
        let request = parse_document_request(base.path(), &path_and_query).unwrap();
        assert_eq!(request.callback_id, ID);
        assert_eq!(request.redirect_uri, redirect());
        assert_eq!(
            client_metadata_url(&base, &request.callback_id, &request.redirect_uri),
            url
        );

        // Under a configured callback prefix, and on the root path.
        let prefixed = Url::parse("http://localhost:9/oauth/callback/XuuuHAzzHOni").unwrap();
        let url = client_metadata_url(&base, ID, &prefixed);
        let pq = format!("{}?{}", url.path(), url.query().unwrap());
        assert_eq!(
            parse_document_request("/mcp/oauth/", &pq)
                .unwrap()
                .redirect_uri,
            prefixed
        );
        let root = validate_base("https://ide.example.com").unwrap();
        let url = client_metadata_url(&root, ID, &redirect());
        let pq = format!("{}?{}", url.path(), url.query().unwrap());
        assert!(parse_document_request(root.path(), &pq).is_ok());
    }

    #[test]
    fn document_request_refusals() {
        let enc = |s: &str| encode_component(s);
        let good_q = format!("redirect_uri={}", enc(redirect().as_str()));
        let p = "/mcp/oauth";
        let cases: Vec<(String, CimdRequestError)> = vec![
            (
                format!("/other/{ID}/client.json?{good_q}"),
                CimdRequestError::NotFound,
            ),
            (
                format!("/mcp/oauth/{ID}/other.json?{good_q}"),
                CimdRequestError::NotFound,
            ),
            (
                format!("/mcp/oauth/{ID}/client.json/x?{good_q}"),
                CimdRequestError::NotFound,
            ),
            (
                format!("/mcp/oauthx/{ID}/client.json?{good_q}"),
                CimdRequestError::NotFound,
            ),
            (
                format!("/mcp/oauth/bad$id/client.json?{good_q}"),
                CimdRequestError::NotFound,
            ),
            (
                format!("/mcp/oauth/../oauth/{ID}/client.json?{good_q}"),
                CimdRequestError::DotSegment,
            ),
            (
                format!("/mcp/oauth/%2E/{ID}/client.json?{good_q}"),
                CimdRequestError::DotSegment,
            ),
            (
                format!("/mcp/oauth/{ID}/client.json"),
                CimdRequestError::MissingRedirectUri,
            ),
            (
                format!("/mcp/oauth/{ID}/client.json?"),
                CimdRequestError::MissingRedirectUri,
            ),
            (
                format!("/mcp/oauth/{ID}/client.json?{good_q}&x=1"),
                CimdRequestError::UnexpectedParameter("x".into()),
            ),
            (
                format!("/mcp/oauth/{ID}/client.json?{good_q}&{good_q}"),
                CimdRequestError::UnexpectedParameter("redirect_uri".into()),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("https://evil.example/callback/XuuuHAzzHOni")
                ),
                CimdRequestError::BadRedirectUri("must be http on a loopback host".into()),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://evil.example/callback/XuuuHAzzHOni")
                ),
                CimdRequestError::BadRedirectUri("must be http on a loopback host".into()),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://127.0.0.1:1/callback/OTHERidOTHER")
                ),
                CimdRequestError::BadRedirectUri(
                    "must end in /callback/<the callback id of this document>".into(),
                ),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://127.0.0.1:1/elsewhere/XuuuHAzzHOni")
                ),
                CimdRequestError::BadRedirectUri(
                    "must end in /callback/<the callback id of this document>".into(),
                ),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://127.0.0.1:1/callback/XuuuHAzzHOni?x=1")
                ),
                CimdRequestError::BadRedirectUri("must not contain a query or fragment".into()),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://u@127.0.0.1:1/callback/XuuuHAzzHOni")
                ),
                CimdRequestError::BadRedirectUri("must not contain a user name or password".into()),
            ),
            (
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://127.0.0.1:1/x/%2e%2e/callback/XuuuHAzzHOni")
                ),
                CimdRequestError::BadRedirectUri("must not contain . or .. segments".into()),
            ),
            (
                // Not the canonical spelling: ':' and '/' left unencoded.
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri=http://127.0.0.1:8765/callback/{ID}"
                ),
                CimdRequestError::NonCanonical,
            ),
            (
                // A host the URL parser would rewrite.
                format!(
                    "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                    enc("http://LOCALHOST:1/callback/XuuuHAzzHOni")
                ),
                CimdRequestError::NonCanonical,
            ),
        ];
        for (request, expected) in cases {
            assert_eq!(
                parse_document_request(p, &request),
                Err(expected),
                "{request}"
            );
        }
    }

    #[test]
    fn document_has_rule_11_fields() {
        let base = validate_base("https://ide.example.com/m").unwrap();
        let client_id = client_metadata_url(&base, ID, &redirect());
        let doc = client_metadata_document(&client_id, "My IDE", &redirect(), None, None);
        assert_eq!(
            doc,
            serde_json::json!({
                "client_id": client_id.as_str(),
                "client_name": "My IDE",
                "redirect_uris": ["http://127.0.0.1:8765/callback/XuuuHAzzHOni"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            })
        );
        let client_uri = Url::parse("https://ide.example.com/").unwrap();
        let with_uri =
            client_metadata_document(&client_id, "x", &redirect(), Some(&client_uri), None);
        assert_eq!(with_uri["client_uri"], "https://ide.example.com/");
        assert!(with_uri.get("client_secret").is_none());
    }

    #[test]
    fn cimd_preconditions() {
        let mut metadata =
            AuthServerMetadata::legacy_defaults(&Url::parse("https://as.example").unwrap());
        assert_eq!(
            cimd_supported(&metadata, &redirect()),
            Err(CimdUnsupported::NotAdvertised)
        );
        metadata.client_id_metadata_document_supported = true;
        assert_eq!(
            cimd_supported(&metadata, &redirect()),
            Err(CimdUnsupported::NoPublicClients)
        );
        metadata.token_endpoint_auth_methods_supported = Some(vec!["none".into()]);
        assert_eq!(cimd_supported(&metadata, &redirect()), Ok(()));
        let remote = Url::parse("https://ide.example.com/callback/x").unwrap();
        assert_eq!(
            cimd_supported(&metadata, &remote),
            Err(CimdUnsupported::RedirectNotLoopback)
        );
    }
}

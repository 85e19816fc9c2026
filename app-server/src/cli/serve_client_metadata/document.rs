//! What the host answers for one request target: the document, or a refusal, before it
//! becomes HTTP. Request parsing and validation come from `oauth/registration/cimd.rs` (the
//! module the daemon builds its client ids with); the document is rendered from a template
//! made once at start-up, so a request costs its validation and one string.

use url::Url;

use crate::oauth::registration::cimd::{
    CimdRequestError, CimdUrlError, DOCUMENT_NAME, check_document_request,
    client_metadata_document, validate_base,
};

/// Documents above this size are refused by strict authorization servers (the draft's bound).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// Longest accepted `--client-name`, so documents stay well under [`MAX_DOCUMENT_BYTES`].
pub const MAX_CLIENT_NAME_BYTES: usize = 200;
/// Longest accepted `--client-uri` / `--logo-uri`.
pub const MAX_URI_BYTES: usize = 512;

/// Why the host cannot start with the given settings.
#[derive(Debug, thiserror::Error)]
pub enum HostConfigError {
    #[error("--public-base-url is not usable: {0}")]
    PublicBase(#[from] CimdUrlError),
    #[error("--client-name must not be empty")]
    EmptyClientName,
    #[error("--client-name is longer than {MAX_CLIENT_NAME_BYTES} bytes")]
    ClientNameTooLong,
    #[error("--{flag} {value:?} is not usable: {reason}")]
    BadUri {
        flag: &'static str,
        value: String,
        reason: String,
    },
}

/// The settings of a running host: everything a document depends on besides its URL.
#[derive(Debug, Clone)]
pub struct DocumentHost {
    public_base: Url,
    /// The public base without its trailing `/`: the start of every `client_id`.
    base_text: String,
    /// The public base's path without its trailing `/`.
    prefix: String,
    /// `<prefix>/healthz`.
    prefixed_health: String,
    template: Template,
}

/// What the host answers to one request, before it becomes HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

impl DocumentHost {
    /// Validates the settings: the public base as the daemon validates `clientMetadataUrlBase`
    /// (so both build the same URLs), a non-empty name, https URIs.
    pub fn new(
        public_base_url: &str,
        client_name: &str,
        client_uri: Option<&str>,
        logo_uri: Option<&str>,
    ) -> Result<Self, HostConfigError> {
        let public_base = validate_base(public_base_url)?;
        if client_name.trim().is_empty() {
            return Err(HostConfigError::EmptyClientName);
        }
        if client_name.len() > MAX_CLIENT_NAME_BYTES {
            return Err(HostConfigError::ClientNameTooLong);
        }
        let client_uri = client_uri.map(|u| https_uri("client-uri", u)).transpose()?;
        let logo_uri = logo_uri.map(|u| https_uri("logo-uri", u)).transpose()?;
        let prefix = public_base.path().trim_end_matches('/').to_string();
        Ok(Self {
            base_text: public_base.as_str().trim_end_matches('/').to_string(),
            prefixed_health: format!("{prefix}/healthz"),
            prefix,
            template: Template::new(client_name, client_uri.as_ref(), logo_uri.as_ref()),
            public_base,
        })
    }

    pub fn public_base(&self) -> &Url {
        &self.public_base
    }

    /// The path prefix requests are matched under: the public base's path.
    pub fn path_prefix(&self) -> &str {
        self.public_base.path()
    }

    /// Answers one request target (path and query as received, still percent-encoded).
    pub fn answer(&self, path_and_query: &str) -> Answer {
        let request = match check_document_request(&self.prefix, path_and_query) {
            Ok(r) => r,
            Err(CimdRequestError::NotFound) => {
                return error_answer(404, "not_found", &CimdRequestError::NotFound.to_string());
            }
            Err(e) => return error_answer(400, "invalid_request", &e.to_string()),
        };
        // The request is in the canonical form `client_metadata_url` produces (the parser
        // refuses any other), so the client id is the public base plus the request's own
        // path suffix and query, byte for byte.
        let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
        let body = self.template.render(
            [
                &self.base_text,
                "/",
                request.callback_id,
                "/",
                DOCUMENT_NAME,
                "?",
                query,
            ],
            &request.redirect_uri,
        );
        if body.len() > MAX_DOCUMENT_BYTES {
            return error_answer(
                400,
                "invalid_request",
                &format!(
                    "the document would exceed {MAX_DOCUMENT_BYTES} bytes; the redirect_uri is too long"
                ),
            );
        }
        Answer {
            status: 200,
            content_type: "application/json",
            body,
        }
    }

    /// True for the health check paths: `/healthz`, and `<prefix>/healthz` for proxies
    /// that forward only the prefix.
    pub(super) fn is_health_path(&self, path: &str) -> bool {
        path == "/healthz" || path == self.prefixed_health
    }
}

fn https_uri(flag: &'static str, value: &str) -> Result<Url, HostConfigError> {
    let bad = |reason: String| HostConfigError::BadUri {
        flag,
        value: value.to_string(),
        reason,
    };
    if value.len() > MAX_URI_BYTES {
        return Err(bad(format!("longer than {MAX_URI_BYTES} bytes")));
    }
    let url = Url::parse(value).map_err(|e| bad(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(bad("must be an https URL".into()));
    }
    Ok(url)
}

/// The one error format of the host: `{"error", "error_description"}` (served with
/// `Cache-Control: no-store`).
pub(super) fn error_answer(status: u16, error: &str, description: &str) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: serde_json::json!({"error": error, "error_description": description}).to_string(),
    }
}

/// Marker values the template is rendered with. Neither can occur elsewhere in the text: a
/// `"` inside the name is escaped, so the quoted marker cannot match there, and the other
/// URIs of a document are https.
const CLIENT_ID_MARKER: &str = "http://client-id.invalid/";
const REDIRECT_MARKER: &str = "http://127.0.0.1/callback/redirect-marker";

/// The document with its two per-request values (`client_id` and the one redirect URI) cut
/// out. Made once from [`client_metadata_document`] itself, so a rendered document is byte
/// for byte what that function serializes to.
#[derive(Debug, Clone)]
struct Template {
    /// Text before the first value, between them, after the second.
    parts: [String; 3],
    /// Whether `client_id` comes before the redirect URI in the text.
    client_id_first: bool,
}

impl Template {
    fn new(client_name: &str, client_uri: Option<&Url>, logo_uri: Option<&Url>) -> Self {
        let marker_id = Url::parse(CLIENT_ID_MARKER).expect("a fixed URL parses");
        let marker_redirect = Url::parse(REDIRECT_MARKER).expect("a fixed URL parses");
        let text = client_metadata_document(
            &marker_id,
            client_name,
            &marker_redirect,
            client_uri,
            logo_uri,
        )
        .to_string();
        let id = format!("\"{CLIENT_ID_MARKER}\"");
        let redirect = format!("\"{REDIRECT_MARKER}\"");
        let (i, r) = (
            text.find(&id).expect("the document holds its client_id"),
            text.find(&redirect)
                .expect("the document holds its redirect URI"),
        );
        let ((first, first_len), (second, second_len)) = if i < r {
            ((i, id.len()), (r, redirect.len()))
        } else {
            ((r, redirect.len()), (i, id.len()))
        };
        Self {
            parts: [
                text[..first].to_string(),
                text[first + first_len..second].to_string(),
                text[second + second_len..].to_string(),
            ],
            client_id_first: i < r,
        }
    }

    /// The document for a `client_id` given as pieces to concatenate, and a redirect URI.
    fn render(&self, client_id: [&str; 7], redirect_uri: &str) -> String {
        let id_len: usize = client_id.iter().map(|p| p.len()).sum();
        let fixed: usize = self.parts.iter().map(String::len).sum();
        let mut out = String::with_capacity(fixed + id_len + redirect_uri.len() + 16);
        out.push_str(&self.parts[0]);
        if self.client_id_first {
            push_json_string(&mut out, &client_id);
        } else {
            push_json_string(&mut out, &[redirect_uri]);
        }
        out.push_str(&self.parts[1]);
        if self.client_id_first {
            push_json_string(&mut out, &[redirect_uri]);
        } else {
            push_json_string(&mut out, &client_id);
        }
        out.push_str(&self.parts[2]);
        out
    }
}

/// Appends the concatenation of `pieces` as a JSON string, escaped as `serde_json` escapes.
/// Pieces without a character to escape (every URL piece of a valid request) are copied
/// whole.
fn push_json_string(out: &mut String, pieces: &[&str]) {
    out.push('"');
    for piece in pieces {
        if !piece.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
            out.push_str(piece);
            continue;
        }
        let mut clean = 0;
        for (at, byte) in piece.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            out.push_str(&piece[clean..at]);
            if escape.is_empty() {
                out.push_str(&format!("\\u{byte:04x}"));
            } else {
                out.push_str(escape);
            }
            clean = at + 1;
        }
        out.push_str(&piece[clean..]);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::registration::cimd::client_metadata_url;

    const ID: &str = "XuuuHAzzHOni";
    const REDIRECT: &str = "http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni";

    fn host(base: &str) -> DocumentHost {
        DocumentHost::new(base, "Test IDE", Some("https://ide.example.com/"), None).unwrap()
    }

    #[test]
    fn document_client_id_is_the_public_url() {
        let h = host("https://ide.example.com/mcp/oauth/");
        let answer = h.answer(&format!(
            "/mcp/oauth/{ID}/client.json?redirect_uri={REDIRECT}"
        ));
        assert_eq!(answer.status, 200, "{answer:?}");
        let doc: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(
            doc["client_id"],
            format!("https://ide.example.com/mcp/oauth/{ID}/client.json?redirect_uri={REDIRECT}")
        );
        assert_eq!(doc["client_name"], "Test IDE");
        assert_eq!(doc["client_uri"], "https://ide.example.com/");
        assert_eq!(
            doc["redirect_uris"],
            serde_json::json!(["http://127.0.0.1:8765/callback/XuuuHAzzHOni"])
        );
        assert!(answer.body.len() < MAX_DOCUMENT_BYTES);
    }

    /// The template renders exactly what the shared document builder serializes, with the
    /// client id the daemon builds, for names that need escaping and every optional field.
    #[test]
    fn rendered_documents_equal_the_shared_builder_byte_for_byte() {
        let names = [
            "Test IDE",
            "Quote \" and \\ back\tslash\n\u{1}",
            "Ünïcødé ✓",
        ];
        let bases = [
            "https://ide.example.com/mcp/oauth/",
            "https://IDE.example.com:8443/m",
            "http://[::1]:9/a/b",
        ];
        let redirects = [
            format!("http://127.0.0.1:8765/callback/{ID}"),
            format!("http://localhost/x/callback/{ID}"),
            format!("http://[::1]:1/callback/{ID}"),
        ];
        for name in names {
            for (i, base) in bases.iter().enumerate() {
                let uri = (i > 0).then(|| Url::parse("https://ide.example.com/\"q").unwrap());
                let logo = (i == 1).then(|| Url::parse("https://ide.example.com/l.png").unwrap());
                let h = DocumentHost::new(
                    base,
                    name,
                    uri.as_ref().map(Url::as_str),
                    logo.as_ref().map(Url::as_str),
                )
                .unwrap();
                for redirect in &redirects {
                    let redirect = Url::parse(redirect).unwrap();
                    let client_id = client_metadata_url(h.public_base(), ID, &redirect);
                    let target = &client_id[url::Position::BeforePath..];
                    let answer = h.answer(target);
                    assert_eq!(answer.status, 200, "{target}: {answer:?}");
                    let expected = client_metadata_document(
                        &client_id,
                        name,
                        &redirect,
                        uri.as_ref(),
                        logo.as_ref(),
                    )
                    .to_string();
                    assert_eq!(answer.body, expected);
                }
            }
        }
    }

    #[test]
    fn refusals_map_to_404_and_400() {
        let h = host("https://ide.example.com/mcp/oauth");
        let cases = [
            (
                format!("/elsewhere/{ID}/client.json?redirect_uri={REDIRECT}"),
                404,
            ),
            (
                format!("/mcp/oauth/{ID}/client.json?redirect_uri={REDIRECT}&x=1"),
                400,
            ),
            (format!("/mcp/oauth/{ID}/client.json"), 400),
            (
                format!("/mcp/oauth/x/../{ID}/client.json?redirect_uri={REDIRECT}"),
                400,
            ),
        ];
        for (target, status) in cases {
            let answer = h.answer(&target);
            assert_eq!(answer.status, status, "{target}: {answer:?}");
            let body: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
            assert!(body["error_description"].is_string(), "{body}");
        }
    }

    #[test]
    fn oversized_documents_are_refused() {
        let h = host("https://ide.example.com/m");
        let long = "a".repeat(3000);
        let redirect = format!("http%3A%2F%2F127.0.0.1%3A1%2F{long}%2Fcallback%2F{ID}");
        let answer = h.answer(&format!("/m/{ID}/client.json?redirect_uri={redirect}"));
        assert_eq!(answer.status, 400, "{answer:?}");
        assert!(answer.body.contains("exceed"), "{}", answer.body);
    }

    #[test]
    fn settings_are_validated() {
        assert!(matches!(
            DocumentHost::new("http://ide.example.com/m", "x", None, None),
            Err(HostConfigError::PublicBase(CimdUrlError::Insecure { .. }))
        ));
        assert!(matches!(
            DocumentHost::new("https://ide.example.com/m?x=1", "x", None, None),
            Err(HostConfigError::PublicBase(CimdUrlError::Query { .. }))
        ));
        assert!(matches!(
            DocumentHost::new("https://ide.example.com/m", " ", None, None),
            Err(HostConfigError::EmptyClientName)
        ));
        assert!(matches!(
            DocumentHost::new(
                "https://ide.example.com/m",
                "x",
                Some("http://ide.example.com"),
                None
            ),
            Err(HostConfigError::BadUri {
                flag: "client-uri",
                ..
            })
        ));
        let h = DocumentHost::new("http://127.0.0.1:9/meta", "x", None, None).unwrap();
        assert_eq!(h.path_prefix(), "/meta");
        assert!(h.is_health_path("/healthz"));
        assert!(h.is_health_path("/meta/healthz"));
        assert!(!h.is_health_path("/meta/x/healthz"));
    }
}

//! `mcp-app-server serve-client-metadata`: the stateless host of the callback-scoped Client ID
//! Metadata Documents that the daemon uses as client ids (rule 11).
//!
//! It answers `GET <base path>/<callback_id>/client.json?redirect_uri=...` with the document
//! whose `client_id` is that URL under the configured *public* base, byte for byte. The
//! public base is configured rather than taken from the request because behind a TLS reverse
//! proxy the host sees neither the public scheme nor, often, the public host. URL building,
//! request parsing and the document all come from `oauth/registration/cimd.rs`, the module
//! the daemon builds its client ids with.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use url::Url;

use crate::oauth::registration::cimd::{
    CimdRequestError, CimdUrlError, client_metadata_document, client_metadata_url,
    parse_document_request, validate_base,
};

/// Where the host listens when no `--listen` is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Documents above this size are refused by strict authorization servers (the draft's bound).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
/// How long authorization servers may cache a document: it depends only on its URL.
pub const CACHE_CONTROL: &str = "public, max-age=3600";
/// Longest accepted `--client-name`, so documents stay well under [`MAX_DOCUMENT_BYTES`].
pub const MAX_CLIENT_NAME_BYTES: usize = 200;
/// Longest accepted `--client-uri` / `--logo-uri`.
pub const MAX_URI_BYTES: usize = 512;

/// Flags of `serve-client-metadata`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeClientMetadataArgs {
    /// Address to listen on (plain HTTP: put a TLS reverse proxy in front).
    #[arg(long, default_value = DEFAULT_LISTEN, env = "MCP_CLIENT_METADATA_LISTEN")]
    pub listen: SocketAddr,
    /// The public https URL the documents are served under, e.g.
    /// `https://ide.example.com/mcp/oauth`. Frontends pass the same value as
    /// `clientMetadataUrlBase`; its path is the prefix this host answers under. Plain http
    /// only for loopback hosts (local testing).
    #[arg(long, env = "MCP_CLIENT_METADATA_PUBLIC_BASE_URL")]
    pub public_base_url: String,
    /// `client_name` in the documents: what the consent screen shows.
    #[arg(long, default_value = crate::engine::CLIENT_NAME, env = "MCP_CLIENT_METADATA_CLIENT_NAME")]
    pub client_name: String,
    /// Optional `client_uri` (https): the product's home page.
    #[arg(long, env = "MCP_CLIENT_METADATA_CLIENT_URI")]
    pub client_uri: Option<String>,
    /// Optional `logo_uri` (https).
    #[arg(long, env = "MCP_CLIENT_METADATA_LOGO_URI")]
    pub logo_uri: Option<String>,
}

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
    client_name: String,
    client_uri: Option<Url>,
    logo_uri: Option<Url>,
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
        Ok(Self {
            public_base,
            client_name: client_name.to_string(),
            client_uri: client_uri.map(|u| https_uri("client-uri", u)).transpose()?,
            logo_uri: logo_uri.map(|u| https_uri("logo-uri", u)).transpose()?,
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
        let request = match parse_document_request(self.path_prefix(), path_and_query) {
            Ok(r) => r,
            Err(CimdRequestError::NotFound) => {
                return error_answer(404, "not_found", &CimdRequestError::NotFound.to_string());
            }
            Err(e) => return error_answer(400, "invalid_request", &e.to_string()),
        };
        let client_id = client_metadata_url(
            &self.public_base,
            &request.callback_id,
            &request.redirect_uri,
        );
        let document = client_metadata_document(
            &client_id,
            &self.client_name,
            &request.redirect_uri,
            self.client_uri.as_ref(),
            self.logo_uri.as_ref(),
        );
        let body = document.to_string();
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
    fn is_health_path(&self, path: &str) -> bool {
        path == "/healthz"
            || path == format!("{}/healthz", self.path_prefix().trim_end_matches('/'))
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

fn error_answer(status: u16, error: &str, description: &str) -> Answer {
    Answer {
        status,
        content_type: "application/json",
        body: serde_json::json!({"error": error, "error_description": description}).to_string(),
    }
}

/// The HTTP routes: `/healthz` and the documents. Only GET (and HEAD) are answered.
pub fn router(host: DocumentHost) -> Router {
    Router::new().fallback(handle).with_state(Arc::new(host))
}

async fn handle(State(host): State<Arc<DocumentHost>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut response =
            (StatusCode::METHOD_NOT_ALLOWED, "only GET is supported\n").into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    if host.is_health_path(uri.path()) {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let target = match uri.query() {
        Some(q) => format!("{}?{q}", uri.path()),
        None => uri.path().to_string(),
    };
    let answer = host.answer(&target);
    if answer.status == 200 {
        tracing::info!(path = %uri.path(), "served a client metadata document");
    } else {
        tracing::info!(status = answer.status, path = %uri.path(), reason = %answer.body, "refused a client metadata document request");
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let cache = if answer.status == 200 {
        CACHE_CONTROL
    } else {
        "no-store"
    };
    (
        status,
        [
            (header::CONTENT_TYPE, answer.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        answer.body,
    )
        .into_response()
}

/// Serves `host` on `listener` until `shutdown` completes. Tests run it in-process.
pub async fn serve(
    listener: tokio::net::TcpListener,
    host: DocumentHost,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(host))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The subcommand: validate the flags, listen, announce the address on stderr, serve until
/// SIGTERM or Ctrl-C.
pub async fn run(args: ServeClientMetadataArgs) -> ExitCode {
    let host = match DocumentHost::new(
        &args.public_base_url,
        &args.client_name,
        args.client_uri.as_deref(),
        args.logo_uri.as_deref(),
    ) {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve client metadata documents");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(address = %args.listen, error = %e, "cannot listen; choose another --listen address");
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().unwrap_or(args.listen);
    announce(address, host.public_base());
    match serve(listener, host, super::wait_for_termination()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "the client metadata host failed");
            ExitCode::FAILURE
        }
    }
}

/// One fixed line on stderr, whatever `RUST_LOG` says, so scripts and tests can find the
/// port of `--listen 127.0.0.1:0`.
#[allow(clippy::print_stderr)]
fn announce(address: SocketAddr, public_base: &Url) {
    eprintln!("serve-client-metadata listening on http://{address} for {public_base}");
}

#[cfg(test)]
mod tests {
    use super::*;

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

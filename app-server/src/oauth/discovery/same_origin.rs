//! Same-origin speculation: the authorization server metadata of the MCP server's own origin
//! is asked in the first round trip, next to the probe and the protected resource metadata,
//! because most hosted servers run their authorization server there. The answers count only
//! when the issuer discovery names afterwards (from the PRM, or the origin itself for a
//! 2025-03-26 server without one) has exactly these metadata locations; they then go
//! through the same checks as answers fetched in the spec's order (the exact `issuer`
//! comparison included). Otherwise they are dropped unread, and a request still on its way
//! is aborted, so speculation never delays discovery nor overrides what the PRM says.
//!
//! Only the MCP server's own origin is asked, with no header but the client's own (the
//! server's configured `http_headers` are not sent, as for any metadata request).

use reqwest::header::HeaderMap;
use tokio::task::JoinHandle;
use url::Url;

use super::as_metadata::{auth_server_metadata_candidates, origin_string, parse_issuer};
use crate::oauth::http::{HttpClient, HttpError, HttpResponse};

/// The answers of one location each, in the order of [`auth_server_metadata_candidates`].
pub(super) type Answers = Vec<Result<HttpResponse, HttpError>>;

/// The metadata of the MCP server's origin, asked ahead of knowing the issuer.
pub(super) struct Speculation {
    urls: Vec<Url>,
    task: Aborting<Answers>,
}

/// A spawned task aborted when its handle is dropped unawaited.
struct Aborting<T>(JoinHandle<T>);

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Speculation {
    /// Starts asking every metadata location of the issuer `scheme://host[:port]` of
    /// `server_url`. `None` when that origin cannot be an issuer (not https or loopback).
    pub(super) fn start(http: &HttpClient, server_url: &Url) -> Option<Self> {
        let issuer_url = parse_issuer(&origin_string(server_url)).ok()?;
        let urls: Vec<Url> = auth_server_metadata_candidates(&issuer_url)
            .into_iter()
            .map(|(url, _)| url)
            .collect();
        let (http, asked) = (http.clone(), urls.clone());
        let task = tokio::spawn(async move {
            let no_headers = HeaderMap::new();
            futures::future::join_all(asked.iter().map(|url| http.get(url, &no_headers))).await
        });
        Some(Self {
            urls,
            task: Aborting(task),
        })
    }

    /// The answers, when they are exactly those the spec's order asks for `issuer_url`;
    /// `None` (and the speculation dropped) otherwise.
    pub(super) async fn answers_for(self, issuer_url: &Url) -> Option<Answers> {
        if !same_locations(&self.urls, issuer_url) {
            return None;
        }
        let mut task = self;
        // Aborted or panicked: asked again in the spec's order.
        (&mut task.task.0).await.ok()
    }
}

/// `issuer_url`'s metadata locations are exactly `urls`, in the same order.
fn same_locations(urls: &[Url], issuer_url: &Url) -> bool {
    let wanted = auth_server_metadata_candidates(issuer_url);
    wanted.len() == urls.len() && wanted.iter().zip(urls).all(|((w, _), u)| w == u)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_issuer_with_the_same_locations_takes_the_answers() {
        let server = Url::parse("https://mcp.example.com/mcp").unwrap();
        let origin = parse_issuer(&origin_string(&server)).unwrap();
        let urls: Vec<Url> = auth_server_metadata_candidates(&origin)
            .into_iter()
            .map(|(u, _)| u)
            .collect();
        assert_eq!(
            urls.iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "https://mcp.example.com/.well-known/oauth-authorization-server",
                "https://mcp.example.com/.well-known/openid-configuration",
            ]
        );
        let same = |issuer: &str| same_locations(&urls, &Url::parse(issuer).unwrap());
        // The origin, with or without its trailing slash (the issuer string itself is still
        // compared exactly with the documents' `issuer`).
        assert!(same("https://mcp.example.com"));
        assert!(same("https://mcp.example.com/"));
        // A path, another host, another port, another scheme: the spec's order.
        assert!(!same("https://mcp.example.com/tenant"));
        assert!(!same("https://auth.example.com"));
        assert!(!same("https://mcp.example.com:8443"));
        assert!(!same("http://mcp.example.com"));
    }

    #[tokio::test]
    async fn an_origin_that_cannot_be_an_issuer_is_not_asked() {
        let http = HttpClient::for_tests();
        let server = Url::parse("http://mcp.example.com/mcp").unwrap();
        assert!(Speculation::start(&http, &server).is_none());
    }
}

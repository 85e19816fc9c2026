//! A headless "browser" for the authorization step: one GET on the authorization URL and
//! the redirects after it, with no cookies or scripts (the kit's AS needs none). Plain
//! http only: every peer in these tests is on loopback.

use anyhow::{Context as _, bail};
use url::Url;

/// Where the browser ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserResult {
    /// Status of the last response.
    pub status: u16,
    /// Body of the last response.
    pub body: String,
    /// URL of the last request.
    pub final_url: String,
    /// The first redirect target (the AS's `Location`), absolute; `None` when the first
    /// response was not a redirect.
    pub redirect_location: Option<String>,
}

const MAX_REDIRECTS: usize = 10;

fn client() -> anyhow::Result<reqwest::Client> {
    crate::checks::loopback_http_client(std::time::Duration::from_secs(30))
        .context("building the headless browser's HTTP client")
}

/// Origin and path only: query strings of authorization URLs carry `state` and codes.
fn without_query(url: &Url) -> String {
    format!("{}{}", url.origin().ascii_serialization(), url.path())
}

fn location(current: &Url, response: &reqwest::Response) -> anyhow::Result<Option<Url>> {
    if !response.status().is_redirection() {
        return Ok(None);
    }
    let Some(value) = response.headers().get(reqwest::header::LOCATION) else {
        return Ok(None);
    };
    let value = value.to_str().with_context(|| {
        format!(
            "redirect from {} has a non-text Location",
            without_query(current)
        )
    })?;
    let next = current.join(value).with_context(|| {
        format!(
            "redirect from {} has an invalid Location",
            without_query(current)
        )
    })?;
    Ok(Some(next))
}

/// GET `authorization_url`, follow its redirects (to the client's loopback listener, any
/// host and port) and return the final status and body.
pub async fn browser_visit(authorization_url: &str) -> anyhow::Result<BrowserResult> {
    let http = client()?;
    let mut current = Url::parse(authorization_url).context("authorization URL is not a URL")?;
    let mut first_location = None;
    for _ in 0..=MAX_REDIRECTS {
        let response = http
            .get(current.clone())
            .send()
            .await
            .with_context(|| format!("browser GET {} failed", without_query(&current)))?;
        if let Some(next) = location(&current, &response)? {
            first_location.get_or_insert_with(|| next.to_string());
            current = next;
            continue;
        }
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .with_context(|| format!("reading the page at {}", without_query(&current)))?;
        return Ok(BrowserResult {
            status,
            body,
            final_url: current.to_string(),
            redirect_location: first_location,
        });
    }
    bail!(
        "more than {MAX_REDIRECTS} redirects starting at {}",
        without_query(&current)
    )
}

/// GET `authorization_url` and return the redirect `Location` (absolute) without visiting
/// it, as a user would copy it from the address bar for a paste-back flow.
pub async fn authorize_redirect_location(authorization_url: &str) -> anyhow::Result<String> {
    let http = client()?;
    let url = Url::parse(authorization_url).context("authorization URL is not a URL")?;
    let response = http
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("browser GET {} failed", without_query(&url)))?;
    match location(&url, &response)? {
        Some(next) => Ok(next.to_string()),
        None => {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            let excerpt: String = body.chars().take(500).collect();
            bail!(
                "{} answered HTTP {status} instead of a redirect: {excerpt}",
                without_query(&url)
            )
        }
    }
}

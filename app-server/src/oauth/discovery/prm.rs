//! Rule 2: finding the Protected Resource Metadata (RFC 9728). Its `resource` is checked
//! against the server URL (rule 3) by the discovery that calls this (`discovery/mod.rs`).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use serde::{Deserialize, Serialize};

use super::error::DiscoveryError;
use crate::oauth::bounds;
use crate::oauth::http::HttpClient;
use crate::oauth::www_authenticate::BearerChallenge;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    /// Every list is cut to the bounds of [`crate::oauth::bounds`] while it is parsed.
    #[serde(default, deserialize_with = "bounds::urls")]
    pub authorization_servers: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub bearer_methods_supported: Option<Vec<String>>,
    /// RFC 9728 2: the resource accepts only DPoP-bound access tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_bound_access_tokens_required: Option<bool>,
}

/// Rule 2, pure: where to look for the PRM. With a `resource_metadata` hint only there;
/// else the path-inserted well-known URL (when the server URL has a path or query), then the
/// root one.
pub fn protected_resource_candidates(
    server_url: &Url,
    challenge: Option<&BearerChallenge>,
) -> Result<Vec<Url>, DiscoveryError> {
    if let Some(hint) = challenge.and_then(|c| c.resource_metadata.as_deref()) {
        let url = server_url
            .join(hint)
            .map_err(|e| DiscoveryError::InvalidProtectedResource {
                url: hint.to_string(),
                reason: format!("resource_metadata is not a URL: {e}"),
            })?;
        return Ok(vec![url]);
    }
    const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
    let path = server_url.path().trim_end_matches('/');
    let mut candidates = Vec::new();
    if !path.is_empty() || server_url.query().is_some() {
        let mut url = server_url.clone();
        url.set_fragment(None);
        url.set_path(&format!("{WELL_KNOWN}{path}"));
        candidates.push(url);
    }
    let mut root = server_url.clone();
    root.set_fragment(None);
    root.set_query(None);
    root.set_path(WELL_KNOWN);
    candidates.push(root);
    Ok(candidates)
}

/// A PRM that answered: where, what, and how long it may be kept.
#[derive(Debug)]
pub(super) struct FoundPrm {
    pub url: Url,
    pub prm: ProtectedResourceMetadata,
    pub max_age: Option<Duration>,
}

/// What one PRM location answered.
#[derive(Debug)]
pub(super) enum PrmAnswer {
    Found(FoundPrm),
    Missed { url: Url, reason: String },
}

/// The location asked at the same time as the probe, before any challenge is known: the
/// first well-known candidate.
pub(super) fn guessed_location(server_url: &Url) -> Result<Url, DiscoveryError> {
    Ok(protected_resource_candidates(server_url, None)?.remove(0))
}

/// One GET of a PRM location. `extra_headers` go only to the MCP server's own origin.
pub(super) async fn fetch_prm(
    http: &HttpClient,
    url: &Url,
    server_url: &Url,
    extra_headers: &HeaderMap,
) -> Result<PrmAnswer, DiscoveryError> {
    let no_headers = HeaderMap::new();
    let headers = if url.origin() == server_url.origin() {
        extra_headers
    } else {
        &no_headers
    };
    let response = http.get(url, headers).await?;
    let missed = |reason: String| {
        Ok(PrmAnswer::Missed {
            url: url.clone(),
            reason,
        })
    };
    if response.status != StatusCode::OK {
        return missed(format!("HTTP {}", response.status.as_u16()));
    }
    // Parsed straight from the bytes (no intermediate JSON tree), its lists bounded; a
    // large body off the async worker.
    let parsed = response
        .parse_off_worker(|body| serde_json::from_slice::<ProtectedResourceMetadata>(body))
        .await;
    let prm = match parsed {
        Ok(prm) => prm,
        Err(e) if e.is_syntax() || e.is_eof() => return missed("not JSON".to_string()),
        Err(e) => {
            return Err(DiscoveryError::InvalidProtectedResource {
                url: url.to_string(),
                reason: e.to_string(),
            });
        }
    };
    tracing::debug!(%url, resource = %prm.resource, "protected resource metadata");
    Ok(PrmAnswer::Found(FoundPrm {
        url: url.clone(),
        prm,
        max_age: response.cache_max_age(),
    }))
}

/// Rule 2: the first candidate location that answers. `early` is the answer of a location
/// asked concurrently with the probe: used when that location is a candidate (so it is not
/// asked twice), ignored when the challenge named another one.
pub(super) async fn find_protected_resource(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    challenge: Option<&BearerChallenge>,
    mut early: Option<(Url, Result<PrmAnswer, DiscoveryError>)>,
) -> Result<Option<FoundPrm>, DiscoveryError> {
    let hinted = challenge.is_some_and(|c| c.resource_metadata.is_some());
    let mut misses = Vec::new();
    for url in protected_resource_candidates(server_url, challenge)? {
        let answer = match early.take_if(|(asked, _)| *asked == url) {
            Some((_, answer)) => answer?,
            None => fetch_prm(http, &url, server_url, extra_headers).await?,
        };
        match answer {
            PrmAnswer::Found(found) => return Ok(Some(found)),
            PrmAnswer::Missed { url, reason } => misses.push((url, reason)),
        }
    }
    if hinted && let Some((url, reason)) = misses.into_iter().next() {
        return Err(DiscoveryError::ProtectedResourceNotFound {
            url: url.to_string(),
            reason,
        });
    }
    Ok(None)
}

//! Discovery with a server's escape hatches (rules 60-64; [`super::hatches`] says what
//! each does): the issuer a document may name, the document that stands for the
//! well-known ones, the endpoints that stand for a missing document, and what a result
//! relied on.

use std::time::Duration;

use reqwest::header::HeaderMap;
use url::Url;

use super::as_metadata::{AuthServerMetadata, Judged, issuers_match, judge, validate_metadata};
use super::error::DiscoveryError;
use super::hatches::Overrides;
use crate::oauth::http::HttpClient;

impl Overrides<'_> {
    /// Rules 26 and 61: the document's issuer is the one asked for, or exactly the
    /// configured one.
    pub(super) fn accepts_issuer(&self, expected: &str, found: &str) -> bool {
        issuers_match(expected, found)
            || self
                .hatches
                .issuer
                .as_deref()
                .is_some_and(|configured| issuers_match(configured, found))
    }

    /// The keys that made `metadata` differ from what strict discovery of `issuer` gives:
    /// what a login logs (rule 64).
    pub(super) fn used(&self, issuer: &str, metadata: &AuthServerMetadata) -> Vec<String> {
        let mut used = Vec::new();
        if self.hatches.authorization_server_metadata_url.is_some() {
            used.push("authorization_server_metadata_url");
        }
        if !issuers_match(issuer, &metadata.issuer) {
            used.push("issuer");
        }
        for (key, set) in [
            (
                "authorization_endpoint",
                self.hatches.authorization_endpoint.is_some(),
            ),
            ("token_endpoint", self.hatches.token_endpoint.is_some()),
            (
                "registration_endpoint",
                self.hatches.registration_endpoint.is_some(),
            ),
            (
                "revocation_endpoint",
                self.hatches.revocation_endpoint.is_some(),
            ),
        ] {
            if set {
                used.push(key);
            }
        }
        used.into_iter().map(str::to_string).collect()
    }

    /// Rule 63 without any document: the configured endpoints (nothing else is assumed),
    /// for the configured issuer, else `issuer` (the one asked for, parsed as
    /// `issuer_url`). `None` unless both required endpoints are configured.
    pub(super) fn endpoints_only(
        &self,
        issuer: &str,
        issuer_url: &Url,
    ) -> Option<AuthServerMetadata> {
        let hatches = self.hatches;
        if hatches.authorization_endpoint.is_none() || hatches.token_endpoint.is_none() {
            return None;
        }
        let mut metadata = AuthServerMetadata::legacy_defaults(issuer_url);
        metadata.issuer = hatches.issuer.clone().unwrap_or_else(|| issuer.to_string());
        metadata.registration_endpoint = None;
        metadata.override_endpoints(hatches);
        Some(metadata)
    }
}

/// Rule 60: the configured metadata document, judged as a well-known one would be (the
/// issuer asked for or the configured one, the endpoints completed, S256 and secure
/// endpoints checked). Any failure names the key.
pub(super) async fn fetch_configured_metadata(
    http: &HttpClient,
    url: &Url,
    issuer: &str,
    overrides: Overrides<'_>,
) -> Result<(AuthServerMetadata, Option<Duration>), DiscoveryError> {
    let failed = |reason: String| DiscoveryError::ConfiguredMetadata {
        url: url.to_string(),
        server: overrides.server.to_string(),
        reason,
    };
    let response = http
        .get(url, &HeaderMap::new())
        .await
        .map_err(|e| failed(e.to_string()))?;
    match judge(url, response, issuer, overrides).await {
        Judged::Valid(metadata, max_age) => {
            validate_metadata(&metadata)?;
            Ok((*metadata, max_age))
        }
        Judged::Refused(e) => Err(e),
        Judged::Absent(attempt) => Err(failed(attempt)),
    }
}

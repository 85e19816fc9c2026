//! Discovery (rules 1-7): from an MCP server URL to the authorization server's metadata.
//!
//! probe the server without a token, and at the same time ask the first well-known
//! Protected Resource Metadata location (RFC 9728) -> check the PRM's `resource` ->
//! authorization server metadata (RFC 8414 / OpenID Connect Discovery, every location at
//! once, merged) -> PKCE S256 check; servers of the 2025-03-26 revision (no PRM) fall back
//! to their origin as the issuer, and to default endpoints when even that has no metadata.
//! A cold discovery of a server whose PRM is at the first well-known location takes two
//! sequential round trips. Validated results are kept in the [`DiscoveryCache`].
//!
//! One step per file: [`probe`], [`prm`], [`as_metadata`], [`cache`].

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use super::http::{HttpClient, HttpError};
use super::resource::{ResourceMismatch, check_prm_resource, resource_indicator};
use super::www_authenticate::BearerChallenge;
use crate::mcp_wire;

mod as_metadata;
mod cache;
mod prm;
mod probe;
#[cfg(test)]
mod tests;

pub use as_metadata::{
    MetadataKind, auth_server_metadata_candidates, issuers_match, merge_metadata, validate_metadata,
};
use as_metadata::{MetadataOutcome, fetch_auth_server_metadata, origin_string, parse_issuer};
pub use cache::{DEFAULT_TTL, DiscoveryCache, MAX_TTL};
pub use prm::protected_resource_candidates;
use prm::{FoundPrm, PrmAnswer, fetch_prm, find_protected_resource, guessed_location};
pub use probe::{Probe, probe};

/// MCP protocol revision the legacy (`initialize`) discovery probe offers.
pub const PROBE_PROTOCOL_VERSION: &str = mcp_wire::LEGACY_REVISION;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    pub resource: String,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_methods_supported: Option<Vec<String>>,
}

/// RFC 8414 authorization server metadata (the fields a client uses), after merging the
/// OAuth and OpenID documents of one issuer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthServerMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Client ID Metadata Documents accepted as client ids.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9207: the server adds `iss` to authorization responses.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 5.1: the JWS algorithms the server accepts in DPoP proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
}

fn bool_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

impl AuthServerMetadata {
    /// Metadata for a 2025-03-26 server that publishes none: `/authorize`, `/token` and
    /// `/register` on the origin.
    pub fn legacy_defaults(origin: &Url) -> Self {
        let join = |path: &str| origin.join(path).expect("joining an absolute path");
        Self {
            issuer: origin_string(origin),
            authorization_endpoint: join("/authorize"),
            token_endpoint: join("/token"),
            registration_endpoint: Some(join("/register")),
            revocation_endpoint: None,
            scopes_supported: None,
            response_types_supported: None,
            grant_types_supported: None,
            code_challenge_methods_supported: None,
            token_endpoint_auth_methods_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
            dpop_signing_alg_values_supported: None,
        }
    }

    /// The server binds tokens to a key (RFC 9449) with an algorithm the daemon signs
    /// with: ES256 among `dpop_signing_alg_values_supported`.
    pub fn supports_dpop_es256(&self) -> bool {
        self.dpop_signing_alg_values_supported
            .as_ref()
            .is_some_and(|algs| algs.iter().any(|a| a == "ES256"))
    }

    /// Rule 6: PKCE S256 must be advertised (absent means unsupported).
    pub fn supports_s256(&self) -> bool {
        self.code_challenge_methods_supported
            .as_ref()
            .is_some_and(|m| m.iter().any(|m| m == "S256"))
    }
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// The RFC 8707 `resource` to send everywhere: the configured override, else the PRM's
    /// `resource` exactly as published, else the canonical server URL.
    pub resource: String,
    /// Where the PRM came from, when there was one.
    pub protected_resource_url: Option<Url>,
    pub protected_resource: Option<ProtectedResourceMetadata>,
    /// The Bearer challenge of the probe's 401, if any.
    pub challenge: Option<BearerChallenge>,
    /// The issuer asked for (from the PRM, or the server origin in legacy mode). The
    /// metadata's `issuer` is this very string (rule 26), so either may be recorded.
    pub issuer: String,
    pub metadata: AuthServerMetadata,
    /// 2025-03-26 fallback: no PRM, the server's origin is the issuer.
    pub legacy: bool,
    /// Legacy fallback without any metadata document: default endpoints were assumed.
    pub default_endpoints: bool,
    /// Answered from the [`DiscoveryCache`]: when an endpoint refuses in a way that shows
    /// the documents changed, discovery runs again (once) and the login goes on.
    #[serde(skip)]
    pub cached: bool,
}

/// Why discovery failed. Each variant names the URL and what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("{url} answered without asking for authorization (HTTP {status}); no login is needed")]
    NotProtected { url: String, status: u16 },
    #[error(
        "{url} answered HTTP {status} to an unauthenticated request and publishes no protected resource metadata; it does not look like an OAuth-protected MCP server"
    )]
    UnexpectedProbeStatus { url: String, status: u16 },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(
        "no protected resource metadata at {url} (named by the server's WWW-Authenticate): {reason}"
    )]
    ProtectedResourceNotFound { url: String, reason: String },
    #[error("invalid protected resource metadata at {url}: {reason}")]
    InvalidProtectedResource { url: String, reason: String },
    #[error("refusing protected resource metadata at {url}: {source}")]
    ResourceMismatch {
        url: String,
        #[source]
        source: ResourceMismatch,
    },
    #[error("protected resource metadata at {url} lists no authorization_servers")]
    NoAuthorizationServers { url: String },
    #[error("invalid issuer {issuer:?}: {reason}")]
    InvalidIssuer { issuer: String, reason: String },
    #[error(
        "authorization server metadata at {url} is for issuer {found:?}, expected {expected:?}"
    )]
    IssuerMismatch {
        url: String,
        expected: String,
        found: String,
    },
    #[error("invalid authorization server metadata at {url}: {reason}")]
    InvalidMetadata { url: String, reason: String },
    #[error("no authorization server metadata for issuer {issuer} ({attempts})")]
    NoMetadata { issuer: String, attempts: String },
    #[error(
        "authorization server {issuer} does not advertise PKCE S256 (code_challenge_methods_supported); refusing to log in"
    )]
    PkceUnsupported { issuer: String },
    #[error(
        "authorization server {issuer} advertises {field} {url}, which is neither https nor loopback"
    )]
    InsecureEndpoint {
        issuer: String,
        field: &'static str,
        url: String,
    },
}

impl Discovery {
    /// The scopes a login asks for: `explicit` (the request's), else `configured`, else what
    /// this discovery names (the challenge, then the protected resource), filtered by what
    /// the authorization server supports ([`crate::oauth::scopes::select_scopes`]).
    pub fn scopes_for(
        &self,
        explicit: Option<&[String]>,
        configured: Option<&[String]>,
    ) -> Option<Vec<String>> {
        crate::oauth::scopes::select_scopes(
            explicit,
            configured,
            self.challenge.as_ref().and_then(|c| c.scope.as_deref()),
            self.protected_resource
                .as_ref()
                .and_then(|p| p.scopes_supported.as_deref()),
            self.metadata.scopes_supported.as_deref(),
        )
    }
}

impl DiscoveryError {
    /// Network trouble that may pass.
    pub fn is_transient(&self) -> bool {
        matches!(self, DiscoveryError::Http(e) if e.is_transient())
    }
}

/// Runs discovery for `server_url`, answered from `cache` when it knows the server.
/// `extra_headers` (the server's configured `http_headers`) go only to the MCP server's own
/// origin; `resource_override` is the configured `oauth_resource`.
pub async fn discover(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    cache: &DiscoveryCache,
) -> Result<Discovery, DiscoveryError> {
    let (shared, cached) =
        discover_shared(http, server_url, extra_headers, resource_override, cache).await?;
    let mut found = Arc::unwrap_or_clone(shared);
    found.cached = cached;
    Ok(found)
}

/// [`discover`], the result shared with the cache (its `cached` flag is not set; the
/// `bool` says whether the cache answered). A discovery of the same server under way (a
/// pre-warm, another login) is waited for, not repeated.
pub async fn discover_shared(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    cache: &DiscoveryCache,
) -> Result<(Arc<Discovery>, bool), DiscoveryError> {
    let key = DiscoveryCache::key(server_url, extra_headers, resource_override);
    let _gate = cache.gate(&key).await;
    if let Some(known) = cache.get_shared(&key).await {
        check_endpoints(http, &known.metadata).await?;
        tracing::debug!(server = %server_url, "discovery answered from the cache");
        return Ok((known, true));
    }
    let (found, max_age) =
        discover_uncached(http, server_url, extra_headers, resource_override).await?;
    let found = Arc::new(found);
    cache.insert_shared(&key, found.clone(), max_age).await;
    Ok((found, false))
}

/// Discovery without the cache: the probe and the first well-known PRM location
/// concurrently, then the rest. Also answers how long the result may be kept (the smallest
/// `max-age` of the documents; `None` when none said).
pub async fn discover_uncached(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
) -> Result<(Discovery, Option<Duration>), DiscoveryError> {
    let guess = guessed_location(server_url)?;
    let (probe, early) = tokio::join!(
        probe(http, server_url, extra_headers),
        fetch_prm(http, &guess, server_url, extra_headers)
    );
    resolve(
        http,
        server_url,
        extra_headers,
        resource_override,
        probe?,
        Some((guess, early)),
    )
    .await
}

/// Discovery from an answer the caller already has: an MCP client whose request got 401 or
/// 403 passes that status and challenge, and no probe is sent. Some servers let `initialize`
/// through without a token and protect only later requests, so a probe would find nothing.
/// A cached result serves when the challenge names no other metadata location than the one
/// it came from; its challenge is replaced by this one.
pub async fn discover_after_probe(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    cache: &DiscoveryCache,
    probe: Probe,
) -> Result<Discovery, DiscoveryError> {
    let key = DiscoveryCache::key(server_url, extra_headers, resource_override);
    let _gate = cache.gate(&key).await;
    if !probe.status.is_success()
        && let Some(mut known) = cache.get(&key).await
    {
        let hint = probe
            .challenge
            .as_ref()
            .and_then(|c| c.resource_metadata.as_deref());
        let same_location = match (hint, &known.protected_resource_url) {
            (None, _) => true,
            (Some(hint), Some(url)) => server_url.join(hint).is_ok_and(|h| h == *url),
            (Some(_), None) => false,
        };
        // A refusal is a sign the server may have moved to another authorization server
        // (SEP-2352): its PRM is asked again, and the cached entry is used only while that
        // document still names the same resource and authorization servers.
        let mut early = None;
        if same_location {
            let unchanged = match (&known.protected_resource_url, &known.protected_resource) {
                (Some(url), Some(cached)) => {
                    let answer = fetch_prm(http, url, server_url, extra_headers).await;
                    let same = matches!(&answer, Ok(PrmAnswer::Found(found))
                        if found.prm.resource == cached.resource
                            && found.prm.authorization_servers == cached.authorization_servers);
                    early = Some((url.clone(), answer));
                    same
                }
                _ => true,
            };
            if unchanged {
                check_endpoints(http, &known.metadata).await?;
                known.challenge = probe.challenge;
                known.cached = true;
                return Ok(known);
            }
            tracing::info!(server = %server_url, "the protected resource metadata changed since it was cached; discovering again");
            cache.invalidate(&key).await;
        }
        let (found, max_age) = resolve(
            http,
            server_url,
            extra_headers,
            resource_override,
            probe,
            early,
        )
        .await?;
        cache.insert(&key, &found, max_age).await;
        return Ok(found);
    }
    let (found, max_age) = resolve(
        http,
        server_url,
        extra_headers,
        resource_override,
        probe,
        None,
    )
    .await?;
    cache.insert(&key, &found, max_age).await;
    Ok(found)
}

/// From the probe's answer (and the PRM location asked with it) to validated metadata.
async fn resolve(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    probe: Probe,
    early: Option<(Url, Result<prm::PrmAnswer, DiscoveryError>)>,
) -> Result<(Discovery, Option<Duration>), DiscoveryError> {
    if probe.status.is_success() {
        return Err(DiscoveryError::NotProtected {
            url: server_url.to_string(),
            status: probe.status.as_u16(),
        });
    }
    let challenge = probe.challenge;

    let found =
        find_protected_resource(http, server_url, extra_headers, challenge.as_ref(), early).await?;
    let mut max_age = None;
    let (issuer, legacy, prm_url, prm) = match found {
        Some(FoundPrm {
            url,
            prm,
            max_age: prm_age,
        }) => {
            check_prm_resource(&prm.resource, server_url).map_err(|source| {
                DiscoveryError::ResourceMismatch {
                    url: url.to_string(),
                    source,
                }
            })?;
            let issuer = prm.authorization_servers.first().cloned().ok_or_else(|| {
                DiscoveryError::NoAuthorizationServers {
                    url: url.to_string(),
                }
            })?;
            max_age = prm_age;
            (issuer, false, Some(url), Some(prm))
        }
        None if probe.status == StatusCode::UNAUTHORIZED => {
            (origin_string(server_url), true, None, None)
        }
        None => {
            return Err(DiscoveryError::UnexpectedProbeStatus {
                url: server_url.to_string(),
                status: probe.status.as_u16(),
            });
        }
    };

    let issuer_url = parse_issuer(&issuer)?;
    let (metadata, default_endpoints) =
        match fetch_auth_server_metadata(http, &issuer, &issuer_url).await? {
            MetadataOutcome::Found {
                metadata,
                max_age: metadata_age,
            } => {
                validate_metadata(&metadata)?;
                max_age = shortest(max_age, metadata_age);
                (*metadata, false)
            }
            MetadataOutcome::NotFound { attempts } => {
                if !legacy {
                    return Err(DiscoveryError::NoMetadata {
                        issuer,
                        attempts: attempts.join("; "),
                    });
                }
                (AuthServerMetadata::legacy_defaults(&issuer_url), true)
            }
        };
    check_endpoints(http, &metadata).await?;

    let resource = resource_indicator(
        resource_override,
        prm.as_ref().map(|p| p.resource.as_str()),
        server_url,
    );
    let found = Discovery {
        resource,
        protected_resource_url: prm_url,
        protected_resource: prm,
        challenge,
        issuer,
        metadata,
        legacy,
        default_endpoints,
        cached: false,
    };
    Ok((found, max_age))
}

fn shortest(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Rule 35: the endpoints called later stay within the server's network policy (checked
/// again for a cached result: the policy follows what the server's name resolves to now).
async fn check_endpoints(
    http: &HttpClient,
    metadata: &AuthServerMetadata,
) -> Result<(), DiscoveryError> {
    let mut endpoints = vec![metadata.token_endpoint.clone()];
    endpoints.extend(metadata.registration_endpoint.clone());
    endpoints.extend(metadata.revocation_endpoint.clone());
    for endpoint in &endpoints {
        http.check_endpoint(endpoint).await?;
    }
    Ok(())
}

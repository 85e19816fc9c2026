//! Discovery (rules 1-7): from an MCP server URL to the authorization server's metadata.
//!
//! probe the server without a token, and at the same time ask the first well-known
//! Protected Resource Metadata location (RFC 9728) -> check the PRM's `resource` ->
//! authorization server metadata (RFC 8414 / OpenID Connect Discovery, every location at
//! once, merged) -> PKCE S256 check; servers of the 2025-03-26 revision (no PRM) fall back
//! to their origin as the issuer, and to default endpoints when even that has no metadata.
//! A cold discovery of a server whose PRM is at the first well-known location takes two
//! sequential round trips, one when its authorization server shares its origin: the
//! origin's metadata is asked with the probe ([`same_origin`]) and used only when the PRM
//! names that issuer. Validated results are kept in the [`DiscoveryCache`].
//!
//! One step per file: [`probe`](mod@probe), [`prm`], [`as_metadata`], [`same_origin`],
//! [`cache`], and the escape hatches of rules 60-64 ([`hatches`], [`configured`]); what
//! discovery found ([`Discovery`]) and why it failed ([`DiscoveryError`]) each have their
//! own.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use super::http::HttpClient;
use super::resource::{check_prm_resource, resource_indicator};

mod as_metadata;
mod cache;
mod configured;
mod error;
mod hatches;
mod mtls_aliases;
mod outcome;
mod prm;
mod probe;
mod same_origin;
#[cfg(test)]
mod tests;

pub use as_metadata::{AuthServerMetadata, issuers_match, validate_metadata};
use as_metadata::{MetadataOutcome, fetch_auth_server_metadata, origin_string, parse_issuer};
#[cfg(test)]
pub use as_metadata::{auth_server_metadata_candidates, merge_metadata};
pub use cache::DiscoveryCache;
use configured::fetch_configured_metadata;
pub use error::DiscoveryError;
pub use hatches::Overrides;
pub use outcome::Discovery;
use prm::{FoundPrm, PrmAnswer, fetch_prm, find_protected_resource, guessed_location};
#[cfg(test)]
pub use prm::{ProtectedResourceMetadata, protected_resource_candidates};
pub use probe::{Probe, probe};
use same_origin::Speculation;

/// Runs discovery for `server_url`, answered from `cache` when it knows the server.
/// `extra_headers` (the server's configured `http_headers`) go only to the MCP server's own
/// origin; `resource_override` is the configured `oauth_resource`.
pub async fn discover(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    overrides: Overrides<'_>,
    cache: &DiscoveryCache,
) -> Result<Discovery, DiscoveryError> {
    let (shared, cached) = discover_shared(
        http,
        server_url,
        extra_headers,
        resource_override,
        overrides,
        cache,
    )
    .await?;
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
    overrides: Overrides<'_>,
    cache: &DiscoveryCache,
) -> Result<(Arc<Discovery>, bool), DiscoveryError> {
    let key = DiscoveryCache::key_for(server_url, extra_headers, resource_override, overrides);
    let _gate = cache.gate(&key).await;
    if let Some(known) = cache.get_shared(&key).await {
        check_endpoints(http, &known.metadata).await?;
        tracing::debug!(server = %server_url, "discovery answered from the cache");
        return Ok((known, true));
    }
    let (found, max_age) = discover_uncached(
        http,
        server_url,
        extra_headers,
        resource_override,
        overrides,
    )
    .await?;
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
    overrides: Overrides<'_>,
) -> Result<(Discovery, Option<Duration>), DiscoveryError> {
    let guess = guessed_location(server_url)?;
    // Under way while the probe and the PRM are asked; waited for only if the PRM names
    // the origin as its authorization server.
    let speculation = Speculation::start(http, server_url);
    let (probe, early) = tokio::join!(
        probe(http, server_url, extra_headers),
        fetch_prm(http, &guess, server_url, extra_headers)
    );
    resolve(
        http,
        server_url,
        extra_headers,
        resource_override,
        overrides,
        Asked {
            probe: probe?,
            early: Some((guess, early)),
            speculation,
        },
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
    overrides: Overrides<'_>,
    cache: &DiscoveryCache,
    probe: Probe,
) -> Result<Discovery, DiscoveryError> {
    let key = DiscoveryCache::key_for(server_url, extra_headers, resource_override, overrides);
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
            overrides,
            Asked {
                probe,
                early,
                speculation: None,
            },
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
        overrides,
        Asked {
            probe,
            early: None,
            speculation: None,
        },
    )
    .await?;
    cache.insert(&key, &found, max_age).await;
    Ok(found)
}

/// What was asked before [`resolve`]: the probe's answer, the PRM location asked with it,
/// and the origin's metadata asked ahead.
struct Asked {
    probe: Probe,
    early: Option<(Url, Result<prm::PrmAnswer, DiscoveryError>)>,
    speculation: Option<Speculation>,
}

/// From the probe's answer (and the PRM location asked with it) to validated metadata.
async fn resolve(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    overrides: Overrides<'_>,
    asked: Asked,
) -> Result<(Discovery, Option<Duration>), DiscoveryError> {
    let Asked {
        probe,
        early,
        speculation,
    } = asked;
    if probe.status.is_success() {
        return Err(DiscoveryError::NotProtected {
            url: server_url.to_string(),
            status: probe.status.as_u16(),
        });
    }
    // A caller that holds the server's refusal starts here: the origin's metadata is asked
    // while the PRM is.
    let speculation = speculation.or_else(|| Speculation::start(http, server_url));
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
    let (metadata, default_endpoints) = match &overrides.hatches.authorization_server_metadata_url {
        // Rule 60: that document; the origin's answers asked ahead are not used.
        Some(url) => {
            drop(speculation);
            let (metadata, metadata_age) =
                fetch_configured_metadata(http, url, &issuer, overrides).await?;
            max_age = shortest(max_age, metadata_age);
            (metadata, false)
        }
        None => {
            let prefetched = match speculation {
                Some(speculation) => speculation.answers_for(&issuer_url).await,
                None => None,
            };
            match fetch_auth_server_metadata(http, &issuer, &issuer_url, prefetched, overrides)
                .await?
            {
                MetadataOutcome::Found {
                    metadata,
                    max_age: metadata_age,
                } => {
                    validate_metadata(&metadata)?;
                    max_age = shortest(max_age, metadata_age);
                    (*metadata, false)
                }
                MetadataOutcome::NotFound { attempts } => {
                    // Rule 63: the configured endpoints stand in for a missing document.
                    if let Some(metadata) = overrides.endpoints_only(&issuer, &issuer_url) {
                        (metadata, true)
                    } else if legacy {
                        let mut metadata = AuthServerMetadata::legacy_defaults(&issuer_url);
                        metadata.override_endpoints(overrides.hatches);
                        (metadata, true)
                    } else {
                        return Err(DiscoveryError::NoMetadata {
                            issuer,
                            attempts: attempts.join("; "),
                            server: overrides.server.to_string(),
                        });
                    }
                }
            }
        }
    };
    check_endpoints(http, &metadata).await?;
    let escape_hatches = overrides.used(&issuer, &metadata);
    // The issuer the login works with is the one the document names: the same string as
    // asked for, but for a configured `issuer` (rule 61).
    let issuer = metadata.issuer.clone();

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
        escape_hatches,
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
    endpoints.extend(metadata.device_authorization_endpoint.clone());
    for endpoint in &endpoints {
        http.check_endpoint(endpoint).await?;
    }
    Ok(())
}

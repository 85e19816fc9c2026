//! Discovery (rules 1-7): from an MCP server URL to the authorization server's metadata.
//!
//! probe the server without a token -> Protected Resource Metadata (RFC 9728) -> check its
//! `resource` -> authorization server metadata (RFC 8414 / OpenID Connect Discovery, merged)
//! -> PKCE S256 check; servers of the 2025-03-26 revision (no PRM) fall back to their origin
//! as the issuer, and to default endpoints when even that has no metadata.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use super::http::{HttpClient, HttpError, check_secure_url};
use super::resource::{ResourceMismatch, check_prm_resource, resource_indicator};
use super::www_authenticate::{BearerChallenge, bearer_challenge};
use crate::mcp_wire;

/// MCP protocol revision the legacy (`initialize`) discovery probe offers.
pub const PROBE_PROTOCOL_VERSION: &str = mcp_wire::LEGACY_REVISION;
/// How long authorization server metadata is cached when the server gives no `max-age`.
pub const DEFAULT_METADATA_TTL: Duration = Duration::from_secs(5 * 60);
/// Upper bound on any cache lifetime, whatever the server says.
pub const MAX_METADATA_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// RFC 9728 Protected Resource Metadata (the fields a client uses).
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
#[derive(Debug, Clone, PartialEq)]
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

impl DiscoveryError {
    /// Network trouble that may pass.
    pub fn is_transient(&self) -> bool {
        matches!(self, DiscoveryError::Http(e) if e.is_transient())
    }
}

/// Per-issuer cache of validated authorization server metadata. Cloning shares the cache.
#[derive(Clone, Debug)]
pub struct MetadataCache {
    entries: Arc<Mutex<HashMap<String, (Instant, AuthServerMetadata)>>>,
    default_ttl: Duration,
}

impl Default for MetadataCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MetadataCache {
    pub fn new() -> Self {
        Self::with_default_ttl(DEFAULT_METADATA_TTL)
    }

    /// A cache whose entries live `ttl` when the server sends no `Cache-Control: max-age`.
    pub fn with_default_ttl(ttl: Duration) -> Self {
        Self {
            entries: Arc::default(),
            default_ttl: ttl,
        }
    }

    /// Unexpired metadata for `issuer`.
    pub fn get(&self, issuer: &str) -> Option<AuthServerMetadata> {
        let mut entries = self.lock();
        match entries.get(issuer) {
            Some((expires, metadata)) if *expires > Instant::now() => Some(metadata.clone()),
            Some(_) => {
                entries.remove(issuer);
                None
            }
            None => None,
        }
    }

    /// Stores metadata for `max_age` (the server's), else the default lifetime; a zero age
    /// (`no-store`, `max-age=0`) stores nothing.
    pub fn insert(&self, issuer: &str, metadata: AuthServerMetadata, max_age: Option<Duration>) {
        let ttl = max_age.unwrap_or(self.default_ttl).min(MAX_METADATA_TTL);
        if ttl.is_zero() {
            return;
        }
        self.lock()
            .insert(issuer.to_string(), (Instant::now() + ttl, metadata));
    }

    /// Drops what is cached for `issuer` (a failed login should not reuse it).
    pub fn invalidate(&self, issuer: &str) {
        self.lock().remove(issuer);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, AuthServerMetadata)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Runs discovery for `server_url`. `extra_headers` (the server's configured `http_headers`)
/// go only to the MCP server's own origin; `resource_override` is the configured
/// `oauth_resource`.
pub async fn discover(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    cache: &MetadataCache,
) -> Result<Discovery, DiscoveryError> {
    let probe = probe(http, server_url, extra_headers).await?;
    discover_after_probe(
        http,
        server_url,
        extra_headers,
        resource_override,
        cache,
        probe,
    )
    .await
}

/// Discovery from an answer the caller already has: an MCP client whose request got 401 or
/// 403 passes that status and challenge, and no probe is sent. Some servers let `initialize`
/// through without a token and protect only later requests, so a probe would find nothing.
pub async fn discover_after_probe(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    resource_override: Option<&str>,
    cache: &MetadataCache,
    probe: Probe,
) -> Result<Discovery, DiscoveryError> {
    if probe.status.is_success() {
        return Err(DiscoveryError::NotProtected {
            url: server_url.to_string(),
            status: probe.status.as_u16(),
        });
    }
    let challenge = probe.challenge;

    let found =
        find_protected_resource(http, server_url, extra_headers, challenge.as_ref()).await?;
    let (issuer, legacy, prm_url, prm) = match found {
        Some((url, prm)) => {
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
    let (metadata, default_endpoints) = match cache.get(&issuer) {
        Some(metadata) => (metadata, false),
        None => match fetch_auth_server_metadata(http, &issuer, &issuer_url).await? {
            MetadataOutcome::Found { metadata, max_age } => {
                validate_metadata(&metadata)?;
                cache.insert(&issuer, (*metadata).clone(), max_age);
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
        },
    };

    // Rule 35: the endpoints called later stay within the server's network policy.
    let mut endpoints = vec![metadata.token_endpoint.clone()];
    endpoints.extend(metadata.registration_endpoint.clone());
    endpoints.extend(metadata.revocation_endpoint.clone());
    for endpoint in &endpoints {
        http.check_endpoint(endpoint).await?;
    }

    let resource = resource_indicator(
        resource_override,
        prm.as_ref().map(|p| p.resource.as_str()),
        server_url,
    );
    Ok(Discovery {
        resource,
        protected_resource_url: prm_url,
        protected_resource: prm,
        challenge,
        issuer,
        metadata,
        legacy,
        default_endpoints,
    })
}

/// Result of the unauthenticated probe.
#[derive(Debug, Clone)]
pub struct Probe {
    pub status: StatusCode,
    pub challenge: Option<BearerChallenge>,
}

/// Rule 1 (and 32): the unauthenticated request that starts discovery, one that servers of
/// every revision the daemon speaks answer with 401 when they need a token. First a
/// 2026-07-28 `server/discover` with the request metadata headers and `_meta`: modern
/// servers know it, and legacy servers that let `initialize` through unauthenticated still
/// protect every other method. When that gets neither 401/403 nor a modern answer, a legacy
/// `initialize` (2025-11-25) follows, for servers that judge the protocol version before
/// the token. Any other status goes on to the well-known lookups (a 400, 405 or 406 does not
/// end discovery where the metadata exists).
pub async fn probe(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
) -> Result<Probe, DiscoveryError> {
    let (wire_headers, body) = mcp_wire::modern_request(
        0,
        mcp_wire::MODERN_REVISION,
        mcp_wire::DISCOVER_METHOD,
        serde_json::json!({}),
    );
    let modern = probe_once(http, server_url, extra_headers, wire_headers, &body).await?;
    if modern.status.is_success() || is_challenge(modern.status) || modern.modern_error {
        return Ok(modern.probe);
    }
    let body = serde_json::json!({
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": mcp_wire::initialize_params(PROBE_PROTOCOL_VERSION),
    });
    let legacy = probe_once(http, server_url, extra_headers, HeaderMap::new(), &body).await?;
    if legacy.status.is_success() || is_challenge(legacy.status) {
        return Ok(legacy.probe);
    }
    Ok(modern.probe)
}

fn is_challenge(status: StatusCode) -> bool {
    status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN
}

struct ProbeAnswer {
    status: StatusCode,
    /// The body is a JSON-RPC error only a 2026-07-28 server sends.
    modern_error: bool,
    probe: Probe,
}

async fn probe_once(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    wire_headers: HeaderMap,
    body: &serde_json::Value,
) -> Result<ProbeAnswer, DiscoveryError> {
    let mut headers = extra_headers.clone();
    headers.extend(wire_headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static("application/json, text/event-stream"),
    );
    let bytes = serde_json::to_vec(body).expect("a JSON value serializes");
    let response = http.post_probe(server_url, bytes, &headers).await?;
    let modern_error = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.pointer("/error/code").and_then(serde_json::Value::as_i64))
        .is_some_and(mcp_wire::is_modern_error);
    Ok(ProbeAnswer {
        status: response.status,
        modern_error,
        probe: Probe {
            status: response.status,
            challenge: bearer_challenge(&response.headers),
        },
    })
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

async fn find_protected_resource(
    http: &HttpClient,
    server_url: &Url,
    extra_headers: &HeaderMap,
    challenge: Option<&BearerChallenge>,
) -> Result<Option<(Url, ProtectedResourceMetadata)>, DiscoveryError> {
    let hinted = challenge.is_some_and(|c| c.resource_metadata.is_some());
    let no_headers = HeaderMap::new();
    let mut misses = Vec::new();
    for url in protected_resource_candidates(server_url, challenge)? {
        let headers = if url.origin() == server_url.origin() {
            extra_headers
        } else {
            &no_headers
        };
        let response = http.get(&url, headers).await?;
        if response.status != StatusCode::OK {
            misses.push((url, format!("HTTP {}", response.status.as_u16())));
            continue;
        }
        let Ok(value) = response.json::<serde_json::Value>() else {
            misses.push((url, "not JSON".to_string()));
            continue;
        };
        let prm: ProtectedResourceMetadata = serde_json::from_value(value).map_err(|e| {
            DiscoveryError::InvalidProtectedResource {
                url: url.to_string(),
                reason: e.to_string(),
            }
        })?;
        tracing::debug!(%url, resource = %prm.resource, "protected resource metadata");
        return Ok(Some((url, prm)));
    }
    if hinted && let Some((url, reason)) = misses.into_iter().next() {
        return Err(DiscoveryError::ProtectedResourceNotFound {
            url: url.to_string(),
            reason,
        });
    }
    Ok(None)
}

fn parse_issuer(issuer: &str) -> Result<Url, DiscoveryError> {
    let invalid = |reason: String| DiscoveryError::InvalidIssuer {
        issuer: issuer.to_string(),
        reason,
    };
    let url = Url::parse(issuer).map_err(|e| invalid(e.to_string()))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("an issuer has no query or fragment".to_string()));
    }
    check_secure_url(&url).map_err(|e| invalid(e.to_string()))?;
    Ok(url)
}

/// Which kind of document a metadata URL serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    OAuth,
    OpenId,
}

/// Rule 4, pure: metadata URLs for an issuer in order of preference.
pub fn auth_server_metadata_candidates(issuer: &Url) -> Vec<(Url, MetadataKind)> {
    let path = issuer.path().trim_end_matches('/');
    let at = |p: String| {
        let mut url = issuer.clone();
        url.set_path(&p);
        url.set_query(None);
        url.set_fragment(None);
        url
    };
    if path.is_empty() {
        vec![
            (
                at("/.well-known/oauth-authorization-server".into()),
                MetadataKind::OAuth,
            ),
            (
                at("/.well-known/openid-configuration".into()),
                MetadataKind::OpenId,
            ),
        ]
    } else {
        vec![
            (
                at(format!("/.well-known/oauth-authorization-server{path}")),
                MetadataKind::OAuth,
            ),
            (
                at(format!("/.well-known/openid-configuration{path}")),
                MetadataKind::OpenId,
            ),
            (
                at(format!("{path}/.well-known/openid-configuration")),
                MetadataKind::OpenId,
            ),
        ]
    }
}

/// Rules 4 and 26: the metadata's `issuer` must be the issuer the well-known URL was built
/// from, by simple string comparison (RFC 3986 §6.2.1). No case folding, default-port
/// elision, trailing-slash or percent-encoding normalisation: `https://a` and `https://a/`
/// are different issuers. The same comparison decides whether stored tokens belong to the
/// issuer discovery names now.
pub fn issuers_match(expected: &str, found: &str) -> bool {
    expected == found
}

enum MetadataOutcome {
    Found {
        metadata: Box<AuthServerMetadata>,
        max_age: Option<Duration>,
    },
    NotFound {
        attempts: Vec<String>,
    },
}

async fn fetch_auth_server_metadata(
    http: &HttpClient,
    issuer: &str,
    issuer_url: &Url,
) -> Result<MetadataOutcome, DiscoveryError> {
    let candidates = auth_server_metadata_candidates(issuer_url);
    let no_headers = HeaderMap::new();
    let responses =
        futures::future::join_all(candidates.iter().map(|(url, _)| http.get(url, &no_headers)))
            .await;

    let mut valid: Vec<(AuthServerMetadata, Option<Duration>)> = Vec::new();
    let mut attempts = Vec::new();
    let mut first_mismatch = None;
    let mut first_invalid = None;
    let mut first_http_error = None;
    for ((url, _kind), response) in candidates.iter().zip(responses) {
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                attempts.push(format!("{url}: {e}"));
                first_http_error.get_or_insert(e);
                continue;
            }
        };
        if response.status != StatusCode::OK {
            attempts.push(format!("{url}: HTTP {}", response.status.as_u16()));
            continue;
        }
        let Ok(value) = response.json::<serde_json::Value>() else {
            attempts.push(format!("{url}: not JSON"));
            continue;
        };
        let found_issuer = value.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
        if !issuers_match(issuer, found_issuer) {
            first_mismatch.get_or_insert(DiscoveryError::IssuerMismatch {
                url: url.to_string(),
                expected: issuer.to_string(),
                found: found_issuer.to_string(),
            });
            continue;
        }
        match serde_json::from_value::<AuthServerMetadata>(value) {
            Ok(metadata) => valid.push((metadata, response.cache_max_age())),
            Err(e) => {
                first_invalid.get_or_insert(DiscoveryError::InvalidMetadata {
                    url: url.to_string(),
                    reason: e.to_string(),
                });
            }
        }
    }

    if !valid.is_empty() {
        let max_age = valid
            .iter()
            .map(|(_, age)| age.unwrap_or(Duration::MAX))
            .min()
            .filter(|age| *age != Duration::MAX);
        let mut docs = valid.into_iter().map(|(m, _)| m);
        let primary = docs.next().expect("non-empty");
        return Ok(MetadataOutcome::Found {
            metadata: Box::new(merge_metadata(primary, docs)),
            max_age,
        });
    }
    if let Some(err) = first_mismatch.or(first_invalid) {
        return Err(err);
    }
    if let Some(err) = first_http_error {
        return Err(err.into());
    }
    Ok(MetadataOutcome::NotFound { attempts })
}

/// Rule 5, pure: the preferred document, completed by the others of the same issuer. Some
/// servers publish registration details (the CIMD flag, the registration endpoint, auth
/// methods) in only one of their OAuth and OpenID documents.
pub fn merge_metadata(
    primary: AuthServerMetadata,
    others: impl IntoIterator<Item = AuthServerMetadata>,
) -> AuthServerMetadata {
    fn union(into: &mut Option<Vec<String>>, from: Option<Vec<String>>) {
        if let Some(from) = from {
            let list = into.get_or_insert_with(Vec::new);
            for item in from {
                if !list.contains(&item) {
                    list.push(item);
                }
            }
        }
    }
    let mut merged = primary;
    for other in others {
        if merged.registration_endpoint.is_none() {
            merged.registration_endpoint = other.registration_endpoint;
        }
        if merged.revocation_endpoint.is_none() {
            merged.revocation_endpoint = other.revocation_endpoint;
        }
        merged.client_id_metadata_document_supported |= other.client_id_metadata_document_supported;
        merged.authorization_response_iss_parameter_supported |=
            other.authorization_response_iss_parameter_supported;
        union(
            &mut merged.code_challenge_methods_supported,
            other.code_challenge_methods_supported,
        );
        union(
            &mut merged.token_endpoint_auth_methods_supported,
            other.token_endpoint_auth_methods_supported,
        );
        union(&mut merged.scopes_supported, other.scopes_supported);
        union(
            &mut merged.grant_types_supported,
            other.grant_types_supported,
        );
        union(
            &mut merged.response_types_supported,
            other.response_types_supported,
        );
        union(
            &mut merged.dpop_signing_alg_values_supported,
            other.dpop_signing_alg_values_supported,
        );
    }
    merged
}

/// Rules 6 and 22 on a found document: S256 advertised, every endpoint https or loopback.
pub fn validate_metadata(metadata: &AuthServerMetadata) -> Result<(), DiscoveryError> {
    if !metadata.supports_s256() {
        return Err(DiscoveryError::PkceUnsupported {
            issuer: metadata.issuer.clone(),
        });
    }
    let endpoints = [
        (
            "authorization_endpoint",
            Some(&metadata.authorization_endpoint),
        ),
        ("token_endpoint", Some(&metadata.token_endpoint)),
        (
            "registration_endpoint",
            metadata.registration_endpoint.as_ref(),
        ),
        ("revocation_endpoint", metadata.revocation_endpoint.as_ref()),
    ];
    for (field, url) in endpoints {
        if let Some(url) = url
            && check_secure_url(url).is_err()
        {
            return Err(DiscoveryError::InsecureEndpoint {
                issuer: metadata.issuer.clone(),
                field,
                url: url.to_string(),
            });
        }
    }
    Ok(())
}

/// `scheme://host[:port]`, the issuer of a legacy server.
fn origin_string(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::http::header_map;
    use crate::oauth::test_server::{Recorded, TestServer, json, serve, status, with_headers};
    use axum::response::Response;
    use serde_json::json;

    fn as_doc(base: &Url, issuer_path: &str) -> serde_json::Value {
        let issuer = format!("{}{}", base.as_str().trim_end_matches('/'), issuer_path);
        json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "registration_endpoint": format!("{issuer}/register"),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["none"],
            "scopes_supported": ["read", "offline_access"],
        })
    }

    /// An MCP server at `/mcp` answering 401 with `challenge`; `prm` answers the PRM paths.
    async fn mcp_server<F>(challenge: Option<String>, prm: F) -> TestServer
    where
        F: Fn(&Recorded, &Url) -> Option<Response> + Send + Sync + 'static,
    {
        serve(move |req, base| {
            if req.path == "/mcp" {
                return match &challenge {
                    Some(c) => with_headers(401, &[("www-authenticate", c.as_str())], ""),
                    None => status(401),
                };
            }
            prm(req, base).unwrap_or_else(|| status(404))
        })
        .await
    }

    /// The issuer `as_doc(base, "")` publishes: the origin without a trailing `/`.
    fn issuer_of(base: &Url) -> String {
        base.as_str().trim_end_matches('/').to_string()
    }

    fn prm_doc(resource: &Url, as_issuer: &str) -> serde_json::Value {
        json!({
            "resource": resource.as_str(),
            "authorization_servers": [as_issuer],
            "scopes_supported": ["read"],
        })
    }

    async fn run(server: &TestServer, cache: &MetadataCache) -> Result<Discovery, DiscoveryError> {
        discover(
            &HttpClient::for_tests(),
            &server.url("/mcp"),
            &HeaderMap::new(),
            None,
            cache,
        )
        .await
    }

    #[test]
    fn protected_resource_candidate_table() {
        let cases: [(&str, Option<&str>, &[&str]); 6] = [
            (
                "https://mcp.example.com/mcp",
                None,
                &[
                    "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                    "https://mcp.example.com/.well-known/oauth-protected-resource",
                ],
            ),
            (
                "https://mcp.example.com/a/mcp/",
                None,
                &[
                    "https://mcp.example.com/.well-known/oauth-protected-resource/a/mcp",
                    "https://mcp.example.com/.well-known/oauth-protected-resource",
                ],
            ),
            (
                "https://mcp.example.com/",
                None,
                &["https://mcp.example.com/.well-known/oauth-protected-resource"],
            ),
            (
                "https://mcp.example.com/mcp?tenant=one#x",
                None,
                &[
                    "https://mcp.example.com/.well-known/oauth-protected-resource/mcp?tenant=one",
                    "https://mcp.example.com/.well-known/oauth-protected-resource",
                ],
            ),
            (
                "https://mcp.example.com/mcp",
                Some("https://meta.example.com/prm.json"),
                &["https://meta.example.com/prm.json"],
            ),
            (
                "https://mcp.example.com/mcp",
                Some("/custom/metadata.json"),
                &["https://mcp.example.com/custom/metadata.json"],
            ),
        ];
        for (server, hint, expected) in cases {
            let challenge = hint.map(|h| BearerChallenge {
                resource_metadata: Some(h.to_string()),
                ..Default::default()
            });
            let got: Vec<String> =
                protected_resource_candidates(&Url::parse(server).unwrap(), challenge.as_ref())
                    .unwrap()
                    .iter()
                    .map(Url::to_string)
                    .collect();
            assert_eq!(got, expected, "{server}");
        }
    }

    #[test]
    fn auth_server_metadata_candidate_table() {
        let cases: [(&str, &[&str]); 4] = [
            (
                "https://a.example/t1",
                &[
                    "https://a.example/.well-known/oauth-authorization-server/t1",
                    "https://a.example/.well-known/openid-configuration/t1",
                    "https://a.example/t1/.well-known/openid-configuration",
                ],
            ),
            (
                "https://a.example/t1/",
                &[
                    "https://a.example/.well-known/oauth-authorization-server/t1",
                    "https://a.example/.well-known/openid-configuration/t1",
                    "https://a.example/t1/.well-known/openid-configuration",
                ],
            ),
            (
                "https://a.example",
                &[
                    "https://a.example/.well-known/oauth-authorization-server",
                    "https://a.example/.well-known/openid-configuration",
                ],
            ),
            (
                "https://a.example/",
                &[
                    "https://a.example/.well-known/oauth-authorization-server",
                    "https://a.example/.well-known/openid-configuration",
                ],
            ),
        ];
        for (issuer, expected) in cases {
            let got: Vec<String> = auth_server_metadata_candidates(&Url::parse(issuer).unwrap())
                .iter()
                .map(|(u, _)| u.to_string())
                .collect();
            assert_eq!(got, expected, "{issuer}");
        }
    }

    #[test]
    fn issuer_comparison_is_simple_string_comparison() {
        let same = [
            ("https://a.example", "https://a.example"),
            ("https://a.example/t1", "https://a.example/t1"),
            ("https://a.example/", "https://a.example/"),
        ];
        for (expected, found) in same {
            assert!(issuers_match(expected, found), "{expected} vs {found}");
        }
        // Rule 26: none of RFC 3986's normalisations apply.
        let different = [
            ("https://a.example", "https://a.example/"),
            ("https://a.example/", "https://a.example"),
            ("https://a.example/t1", "https://a.example/t1/"),
            ("https://a.example", "HTTPS://a.example"),
            ("https://a.example", "https://A.example"),
            ("https://a.example", "https://a.example:443"),
            ("https://a.example/t~1", "https://a.example/t%7E1"),
            ("https://a.example/t1", "https://a.example/t2"),
            ("https://a.example", "https://b.example"),
            ("https://a.example", ""),
        ];
        for (expected, found) in different {
            assert!(!issuers_match(expected, found), "{expected} vs {found}");
        }
    }

    #[test]
    fn merge_fills_registration_fields() {
        let origin = Url::parse("https://as.example").unwrap();
        let mut oauth = AuthServerMetadata::legacy_defaults(&origin);
        oauth.registration_endpoint = None;
        oauth.code_challenge_methods_supported = Some(vec!["S256".into()]);
        oauth.token_endpoint_auth_methods_supported = Some(vec!["client_secret_basic".into()]);
        let mut openid = AuthServerMetadata::legacy_defaults(&origin);
        openid.token_endpoint = Url::parse("https://as.example/other-token").unwrap();
        openid.client_id_metadata_document_supported = true;
        openid.token_endpoint_auth_methods_supported =
            Some(vec!["none".into(), "client_secret_basic".into()]);
        let merged = merge_metadata(oauth, [openid]);
        assert_eq!(merged.token_endpoint.as_str(), "https://as.example/token");
        assert_eq!(
            merged.registration_endpoint.unwrap().as_str(),
            "https://as.example/register"
        );
        assert!(merged.client_id_metadata_document_supported);
        assert_eq!(
            merged.token_endpoint_auth_methods_supported.unwrap(),
            vec!["client_secret_basic".to_string(), "none".to_string()]
        );
        assert_eq!(
            merged.code_challenge_methods_supported.unwrap(),
            vec!["S256"]
        );
    }

    #[tokio::test]
    async fn discovers_through_path_prm_without_asking_the_root() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = auth.base.as_str().trim_end_matches('/').to_string();
        let mcp = mcp_server(Some("Bearer scope=\"read\"".into()), move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
        })
        .await;
        let cache = MetadataCache::new();
        let found = run(&mcp, &cache).await.unwrap();
        assert!(!found.legacy);
        assert_eq!(found.resource, mcp.url("/mcp").as_str());
        assert_eq!(found.issuer, auth.base.as_str().trim_end_matches('/'));
        assert_eq!(found.metadata.token_endpoint, auth.url("/token"));
        assert_eq!(found.challenge.unwrap().scope.as_deref(), Some("read"));
        assert_eq!(
            found.protected_resource.unwrap().scopes_supported,
            Some(vec!["read".to_string()])
        );
        assert_eq!(mcp.count("/.well-known/oauth-protected-resource"), 0);
        assert_eq!(mcp.count("/.well-known/oauth-protected-resource/mcp"), 1);
        // The probe is a 2026-07-28 server/discover accepting JSON and event streams, with
        // the request metadata headers equal to its `_meta`; the 401 ends probing.
        let probe = &mcp.requests()[0];
        assert_eq!(probe.method, "POST");
        assert_eq!(probe.json()["method"], "server/discover");
        assert_eq!(
            probe.headers.get("accept").unwrap(),
            "application/json, text/event-stream"
        );
        assert_eq!(
            probe.headers.get("mcp-protocol-version").unwrap(),
            "2026-07-28"
        );
        assert_eq!(probe.headers.get("mcp-method").unwrap(), "server/discover");
        let meta = &probe.json()["params"]["_meta"];
        assert_eq!(
            meta["io.modelcontextprotocol/protocolVersion"],
            "2026-07-28"
        );
        assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
        assert!(probe.headers.get("authorization").is_none());
        assert_eq!(mcp.count("/mcp"), 1);
    }

    #[tokio::test]
    async fn root_prm_is_asked_when_the_path_form_is_missing() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource").then(|| {
                // A pathless resource identifier, as a root PRM usually publishes it.
                let resource = base.as_str().trim_end_matches('/');
                json(
                    200,
                    json!({"resource": resource, "authorization_servers": [issuer]}),
                )
            })
        })
        .await;
        let found = run(&mcp, &MetadataCache::new()).await.unwrap();
        assert_eq!(
            mcp.paths()[1..],
            [
                "/.well-known/oauth-protected-resource/mcp",
                "/.well-known/oauth-protected-resource"
            ]
        );
        assert_eq!(found.issuer, issuer_of(&auth.base));
        // Rule 15 (2026-07-28): the PRM's `resource` exactly as published, not the server
        // URL and not re-serialised with a `/` appended.
        assert_eq!(found.resource, issuer_of(&mcp.base));
    }

    #[tokio::test]
    async fn the_prm_resource_is_sent_verbatim_and_the_override_wins() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp").then(|| {
                json(
                    200,
                    json!({"resource": format!("{base}"), "authorization_servers": [issuer]}),
                )
            })
        })
        .await;
        let found = run(&mcp, &MetadataCache::new()).await.unwrap();
        // Published with its `/`: kept, although the canonical server URL would be `/mcp`.
        assert_eq!(found.resource, mcp.base.as_str());
        let overridden = discover(
            &HttpClient::for_tests(),
            &mcp.url("/mcp"),
            &HeaderMap::new(),
            Some("https://configured.example/mcp"),
            &MetadataCache::new(),
        )
        .await
        .unwrap();
        assert_eq!(overridden.resource, "https://configured.example/mcp");
    }

    #[tokio::test]
    async fn an_issuer_that_matches_only_after_normalisation_is_refused() {
        // Rule 26: the PRM names `http://127.0.0.1:P/` and the document says
        // `http://127.0.0.1:P`: a different string, so the metadata is not used.
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let for_prm = auth.base.to_string();
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &for_prm)))
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        let DiscoveryError::IssuerMismatch {
            expected, found, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(expected, auth.base.as_str());
        assert_eq!(found, &issuer_of(&auth.base));

        // Upper-case host in the document against a lower-case issuer: refused as well.
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => {
                let mut doc = as_doc(base, "");
                doc["issuer"] = json!(issuer_of(base).replace("http://", "HTTP://"));
                json(200, doc)
            }
            _ => status(404),
        })
        .await;
        let for_prm = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &for_prm)))
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::IssuerMismatch { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn resource_metadata_hint_is_the_only_prm_asked() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = issuer_of(&auth.base);
        let mcp = serve(move |req, base| match req.path.as_str() {
            "/mcp" => with_headers(
                401,
                &[(
                    "www-authenticate",
                    &format!(
                        "Basic realm=\"x\", Bearer resource_metadata=\"{}custom/prm.json\"",
                        base
                    ),
                )],
                "",
            ),
            "/custom/prm.json" => json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)),
            _ => status(404),
        })
        .await;
        run(&mcp, &MetadataCache::new()).await.unwrap();
        assert_eq!(mcp.paths(), ["/mcp", "/custom/prm.json"]);
    }

    #[tokio::test]
    async fn missing_hinted_prm_is_an_error() {
        let mcp = serve(|req, base| match req.path.as_str() {
            "/mcp" => with_headers(
                401,
                &[(
                    "www-authenticate",
                    &format!("Bearer resource_metadata=\"{base}gone\""),
                )],
                "",
            ),
            _ => status(404),
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::ProtectedResourceNotFound { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("/gone"), "{err}");
    }

    #[tokio::test]
    async fn prm_for_another_resource_is_refused() {
        let mcp = mcp_server(None, |req, _| {
            (req.path == "/.well-known/oauth-protected-resource/mcp").then(|| {
                json(
                    200,
                    json!({
                        "resource": "https://evil.example/mcp",
                        "authorization_servers": ["https://evil.example"],
                    }),
                )
            })
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::ResourceMismatch { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("evil.example"), "{err}");

        let mcp = mcp_server(None, |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp").then(|| {
                json(
                    200,
                    json!({"resource": base.join("/mcp").unwrap(), "authorization_servers": []}),
                )
            })
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::NoAuthorizationServers { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn metadata_order_merge_and_no_root_for_path_issuers() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server/t1" => {
                let mut doc = as_doc(base, "/t1");
                doc.as_object_mut().unwrap().remove("registration_endpoint");
                json(200, doc)
            }
            "/.well-known/openid-configuration/t1" => {
                let mut doc = as_doc(base, "/t1");
                doc["token_endpoint"] = json!(base.join("/t1/oidc-token").unwrap());
                doc["client_id_metadata_document_supported"] = json!(true);
                json(200, doc)
            }
            "/t1/.well-known/openid-configuration" => status(500),
            _ => status(404),
        })
        .await;
        let issuer = format!("{}t1", auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
        })
        .await;
        let found = run(&mcp, &MetadataCache::new()).await.unwrap();
        // The RFC 8414 document comes first in order, so its token endpoint wins...
        assert_eq!(found.metadata.token_endpoint, auth.url("/t1/token"));
        // ...and the OpenID document completes it.
        assert!(found.metadata.client_id_metadata_document_supported);
        assert_eq!(
            found.metadata.registration_endpoint,
            Some(auth.url("/t1/register"))
        );
        assert_eq!(auth.count("/.well-known/oauth-authorization-server"), 0);
        assert_eq!(auth.count("/.well-known/openid-configuration"), 0);
    }

    #[tokio::test]
    async fn issuer_mismatch_is_refused() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => {
                let mut doc = as_doc(base, "");
                doc["issuer"] = json!("https://impostor.example");
                json(200, doc)
            }
            _ => status(404),
        })
        .await;
        let issuer = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        let DiscoveryError::IssuerMismatch {
            expected, found, ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(expected, &issuer_of(&auth.base));
        assert_eq!(found, "https://impostor.example");
        assert!(err.to_string().contains("impostor"), "{err}");
    }

    #[tokio::test]
    async fn missing_s256_is_refused() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => {
                let mut doc = as_doc(base, "");
                doc.as_object_mut()
                    .unwrap()
                    .remove("code_challenge_methods_supported");
                json(200, doc)
            }
            _ => status(404),
        })
        .await;
        let issuer = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::PkceUnsupported { .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn no_metadata_for_the_named_issuer_is_an_error() {
        let auth = serve(|_, _| status(404)).await;
        let issuer = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(matches!(err, DiscoveryError::NoMetadata { .. }), "{err:?}");
        assert!(err.to_string().contains("HTTP 404"), "{err}");
    }

    #[tokio::test]
    async fn legacy_server_uses_its_origin_metadata() {
        let mcp = mcp_server(None, |req, base| {
            (req.path == "/.well-known/oauth-authorization-server").then(|| {
                let mut doc = as_doc(base, "");
                doc["authorization_endpoint"] = json!(base.join("/oauth/authorize").unwrap());
                json(200, doc)
            })
        })
        .await;
        let found = run(&mcp, &MetadataCache::new()).await.unwrap();
        assert!(found.legacy);
        assert!(!found.default_endpoints);
        assert!(found.protected_resource.is_none());
        assert_eq!(found.issuer, mcp.base.as_str().trim_end_matches('/'));
        assert_eq!(
            found.metadata.authorization_endpoint,
            mcp.url("/oauth/authorize")
        );
    }

    #[tokio::test]
    async fn legacy_server_without_metadata_gets_default_endpoints() {
        let mcp = mcp_server(None, |_, _| None).await;
        let found = run(&mcp, &MetadataCache::new()).await.unwrap();
        assert!(found.legacy && found.default_endpoints);
        assert_eq!(found.metadata.authorization_endpoint, mcp.url("/authorize"));
        assert_eq!(found.metadata.token_endpoint, mcp.url("/token"));
        assert_eq!(
            found.metadata.registration_endpoint,
            Some(mcp.url("/register"))
        );
    }

    #[tokio::test]
    async fn open_server_needs_no_login() {
        let mcp =
            serve(|_, _| with_headers(200, &[("content-type", "text/event-stream")], "")).await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::NotProtected { status: 200, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_endless_event_stream_does_not_stall_the_probe() {
        let mcp = serve(|_, _| {
            let endless = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
            with_headers(
                200,
                &[("content-type", "text/event-stream")],
                axum::body::Body::from_stream(endless),
            )
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(err, DiscoveryError::NotProtected { status: 200, .. }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn unexpected_probe_status_without_prm_is_an_error() {
        let mcp = serve(|_, _| status(404)).await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::UnexpectedProbeStatus { status: 404, .. }
            ),
            "{err:?}"
        );
    }

    /// A server that refuses the unauthenticated probe with `status` (no challenge) and
    /// publishes its PRM at the root well-known location.
    async fn refusing_server(probe_status: u16) -> (TestServer, TestServer) {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = auth.base.as_str().trim_end_matches('/').to_string();
        let mcp = serve(move |req, base| match req.path.as_str() {
            "/mcp" => status(probe_status),
            "/.well-known/oauth-protected-resource" => {
                json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer))
            }
            _ => status(404),
        })
        .await;
        (auth, mcp)
    }

    #[tokio::test]
    async fn a_probe_refused_with_400_405_406_goes_on_to_the_well_known_metadata() {
        for code in [400, 405, 406] {
            let (auth, mcp) = refusing_server(code).await;
            let found = run(&mcp, &MetadataCache::new()).await.unwrap();
            assert_eq!(found.issuer, auth.base.as_str().trim_end_matches('/'));
            assert!(found.challenge.is_none());
            // Both probe shapes were tried: server/discover, then initialize.
            let methods: Vec<String> = mcp
                .requests()
                .iter()
                .filter(|r| r.path == "/mcp")
                .map(|r| r.json()["method"].as_str().unwrap_or_default().to_string())
                .collect();
            assert_eq!(methods, ["server/discover", "initialize"], "HTTP {code}");
            assert_eq!(mcp.count("/.well-known/oauth-protected-resource"), 1);
        }
    }

    #[tokio::test]
    async fn a_server_that_judges_the_version_first_is_probed_with_initialize() {
        // A legacy server that refuses the unknown protocol version header before looking
        // at the token, and challenges an initialize.
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = auth.base.as_str().trim_end_matches('/').to_string();
        let mcp = serve(move |req, base| match req.path.as_str() {
            "/mcp" if req.headers.get("mcp-protocol-version").is_some() => json(
                400,
                json!({"jsonrpc": "2.0", "id": null,
                       "error": {"code": -32000, "message": "Unsupported protocol version"}}),
            ),
            "/mcp" => with_headers(401, &[("www-authenticate", "Bearer scope=\"read\"")], ""),
            "/.well-known/oauth-protected-resource/mcp" => {
                json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer))
            }
            _ => status(404),
        })
        .await;
        let found = run(&mcp, &MetadataCache::new()).await.unwrap();
        assert_eq!(found.challenge.unwrap().scope.as_deref(), Some("read"));
        assert_eq!(mcp.count("/mcp"), 2);
    }

    #[tokio::test]
    async fn a_modern_error_to_the_probe_is_not_followed_by_initialize() {
        let mcp = serve(|req, _| match req.path.as_str() {
            "/mcp" => json(
                400,
                json!({"jsonrpc": "2.0", "id": 0, "error": {"code": -32022,
                       "message": "Unsupported protocol version",
                       "data": {"supported": ["2027-01-01"], "requested": "2026-07-28"}}}),
            ),
            _ => status(404),
        })
        .await;
        let err = run(&mcp, &MetadataCache::new()).await.unwrap_err();
        assert!(
            matches!(
                err,
                DiscoveryError::UnexpectedProbeStatus { status: 400, .. }
            ),
            "{err:?}"
        );
        assert_eq!(mcp.count("/mcp"), 1);
    }

    #[tokio::test]
    async fn extra_headers_go_to_the_mcp_origin_only() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
        .await;
        let issuer = issuer_of(&auth.base);
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
        })
        .await;
        let headers = header_map([("X-Tenant", "acme")]).unwrap();
        discover(
            &HttpClient::for_tests(),
            &mcp.url("/mcp"),
            &headers,
            Some("https://override.example/mcp"),
            &MetadataCache::new(),
        )
        .await
        .map(|d| assert_eq!(d.resource, "https://override.example/mcp"))
        .unwrap();
        assert!(
            mcp.requests()
                .iter()
                .all(|r| r.headers.get("x-tenant").is_some())
        );
        assert!(
            auth.requests()
                .iter()
                .all(|r| r.headers.get("x-tenant").is_none())
        );
    }

    #[tokio::test]
    async fn metadata_cache_honours_max_age_and_invalidation() {
        let auth = serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => {
                let mut response = json(200, as_doc(base, ""));
                response
                    .headers_mut()
                    .insert("cache-control", "max-age=600".parse().unwrap());
                response
            }
            "/t0/.well-known/openid-configuration" => {
                let mut response = json(200, as_doc(base, "/t0"));
                response
                    .headers_mut()
                    .insert("cache-control", "no-store".parse().unwrap());
                response
            }
            _ => status(404),
        })
        .await;
        let metadata_requests = |auth: &TestServer| {
            auth.paths()
                .iter()
                .filter(|p| p.contains(".well-known"))
                .count()
        };
        for (issuer, per_fetch, cached) in [
            (issuer_of(&auth.base), 2, true),
            (format!("{}t0", auth.base), 3, false),
        ] {
            let issuer_for_prm = issuer.clone();
            let mcp = mcp_server(None, move |req, base| {
                (req.path == "/.well-known/oauth-protected-resource/mcp")
                    .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer_for_prm)))
            })
            .await;
            let cache = MetadataCache::new();
            let before = metadata_requests(&auth);
            run(&mcp, &cache).await.unwrap();
            run(&mcp, &cache).await.unwrap();
            let expected = if cached { per_fetch } else { 2 * per_fetch };
            assert_eq!(metadata_requests(&auth) - before, expected, "{issuer}");
            cache.invalidate(&issuer);
            run(&mcp, &cache).await.unwrap();
            assert_eq!(
                metadata_requests(&auth) - before,
                expected + per_fetch,
                "{issuer}"
            );
        }
    }
}

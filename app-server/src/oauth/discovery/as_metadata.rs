//! Rules 4-6: authorization server metadata (RFC 8414 / OpenID Connect Discovery), all
//! locations of an issuer fetched at once, chosen in the spec's order, merged and checked.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use url::Url;

use serde::{Deserialize, Deserializer, Serialize};

use super::error::DiscoveryError;
use super::hatches::Overrides;
use super::mtls_aliases::{self, MtlsEndpointAliases};
use crate::config::EscapeHatches;
use crate::oauth::bounds::{self, MAX_LIST_ENTRIES};
use crate::oauth::http::{HttpClient, HttpError, HttpResponse, check_secure_url};

/// RFC 8414 authorization server metadata (the fields a client uses), after merging the
/// OAuth and OpenID documents of one issuer.
pub type AuthServerMetadata = MetadataOf<Url>;

/// A metadata document as published: the endpoints a login cannot do without may be
/// missing, for a configured escape hatch to supply ([`MetadataOf::complete`]).
pub(super) type PublishedMetadata = MetadataOf<Option<Url>>;

/// The fields of a metadata document; `E` is the type of the authorization and token
/// endpoints (a member that is absent parses as `None` only where `E` is an `Option`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataOf<E> {
    pub issuer: String,
    pub authorization_endpoint: E,
    pub token_endpoint: E,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    /// RFC 8628 4: where a device authorization is requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<Url>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub scopes_supported: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub response_types_supported: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub grant_types_supported: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Client ID Metadata Documents accepted as client ids.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub client_id_metadata_document_supported: bool,
    /// RFC 9207: the server adds `iss` to authorization responses.
    #[serde(default, deserialize_with = "bool_or_null")]
    pub authorization_response_iss_parameter_supported: bool,
    /// RFC 9449 5.1: the JWS algorithms the server accepts in DPoP proofs.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub dpop_signing_alg_values_supported: Option<Vec<String>>,
    /// OpenID Connect Discovery: the `prompt` values the server takes (rule 82 asks for
    /// `select_account` when it is one of them).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bounds::opt_names"
    )]
    pub prompt_values_supported: Option<Vec<String>>,
    /// RFC 8705 §3.3: access tokens are bound to the client certificate presented at the
    /// token endpoint. Anything but `true` is `false`: the flag is no reason to refuse a
    /// document.
    #[serde(default, deserialize_with = "true_or_false")]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// RFC 8705 §5: the endpoints a client presenting a certificate uses instead. Applied
    /// by [`MetadataOf::complete`] for such a client; kept for what status shows.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "mtls_aliases::lenient"
    )]
    pub mtls_endpoint_aliases: Option<MtlsEndpointAliases>,
}

fn true_or_false<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(serde_json::Value::deserialize(d)? == serde_json::Value::Bool(true))
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
            device_authorization_endpoint: None,
            scopes_supported: None,
            response_types_supported: None,
            grant_types_supported: None,
            code_challenge_methods_supported: None,
            token_endpoint_auth_methods_supported: None,
            client_id_metadata_document_supported: false,
            authorization_response_iss_parameter_supported: false,
            dpop_signing_alg_values_supported: None,
            prompt_values_supported: None,
            tls_client_certificate_bound_access_tokens: false,
            mtls_endpoint_aliases: None,
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

    /// Rule 63: the configured endpoints replace the document's.
    pub(super) fn override_endpoints(&mut self, hatches: &EscapeHatches) {
        if let Some(url) = &hatches.authorization_endpoint {
            self.authorization_endpoint = url.clone();
        }
        if let Some(url) = &hatches.token_endpoint {
            self.token_endpoint = url.clone();
        }
        if let Some(url) = &hatches.registration_endpoint {
            self.registration_endpoint = Some(url.clone());
        }
        if let Some(url) = &hatches.revocation_endpoint {
            self.revocation_endpoint = Some(url.clone());
        }
    }
}

impl PublishedMetadata {
    /// The document with, for a client presenting a certificate (`mutual_tls`), its
    /// `mtls_endpoint_aliases` in place of its endpoints (RFC 8705 §5), and the configured
    /// endpoints in place of both (rule 63); the key of a required endpoint that none gives
    /// when there is none.
    pub(super) fn complete(
        mut self,
        hatches: &EscapeHatches,
        mutual_tls: bool,
    ) -> Result<AuthServerMetadata, &'static str> {
        if mutual_tls && let Some(aliases) = self.mtls_endpoint_aliases.clone() {
            aliases.apply([
                &mut self.token_endpoint,
                &mut self.revocation_endpoint,
                &mut self.registration_endpoint,
                &mut self.device_authorization_endpoint,
            ]);
        }
        let authorization_endpoint = hatches
            .authorization_endpoint
            .clone()
            .or(self.authorization_endpoint)
            .ok_or("authorization_endpoint")?;
        let token_endpoint = hatches
            .token_endpoint
            .clone()
            .or(self.token_endpoint)
            .ok_or("token_endpoint")?;
        let mut metadata = AuthServerMetadata {
            issuer: self.issuer,
            authorization_endpoint,
            token_endpoint,
            registration_endpoint: self.registration_endpoint,
            revocation_endpoint: self.revocation_endpoint,
            scopes_supported: self.scopes_supported,
            response_types_supported: self.response_types_supported,
            grant_types_supported: self.grant_types_supported,
            code_challenge_methods_supported: self.code_challenge_methods_supported,
            token_endpoint_auth_methods_supported: self.token_endpoint_auth_methods_supported,
            client_id_metadata_document_supported: self.client_id_metadata_document_supported,
            authorization_response_iss_parameter_supported: self
                .authorization_response_iss_parameter_supported,
            dpop_signing_alg_values_supported: self.dpop_signing_alg_values_supported,
            device_authorization_endpoint: self.device_authorization_endpoint,
            prompt_values_supported: self.prompt_values_supported,
            tls_client_certificate_bound_access_tokens: self
                .tls_client_certificate_bound_access_tokens,
            mtls_endpoint_aliases: self.mtls_endpoint_aliases,
        };
        metadata.override_endpoints(hatches);
        Ok(metadata)
    }
}

pub(super) fn parse_issuer(issuer: &str) -> Result<Url, DiscoveryError> {
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

/// The `issuer` of a metadata document, every other member skipped unread.
#[derive(Deserialize)]
struct IssuerOnly {
    #[serde(default)]
    issuer: Option<serde_json::Value>,
}

/// Characters of a mismatching `issuer` quoted in an error.
const MAX_QUOTED_ISSUER: usize = 256;

pub(super) enum MetadataOutcome {
    Found {
        metadata: Box<AuthServerMetadata>,
        max_age: Option<Duration>,
    },
    NotFound {
        attempts: Vec<String>,
    },
}

/// What one answer of a metadata location amounts to.
pub(super) enum Judged {
    /// A document of the expected issuer, or of the configured one (rule 61).
    Valid(Box<AuthServerMetadata>, Option<Duration>),
    /// Not a document to use: why, as an error and as a line of the attempts.
    Refused(DiscoveryError),
    /// No document there (not 200, not JSON): the attempt's line.
    Absent(String),
}

/// Judges one answer of `url` for `issuer`: rules 4 and 26 (the exact `issuer`), relaxed
/// only by a configured `issuer` (rule 61); the configured endpoints completed in (rule 63).
pub(super) async fn judge(
    url: &Url,
    response: HttpResponse,
    issuer: &str,
    overrides: Overrides<'_>,
) -> Judged {
    if response.status != StatusCode::OK {
        return Judged::Absent(format!("{url}: HTTP {}", response.status.as_u16()));
    }
    // Read straight from the bytes, twice (the issuer alone, then the whole document
    // with its lists bounded): no intermediate JSON tree of a 1 MiB document. A large
    // body is parsed off the async worker.
    let max_age = response.cache_max_age();
    let parsed = response
        .parse_off_worker(|body| {
            let found = serde_json::from_slice::<IssuerOnly>(body).ok()?;
            let found_issuer = match found.issuer {
                Some(serde_json::Value::String(s)) => s,
                _ => String::new(),
            };
            let metadata = serde_json::from_slice::<PublishedMetadata>(body);
            Some((found_issuer, metadata))
        })
        .await;
    let Some((found_issuer, metadata)) = parsed else {
        return Judged::Absent(format!("{url}: not JSON"));
    };
    if !overrides.accepts_issuer(issuer, &found_issuer) {
        return Judged::Refused(DiscoveryError::IssuerMismatch {
            url: url.to_string(),
            expected: issuer.to_string(),
            found: found_issuer.chars().take(MAX_QUOTED_ISSUER).collect(),
            server: overrides.server.to_string(),
        });
    }
    let metadata = match metadata {
        Ok(metadata) => metadata,
        Err(e) => {
            return Judged::Refused(DiscoveryError::InvalidMetadata {
                url: url.to_string(),
                reason: e.to_string(),
            });
        }
    };
    match metadata.complete(overrides.hatches, overrides.mutual_tls) {
        Ok(metadata) => Judged::Valid(Box::new(metadata), max_age),
        Err(field) => Judged::Refused(DiscoveryError::MissingEndpoint {
            url: url.to_string(),
            field,
            server: overrides.server.to_string(),
        }),
    }
}

/// `prefetched`: the answers of every location of `issuer_url`, in order, already asked
/// (same-origin speculation); they are judged exactly as fetched ones.
pub(super) async fn fetch_auth_server_metadata(
    http: &HttpClient,
    issuer: &str,
    issuer_url: &Url,
    prefetched: Option<Vec<Result<HttpResponse, HttpError>>>,
    overrides: Overrides<'_>,
) -> Result<MetadataOutcome, DiscoveryError> {
    let candidates = auth_server_metadata_candidates(issuer_url);
    let no_headers = HeaderMap::new();
    let responses = match prefetched.filter(|answers| answers.len() == candidates.len()) {
        Some(answers) => answers,
        None => {
            futures::future::join_all(candidates.iter().map(|(url, _)| http.get(url, &no_headers)))
                .await
        }
    };

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
        match judge(url, response, issuer, overrides).await {
            Judged::Valid(metadata, max_age) => valid.push((*metadata, max_age)),
            Judged::Absent(attempt) => attempts.push(attempt),
            Judged::Refused(e @ DiscoveryError::IssuerMismatch { .. }) => {
                first_mismatch.get_or_insert(e);
            }
            Judged::Refused(e) => {
                first_invalid.get_or_insert(e);
            }
        }
    }

    // Documents of one issuer only: those of the issuer asked for when there are any, else
    // those of the configured one.
    if valid.iter().any(|(m, _)| issuers_match(issuer, &m.issuer)) {
        valid.retain(|(m, _)| issuers_match(issuer, &m.issuer));
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
    // Linear (a set of what is there), and bounded like each document's lists.
    fn union(into: &mut Option<Vec<String>>, from: Option<Vec<String>>) {
        if let Some(from) = from {
            let list = into.get_or_insert_with(Vec::new);
            let mut seen: std::collections::HashSet<String> = list.iter().cloned().collect();
            for item in from {
                if list.len() >= MAX_LIST_ENTRIES {
                    break;
                }
                if seen.insert(item.clone()) {
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
        if merged.device_authorization_endpoint.is_none() {
            merged.device_authorization_endpoint = other.device_authorization_endpoint;
        }
        merged.client_id_metadata_document_supported |= other.client_id_metadata_document_supported;
        merged.tls_client_certificate_bound_access_tokens |=
            other.tls_client_certificate_bound_access_tokens;
        if merged.mtls_endpoint_aliases.is_none() {
            merged.mtls_endpoint_aliases = other.mtls_endpoint_aliases;
        }
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
            &mut merged.prompt_values_supported,
            other.prompt_values_supported,
        );
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
        (
            "device_authorization_endpoint",
            metadata.device_authorization_endpoint.as_ref(),
        ),
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
pub(super) fn origin_string(url: &Url) -> String {
    url.origin().ascii_serialization()
}

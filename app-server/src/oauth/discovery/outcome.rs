//! What discovery found: [`Discovery`].

use serde::{Deserialize, Serialize};
use url::Url;

use super::as_metadata::AuthServerMetadata;
use super::prm::ProtectedResourceMetadata;
use crate::oauth::www_authenticate::BearerChallenge;

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
    /// The issuer asked for (from the PRM, or the server origin in legacy mode), or the
    /// configured `issuer` a document named instead (rule 61). The metadata's `issuer` is
    /// this very string (rule 26), so either may be recorded.
    pub issuer: String,
    pub metadata: AuthServerMetadata,
    /// 2025-03-26 fallback: no PRM, the server's origin is the issuer.
    pub legacy: bool,
    /// No metadata document: the endpoints are the legacy defaults (2025-03-26 fallback)
    /// or the configured ones (rule 63), and PKCE S256 is assumed.
    pub default_endpoints: bool,
    /// The escape hatches of the server's configuration this result depends on (rules
    /// 60-64), by key; empty for strict discovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub escape_hatches: Vec<String>,
    /// Answered from the [`DiscoveryCache`](super::DiscoveryCache): when an endpoint refuses in a way that shows
    /// the documents changed, discovery runs again (once) and the login goes on.
    #[serde(skip)]
    pub cached: bool,
}

impl Discovery {
    /// The protected resource accepts only DPoP-bound tokens: its metadata says
    /// `dpop_bound_access_tokens_required` (RFC 9728 2), or its challenge offered the
    /// `DPoP` scheme only (RFC 9449 7.1).
    pub fn requires_dpop(&self) -> bool {
        self.protected_resource
            .as_ref()
            .is_some_and(|p| p.dpop_bound_access_tokens_required == Some(true))
            || self.challenge.as_ref().is_some_and(|c| c.dpop_only)
    }

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

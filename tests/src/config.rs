//! What the kit's servers look like and how strictly they behave. `Default` is a
//! well-behaved MCP 2025-11-25 deployment; each field switches one behaviour.

use anyhow::{bail, ensure};

mod clients;

pub use clients::PreregisteredClient;

/// Where the resource server publishes its Protected Resource Metadata (RFC 9728) and
/// whether its 401 challenge points at it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PrmMode {
    /// 401 carries `resource_metadata`; PRM served at the path form
    /// `/.well-known/oauth-protected-resource/mcp` only.
    #[default]
    HeaderAndPath,
    /// No `resource_metadata` in the challenge; PRM at the path form only.
    PathOnly,
    /// No `resource_metadata` in the challenge; PRM at `/.well-known/oauth-protected-resource` only.
    RootOnly,
    /// 2025-03-26 style: no PRM anywhere; the authorization server shares the MCP origin
    /// (one listener), so the MCP origin is the issuer.
    None,
}

/// The MCP protocol revision the kit's MCP server speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum McpRevision {
    /// 2025-11-25: `initialize`; a request whose `MCP-Protocol-Version` names another
    /// revision gets 400 (as the common SDKs answer), so `server/discover` fails there.
    #[default]
    Legacy,
    /// 2026-07-28 only: stateless; `server/discover`; every request must carry
    /// `MCP-Protocol-Version` equal to its `_meta`, `Mcp-Method`, and `Mcp-Name` where the
    /// revision requires it (400 `HeaderMismatch` otherwise); `initialize` is refused.
    Modern,
}

/// What the `iss` of an authorization response (RFC 9207) says, when `send_iss` is on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IssVariant {
    /// The issuer, exactly.
    #[default]
    Exact,
    /// The issuer with a `/` appended: equal only after normalisation.
    TrailingSlash,
    /// The issuer with scheme and host in upper case: equal only after case folding.
    UpperCase,
    /// Another authorization server's issuer (a mix-up attack).
    Foreign,
    /// No `iss` at all, although the metadata advertises
    /// `authorization_response_iss_parameter_supported: true`.
    Omitted,
}

/// How the device authorization grant (RFC 8628) goes at the kit: what the device
/// authorization answers, and how the token endpoint answers the polls of one device code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceBehaviour {
    /// `interval` of the device authorization answer; `None` omits it (RFC 8628: 5 s).
    pub interval_secs: Option<u64>,
    /// `expires_in` of the device authorization answer; polls after it get `expired_token`.
    pub expires_in_secs: u64,
    /// Polls answered before the user decides: `authorization_pending`, or `slow_down` for
    /// the poll numbers (0-based) in `slow_down_polls`.
    pub pending_polls: u32,
    pub slow_down_polls: Vec<u32>,
    /// What the user decides once `pending_polls` were answered.
    pub decision: DeviceDecision,
    /// `verification_uri_complete` in the answer.
    pub complete_uri: bool,
}

/// What the user does at the verification URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceDecision {
    /// Approves: the next poll gets tokens.
    Approve,
    /// Refuses: `access_denied`.
    Deny,
    /// Never comes: the code expires (`expired_token`).
    Expire,
    /// Never decides: `authorization_pending` until `expires_in` passes.
    Never,
}

impl Default for DeviceBehaviour {
    fn default() -> Self {
        Self {
            interval_secs: Some(1),
            expires_in_secs: 600,
            pending_polls: 1,
            slow_down_polls: Vec::new(),
            decision: DeviceDecision::Approve,
            complete_uri: true,
        }
    }
}

/// What the kit offers of RFC 8705 (with [`KitConfig::tls`]). When `tls` names no client
/// CA, the MCP listener asks for a client certificate (any) without requiring one, so that
/// a bound token presented without its certificate is refused by the token check rather
/// than by the handshake.
#[derive(Clone, Debug, Default)]
pub struct KitMtls {
    /// `tls_client_auth` is listed in `token_endpoint_auth_methods_supported` (and DCR
    /// accepts it): a certificate of the kit's client CA with the registered subject DN.
    pub tls_client_auth: bool,
    /// `self_signed_tls_client_auth` is listed (and DCR accepts it): the registered
    /// certificate, matched by its SHA-256.
    pub self_signed_tls_client_auth: bool,
    /// The metadata publishes `mtls_endpoint_aliases` for the token, revocation,
    /// registration (and device authorization) endpoints on a third listener, which requires
    /// a client certificate (any: the endpoints judge it) while the authorization server's
    /// own listener never asks for one. When false the authorization server's listener asks
    /// for an optional certificate (any), so a browser still reaches `/authorize`.
    pub aliases: bool,
    /// `tls_client_certificate_bound_access_tokens: true`: a token request that arrived with
    /// a client certificate gets tokens bound to its SHA-256; a bound refresh token needs
    /// that certificate again (`invalid_grant` otherwise) and the MCP endpoint refuses a
    /// bound access token on a connection without it.
    pub bound_tokens: bool,
}

/// Behaviour of a [`crate::Kit`]. See the field docs; `Default` is well-behaved.
#[derive(Clone, Debug)]
pub struct KitConfig {
    /// Serve every listener over TLS with this certificate (`https://127.0.0.1:P`
    /// origins), requiring a client certificate when it names a client CA.
    pub tls: Option<crate::tls::KitTls>,
    /// Mutual-TLS client authentication and certificate-bound tokens (RFC 8705); needs
    /// `tls`. `None`: no listener asks for a client certificate beyond `tls`'s client CA.
    pub mtls: Option<KitMtls>,
    /// Accept ID-JAGs of this identity provider with the JWT bearer grant
    /// (enterprise-managed authorization).
    pub trusted_idp: Option<crate::identity_provider::TrustedIdp>,
    /// `Some("/tenant1")` gives issuer `http://127.0.0.1:P/tenant1`; the AS endpoints live
    /// under that path too.
    pub issuer_path: Option<String>,
    /// `registration_endpoint` advertised and served (RFC 7591).
    pub dcr: bool,
    /// `code_challenge_methods_supported: ["S256"]`; false omits the field (PKCE is still
    /// enforced, so a client that checks it must refuse to proceed).
    pub s256_advertised: bool,
    /// `client_id_metadata_document_supported: true` and URL client ids accepted.
    pub cimd: bool,
    /// A URL client id is refused by redirecting back with `error=invalid_client` (no fetch).
    pub reject_cimd: bool,
    /// A URL client id passes `/authorize` (its document is fetched and accepted) but the
    /// token endpoint answers `invalid_client`: the refusal a client sees only at the end.
    pub reject_cimd_at_token: bool,
    /// Serve `/.well-known/oauth-authorization-server[/path]`.
    pub publish_oauth_metadata: bool,
    /// Serve `/.well-known/openid-configuration[/path]` (and `/path/.well-known/openid-configuration`).
    pub publish_openid_metadata: bool,
    /// Put the CIMD flag in the OpenID document only (some servers do).
    pub cimd_flag_only_in_openid: bool,
    pub prm: PrmMode,
    /// PRM `resource` reported as this value instead of the MCP URL (spoofing tests).
    pub prm_resource_override: Option<String>,
    /// Metadata `issuer` differs from the issuer it was fetched for: it names
    /// `<AS origin>/impostor<issuer path>`, and so does the `iss` of authorization responses
    /// (the server is consistent about its own name, only not with where it is found).
    pub wrong_issuer: bool,
    /// The OAuth metadata document is served at this path of the authorization server's
    /// origin (e.g. `/custom/oauth-metadata.json`), and nowhere else: every well-known
    /// location answers 404. Requests to it count as `as_metadata_oauth`.
    pub metadata_path: Option<String>,
    /// Members left out of the metadata documents (e.g. `token_endpoint`): a server that
    /// publishes an endpoint only in its documentation. The endpoints themselves still work.
    pub metadata_without: Vec<String>,
    /// Metadata `issuer` is the issuer with a `/` appended: the same only after URL
    /// normalisation, which MCP 2026-07-28 forbids.
    pub metadata_issuer_trailing_slash: bool,
    /// PRM `resource` is the MCP origin without any path (`http://127.0.0.1:P`), as a root
    /// PRM often publishes it; a client must send it exactly so, with no `/` appended.
    pub prm_resource_pathless: bool,
    /// Further resource identifiers this authorization server issues tokens for (besides
    /// its own resource server's): another kit's MCP URL, when that kit's PRM names this
    /// authorization server.
    pub also_protects: Vec<String>,
    /// A refresh may name any resource this authorization server protects (its own or one
    /// of `also_protects`) and gets an access token for it (RFC 8707 3); the refresh token
    /// stays the grant's. When false a refresh must repeat the grant's resource
    /// (`invalid_target` otherwise).
    pub refresh_to_other_resources: bool,
    /// `scopes_supported` of the AS and the PRM; requested scopes must be among them
    /// (an empty list accepts any scope and omits the field).
    pub scopes_supported: Vec<String>,
    /// `prompt_values_supported` of the metadata (OpenID Connect Discovery); omitted when
    /// empty.
    pub prompt_values_supported: Vec<String>,
    /// `scope` parameter of the 401 challenge.
    pub challenge_scope: Option<String>,
    /// Space-separated scopes every MCP request needs; otherwise 403 `insufficient_scope`.
    pub required_scope: Option<String>,
    /// The revision the MCP server speaks.
    pub mcp_revision: McpRevision,
    /// Requests without a token get this status (no challenge) instead of 401, as servers
    /// do that judge the method or media type before the token.
    pub unauthenticated_status: Option<u16>,
    pub access_token_ttl_secs: u64,
    /// Every token response carries a refresh token.
    pub issue_refresh_tokens: bool,
    /// A used refresh token is replaced; reusing a replaced one revokes its whole family.
    /// When false the same refresh token keeps working and responses omit `refresh_token`.
    pub rotate_refresh_tokens: bool,
    /// `revocation_endpoint` advertised and served (RFC 7009).
    pub revocation: bool,
    pub preregistered: Vec<PreregisteredClient>,
    /// `token_endpoint_auth_methods_supported`; DCR accepts only these.
    pub token_endpoint_auth_methods: Vec<String>,
    /// RFC 9207 `iss` on the authorization response redirect.
    pub send_iss: bool,
    /// What that `iss` says (the issuer itself unless a test wants a mismatch).
    pub iss_variant: IssVariant,
    /// Revocation as the MCP Python SDK (and FastMCP) does it: a form without a
    /// `client_secret` field, even from a public client, is refused with 400
    /// `invalid_request` "client_secret: Field required" (python-sdk issue #3508); an empty
    /// one passes.
    pub revocation_requires_client_secret_field: bool,
    /// `GET /authorize` redirects at once; when false it shows a consent page and waits for
    /// [`crate::Kit::approve_pending`] (or the page's form).
    pub auto_approve: bool,
    /// The client credentials grant is advertised and served, for preregistered
    /// confidential clients (secret or `private_key_jwt`).
    pub client_credentials: bool,
    /// The JWT bearer grant (RFC 7523) is advertised and served for workload identity
    /// tokens signed by this key (uncompressed P-256 point) and issued by
    /// `workload_issuer`, with this authorization server's issuer as audience.
    pub workload_key: Option<Vec<u8>>,
    /// The `iss` workload identity tokens must carry.
    pub workload_issuer: String,
    /// DPoP (RFC 9449): the metadata lists `dpop_signing_alg_values_supported: ["ES256"]`;
    /// a token request with a valid proof gets tokens bound to its key (`token_type`
    /// `DPoP`, `cnf.jkt` recorded), a refresh of a bound grant needs a proof of the same
    /// key, and the MCP endpoint wants `Authorization: DPoP` plus a proof for bound tokens.
    pub dpop: bool,
    /// The token endpoint refuses proofs without its nonce (`use_dpop_nonce`, RFC 9449 8).
    pub dpop_as_nonce: bool,
    /// The MCP endpoint refuses proofs without its nonce (`use_dpop_nonce`, RFC 9449 9).
    pub dpop_rs_nonce: bool,
    /// Misbehaviour: a request with a valid proof still gets an unbound Bearer token.
    pub dpop_unbound_tokens: bool,
    /// The authorization server is served on the MCP server's own listener (one origin,
    /// as most hosted servers run it); the PRM names that origin (plus `issuer_path`).
    pub as_on_mcp_origin: bool,
    /// A decoy: the MCP server's origin also publishes valid authorization server metadata
    /// naming itself as issuer, with endpoints under `/decoy/` there that refuse every
    /// request (counted in `decoy`), while the PRM names the kit's real authorization server
    /// on its own origin. A client must never use it.
    pub decoy_as_on_mcp_origin: bool,
    /// DCR as some servers do it: every registered client is confidential with
    /// `client_secret_basic`, whatever method it asked for, and its secret expires this many
    /// seconds after registration (`client_secret_expires_at`; `None`: never, 0 sent).
    pub dcr_confidential_secret_ttl_secs: Option<Option<u64>>,
    /// The protected resource requires DPoP-bound tokens: its metadata says
    /// `dpop_bound_access_tokens_required: true` (RFC 9728) and the MCP endpoint refuses
    /// unbound ones.
    pub dpop_required: bool,
    /// Microsoft Entra ID's refresh quirks: every code and refresh answer reports the
    /// scopes granted plus `<prefix>/.default` for each `<prefix>/<name>` scope among them
    /// (a mix); a refresh whose `scope` combines a `.default` scope with other scopes than
    /// `openid`, `profile`, `email` and `offline_access` is refused
    /// `invalid_scope` (AADSTS70011), and a refresh without `scope` `invalid_request`
    /// (AADSTS90009). Pair it with `prm_resource_pathless` and scopes such as
    /// `api://<app>/access_as_user` for the whole shape.
    pub entra: bool,
    /// The device authorization grant (RFC 8628): `device_authorization_endpoint`
    /// advertised and served, device-code token requests answered as it says, and DCR
    /// accepting clients for that grant without redirect URIs.
    pub device: Option<DeviceBehaviour>,
}

impl Default for KitConfig {
    fn default() -> Self {
        Self {
            trusted_idp: None,
            issuer_path: None,
            dcr: true,
            s256_advertised: true,
            cimd: false,
            reject_cimd: false,
            reject_cimd_at_token: false,
            publish_oauth_metadata: true,
            publish_openid_metadata: true,
            cimd_flag_only_in_openid: false,
            prm: PrmMode::HeaderAndPath,
            prm_resource_override: None,
            wrong_issuer: false,
            metadata_path: None,
            metadata_without: Vec::new(),
            metadata_issuer_trailing_slash: false,
            prm_resource_pathless: false,
            also_protects: Vec::new(),
            refresh_to_other_resources: false,
            scopes_supported: vec![
                "mcp:read".to_owned(),
                "mcp:write".to_owned(),
                "offline_access".to_owned(),
            ],
            prompt_values_supported: Vec::new(),
            challenge_scope: None,
            required_scope: None,
            mcp_revision: McpRevision::Legacy,
            unauthenticated_status: None,
            access_token_ttl_secs: 3600,
            issue_refresh_tokens: true,
            rotate_refresh_tokens: true,
            revocation: true,
            preregistered: Vec::new(),
            token_endpoint_auth_methods: vec![
                "none".to_owned(),
                "client_secret_basic".to_owned(),
                "client_secret_post".to_owned(),
            ],
            send_iss: true,
            iss_variant: IssVariant::Exact,
            revocation_requires_client_secret_field: false,
            auto_approve: true,
            client_credentials: false,
            workload_key: None,
            workload_issuer: "https://workload-idp.test".to_owned(),
            dpop: false,
            dpop_as_nonce: false,
            dpop_rs_nonce: false,
            dpop_unbound_tokens: false,
            as_on_mcp_origin: false,
            decoy_as_on_mcp_origin: false,
            dcr_confidential_secret_ttl_secs: None,
            dpop_required: false,
            entra: false,
            tls: None,
            mtls: None,
            device: None,
        }
    }
}

pub(crate) const AUTH_METHODS: [&str; 4] = [
    "none",
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
];

impl KitConfig {
    /// The issuer path normalised to `""` or `/a/b` (leading slash, no trailing slash).
    pub(crate) fn normalized_issuer_path(&self) -> anyhow::Result<String> {
        let Some(raw) = self.issuer_path.as_deref() else {
            return Ok(String::new());
        };
        let trimmed = raw.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(String::new());
        }
        ensure!(
            trimmed
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
            "issuer_path {raw:?} must be plain path segments such as \"/tenant1\""
        );
        ensure!(
            trimmed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~/".contains(c)),
            "issuer_path {raw:?} may only contain unreserved URL characters"
        );
        Ok(format!("/{trimmed}"))
    }

    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        self.normalized_issuer_path()?;
        if let Some(path) = &self.metadata_path {
            ensure!(
                path.starts_with('/') && !path.starts_with("/.well-known/"),
                "metadata_path {path:?} must be an absolute path outside /.well-known/"
            );
        }
        ensure!(
            !(self.decoy_as_on_mcp_origin && (self.as_on_mcp_origin || self.prm == PrmMode::None)),
            "decoy_as_on_mcp_origin needs the real authorization server on its own origin"
        );
        ensure!(
            self.mtls.is_none() || self.tls.is_some(),
            "mtls needs tls: mutual-TLS client authentication runs over the kit's TLS listeners"
        );
        for method in &self.token_endpoint_auth_methods {
            if !AUTH_METHODS.contains(&method.as_str()) {
                bail!("token_endpoint_auth_methods: unknown method {method:?}");
            }
        }
        for client in &self.preregistered {
            client.validate(self.mtls.is_some())?;
        }
        Ok(())
    }
}

//! Client registration, in priority order (rules 10-12): a preregistered client from config,
//! a Client ID Metadata Document URL, or Dynamic Client Registration.

pub mod cimd;
pub mod dcr;
pub mod preregistered;

use mcp_app_server_protocol::{ClientRegistrationMode, RegistrationKind};
use serde::{Deserialize, Serialize};
use url::Url;

use self::cimd::{CimdUnsupported, CimdUrlError, cimd_supported, client_metadata_url};
use crate::oauth::discovery::AuthServerMetadata;
use crate::oauth::http::HttpError;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// Public client: `client_id` in the form body, no secret, never a Basic header.
    None,
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 section 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

impl TokenAuthMethod {
    /// The RFC 7591 / RFC 8414 name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::None => "none",
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
        }
    }

    /// Parses an RFC 7591 name; `None` for methods this client does not implement.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(TokenAuthMethod::None),
            "client_secret_basic" => Some(TokenAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenAuthMethod::ClientSecretPost),
            _ => None,
        }
    }
}

/// A client the authorization server knows, however it came to know it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub kind: RegistrationKind,
    pub client_id: String,
    /// Only sent when `auth_method` is a secret method. Never logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    pub auth_method: TokenAuthMethod,
}

impl ClientRegistration {
    /// A public client using a Client ID Metadata Document URL as its id.
    pub fn cimd(client_id_url: &Url) -> Self {
        Self {
            kind: RegistrationKind::Cimd,
            client_id: client_id_url.to_string(),
            client_secret: None,
            auth_method: TokenAuthMethod::None,
        }
    }

    /// The secret to send, if the auth method sends one.
    pub fn secret_to_send(&self) -> Option<&str> {
        match self.auth_method {
            TokenAuthMethod::None => None,
            _ => self.client_secret.as_deref(),
        }
    }
}

impl std::fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("auth_method", &self.auth_method)
            .finish()
    }
}

/// Why no client registration could be made.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error(
        "the authorization server accepts only token endpoint auth methods this client does not implement ({advertised}); supported: client_secret_basic, client_secret_post, none"
    )]
    UnsupportedAuthMethods { advertised: String },
    #[error("client registration at {url} was refused (HTTP {status}){}", describe(.error, .description))]
    Rejected {
        url: String,
        status: u16,
        error: Option<String>,
        description: Option<String>,
    },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("invalid client registration response from {url}: {reason}")]
    InvalidResponse { url: String, reason: String },
    #[error(
        "authorization server {issuer} offers no registration_endpoint; configure a client_id for this server"
    )]
    NoRegistrationEndpoint { issuer: String },
    #[error("cannot use a Client ID Metadata Document with {issuer}: {reason}")]
    CimdUnsupported {
        issuer: String,
        reason: CimdUnsupported,
    },
    #[error(
        "no client metadata URL is configured: pass clientMetadataUrlBase or set client_metadata_url_base or the server's oauth.client_metadata_url"
    )]
    CimdNotConfigured,
    #[error(
        "{issuer} refused this client's Client ID Metadata Document earlier; use Dynamic Client Registration or a configured client_id"
    )]
    CimdRefused { issuer: String },
    #[error(transparent)]
    InvalidClientMetadataUrl(#[from] CimdUrlError),
    #[error(
        "no way to register a client with {issuer}: no client_id is configured, {cimd}, and the server offers no registration_endpoint"
    )]
    NoRegistrationPossible { issuer: String, cimd: String },
    /// MCP 2026-07-28 (authorization server binding): a preregistered client belongs to the
    /// authorization server it was registered with; its id is not sent to another one.
    #[error(
        "the configured client_id {client_id:?} belongs to the authorization server {registered_with}, but the server's protected resource metadata now names {issuer}; register a client at {issuer} and set mcp_servers.{server}.oauth.client_id (and oauth.issuer) to it, or remove client_id to let the daemon register by itself"
    )]
    PreregisteredForOtherIssuer {
        server: String,
        client_id: String,
        registered_with: String,
        issuer: String,
    },
}

fn describe(error: &Option<String>, description: &Option<String>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(": {e}: {d}"),
        (Some(e), None) => format!(": {e}"),
        (None, Some(d)) => format!(": {d}"),
        (None, None) => String::new(),
    }
}

impl RegistrationError {
    /// Server or network trouble that may pass.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistrationError::Http(e) => e.is_transient(),
            RegistrationError::Rejected { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// Where the Client ID Metadata Document URL comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CimdSource {
    /// `client_metadata_url_base`: a document per callback id and redirect URI.
    Base(Url),
    /// A server's fixed `client_metadata_url` (its redirect URI must match the callback).
    Fixed(Url),
}

/// What the login should use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegistrationChoice {
    /// A client id usable right away (preregistered or CIMD).
    Ready(ClientRegistration),
    /// Register (or reuse a stored registration for this issuer and redirect URI) at this
    /// endpoint with [`dcr::register`].
    Dcr { registration_endpoint: Url },
}

/// The registration priority: `auto` tries preregistered > CIMD > DCR; `cimd` and `dcr`
/// use only that method and fail saying which precondition is missing. `cimd_refused_issuer`
/// is true when this issuer already rejected our CIMD client (rule 13): it is not offered
/// CIMD again.
#[allow(clippy::too_many_arguments)]
pub fn choose_registration(
    mode: ClientRegistrationMode,
    preregistered: Option<(&str, Option<&str>)>,
    cimd_source: Option<&CimdSource>,
    metadata: &AuthServerMetadata,
    callback_id: &str,
    redirect_uri: &Url,
    cimd_refused_issuer: bool,
) -> Result<RegistrationChoice, RegistrationError> {
    let issuer = || metadata.issuer.clone();
    let cimd = || -> Result<ClientRegistration, RegistrationError> {
        if cimd_refused_issuer {
            return Err(RegistrationError::CimdRefused { issuer: issuer() });
        }
        let source = cimd_source.ok_or(RegistrationError::CimdNotConfigured)?;
        cimd_supported(metadata, redirect_uri).map_err(|reason| {
            RegistrationError::CimdUnsupported {
                issuer: issuer(),
                reason,
            }
        })?;
        let url = match source {
            CimdSource::Base(base) => client_metadata_url(base, callback_id, redirect_uri),
            CimdSource::Fixed(url) => url.clone(),
        };
        Ok(ClientRegistration::cimd(&url))
    };
    let dcr = || match &metadata.registration_endpoint {
        Some(endpoint) => Ok(RegistrationChoice::Dcr {
            registration_endpoint: endpoint.clone(),
        }),
        None => Err(RegistrationError::NoRegistrationEndpoint { issuer: issuer() }),
    };
    match mode {
        ClientRegistrationMode::Cimd => cimd().map(RegistrationChoice::Ready),
        ClientRegistrationMode::Dcr => dcr(),
        ClientRegistrationMode::Auto => {
            if let Some((client_id, secret)) = preregistered {
                return preregistered::preregistered(
                    client_id,
                    secret,
                    metadata.token_endpoint_auth_methods_supported.as_deref(),
                )
                .map(RegistrationChoice::Ready);
            }
            let cimd_error = match cimd() {
                Ok(registration) => return Ok(RegistrationChoice::Ready(registration)),
                Err(e) => e,
            };
            tracing::debug!(issuer = %metadata.issuer, reason = %cimd_error, "not using CIMD");
            dcr().map_err(|_| RegistrationError::NoRegistrationPossible {
                issuer: issuer(),
                cimd: format!("no Client ID Metadata Document ({cimd_error})"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "XuuuHAzzHOni";

    fn redirect() -> Url {
        Url::parse("http://127.0.0.1:8765/callback/XuuuHAzzHOni").unwrap()
    }

    fn metadata(cimd: bool, none: bool, registration: bool) -> AuthServerMetadata {
        let mut m = AuthServerMetadata::legacy_defaults(&Url::parse("https://as.example").unwrap());
        m.client_id_metadata_document_supported = cimd;
        m.token_endpoint_auth_methods_supported = Some(if none {
            vec!["none".into(), "client_secret_basic".into()]
        } else {
            vec!["client_secret_basic".into()]
        });
        if !registration {
            m.registration_endpoint = None;
        }
        m
    }

    fn base() -> CimdSource {
        CimdSource::Base(Url::parse("https://ide.example.com/meta").unwrap())
    }

    fn choose(
        mode: ClientRegistrationMode,
        prereg: Option<(&str, Option<&str>)>,
        source: Option<&CimdSource>,
        m: &AuthServerMetadata,
        refused: bool,
    ) -> Result<RegistrationChoice, RegistrationError> {
        choose_registration(mode, prereg, source, m, ID, &redirect(), refused)
    }

    #[test]
    fn auto_priority() {
        use ClientRegistrationMode::Auto;
        let all = metadata(true, true, true);
        let b = base();
        // Preregistered first.
        let choice = choose(Auto, Some(("pre", Some("s"))), Some(&b), &all, false).unwrap();
        let RegistrationChoice::Ready(reg) = choice else {
            panic!("{choice:?}")
        };
        assert_eq!(reg.kind, RegistrationKind::Preregistered);
        assert_eq!(reg.auth_method, TokenAuthMethod::ClientSecretBasic);
        // Then CIMD.
        let choice = choose(Auto, None, Some(&b), &all, false).unwrap();
        let RegistrationChoice::Ready(reg) = choice else {
            panic!("{choice:?}")
        };
        assert_eq!(reg.kind, RegistrationKind::Cimd);
        assert_eq!(
            reg.client_id,
            "https://ide.example.com/meta/XuuuHAzzHOni/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni"
        );
        assert_eq!(reg.auth_method, TokenAuthMethod::None);
        // A fixed URL is used as is.
        let fixed = CimdSource::Fixed(Url::parse("https://c.example/client.json").unwrap());
        let RegistrationChoice::Ready(reg) = choose(Auto, None, Some(&fixed), &all, false).unwrap()
        else {
            panic!()
        };
        assert_eq!(reg.client_id, "https://c.example/client.json");
        // Then DCR: no base, refused issuer, or a missing precondition.
        let dcr = RegistrationChoice::Dcr {
            registration_endpoint: Url::parse("https://as.example/register").unwrap(),
        };
        assert_eq!(choose(Auto, None, None, &all, false).unwrap(), dcr);
        assert_eq!(choose(Auto, None, Some(&b), &all, true).unwrap(), dcr);
        assert_eq!(
            choose(Auto, None, Some(&b), &metadata(false, true, true), false).unwrap(),
            dcr
        );
        assert_eq!(
            choose(Auto, None, Some(&b), &metadata(true, false, true), false).unwrap(),
            dcr
        );
        // Nothing possible: the error says why CIMD was not used.
        let err = choose(Auto, None, Some(&b), &metadata(false, true, false), false).unwrap_err();
        assert!(
            matches!(err, RegistrationError::NoRegistrationPossible { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("client_id_metadata_document_supported"),
            "{err}"
        );
    }

    #[test]
    fn cimd_mode_names_the_missing_precondition() {
        use ClientRegistrationMode::Cimd;
        let b = base();
        let cases: Vec<(Option<&CimdSource>, AuthServerMetadata, bool, &str)> = vec![
            (
                None,
                metadata(true, true, true),
                false,
                "no client metadata URL",
            ),
            (
                Some(&b),
                metadata(false, true, true),
                false,
                "client_id_metadata_document_supported",
            ),
            (Some(&b), metadata(true, false, true), false, "\"none\""),
            (Some(&b), metadata(true, true, true), true, "refused"),
        ];
        for (source, m, refused, needle) in cases {
            let err = choose(Cimd, Some(("pre", None)), source, &m, refused).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        let ok = choose(
            Cimd,
            Some(("pre", None)),
            Some(&b),
            &metadata(true, true, true),
            false,
        );
        assert!(matches!(
            ok,
            Ok(RegistrationChoice::Ready(ClientRegistration {
                kind: RegistrationKind::Cimd,
                ..
            }))
        ));
    }

    #[test]
    fn dcr_mode_never_uses_cimd() {
        use ClientRegistrationMode::Dcr;
        let b = base();
        let choice = choose(
            Dcr,
            Some(("pre", None)),
            Some(&b),
            &metadata(true, true, true),
            false,
        );
        assert!(
            matches!(choice, Ok(RegistrationChoice::Dcr { .. })),
            "{choice:?}"
        );
        let err = choose(Dcr, None, Some(&b), &metadata(true, true, false), false).unwrap_err();
        assert!(matches!(
            err,
            RegistrationError::NoRegistrationEndpoint { .. }
        ));
    }

    #[test]
    fn debug_redacts_secret() {
        let reg = ClientRegistration {
            kind: RegistrationKind::Dcr,
            client_id: "id".into(),
            client_secret: Some("hunter2".into()),
            auth_method: TokenAuthMethod::ClientSecretPost,
        };
        let text = format!("{reg:?}");
        assert!(!text.contains("hunter2"));
        assert!(text.contains("redacted"));
    }
}

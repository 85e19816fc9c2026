//! Client registration, in priority order (rules 10-12): a preregistered client from config,
//! a Client ID Metadata Document URL, or Dynamic Client Registration.

pub mod cimd;
mod client;
pub mod dcr;
mod error;
pub mod mutual_tls;
pub mod preregistered;

use mcp_app_server_protocol::ClientRegistrationMode;
use url::Url;

use self::cimd::{cimd_supported, client_metadata_url};
pub use self::client::{ClientRegistration, TokenAuthMethod};
pub use self::error::RegistrationError;
use crate::oauth::discovery::AuthServerMetadata;

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
mod tests;

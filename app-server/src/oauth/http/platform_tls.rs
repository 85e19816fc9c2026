//! `ca_certificates` and the client certificate where the platform verifier checks
//! certificates (macOS, Windows, Android), through reqwest's own settings.

use super::HttpError;
use crate::config::network::ServerNetwork;

/// `ca_certificates` and the client certificate where the platform verifier checks
/// certificates (macOS, Windows, Android): added to what the platform trusts.
pub(super) fn platform_tls(
    mut builder: reqwest::ClientBuilder,
    network: &ServerNetwork,
) -> Result<reqwest::ClientBuilder, HttpError> {
    if let Some(bundle) = &network.ca_certificates {
        let certs = reqwest::Certificate::from_pem_bundle(bundle.pem()).map_err(|_| {
            HttpError::Setup(format!(
                "`ca_certificates` {}: not valid PEM certificates",
                bundle.path().display()
            ))
        })?;
        builder = builder.tls_certs_merge(certs);
    }
    if let Some(identity) = &network.client_identity {
        let mut pem = identity.certificate.pem().to_vec();
        pem.push(b'\n');
        pem.extend_from_slice(identity.key.pem());
        let identity_of = reqwest::Identity::from_pem(&pem).map_err(|_| {
            HttpError::Setup(format!(
                "`client_certificate` {} with `client_key` {}: not a usable certificate and key",
                identity.certificate.path().display(),
                identity.key.path().display()
            ))
        })?;
        builder = builder.identity(identity_of);
    }
    Ok(builder)
}

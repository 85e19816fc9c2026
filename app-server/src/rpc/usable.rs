//! Whether a connection can use the token it asks for (rules 42 and 49): a token bound to
//! a key or a certificate goes only to a frontend that declared it can prove possession,
//! so that no frontend is handed a token it cannot use.

use mcp_app_server_protocol::{CertificateBinding, ErrorKind};

use super::error::{AppError, RequestError};
use crate::credentials::StoredCredentials;
use crate::engine::ServerTarget;

/// Rule 49: a DPoP-bound token goes only to a connection that declared it can send proofs;
/// any other gets `dpopRequired`, naming the method that makes them. Rule 42: a token bound
/// to the client certificate goes only to a connection that declared it presents it, with
/// the files that hold it; any other gets `certificateRequired`.
pub(super) fn usable_by(
    sends_proofs: bool,
    presents_certificate: bool,
    creds: &StoredCredentials,
    target: &ServerTarget,
) -> Result<Option<CertificateBinding>, RequestError> {
    let name = &target.name;
    let certificate = match &creds.certificate_x5t {
        None => None,
        Some(x5t) => Some(certificate_binding(presents_certificate, x5t, target)?),
    };
    if sends_proofs || !creds.is_dpop_bound() {
        return Ok(certificate);
    }
    Err(AppError::new(
        ErrorKind::DpopRequired,
        format!(
            "the token of `{name}` is DPoP-bound and this connection did not declare \
             `capabilities.dpop` at initialize: a frontend that can send DPoP proofs declares it \
             and gets each request's proof and token from `{PROOF_METHOD}`; any other logs in to \
             `{name}` again, which gets it a Bearer token unless the server or its \
             configuration requires DPoP"
        ),
    )
    .using(PROOF_METHOD)
    .into())
}

/// The files of the certificate a token is bound to, for a connection that presents it.
fn certificate_binding(
    presents_certificate: bool,
    x5t: &str,
    target: &ServerTarget,
) -> Result<CertificateBinding, RequestError> {
    let name = &target.name;
    let identity = target.network.client_identity.as_ref();
    let Some(identity) = identity.filter(|i| i.facts.x5t_s256 == x5t) else {
        return Err(AppError::new(
            ErrorKind::ReauthenticationRequired,
            format!(
                "the token of `{name}` is bound to a client certificate that config.toml no \
                 longer names for it (`client_certificate` changed or was removed): log in to \
                 `{name}` again"
            ),
        )
        .into());
    };
    if !presents_certificate {
        return Err(AppError::new(
            ErrorKind::CertificateRequired,
            format!(
                "the token of `{name}` is bound to its client certificate ({}) and this \
                 connection did not declare `capabilities.clientCertificate` at initialize: a \
                 frontend that presents that certificate on its requests to the MCP server \
                 declares it and gets the files in `certificateBinding`",
                identity.certificate.path().display()
            ),
        )
        .into());
    }
    // Only when the user asked for it: a frontend that cannot read the files.
    let pem = |file: &crate::config::network::PemFile| {
        target
            .client_key_to_frontends
            .then(|| String::from_utf8_lossy(file.pem()).into_owned())
    };
    Ok(CertificateBinding {
        x5t_s256: x5t.to_string(),
        certificate_file: identity.certificate.path().display().to_string(),
        key_file: identity.key.path().display().to_string(),
        certificate_pem: pem(&identity.certificate),
        key_pem: pem(&identity.key),
    })
}

/// The method that makes the proofs a DPoP-bound token needs.
const PROOF_METHOD: &str = "mcpServer/oauth/dpopProof";

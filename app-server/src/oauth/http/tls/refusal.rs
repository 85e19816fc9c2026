//! A TLS certificate refused during a request, told as the user needs it: which host, why
//! (unknown issuer, expired, wrong name, a client certificate asked for) and which setting
//! fixes it (rule 65).

use rustls::{AlertDescription, CertificateError};

use super::super::error::HttpError;

/// What to do about a certificate from an authority this machine does not trust.
pub(crate) const CA_FIX: &str = "If this network or server uses a private certificate \
    authority (a TLS-inspecting proxy, an internal server), give its certificate in PEM with \
    `ca_certificates = \"/path/to/ca.pem\"` in config.toml (at the top or in the server's \
    [mcp_servers.NAME] table), or point SSL_CERT_FILE at a bundle that holds it";

/// The certificate error behind `error`, if there is one, as [`HttpError::Certificate`].
pub(crate) fn refused_certificate(url: &url::Url, error: &reqwest::Error) -> Option<HttpError> {
    let tls = tls_error(error)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let (reason, fix) = explain(tls, &host)?;
    Some(HttpError::Certificate {
        url: url.to_string(),
        host,
        reason,
        fix,
    })
}

/// The rustls error in a reqwest error's causes. An `io::Error` hides the error it wraps
/// from `source()` (it goes straight to that error's own source), and the connector wraps
/// one `io::Error` in another, so each is looked into.
fn tls_error(error: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source = std::error::Error::source(error);
    // Bounded: a chain is a handful of links.
    for _ in 0..32 {
        let cause = source?;
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        source = match cause
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cause.source(),
        };
    }
    None
}

/// The reason and the fix of a TLS failure about certificates; `None` for other failures.
fn explain(error: &rustls::Error, host: &str) -> Option<(String, String)> {
    let operator = |what: &str| format!("{what}; only the server's operator can fix that");
    Some(match error {
        rustls::Error::InvalidCertificate(e) => match e {
            CertificateError::UnknownIssuer => (
                "its certificate was issued by a certificate authority this machine does not \
                 trust (unknown issuer)"
                    .to_string(),
                CA_FIX.to_string(),
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => (
                "its certificate has expired".to_string(),
                operator(
                    "Check this machine's clock; if it is right, the certificate must be renewed",
                ),
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => (
                "its certificate is not valid yet".to_string(),
                operator("Check this machine's clock; if it is right, the certificate is wrong"),
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                (
                    format!("its certificate is not valid for the name {host} (wrong name)"),
                    format!(
                        "Check that the URL in config.toml names the host the certificate was \
                     issued for; if it does, {}",
                        operator("the certificate is wrong").to_lowercase()
                    ),
                )
            }
            CertificateError::Revoked => (
                "its certificate has been revoked".to_string(),
                operator("Do not trust this server until it has a new certificate"),
            ),
            other => (
                format!("its certificate was refused ({other})"),
                CA_FIX.to_string(),
            ),
        },
        rustls::Error::AlertReceived(
            alert @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure),
        ) => (
            format!(
                "the server refused the connection ({alert:?}): it may require a client \
                 certificate, or refuse the one presented"
            ),
            "If the server requires a client certificate (mutual TLS), give it with \
             `client_certificate = \"/path/to/cert.pem\"` and `client_key = \
             \"/path/to/key.pem\"` in the server's [mcp_servers.NAME] table"
                .to_string(),
        ),
        rustls::Error::NoCertificatesPresented => (
            "the server presented no certificate".to_string(),
            operator("The server is misconfigured"),
        ),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_names_the_host_or_the_setting_that_fixes_it() {
        let host = "auth.corp.example";
        let (reason, fix) = explain(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            host,
        )
        .unwrap();
        assert!(reason.contains("unknown issuer"), "{reason}");
        assert!(
            fix.contains("ca_certificates") && fix.contains("SSL_CERT_FILE"),
            "{fix}"
        );
        let (reason, _) = explain(
            &rustls::Error::InvalidCertificate(CertificateError::NotValidForName),
            host,
        )
        .unwrap();
        assert!(
            reason.contains("wrong name") && reason.contains(host),
            "{reason}"
        );
        let (reason, fix) = explain(
            &rustls::Error::InvalidCertificate(CertificateError::Expired),
            host,
        )
        .unwrap();
        assert!(
            reason.contains("expired") && fix.contains("clock"),
            "{reason} {fix}"
        );
        let (_, fix) = explain(
            &rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
            host,
        )
        .unwrap();
        assert!(
            fix.contains("client_certificate") && fix.contains("client_key"),
            "{fix}"
        );
        assert!(explain(&rustls::Error::DecryptError, host).is_none());
    }
}

//! Client authentication by certificate (RFC 8705 §2, rule 42): which method a client with
//! a configured certificate uses, and what a Dynamic Client Registration request says for
//! it. On the wire, both methods send `client_id` in the form body and no secret; the
//! certificate goes on the TLS connection (the server's TLS settings carry it already).

use serde_json::{Map, Value};

use super::client::TokenAuthMethod;
use super::error::RegistrationError;
use crate::config::client_certificate::CertificateFacts;

/// The members of a registration request that say how the client authenticates.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistrationAuth {
    pub method: TokenAuthMethod,
    /// Besides `token_endpoint_auth_method`: `jwks` or `tls_client_auth_subject_dn`, and
    /// `tls_client_certificate_bound_access_tokens`.
    members: Map<String, Value>,
}

impl RegistrationAuth {
    /// A public client (`none`), as registered without a certificate.
    #[cfg(test)]
    pub fn public() -> Self {
        Self {
            method: TokenAuthMethod::None,
            members: Map::new(),
        }
    }

    /// Writes these members into a registration request.
    pub fn apply(&self, body: &mut Value) {
        if let Some(map) = body.as_object_mut() {
            map.insert(
                "token_endpoint_auth_method".into(),
                self.method.as_str().into(),
            );
            for (name, value) in &self.members {
                map.insert(name.clone(), value.clone());
            }
        }
    }
}

/// The members of RFC 8705 a registration request may carry: what a server that refuses
/// them gets instead is a public client's request.
pub(super) const MUTUAL_TLS_MEMBERS: [&str; 3] = [
    "jwks",
    "tls_client_auth_subject_dn",
    "tls_client_certificate_bound_access_tokens",
];

/// How a client registered by DCR authenticates, and what its request says.
///
/// - `configured` (the server's `token_endpoint_auth_method`) wins; a certificate method
///   then needs a certificate that can say what the method needs.
/// - Else, with a certificate: `self_signed_tls_client_auth` when the server lists it (the
///   registration holds the certificate itself, so no authority needs to be trusted), else
///   `tls_client_auth` when listed (named by its subject), else a public client.
/// - Without one: a public client.
///
/// With a certificate, tokens are asked to be bound to it when the server says it binds
/// them (`tls_client_certificate_bound_access_tokens`, RFC 8705 §3.4).
pub fn registration_auth(
    certificate: Option<&CertificateFacts>,
    advertised: Option<&[String]>,
    binds_tokens: bool,
    configured: Option<TokenAuthMethod>,
) -> Result<RegistrationAuth, RegistrationError> {
    let lists = |m: TokenAuthMethod| advertised.is_some_and(|a| a.iter().any(|x| x == m.as_str()));
    let method = match (configured, certificate) {
        (Some(method), _) => method,
        (None, Some(facts))
            if lists(TokenAuthMethod::SelfSignedTlsClientAuth) && facts.public_jwk.is_some() =>
        {
            TokenAuthMethod::SelfSignedTlsClientAuth
        }
        (None, Some(facts))
            if lists(TokenAuthMethod::TlsClientAuth) && facts.subject_dn.is_some() =>
        {
            TokenAuthMethod::TlsClientAuth
        }
        (None, _) => TokenAuthMethod::None,
    };
    let mut members = Map::new();
    if method.is_mutual_tls() {
        let facts = certificate.ok_or(RegistrationError::CertificateMissing {
            method: method.as_str(),
        })?;
        match method {
            TokenAuthMethod::SelfSignedTlsClientAuth => {
                let jwk = facts.public_jwk.as_ref().ok_or(
                    RegistrationError::CertificateUnusable {
                        method: method.as_str(),
                        reason: "its public key has no JWK form this client writes (RSA, EC P-256/384/521 and Ed25519 have)",
                    },
                )?;
                members.insert(
                    "jwks".into(),
                    serde_json::json!({ "keys": [jwk.to_json()] }),
                );
            }
            _ => {
                let dn =
                    facts
                        .subject_dn
                        .as_ref()
                        .ok_or(RegistrationError::CertificateUnusable {
                            method: method.as_str(),
                            reason: "its subject holds a value that is not a string",
                        })?;
                members.insert("tls_client_auth_subject_dn".into(), dn.clone().into());
            }
        }
    }
    if certificate.is_some() && binds_tokens {
        members.insert(
            "tls_client_certificate_bound_access_tokens".into(),
            true.into(),
        );
    }
    Ok(RegistrationAuth { method, members })
}

/// A preregistered client's method: `configured` when set; else a secret method the
/// server lists when there is a secret ([`super::preregistered::choose_auth_method`]); else,
/// with a certificate, the certificate method the server lists (`tls_client_auth` first: a
/// preregistered certificate is usually issued by an authority the server trusts); else
/// `none`. The two certificate methods and `none` send the same form; the name is what
/// status shows and what the stored entry records.
pub fn preregistered_method(
    has_secret: bool,
    has_certificate: bool,
    advertised: Option<&[String]>,
    configured: Option<TokenAuthMethod>,
) -> Result<TokenAuthMethod, RegistrationError> {
    if let Some(method) = configured {
        if method.sends_secret() && !has_secret {
            return Err(RegistrationError::SecretMissing {
                method: method.as_str(),
            });
        }
        if method.is_mutual_tls() && !has_certificate {
            return Err(RegistrationError::CertificateMissing {
                method: method.as_str(),
            });
        }
        return Ok(method);
    }
    let lists = |m: TokenAuthMethod| advertised.is_some_and(|a| a.iter().any(|x| x == m.as_str()));
    let by_certificate = [
        TokenAuthMethod::TlsClientAuth,
        TokenAuthMethod::SelfSignedTlsClientAuth,
    ]
    .into_iter()
    .find(|m| has_certificate && lists(*m));
    if !has_secret {
        return Ok(by_certificate.unwrap_or(TokenAuthMethod::None));
    }
    // A secret the server takes no method for: the certificate, when it takes that.
    match super::preregistered::choose_auth_method(has_secret, advertised) {
        Ok(TokenAuthMethod::None) | Err(_) if by_certificate.is_some() => {
            Ok(by_certificate.unwrap_or(TokenAuthMethod::None))
        }
        chosen => chosen,
    }
}

#[cfg(test)]
mod tests;

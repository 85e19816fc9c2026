//! Clients the authorization server knows before any registration, and how each
//! authenticates at the token endpoint.

use anyhow::bail;

/// A client the authorization server knows before any registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreregisteredClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    /// `client_secret_basic`, `client_secret_post`, `private_key_jwt`, `tls_client_auth`,
    /// `self_signed_tls_client_auth` or `none`.
    pub auth_method: String,
    pub redirect_uris: Vec<String>,
    /// `private_key_jwt`: the public key (uncompressed P-256 point) its assertions verify
    /// with.
    pub jwt_public_key: Option<Vec<u8>>,
    /// `tls_client_auth` (RFC 8705 2.1.2): the subject DN (RFC 4514) its certificate,
    /// issued by the kit's client CA, must carry.
    pub tls_client_auth_subject_dn: Option<String>,
    /// `self_signed_tls_client_auth` (RFC 8705 2.2): SHA-256 of the DER of the certificate
    /// it must present.
    pub tls_client_certificate_sha256: Option<[u8; 32]>,
}

impl PreregisteredClient {
    fn with_method(client_id: &str, auth_method: &str, redirect_uris: &[&str]) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: None,
            auth_method: auth_method.to_owned(),
            redirect_uris: redirect_uris.iter().map(|s| (*s).to_owned()).collect(),
            jwt_public_key: None,
            tls_client_auth_subject_dn: None,
            tls_client_certificate_sha256: None,
        }
    }

    /// A public client (`token_endpoint_auth_method` `none`).
    pub fn public(client_id: &str, redirect_uris: &[&str]) -> Self {
        Self::with_method(client_id, "none", redirect_uris)
    }

    /// A confidential client authenticating with `auth_method`
    /// (`client_secret_basic` or `client_secret_post`).
    pub fn confidential(
        client_id: &str,
        client_secret: &str,
        auth_method: &str,
        redirect_uris: &[&str],
    ) -> Self {
        Self {
            client_secret: Some(client_secret.to_owned()),
            ..Self::with_method(client_id, auth_method, redirect_uris)
        }
    }

    /// A machine client authenticating with RFC 7523 assertions signed by the key whose
    /// public point is `public_key` (see [`crate::Es256Key::public_point`]).
    pub fn private_key_jwt(client_id: &str, public_key: Vec<u8>) -> Self {
        Self {
            jwt_public_key: Some(public_key),
            ..Self::with_method(client_id, "private_key_jwt", &[])
        }
    }

    /// A client authenticating with a certificate of the kit's client CA whose subject DN
    /// is `subject_dn`, e.g. `"CN=alice"` (RFC 8705 2.1, `tls_client_auth`).
    pub fn tls_client_auth(client_id: &str, subject_dn: &str, redirect_uris: &[&str]) -> Self {
        Self {
            tls_client_auth_subject_dn: Some(subject_dn.to_owned()),
            ..Self::with_method(client_id, "tls_client_auth", redirect_uris)
        }
    }

    /// A client authenticating with the certificate whose DER has SHA-256 `sha256`,
    /// self-signed or not (RFC 8705 2.2, `self_signed_tls_client_auth`).
    pub fn self_signed_tls_client_auth(
        client_id: &str,
        sha256: [u8; 32],
        redirect_uris: &[&str],
    ) -> Self {
        Self {
            tls_client_certificate_sha256: Some(sha256),
            ..Self::with_method(client_id, "self_signed_tls_client_auth", redirect_uris)
        }
    }

    /// Refuses a client whose credentials do not fit its method; `mtls`: the kit serves
    /// mutual-TLS client authentication.
    pub(crate) fn validate(&self, mtls: bool) -> anyhow::Result<()> {
        let id = &self.client_id;
        let secret = self.client_secret.is_some();
        match self.auth_method.as_str() {
            "none" if secret => {
                bail!("preregistered client {id:?}: auth_method none cannot have a secret")
            }
            "none" => {}
            "client_secret_basic" | "client_secret_post" if !secret => bail!(
                "preregistered client {id:?}: {} needs a client_secret",
                self.auth_method
            ),
            "client_secret_basic" | "client_secret_post" => {}
            "private_key_jwt" if secret || self.jwt_public_key.is_none() => bail!(
                "preregistered client {id:?}: private_key_jwt needs jwt_public_key and no secret"
            ),
            "private_key_jwt" => {}
            "tls_client_auth" | "self_signed_tls_client_auth" if !mtls => bail!(
                "preregistered client {id:?}: {} needs KitConfig::mtls",
                self.auth_method
            ),
            "tls_client_auth" if secret || self.tls_client_auth_subject_dn.is_none() => bail!(
                "preregistered client {id:?}: tls_client_auth needs tls_client_auth_subject_dn and no secret"
            ),
            "tls_client_auth" => {}
            "self_signed_tls_client_auth"
                if secret || self.tls_client_certificate_sha256.is_none() =>
            {
                bail!(
                    "preregistered client {id:?}: self_signed_tls_client_auth needs tls_client_certificate_sha256 and no secret"
                )
            }
            "self_signed_tls_client_auth" => {}
            other => bail!("preregistered client {id:?}: unknown auth_method {other:?}"),
        }
        Ok(())
    }
}

//! The `grant` of a server's `[mcp_servers.NAME.oauth]` table and the credential that goes
//! with it, checked when config.toml loads so a bad one is reported before the first login.

use std::path::PathBuf;

use super::oauth_client::OauthClientConfig;
use super::private_key::{JwsAlg, PrivateKey, PrivateKeyError};

/// How the daemon obtains tokens for a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantConfig {
    /// The browser login (the default).
    AuthorizationCode,
    /// OAuth client credentials (MCP extension `oauth-client-credentials`): no user, no
    /// browser.
    ClientCredentials {
        client_id: String,
        auth: ClientAuthConfig,
    },
    /// The JWT bearer grant with the workload's identity token (MCP extension
    /// `workload-identity-federation`).
    JwtBearer {
        client_id: Option<String>,
        assertion: AssertionSource,
    },
    /// Enterprise-managed authorization (MCP extension `enterprise-managed-authorization`):
    /// the `[enterprise_idp]` sign-in is exchanged for an ID-JAG, presented with the JWT
    /// bearer grant by this client of the server's authorization server.
    Enterprise {
        client_id: String,
        auth: Option<ClientAuthConfig>,
    },
}

impl GrantConfig {
    /// The `[mcp_servers.NAME.oauth]` key that says where the grant's credential comes
    /// from: what to fix when it cannot be read. `None` for the browser login.
    pub fn credential_key(&self) -> Option<&'static str> {
        match self {
            GrantConfig::AuthorizationCode => None,
            GrantConfig::ClientCredentials { auth, .. } => Some(auth.credential_key()),
            GrantConfig::Enterprise { auth, .. } => {
                auth.as_ref().map(ClientAuthConfig::credential_key)
            }
            GrantConfig::JwtBearer { assertion, .. } => Some(match assertion {
                AssertionSource::EnvVar(_) => "assertion_env_var",
                AssertionSource::File(_) | AssertionSource::Value(_) => "assertion_file",
            }),
        }
    }
}

/// A credential the program was handed directly (`connect --conformance` reads them from
/// the conformance suite's context), never one from config.toml. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineSecret(pub String);

impl std::fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InlineSecret(<redacted>)")
    }
}

/// How a client-credentials client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAuthConfig {
    /// `client_secret_basic` or `client_secret_post`; the secret is read from the variable.
    SecretEnvVar(String),
    /// `client_secret_basic` or `client_secret_post` with a secret handed over directly.
    Secret(InlineSecret),
    /// `private_key_jwt` with a PEM key.
    PrivateKey {
        source: KeySource,
        alg: JwsAlg,
        kid: Option<String>,
    },
    /// The server's client certificate (RFC 8705): `tls_client_auth`, or
    /// `self_signed_tls_client_auth` when `self_signed`; `client_id` in the body, the
    /// certificate on the connection (`token_endpoint_auth_method` says which).
    Certificate { self_signed: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    File(PathBuf),
    EnvVar(String),
    /// A PEM handed over directly.
    Pem(InlineSecret),
}

/// Where the workload identity token comes from. A file is read at every use: projected
/// tokens (Kubernetes, CI runners) are rotated in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionSource {
    File(PathBuf),
    EnvVar(String),
    /// A token handed over directly.
    Value(InlineSecret),
}

/// A bad grant configuration; [`GrantConfigError::key`] names the offending key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GrantConfigError {
    #[error(
        "unknown grant `{0}`; use `authorization_code`, `client_credentials`, `jwt_bearer` or `enterprise`"
    )]
    UnknownGrant(String),
    #[error("the `{grant}` grant needs `client_id`")]
    MissingClientId { grant: &'static str },
    #[error(
        "the `client_credentials` grant needs a credential: `client_secret_env_var`, `private_key_file` or `private_key_env_var`, or `token_endpoint_auth_method = \"tls_client_auth\"` (or `self_signed_tls_client_auth`) with the server's `client_certificate` and `client_key`"
    )]
    MissingCredential,
    #[error(
        "give only one of `client_secret_env_var`, `private_key_file`, `private_key_env_var` and a certificate `token_endpoint_auth_method`"
    )]
    TwoCredentials,
    #[error("unknown algorithm `{0}`; use `ES256` or `RS256`")]
    UnknownAlg(String),
    #[error("cannot read the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("the private key does not parse: {reason}")]
    BadKey { key: &'static str, reason: String },
    #[error("the `jwt_bearer` grant needs exactly one of `assertion_file` and `assertion_env_var`")]
    AssertionSource,
    #[error("`{0}` only applies to another grant; remove it or set `grant`")]
    NotForThisGrant(&'static str),
}

impl GrantConfigError {
    /// The key under `[mcp_servers.NAME.oauth]` the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            Self::UnknownGrant(_) => "grant",
            Self::MissingClientId { .. } => "client_id",
            Self::MissingCredential | Self::TwoCredentials => "grant",
            Self::UnknownAlg(_) => "private_key_alg",
            Self::KeyFile { .. } => "private_key_file",
            Self::BadKey { key, .. } => key,
            Self::AssertionSource => "assertion_file",
            Self::NotForThisGrant(key) => key,
        }
    }
}

impl GrantConfig {
    pub fn from_oauth(oauth: &OauthClientConfig) -> Result<Self, GrantConfigError> {
        let key_given = oauth.private_key_file.is_some()
            || oauth.private_key_env_var.is_some()
            || oauth.private_key_alg.is_some()
            || oauth.private_key_kid.is_some();
        let assertion_given = oauth.assertion_file.is_some() || oauth.assertion_env_var.is_some();
        match oauth.grant.as_deref().unwrap_or("authorization_code") {
            "authorization_code" => {
                if key_given {
                    return Err(GrantConfigError::NotForThisGrant(first_key_field(oauth)));
                }
                if assertion_given {
                    return Err(GrantConfigError::NotForThisGrant("assertion_file"));
                }
                Ok(GrantConfig::AuthorizationCode)
            }
            "client_credentials" => {
                if assertion_given {
                    return Err(GrantConfigError::NotForThisGrant("assertion_file"));
                }
                let client_id = oauth.client_id.clone().filter(|id| !id.is_empty()).ok_or(
                    GrantConfigError::MissingClientId {
                        grant: "client_credentials",
                    },
                )?;
                let auth = client_auth(oauth)?;
                Ok(GrantConfig::ClientCredentials { client_id, auth })
            }
            "jwt_bearer" => {
                if key_given {
                    return Err(GrantConfigError::NotForThisGrant(first_key_field(oauth)));
                }
                if oauth.client_secret_env_var.is_some() {
                    return Err(GrantConfigError::NotForThisGrant("client_secret_env_var"));
                }
                let assertion = match (&oauth.assertion_file, &oauth.assertion_env_var) {
                    (Some(path), None) => AssertionSource::File(path.clone()),
                    (None, Some(var)) if !var.is_empty() => AssertionSource::EnvVar(var.clone()),
                    _ => return Err(GrantConfigError::AssertionSource),
                };
                Ok(GrantConfig::JwtBearer {
                    client_id: oauth.client_id.clone().filter(|id| !id.is_empty()),
                    assertion,
                })
            }
            "enterprise" => {
                if assertion_given {
                    return Err(GrantConfigError::NotForThisGrant("assertion_file"));
                }
                let client_id = oauth.client_id.clone().filter(|id| !id.is_empty()).ok_or(
                    GrantConfigError::MissingClientId {
                        grant: "enterprise",
                    },
                )?;
                let auth = optional_client_auth(&CredentialFields::of(oauth))?;
                Ok(GrantConfig::Enterprise { client_id, auth })
            }
            other => Err(GrantConfigError::UnknownGrant(other.to_string())),
        }
    }

    /// True for the grants that never need a browser (an enterprise login may need one,
    /// for the identity provider's sign-in).
    pub fn is_machine(&self) -> bool {
        matches!(
            self,
            GrantConfig::ClientCredentials { .. } | GrantConfig::JwtBearer { .. }
        )
    }
}

impl OauthClientConfig {
    /// The validated grant; config loading has already refused a bad one.
    pub fn grant_config(&self) -> Result<GrantConfig, GrantConfigError> {
        GrantConfig::from_oauth(self)
    }
}

impl ClientAuthConfig {
    /// The key that says where this client credential comes from.
    fn credential_key(&self) -> &'static str {
        match self {
            ClientAuthConfig::SecretEnvVar(_) | ClientAuthConfig::Secret(_) => {
                "client_secret_env_var"
            }
            ClientAuthConfig::PrivateKey {
                source: KeySource::EnvVar(_),
                ..
            } => "private_key_env_var",
            ClientAuthConfig::PrivateKey { .. } => "private_key_file",
            ClientAuthConfig::Certificate { .. } => "token_endpoint_auth_method",
        }
    }
}

fn first_key_field(oauth: &OauthClientConfig) -> &'static str {
    if oauth.private_key_file.is_some() {
        "private_key_file"
    } else if oauth.private_key_env_var.is_some() {
        "private_key_env_var"
    } else if oauth.private_key_alg.is_some() {
        "private_key_alg"
    } else {
        "private_key_kid"
    }
}

/// The credential keys of a client: `client_secret_env_var` or a private key.
pub(super) struct CredentialFields<'a> {
    pub client_secret_env_var: Option<&'a String>,
    pub private_key_file: Option<&'a PathBuf>,
    pub private_key_env_var: Option<&'a String>,
    pub private_key_alg: Option<&'a String>,
    pub private_key_kid: Option<&'a String>,
}

impl<'a> CredentialFields<'a> {
    fn of(oauth: &'a OauthClientConfig) -> Self {
        Self {
            client_secret_env_var: oauth.client_secret_env_var.as_ref(),
            private_key_file: oauth.private_key_file.as_ref(),
            private_key_env_var: oauth.private_key_env_var.as_ref(),
            private_key_alg: oauth.private_key_alg.as_ref(),
            private_key_kid: oauth.private_key_kid.as_ref(),
        }
    }
}

/// The client's credential: a secret or key, else its certificate when
/// `token_endpoint_auth_method` names a certificate method (whether the server has one is
/// checked with the server's table).
fn client_auth(oauth: &OauthClientConfig) -> Result<ClientAuthConfig, GrantConfigError> {
    let certificate = match oauth.token_endpoint_auth_method.as_deref() {
        Some("tls_client_auth") => Some(ClientAuthConfig::Certificate { self_signed: false }),
        Some("self_signed_tls_client_auth") => {
            Some(ClientAuthConfig::Certificate { self_signed: true })
        }
        _ => None,
    };
    match (
        optional_client_auth(&CredentialFields::of(oauth))?,
        certificate,
    ) {
        (Some(_), Some(_)) => Err(GrantConfigError::TwoCredentials),
        (Some(auth), None) | (None, Some(auth)) => Ok(auth),
        (None, None) => Err(GrantConfigError::MissingCredential),
    }
}

/// The client's credential, `None` when no credential key is given (a public client).
pub(super) fn optional_client_auth(
    fields: &CredentialFields<'_>,
) -> Result<Option<ClientAuthConfig>, GrantConfigError> {
    let alg = match fields.private_key_alg.map(String::as_str) {
        None => JwsAlg::Es256,
        Some(name) => {
            JwsAlg::from_name(name).ok_or_else(|| GrantConfigError::UnknownAlg(name.to_string()))?
        }
    };
    let source = match (
        fields.client_secret_env_var,
        fields.private_key_file,
        fields.private_key_env_var,
    ) {
        (Some(var), None, None) => {
            if fields.private_key_alg.is_some() {
                return Err(GrantConfigError::NotForThisGrant("private_key_alg"));
            }
            if fields.private_key_kid.is_some() {
                return Err(GrantConfigError::NotForThisGrant("private_key_kid"));
            }
            return Ok(Some(ClientAuthConfig::SecretEnvVar(var.clone())));
        }
        (None, Some(path), None) => KeySource::File(path.clone()),
        (None, None, Some(var)) => KeySource::EnvVar(var.clone()),
        (None, None, None) => {
            if fields.private_key_alg.is_some() {
                return Err(GrantConfigError::NotForThisGrant("private_key_alg"));
            }
            if fields.private_key_kid.is_some() {
                return Err(GrantConfigError::NotForThisGrant("private_key_kid"));
            }
            return Ok(None);
        }
        _ => return Err(GrantConfigError::TwoCredentials),
    };
    // A key file is read and parsed now, so a key that does not parse is a load error. A key
    // in an environment variable is checked now when the variable is set.
    match &source {
        KeySource::File(path) => {
            let pem = std::fs::read_to_string(path).map_err(|e| GrantConfigError::KeyFile {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            PrivateKey::from_pem(&pem, alg).map_err(|e| bad_key("private_key_file", &e))?;
        }
        KeySource::EnvVar(var) => {
            if let Ok(pem) = std::env::var(var) {
                PrivateKey::from_pem(&pem, alg).map_err(|e| bad_key("private_key_env_var", &e))?;
            }
        }
        KeySource::Pem(_) => {}
    }
    Ok(Some(ClientAuthConfig::PrivateKey {
        source,
        alg,
        kid: fields.private_key_kid.cloned(),
    }))
}

fn bad_key(key: &'static str, error: &PrivateKeyError) -> GrantConfigError {
    GrantConfigError::BadKey {
        key,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests;

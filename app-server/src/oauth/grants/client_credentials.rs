//! The OAuth client credentials grant (MCP extension `oauth-client-credentials`): a machine
//! client authenticates with a secret (`client_secret_basic` / `client_secret_post`), a
//! signed assertion (`private_key_jwt`, RFC 7523) or its TLS certificate (RFC 8705) and
//! gets a token with no user and no browser. There is usually no refresh token: the grant is run again when the token expires.

use reqwest::header::HeaderMap;
use url::Url;

use super::{GrantError, env_value, push_resource_and_scope};
use crate::config::grant::{ClientAuthConfig, KeySource};
use crate::oauth::client_assertion::{CLIENT_ASSERTION_TYPE, client_assertion};
use crate::oauth::dpop::TokenDpop;
use crate::oauth::http::HttpClient;
use crate::oauth::jose::SigningKey;
use crate::oauth::registration::TokenAuthMethod;
use crate::oauth::token::{TokenResponse, basic_auth_header, request_token_dpop};

/// Where the request goes and what it asks for.
#[derive(Debug, Clone)]
pub struct GrantTarget<'a> {
    pub token_endpoint: &'a Url,
    /// The authorization server's issuer: the `aud` of a client assertion.
    pub issuer: &'a str,
    /// `token_endpoint_auth_methods_supported` from the server's metadata.
    pub auth_methods_supported: Option<&'a [String]>,
    pub resource: &'a str,
    /// Space-separated scopes, when any are wanted.
    pub scope: Option<&'a str>,
    /// The key the tokens are (to be) bound to: the request carries a proof of it.
    pub dpop: Option<TokenDpop<'a>>,
}

/// The secret method to use: `client_secret_basic` unless the server advertises only
/// `client_secret_post` (RFC 8414: absent metadata means basic).
pub fn secret_method(advertised: Option<&[String]>) -> TokenAuthMethod {
    match advertised {
        Some(methods)
            if !methods.iter().any(|m| m == "client_secret_basic")
                && methods.iter().any(|m| m == "client_secret_post") =>
        {
            TokenAuthMethod::ClientSecretPost
        }
        _ => TokenAuthMethod::ClientSecretBasic,
    }
}

/// A client credential ready to use: the secret or key read from where the config says, or
/// the client certificate the connection presents (RFC 8705), with the method's name.
pub enum ClientAuth {
    Secret(String),
    Key(SigningKey),
    Certificate(TokenAuthMethod),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("ClientAuth::Secret(<redacted>)"),
            ClientAuth::Key(key) => f.debug_tuple("ClientAuth::Key").field(key).finish(),
            ClientAuth::Certificate(method) => f
                .debug_tuple("ClientAuth::Certificate")
                .field(method)
                .finish(),
        }
    }
}

/// Reads the configured secret or key now (a key file without blocking the runtime).
pub async fn resolve(auth: &ClientAuthConfig) -> Result<ClientAuth, GrantError> {
    match auth {
        ClientAuthConfig::SecretEnvVar(var) => {
            Ok(ClientAuth::Secret(env_value(var, "client secret")?))
        }
        ClientAuthConfig::Secret(secret) => Ok(ClientAuth::Secret(secret.0.clone())),
        ClientAuthConfig::Certificate { self_signed } => {
            Ok(ClientAuth::Certificate(if *self_signed {
                TokenAuthMethod::SelfSignedTlsClientAuth
            } else {
                TokenAuthMethod::TlsClientAuth
            }))
        }
        ClientAuthConfig::PrivateKey { source, alg, kid } => {
            let pem = match source {
                KeySource::File(path) => {
                    tokio::fs::read_to_string(path)
                        .await
                        .map_err(|e| GrantError::File {
                            what: "private key",
                            path: path.display().to_string(),
                            reason: e.to_string(),
                        })?
                }
                KeySource::EnvVar(var) => env_value(var, "PEM private key")?,
                KeySource::Pem(pem) => pem.0.clone(),
            };
            Ok(ClientAuth::Key(
                SigningKey::from_pem(&pem, *alg)?.with_kid(kid.clone()),
            ))
        }
    }
}

/// Runs the grant once. `now` is the assertion's `iat` (seconds since the epoch).
pub async fn request(
    http: &HttpClient,
    target: &GrantTarget<'_>,
    client_id: &str,
    auth: &ClientAuth,
    now: i64,
) -> Result<TokenResponse, GrantError> {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    let mut headers = HeaderMap::new();
    let assertion;
    match auth {
        ClientAuth::Secret(secret) => match secret_method(target.auth_methods_supported) {
            TokenAuthMethod::ClientSecretPost => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret));
            }
            _ => headers = basic_auth_header(client_id, secret),
        },
        ClientAuth::Key(key) => {
            assertion = client_assertion(key, client_id, target.issuer, now)?;
            // The assertion authenticates the client: no client_id in the body.
            form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE));
            form.push(("client_assertion", &assertion));
        }
        // The certificate authenticates the client on the connection.
        ClientAuth::Certificate(_) => form.push(("client_id", client_id)),
    }
    push_resource_and_scope(&mut form, target.resource, target.scope);
    Ok(request_token_dpop(http, target.token_endpoint, &form, &headers, target.dpop).await?)
}

#[cfg(test)]
mod tests;

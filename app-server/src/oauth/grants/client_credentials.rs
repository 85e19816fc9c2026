//! The OAuth client credentials grant (MCP extension `oauth-client-credentials`): a machine
//! client authenticates with a secret (`client_secret_basic` / `client_secret_post`) or a
//! signed assertion (`private_key_jwt`, RFC 7523) and gets a token with no user and no
//! browser. There is usually no refresh token: the grant is run again when the token expires.

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

/// A client credential ready to use: the secret or key read from where the config says.
pub enum ClientAuth {
    Secret(String),
    Key(SigningKey),
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientAuth::Secret(_) => f.write_str("ClientAuth::Secret(<redacted>)"),
            ClientAuth::Key(key) => f.debug_tuple("ClientAuth::Key").field(key).finish(),
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
    }
    push_resource_and_scope(&mut form, target.resource, target.scope);
    Ok(request_token_dpop(http, target.token_endpoint, &form, &headers, target.dpop).await?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::{Value, json};

    use super::*;
    use crate::oauth::jose::JwsAlg;
    use crate::oauth::test_server::{TestServer, json as json_answer, serve, status};

    async fn token_server(answer: Value, code: u16) -> TestServer {
        serve(move |req, _| match req.path.as_str() {
            "/token" => json_answer(code, answer.clone()),
            _ => status(404),
        })
        .await
    }

    fn ok() -> Value {
        json!({"access_token": "cc-at", "token_type": "Bearer", "expires_in": 300})
    }

    fn target<'a>(url: &'a Url, methods: Option<&'a [String]>) -> GrantTarget<'a> {
        GrantTarget {
            token_endpoint: url,
            issuer: "http://as.test",
            auth_methods_supported: methods,
            resource: "https://mcp.example.com/mcp",
            scope: Some("tools:read"),
            dpop: None,
        }
    }

    fn form(server: &TestServer) -> BTreeMap<String, String> {
        server.requests()[0].form().into_iter().collect()
    }

    #[test]
    fn secret_method_follows_the_metadata() {
        let post = vec!["client_secret_post".to_string()];
        let both = vec![
            "client_secret_post".to_string(),
            "client_secret_basic".to_string(),
        ];
        assert_eq!(secret_method(None), TokenAuthMethod::ClientSecretBasic);
        assert_eq!(
            secret_method(Some(&post)),
            TokenAuthMethod::ClientSecretPost
        );
        assert_eq!(
            secret_method(Some(&both)),
            TokenAuthMethod::ClientSecretBasic
        );
    }

    #[tokio::test]
    async fn secret_basic_sends_the_authorization_header_and_no_secret_in_the_body() {
        let server = token_server(ok(), 200).await;
        let url = server.url("/token");
        let auth = ClientAuth::Secret("s3cret".into());
        let token = request(
            &HttpClient::for_tests(),
            &target(&url, None),
            "cc-id",
            &auth,
            0,
        )
        .await
        .unwrap();
        assert_eq!(token.access_token, "cc-at");
        assert_eq!(token.expires_in, Some(300));
        let req = &server.requests()[0];
        let expected = format!("Basic {}", STANDARD.encode("cc-id:s3cret"));
        assert_eq!(req.headers["authorization"].to_str().unwrap(), expected);
        let form = form(&server);
        assert_eq!(form["grant_type"], "client_credentials");
        assert_eq!(form["resource"], "https://mcp.example.com/mcp");
        assert_eq!(form["scope"], "tools:read");
        assert!(!form.contains_key("client_secret"));
    }

    #[tokio::test]
    async fn secret_post_when_the_server_only_takes_that() {
        let server = token_server(ok(), 200).await;
        let url = server.url("/token");
        let methods = vec!["client_secret_post".to_string()];
        let auth = ClientAuth::Secret("p0st".into());
        request(
            &HttpClient::for_tests(),
            &target(&url, Some(&methods)),
            "cc-id",
            &auth,
            0,
        )
        .await
        .unwrap();
        assert!(server.requests()[0].headers.get("authorization").is_none());
        let form = form(&server);
        assert_eq!(form["client_id"], "cc-id");
        assert_eq!(form["client_secret"], "p0st");
    }

    #[tokio::test]
    async fn a_missing_secret_variable_is_named() {
        let auth = ClientAuthConfig::SecretEnvVar("MCP_TEST_CC_SECRET_UNSET".into());
        let e = resolve(&auth).await.unwrap_err();
        assert!(e.to_string().contains("MCP_TEST_CC_SECRET_UNSET"), "{e}");
    }

    #[tokio::test]
    async fn private_key_jwt_sends_a_signed_assertion_for_the_issuer_and_no_client_id() {
        let (_, pkcs8) = SigningKey::generate_es256().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            STANDARD.encode(&pkcs8)
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        std::fs::write(&path, pem).unwrap();
        let server = token_server(ok(), 200).await;
        let url = server.url("/token");
        let auth = resolve(&ClientAuthConfig::PrivateKey {
            source: KeySource::File(path),
            alg: JwsAlg::Es256,
            kid: Some("key-1".into()),
        })
        .await
        .unwrap();
        assert!(!format!("{auth:?}").contains("BEGIN"));
        request(
            &HttpClient::for_tests(),
            &target(&url, None),
            "cc-id",
            &auth,
            1_000,
        )
        .await
        .unwrap();
        let form = form(&server);
        assert_eq!(form["client_assertion_type"], CLIENT_ASSERTION_TYPE);
        assert!(!form.contains_key("client_id"));
        assert!(server.requests()[0].headers.get("authorization").is_none());
        let parts: Vec<&str> = form["client_assertion"].split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], "key-1");
        assert_eq!(claims["iss"], "cc-id");
        assert_eq!(claims["sub"], "cc-id");
        assert_eq!(claims["aud"], "http://as.test");
        assert_eq!(claims["exp"], 1_060);
    }

    #[tokio::test]
    async fn a_refusal_is_the_servers_oauth_error() {
        let server = token_server(json!({"error": "invalid_client"}), 401).await;
        let url = server.url("/token");
        let auth = ClientAuth::Secret("wrong".into());
        let e = request(
            &HttpClient::for_tests(),
            &target(&url, None),
            "cc-id",
            &auth,
            0,
        )
        .await
        .unwrap_err();
        match e {
            GrantError::Token(t) => assert!(t.is_client_rejected(), "{t}"),
            other => panic!("{other}"),
        }
        assert_eq!(server.count("/token"), 1, "no retry after a refusal");
    }
}

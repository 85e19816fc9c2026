//! A registered client ([`ClientRegistration`]) and how it authenticates at the token
//! endpoint ([`TokenAuthMethod`]).

use mcp_app_server_protocol::RegistrationKind;
use serde::{Deserialize, Serialize};
use url::Url;

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
    /// Mutual TLS with a certificate from a certificate authority the server trusts, named
    /// by its subject (RFC 8705 §2.1): `client_id` in the form body, the certificate on
    /// the connection, no secret.
    TlsClientAuth,
    /// Mutual TLS with a certificate the server holds for this client (RFC 8705 §2.2),
    /// self-signed or not: on the wire like [`TokenAuthMethod::TlsClientAuth`].
    SelfSignedTlsClientAuth,
}

impl TokenAuthMethod {
    /// The RFC 7591 / RFC 8414 name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenAuthMethod::None => "none",
            TokenAuthMethod::ClientSecretBasic => "client_secret_basic",
            TokenAuthMethod::ClientSecretPost => "client_secret_post",
            TokenAuthMethod::TlsClientAuth => "tls_client_auth",
            TokenAuthMethod::SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        }
    }

    /// Parses an RFC 7591 name; `None` for methods this client does not implement.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(TokenAuthMethod::None),
            "client_secret_basic" => Some(TokenAuthMethod::ClientSecretBasic),
            "client_secret_post" => Some(TokenAuthMethod::ClientSecretPost),
            "tls_client_auth" => Some(TokenAuthMethod::TlsClientAuth),
            "self_signed_tls_client_auth" => Some(TokenAuthMethod::SelfSignedTlsClientAuth),
            _ => None,
        }
    }

    /// The method sends a client secret.
    pub fn sends_secret(self) -> bool {
        matches!(
            self,
            TokenAuthMethod::ClientSecretBasic | TokenAuthMethod::ClientSecretPost
        )
    }

    /// The method authenticates the client by its TLS certificate (RFC 8705 §2).
    pub fn is_mutual_tls(self) -> bool {
        matches!(
            self,
            TokenAuthMethod::TlsClientAuth | TokenAuthMethod::SelfSignedTlsClientAuth
        )
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
        if self.auth_method.sends_secret() {
            self.client_secret.as_deref()
        } else {
            None
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

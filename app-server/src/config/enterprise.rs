//! `[enterprise_idp]`: the enterprise identity provider of enterprise-managed authorization
//! (MCP extension `enterprise-managed-authorization`). The user signs in to it once with
//! OpenID Connect; servers configured with `grant = "enterprise"` then get their tokens by
//! exchanging that sign-in, without a browser.

use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use super::grant::{ClientAuthConfig, CredentialFields, GrantConfigError, optional_client_auth};

/// The scope an OpenID Connect sign-in always asks for.
pub const OPENID_SCOPE: &str = "openid";

/// The validated `[enterprise_idp]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnterpriseIdpConfig {
    /// The identity provider's issuer; its `/.well-known/openid-configuration` must name
    /// this very string.
    pub issuer: String,
    /// The daemon's client id at the identity provider.
    pub client_id: String,
    /// How the daemon authenticates at the identity provider; `None` for a public client.
    pub auth: Option<ClientAuthConfig>,
    /// Scopes of the sign-in; `openid` is always among them.
    pub scopes: Vec<String>,
}

/// `[enterprise_idp]` as written.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEnterpriseIdp {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_env_var: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub private_key_env_var: Option<String>,
    pub private_key_alg: Option<String>,
    pub private_key_kid: Option<String>,
    pub scopes: Option<Vec<String>>,
}

/// A bad `[enterprise_idp]` table; [`EnterpriseConfigError::key`] names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnterpriseConfigError {
    #[error("needs `issuer`, the identity provider's issuer URL")]
    MissingIssuer,
    #[error("`{0}` is not an http(s) URL without query or fragment")]
    BadIssuer(String),
    #[error("needs `client_id`, the client registered for mcp-app-server at the identity provider")]
    MissingClientId,
    #[error("each scope must be a non-empty string without spaces")]
    BadScope,
    #[error(transparent)]
    Credential(#[from] GrantConfigError),
}

impl EnterpriseConfigError {
    /// The key under `[enterprise_idp]` the error is about.
    pub fn key(&self) -> &'static str {
        match self {
            Self::MissingIssuer | Self::BadIssuer(_) => "issuer",
            Self::MissingClientId => "client_id",
            Self::BadScope => "scopes",
            Self::Credential(GrantConfigError::TwoCredentials) => "client_secret_env_var",
            Self::Credential(e) => e.key(),
        }
    }
}

impl RawEnterpriseIdp {
    pub fn validate(&self) -> Result<EnterpriseIdpConfig, EnterpriseConfigError> {
        let issuer = self
            .issuer
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or(EnterpriseConfigError::MissingIssuer)?;
        match Url::parse(&issuer) {
            Ok(url)
                if matches!(url.scheme(), "http" | "https")
                    && url.query().is_none()
                    && url.fragment().is_none() => {}
            _ => return Err(EnterpriseConfigError::BadIssuer(issuer)),
        }
        let client_id = self
            .client_id
            .clone()
            .filter(|i| !i.is_empty())
            .ok_or(EnterpriseConfigError::MissingClientId)?;
        let auth = optional_client_auth(&CredentialFields {
            client_secret_env_var: self.client_secret_env_var.as_ref(),
            private_key_file: self.private_key_file.as_ref(),
            private_key_env_var: self.private_key_env_var.as_ref(),
            private_key_alg: self.private_key_alg.as_ref(),
            private_key_kid: self.private_key_kid.as_ref(),
        })?;
        let mut scopes = self.scopes.clone().unwrap_or_default();
        if scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(EnterpriseConfigError::BadScope);
        }
        if !scopes.iter().any(|s| s == OPENID_SCOPE) {
            scopes.insert(0, OPENID_SCOPE.to_string());
        }
        Ok(EnterpriseIdpConfig {
            issuer,
            client_id,
            auth,
            scopes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::grant::GrantConfig;
    use crate::config::parse;

    fn err(text: &str) -> String {
        parse(text, Path::new("config.toml"))
            .unwrap_err()
            .to_string()
    }

    const SERVER: &str = "[mcp_servers.chat]\nurl = \"https://chat.example.com/mcp\"\n[mcp_servers.chat.oauth]\ngrant = \"enterprise\"\nclient_id = \"chat-client\"\nclient_secret_env_var = \"CHAT_SECRET\"\n";

    #[test]
    fn a_full_table_and_an_enterprise_server() {
        let config = parse(
            &format!(
                "[enterprise_idp]\nissuer = \"https://acme.idp.example\"\nclient_id = \"ide\"\nclient_secret_env_var = \"IDP_SECRET\"\nscopes = [\"email\"]\n\n{SERVER}"
            ),
            Path::new("config.toml"),
        )
        .unwrap();
        let idp = config.enterprise_idp.unwrap();
        assert_eq!(idp.issuer, "https://acme.idp.example");
        assert_eq!(idp.client_id, "ide");
        assert_eq!(
            idp.auth,
            Some(ClientAuthConfig::SecretEnvVar("IDP_SECRET".into()))
        );
        assert_eq!(idp.scopes, vec!["openid".to_string(), "email".to_string()]);
        let chat = config.servers["chat"].http().unwrap();
        assert_eq!(
            chat.oauth.grant_config().unwrap(),
            GrantConfig::Enterprise {
                client_id: "chat-client".into(),
                auth: Some(ClientAuthConfig::SecretEnvVar("CHAT_SECRET".into())),
            }
        );
    }

    #[test]
    fn a_public_idp_client_asks_for_openid_by_default() {
        let raw = RawEnterpriseIdp {
            issuer: Some("http://127.0.0.1:9000".into()),
            client_id: Some("ide".into()),
            ..Default::default()
        };
        let idp = raw.validate().unwrap();
        assert_eq!(idp.auth, None);
        assert_eq!(idp.scopes, vec!["openid".to_string()]);
    }

    #[test]
    fn bad_tables_name_the_key_and_line() {
        let e = err("\n[enterprise_idp]\nclient_id = \"ide\"\n");
        assert!(
            e.contains("enterprise_idp.issuer") && e.contains(":2:"),
            "{e}"
        );
        let e = err("[enterprise_idp]\nissuer = \"ftp://idp\"\nclient_id = \"ide\"\n");
        assert!(e.contains("enterprise_idp.issuer"), "{e}");
        let e = err("[enterprise_idp]\nissuer = \"https://idp\"\n");
        assert!(e.contains("enterprise_idp.client_id"), "{e}");
        let e = err(
            "[enterprise_idp]\nissuer = \"https://idp\"\nclient_id = \"i\"\nclient_secret_env_var = \"A\"\nprivate_key_env_var = \"B\"\n",
        );
        assert!(e.contains("only one of"), "{e}");
        let e = err(
            "[enterprise_idp]\nissuer = \"https://idp\"\nclient_id = \"i\"\nscopes = [\"a b\"]\n",
        );
        assert!(e.contains("enterprise_idp.scopes"), "{e}");
        let e =
            err("[enterprise_idp]\nissuer = \"https://idp\"\nclient_id = \"i\"\nsecret = \"x\"\n");
        assert!(e.contains("enterprise_idp") && e.contains("secret"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("idp.pem");
        std::fs::write(&key, "not a key").unwrap();
        let e = err(&format!(
            "[enterprise_idp]\nissuer = \"https://idp\"\nclient_id = \"i\"\nprivate_key_file = \"{}\"\n",
            key.display().to_string().replace('\\', "/")
        ));
        assert!(
            e.contains("enterprise_idp.private_key_file") && e.contains("does not parse"),
            "{e}"
        );
    }

    #[test]
    fn an_enterprise_server_needs_the_idp_and_a_client_id() {
        let e = err(SERVER);
        assert!(
            e.contains("mcp_servers.chat.oauth.grant") && e.contains("[enterprise_idp]"),
            "{e}"
        );
        let e = err(
            "[enterprise_idp]\nissuer = \"https://idp\"\nclient_id = \"i\"\n[mcp_servers.chat]\nurl = \"https://chat.example.com/mcp\"\n[mcp_servers.chat.oauth]\ngrant = \"enterprise\"\n",
        );
        assert!(e.contains("mcp_servers.chat.oauth.client_id"), "{e}");
    }
}

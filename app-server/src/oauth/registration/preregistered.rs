//! Preregistered clients (rule 10): a configured `client_id` and optional secret, and the
//! token endpoint authentication method to use with them.

use super::client::{ClientRegistration, TokenAuthMethod};
use super::error::RegistrationError;
use mcp_app_server_protocol::RegistrationKind;

/// Picks how to authenticate at the token endpoint from what the authorization server
/// advertises (`token_endpoint_auth_methods_supported`) and whether we hold a secret.
///
/// - No secret: `none` (the client id goes in the form body).
/// - A secret and no advertised list: `client_secret_basic`, the RFC 8414 default.
/// - A secret: `client_secret_basic`, else `client_secret_post`, else `none` when that is
///   all the server takes (the secret is then not sent).
/// - A secret and only methods we do not implement (`private_key_jwt`, ...): an error.
pub fn choose_auth_method(
    has_secret: bool,
    advertised: Option<&[String]>,
) -> Result<TokenAuthMethod, RegistrationError> {
    if !has_secret {
        return Ok(TokenAuthMethod::None);
    }
    let Some(advertised) = advertised else {
        return Ok(TokenAuthMethod::ClientSecretBasic);
    };
    let offers = |m: TokenAuthMethod| advertised.iter().any(|a| a == m.as_str());
    [
        TokenAuthMethod::ClientSecretBasic,
        TokenAuthMethod::ClientSecretPost,
        TokenAuthMethod::None,
    ]
    .into_iter()
    .find(|m| offers(*m))
    .ok_or_else(|| RegistrationError::UnsupportedAuthMethods {
        advertised: advertised.join(", "),
    })
}

/// A preregistered client with the auth method chosen for this server.
pub fn preregistered(
    client_id: &str,
    client_secret: Option<&str>,
    advertised: Option<&[String]>,
) -> Result<ClientRegistration, RegistrationError> {
    let auth_method = choose_auth_method(client_secret.is_some(), advertised)?;
    Ok(ClientRegistration {
        kind: RegistrationKind::Preregistered,
        client_id: client_id.to_string(),
        client_secret: client_secret.map(str::to_string),
        auth_method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn auth_method_table() {
        use TokenAuthMethod as M;
        type Case = (
            bool,
            Option<&'static [&'static str]>,
            Option<TokenAuthMethod>,
        );
        let cases: [Case; 10] = [
            (false, None, Some(M::None)),
            (false, Some(&["client_secret_basic"]), Some(M::None)),
            (true, None, Some(M::ClientSecretBasic)),
            (
                true,
                Some(&["client_secret_basic"]),
                Some(M::ClientSecretBasic),
            ),
            (
                true,
                Some(&["client_secret_post"]),
                Some(M::ClientSecretPost),
            ),
            (
                true,
                Some(&["client_secret_post", "client_secret_basic"]),
                Some(M::ClientSecretBasic),
            ),
            (true, Some(&["none"]), Some(M::None)),
            (
                true,
                Some(&["none", "client_secret_post"]),
                Some(M::ClientSecretPost),
            ),
            (true, Some(&["private_key_jwt"]), None),
            (true, Some(&[]), None),
        ];
        for (has_secret, advertised, expected) in cases {
            let advertised = advertised.map(v);
            let got = choose_auth_method(has_secret, advertised.as_deref()).ok();
            assert_eq!(got, expected, "{has_secret} {advertised:?}");
        }
    }

    #[test]
    fn preregistered_keeps_secret_and_redacts_it() {
        let reg = preregistered("id", Some("s3cret"), Some(&v(&["client_secret_post"]))).unwrap();
        assert_eq!(reg.kind, RegistrationKind::Preregistered);
        assert_eq!(reg.auth_method, TokenAuthMethod::ClientSecretPost);
        assert_eq!(reg.client_secret.as_deref(), Some("s3cret"));
        assert!(!format!("{reg:?}").contains("s3cret"));
    }
}

//! Presenting an Identity Assertion JWT Authorization Grant (ID-JAG) at an MCP server's
//! authorization server with the JWT bearer grant (RFC 7523 section 2.1, MCP extension
//! `enterprise-managed-authorization`), authenticated as the client registered there; and
//! the client authentication both enterprise requests share.

use reqwest::header::HeaderMap;

use super::GrantError;
use super::client_credentials::{ClientAuth, GrantTarget, secret_method};
use super::jwt_bearer::GRANT_TYPE;
use crate::oauth::client_assertion::{CLIENT_ASSERTION_TYPE, client_assertion};
use crate::oauth::registration::TokenAuthMethod;
use crate::oauth::token::{TokenResponse, basic_auth_header, request_token};

/// An ID-JAG from the identity provider. A bearer credential: `Debug` redacts it.
#[derive(Clone, PartialEq, Eq)]
pub struct IdJag {
    pub assertion: String,
    pub expires_in: Option<u64>,
}

impl std::fmt::Debug for IdJag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdJag")
            .field("assertion", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Client authentication for a token request: form fields to add and headers to send.
pub type Authentication = (Vec<(&'static str, String)>, HeaderMap);

/// Client authentication for a token request: the form fields and headers to add.
/// A secret goes in a Basic header unless the server advertises only
/// `client_secret_post`; a key signs a fresh assertion for `audience` (the server's issuer);
/// without a credential the client is public and sends `client_id` in the body.
pub fn authenticate(
    client_id: &str,
    auth: Option<&ClientAuth>,
    advertised: Option<&[String]>,
    audience: &str,
    now: i64,
) -> Result<Authentication, GrantError> {
    match auth {
        // A public client, or one the certificate on the connection authenticates.
        None | Some(ClientAuth::Certificate(_)) => {
            Ok((vec![("client_id", client_id.to_string())], HeaderMap::new()))
        }
        Some(ClientAuth::Secret(secret)) => match secret_method(advertised) {
            TokenAuthMethod::ClientSecretPost => Ok((
                vec![
                    ("client_id", client_id.to_string()),
                    ("client_secret", secret.clone()),
                ],
                HeaderMap::new(),
            )),
            _ => Ok((Vec::new(), basic_auth_header(client_id, secret))),
        },
        Some(ClientAuth::Key(key)) => {
            let assertion = client_assertion(key, client_id, audience, now)?;
            Ok((
                vec![
                    ("client_assertion_type", CLIENT_ASSERTION_TYPE.to_string()),
                    ("client_assertion", assertion),
                ],
                HeaderMap::new(),
            ))
        }
    }
}

/// Presents `jag` at the server's token endpoint. `now` is the `iat` of a client assertion.
pub async fn request(
    http: &crate::oauth::http::HttpClient,
    target: &GrantTarget<'_>,
    client_id: &str,
    auth: Option<&ClientAuth>,
    jag: &IdJag,
    now: i64,
) -> Result<TokenResponse, GrantError> {
    let (auth_form, headers) = authenticate(
        client_id,
        auth,
        target.auth_methods_supported,
        target.issuer,
        now,
    )?;
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", GRANT_TYPE),
        ("assertion", jag.assertion.as_str()),
    ];
    // The ID-JAG names the resource itself; `resource` is sent too, as on every token
    // request (RFC 8707), with the same value.
    form.push(("resource", target.resource));
    if let Some(scope) = target.scope.filter(|s| !s.is_empty()) {
        form.push(("scope", scope));
    }
    form.extend(auth_form.iter().map(|(k, v)| (*k, v.as_str())));
    Ok(request_token(http, target.token_endpoint, &form, &headers).await?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use serde_json::{Value, json};
    use url::Url;

    use super::*;
    use crate::oauth::http::HttpClient;
    use crate::oauth::jose::SigningKey;
    use crate::oauth::test_server::{json as json_answer, serve, status};

    fn target<'a>(url: &'a Url, methods: Option<&'a [String]>) -> GrantTarget<'a> {
        GrantTarget {
            token_endpoint: url,
            issuer: "http://as.test",
            auth_methods_supported: methods,
            resource: "https://chat.example/mcp",
            scope: None,
            dpop: None,
        }
    }

    fn jag() -> IdJag {
        IdJag {
            assertion: "jag.jwt.sig".into(),
            expires_in: Some(300),
        }
    }

    #[tokio::test]
    async fn presents_the_id_jag_with_client_secret_basic() {
        let server = serve(|req, _| match req.path.as_str() {
            "/token" => json_answer(
                200,
                json!({"access_token": "ema-at", "token_type": "Bearer", "expires_in": 60}),
            ),
            _ => status(404),
        })
        .await;
        let url = server.url("/token");
        let secret = ClientAuth::Secret("as-s3cret".into());
        let token = request(
            &HttpClient::for_tests(),
            &target(&url, None),
            "chat-client",
            Some(&secret),
            &jag(),
            0,
        )
        .await
        .unwrap();
        assert_eq!(token.access_token, "ema-at");
        let req = &server.requests()[0];
        let form: BTreeMap<String, String> = req.form().into_iter().collect();
        assert_eq!(form["grant_type"], GRANT_TYPE);
        assert_eq!(form["assertion"], "jag.jwt.sig");
        assert_eq!(form["resource"], "https://chat.example/mcp");
        assert!(!form.contains_key("client_id") && !form.contains_key("client_secret"));
        assert_eq!(
            req.headers["authorization"].to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("chat-client:as-s3cret"))
        );
    }

    #[test]
    fn post_and_key_authentication() {
        let post = vec!["client_secret_post".to_string()];
        let secret = ClientAuth::Secret("s".into());
        let (form, headers) =
            authenticate("c", Some(&secret), Some(&post), "http://as.test", 0).unwrap();
        assert!(headers.is_empty());
        assert_eq!(
            form,
            vec![
                ("client_id", "c".to_string()),
                ("client_secret", "s".to_string())
            ]
        );
        let (key, _) = SigningKey::generate_es256().unwrap();
        let key = ClientAuth::Key(key);
        let (form, headers) = authenticate("c", Some(&key), None, "http://as.test", 100).unwrap();
        assert!(headers.is_empty());
        assert_eq!(
            form[0],
            ("client_assertion_type", CLIENT_ASSERTION_TYPE.to_string())
        );
        let claims: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(form[1].1.split('.').nth(1).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(claims["aud"], "http://as.test");
        assert_eq!(claims["iss"], "c");
        assert_eq!(claims["iat"], 100);
    }
}

//! OAuth 2.0 Token Exchange (RFC 8693) at the enterprise identity provider: the user's ID
//! token goes in, an Identity Assertion JWT Authorization Grant (ID-JAG) for one MCP server's
//! authorization server comes out (MCP extension `enterprise-managed-authorization`).

use serde_json::Value;
use url::Url;

use super::GrantError;
use super::client_credentials::ClientAuth;
use super::id_jag::{IdJag, authenticate};
use crate::oauth::http::HttpClient;
use crate::oauth::token::{MAX_EXPIRES_IN, TokenError, request_token_body};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// The token type of the ID-JAG asked for and expected back.
pub const ID_JAG_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
/// The token type of the subject token: an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The identity provider as the exchange needs it.
#[derive(Debug, Clone)]
pub struct IdpClient<'a> {
    pub token_endpoint: &'a Url,
    /// The identity provider's issuer: the `aud` of a client assertion.
    pub issuer: &'a str,
    /// `token_endpoint_auth_methods_supported` of the identity provider.
    pub auth_methods_supported: Option<&'a [String]>,
    pub client_id: &'a str,
    pub auth: Option<&'a ClientAuth>,
}

/// What the ID-JAG is for.
#[derive(Debug, Clone)]
pub struct Exchange<'a> {
    /// The MCP server's authorization server issuer (`audience`).
    pub audience: &'a str,
    /// The MCP server's resource identifier exactly as its protected resource metadata
    /// publishes it (`resource`).
    pub resource: &'a str,
    /// Space-separated scopes at the MCP server, when any are wanted.
    pub scope: Option<&'a str>,
}

/// Exchanges `id_token` for an ID-JAG. `now` is the `iat` of a client assertion.
pub async fn exchange(
    http: &HttpClient,
    idp: &IdpClient<'_>,
    what: &Exchange<'_>,
    id_token: &str,
    now: i64,
) -> Result<IdJag, GrantError> {
    let (auth_form, headers) = authenticate(
        idp.client_id,
        idp.auth,
        idp.auth_methods_supported,
        idp.issuer,
        now,
    )?;
    let mut form: Vec<(&str, &str)> = vec![
        ("grant_type", GRANT_TYPE),
        ("requested_token_type", ID_JAG_TOKEN_TYPE),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN_TYPE),
        ("audience", what.audience),
        ("resource", what.resource),
    ];
    if let Some(scope) = what.scope.filter(|s| !s.is_empty()) {
        form.push(("scope", scope));
    }
    form.extend(auth_form.iter().map(|(k, v)| (*k, v.as_str())));
    let body = request_token_body(http, idp.token_endpoint, &form, &headers).await?;
    parse_answer(idp.token_endpoint, &body).map_err(GrantError::Token)
}

/// RFC 8693 section 2.2.1: `access_token` holds the issued token, `issued_token_type` says
/// what it is. An answer that issued anything but an ID-JAG is refused. Errors name fields,
/// never values.
fn parse_answer(endpoint: &Url, body: &[u8]) -> Result<IdJag, TokenError> {
    let invalid = |reason: &str| TokenError::Invalid {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|_| invalid("the answer is not a JSON object"))?;
    let assertion = match value.get("access_token") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(_) => return Err(invalid("`access_token` is not a non-empty string")),
        None => return Err(invalid("`access_token` is missing")),
    };
    match value.get("issued_token_type").and_then(Value::as_str) {
        Some(ID_JAG_TOKEN_TYPE) => {}
        Some(other) => {
            return Err(invalid(&format!(
                "the identity provider issued `{other}`, not an ID-JAG ({ID_JAG_TOKEN_TYPE})"
            )));
        }
        None => return Err(invalid("`issued_token_type` is missing")),
    }
    let expires_in = value
        .get("expires_in")
        .and_then(Value::as_u64)
        .filter(|s| *s > 0)
        .map(|s| s.min(MAX_EXPIRES_IN));
    Ok(IdJag {
        assertion,
        expires_in,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde_json::{Value, json};

    use super::*;
    use crate::oauth::test_server::{TestServer, json as json_answer, serve, status};

    async fn idp(answer: Value, code: u16) -> TestServer {
        serve(move |req, _| match req.path.as_str() {
            "/token" => json_answer(code, answer.clone()),
            _ => status(404),
        })
        .await
    }

    fn what() -> Exchange<'static> {
        Exchange {
            audience: "https://auth.chat.example",
            resource: "https://chat.example/mcp",
            scope: Some("chat.read"),
        }
    }

    #[tokio::test]
    async fn sends_the_rfc_8693_request_and_reads_the_id_jag() {
        let server = idp(
            json!({"access_token": "jag.jwt.sig", "issued_token_type": ID_JAG_TOKEN_TYPE,
                   "token_type": "N_A", "expires_in": 300}),
            200,
        )
        .await;
        let url = server.url("/token");
        let secret = ClientAuth::Secret("idp-s3cret".into());
        let idp = IdpClient {
            token_endpoint: &url,
            issuer: "http://idp.test",
            auth_methods_supported: None,
            client_id: "ide",
            auth: Some(&secret),
        };
        let jag = exchange(&HttpClient::for_tests(), &idp, &what(), "id.token.sig", 0)
            .await
            .unwrap();
        assert_eq!(jag.assertion, "jag.jwt.sig");
        assert_eq!(jag.expires_in, Some(300));
        assert!(!format!("{jag:?}").contains("jag.jwt.sig"));
        let req = &server.requests()[0];
        let form: BTreeMap<String, String> = req.form().into_iter().collect();
        assert_eq!(form["grant_type"], GRANT_TYPE);
        assert_eq!(form["requested_token_type"], ID_JAG_TOKEN_TYPE);
        assert_eq!(form["subject_token"], "id.token.sig");
        assert_eq!(form["subject_token_type"], ID_TOKEN_TYPE);
        assert_eq!(form["audience"], "https://auth.chat.example");
        assert_eq!(form["resource"], "https://chat.example/mcp");
        assert_eq!(form["scope"], "chat.read");
        assert!(!form.contains_key("client_secret"));
        assert_eq!(
            req.headers["authorization"].to_str().unwrap(),
            format!("Basic {}", STANDARD.encode("ide:idp-s3cret"))
        );
    }

    #[tokio::test]
    async fn a_public_client_sends_its_id_and_a_wrong_token_type_is_refused() {
        let server = idp(
            json!({"access_token": "at", "issued_token_type":
                   "urn:ietf:params:oauth:token-type:access_token", "token_type": "Bearer"}),
            200,
        )
        .await;
        let url = server.url("/token");
        let idp = IdpClient {
            token_endpoint: &url,
            issuer: "http://idp.test",
            auth_methods_supported: None,
            client_id: "ide",
            auth: None,
        };
        let e = exchange(&HttpClient::for_tests(), &idp, &what(), "id.token.sig", 0)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not an ID-JAG"), "{e}");
        let req = &server.requests()[0];
        assert_eq!(req.form_value("client_id").as_deref(), Some("ide"));
        assert!(!req.headers.contains_key("authorization"));
    }

    #[tokio::test]
    async fn a_refusal_is_typed_and_quotes_no_token() {
        let server = idp(
            json!({"error": "access_denied", "error_description": "policy"}),
            400,
        )
        .await;
        let url = server.url("/token");
        let idp = IdpClient {
            token_endpoint: &url,
            issuer: "http://idp.test",
            auth_methods_supported: None,
            client_id: "ide",
            auth: None,
        };
        let e = exchange(&HttpClient::for_tests(), &idp, &what(), "id.token.sig", 0)
            .await
            .unwrap_err();
        match &e {
            GrantError::Token(t) => assert_eq!(t.oauth_error(), Some("access_denied")),
            other => panic!("{other}"),
        }
        assert!(!e.to_string().contains("id.token.sig"), "{e}");
    }
}

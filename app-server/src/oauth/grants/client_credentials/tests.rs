//! The client credentials grant against a loopback token endpoint: secret methods,
//! `private_key_jwt`, missing secrets and refusals.

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
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
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

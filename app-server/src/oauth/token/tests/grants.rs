//! What the code exchange and the refresh send: client authentication by method, `resource`,
//! and the refresh token kept when the answer has none.

use super::*;

#[tokio::test]
async fn public_client_exchange_sends_client_id_in_body_and_no_authorization() {
    let server = token_server(|_| tokens()).await;
    let response = exchange(&server, &public()).await.unwrap();
    assert_eq!(response.access_token, "at-1");
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(response.expires_in, Some(3600));
    assert_eq!(
        response.scopes,
        Some(vec!["read".to_string(), "offline_access".to_string()])
    );
    assert!(!format!("{response:?}").contains("at-1"));

    let request = &server.requests()[0];
    assert!(request.headers.get("authorization").is_none());
    let expected: std::collections::BTreeMap<String, String> = [
        ("grant_type", "authorization_code"),
        ("code", "the-code"),
        ("code_verifier", "the-verifier"),
        ("redirect_uri", "http://127.0.0.1:8765/callback/abc"),
        ("client_id", "public-client"),
        ("resource", "https://mcp.example.com/mcp"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(form_of(request), expected);
}

#[tokio::test]
async fn basic_client_uses_an_encoded_authorization_header() {
    let server = token_server(|_| tokens()).await;
    exchange(&server, &confidential(TokenAuthMethod::ClientSecretBasic))
        .await
        .unwrap();
    let request = &server.requests()[0];
    let header = request
        .headers
        .get("authorization")
        .unwrap()
        .to_str()
        .unwrap();
    let decoded = STANDARD
        .decode(header.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "id%3Awith+space:s3cret%26%2B%2F"
    );
    let form = form_of(request);
    assert!(!form.contains_key("client_secret"));
    assert_eq!(form["resource"], "https://mcp.example.com/mcp");
}

#[tokio::test]
async fn post_client_sends_secret_in_body() {
    let server = token_server(|_| tokens()).await;
    exchange(&server, &confidential(TokenAuthMethod::ClientSecretPost))
        .await
        .unwrap();
    let request = &server.requests()[0];
    assert!(request.headers.get("authorization").is_none());
    let form = form_of(request);
    assert_eq!(form["client_id"], "id:with space");
    assert_eq!(form["client_secret"], "s3cret&+/");
}

#[tokio::test]
async fn secret_is_not_sent_when_the_method_is_none() {
    let server = token_server(|_| tokens()).await;
    let mut reg = confidential(TokenAuthMethod::None);
    reg.client_id = "c".into();
    exchange(&server, &reg).await.unwrap();
    let request = &server.requests()[0];
    assert!(request.headers.get("authorization").is_none());
    assert!(!form_of(request).contains_key("client_secret"));
    assert_eq!(form_of(request)["client_id"], "c");
}

#[tokio::test]
async fn refresh_sends_resource_and_keeps_the_old_refresh_token() {
    let server = token_server(|req| {
        if req.form_value("refresh_token").as_deref() == Some("rotate-me") {
            tokens()
        } else {
            json(200, json!({"access_token": "at-2", "token_type": "Bearer"}))
        }
    })
    .await;
    let http = HttpClient::for_tests();
    let kept = refresh(
        &http,
        &server.url("/token"),
        &public(),
        "rt-0",
        "https://r/mcp",
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(kept.access_token, "at-2");
    assert_eq!(kept.refresh_token.as_deref(), Some("rt-0"));
    assert_eq!(kept.expires_in, None);
    assert_eq!(kept.scopes, None);
    let request = &server.requests()[0];
    let form = form_of(request);
    assert_eq!(form["grant_type"], "refresh_token");
    assert_eq!(form["refresh_token"], "rt-0");
    assert_eq!(form["resource"], "https://r/mcp");
    assert_eq!(form["client_id"], "public-client");
    assert!(!form.contains_key("scope"));

    let scopes = vec!["read".to_string()];
    let rotated = refresh(
        &http,
        &server.url("/token"),
        &public(),
        "rotate-me",
        "https://r/mcp",
        Some(&scopes),
        None,
    )
    .await
    .unwrap();
    assert_eq!(rotated.refresh_token.as_deref(), Some("rt-1"));
    assert_eq!(form_of(&server.requests()[1])["scope"], "read");
}

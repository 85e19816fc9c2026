//! Registering against a loopback server: the request body, the retries after a refused
//! `scope` or `application_type`, and rejections.

use super::*;
use crate::oauth::test_server::{json, serve, with_headers};
use serde_json::json;

#[tokio::test]
async fn registers_with_rule_12_body() {
    let server = serve(|req, _| {
        if req.path == "/register" && req.method == "POST" {
            json(201, json!({"client_id": "new-client", "client_name": "x"}))
        } else {
            json(404, json!({}))
        }
    })
    .await;
    let redirect = Url::parse("http://127.0.0.1:8765/callback/abc").unwrap();
    let scopes = vec!["read".to_string()];
    let reg = register(
        &HttpClient::for_tests(),
        &server.url("/register"),
        &redirect,
        "My IDE",
        Some(&scopes),
        Some(&["none".to_string()]),
    )
    .await
    .unwrap();
    assert_eq!(reg.client_id, "new-client");
    assert_eq!(reg.kind, RegistrationKind::Dcr);
    assert_eq!(reg.auth_method, TokenAuthMethod::None);
    let request = &server.requests()[0];
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
    assert_eq!(
        request.json(),
        registration_request(&redirect, "My IDE", Some(&scopes))
    );
}

#[tokio::test]
async fn scope_refused_as_client_metadata_registers_again_without_scope() {
    let server = serve(|req, _| {
        if req.json().get("scope").is_some() {
            json(
                400,
                json!({"error": "invalid_client_metadata",
                           "error_description": "scope must only contain supported values"}),
            )
        } else {
            json(201, json!({"client_id": "no-scope-client"}))
        }
    })
    .await;
    let redirect = Url::parse("http://127.0.0.1:8765/callback/abc").unwrap();
    let scopes = vec!["mcp:read".to_string()];
    let http = HttpClient::for_tests();
    let reg = register(
        &http,
        &server.url("/register"),
        &redirect,
        "My IDE",
        Some(&scopes),
        None,
    )
    .await
    .unwrap();
    assert_eq!(reg.client_id, "no-scope-client");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].json()["scope"], "mcp:read");
    assert_eq!(
        requests[1].json(),
        registration_request(&redirect, "My IDE", None)
    );
}

#[tokio::test]
async fn refused_application_type_registers_once_more_without_it() {
    let server = serve(|req, _| {
        if req.json().get("application_type").is_some() {
            json(
                400,
                json!({"error": "invalid_client_metadata",
                           "error_description": "application_type is not supported"}),
            )
        } else {
            json(201, json!({"client_id": "plain-client"}))
        }
    })
    .await;
    let redirect = Url::parse("http://127.0.0.1:8765/callback/abc").unwrap();
    let reg = register(
        &HttpClient::for_tests(),
        &server.url("/register"),
        &redirect,
        "My IDE",
        None,
        None,
    )
    .await
    .unwrap();
    assert_eq!(reg.client_id, "plain-client");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].json()["application_type"], "native");
    assert_eq!(
        requests[0].json()["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let retry = requests[1].json();
    assert!(retry.get("application_type").is_none(), "{retry}");
    assert_eq!(retry["redirect_uris"], json!([redirect.as_str()]));
}

#[tokio::test]
async fn metadata_refusal_without_scope_is_not_retried() {
    let server = serve(|_, _| json(400, json!({"error": "invalid_client_metadata"}))).await;
    let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
    let http = HttpClient::for_tests();
    let err = register(&http, &server.url("/register"), &redirect, "x", None, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid_client_metadata"), "{err}");
    assert_eq!(server.count("/register"), 1);
    // With a scope: one retry without it, then the second refusal is surfaced.
    let scopes = vec!["a".to_string()];
    let err = register(
        &http,
        &server.url("/register"),
        &redirect,
        "x",
        Some(&scopes),
        None,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("invalid_client_metadata"), "{err}");
    assert_eq!(server.count("/register"), 3);
}

#[tokio::test]
async fn rejection_is_surfaced() {
    let server = serve(|req, _| match req.path.as_str() {
        "/register" => json(
            400,
            json!({"error": "invalid_redirect_uri", "error_description": "loopback only"}),
        ),
        _ => with_headers(307, &[("location", "/register")], ""),
    })
    .await;
    let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
    let http = HttpClient::for_tests();
    let err = register(&http, &server.url("/register"), &redirect, "x", None, None)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("invalid_redirect_uri: loopback only"),
        "{text}"
    );
    assert!(text.contains("/register"), "{text}");
    assert!(text.contains("400"), "{text}");
    assert!(!err.is_transient());

    // A redirect is not followed: the registration request is not re-sent.
    let err = register(&http, &server.url("/moved"), &redirect, "x", None, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistrationError::Rejected { status: 307, .. }),
        "{err:?}"
    );
    assert_eq!(server.count("/register"), 1);
}

//! Revocation: the token hint and client authentication, and the one retry with an empty
//! `client_secret` for servers that want the field from public clients.

use super::*;

#[tokio::test]
async fn revoke_sends_token_hint_and_client_auth() {
    let server = token_server(|req| match req.form_value("token").as_deref() {
        Some("rt") => status(200),
        Some("no-content") => status(204),
        Some("busy") => status(503),
        _ => json(400, json!({"error": "unsupported_token_type"})),
    })
    .await;
    let http = HttpClient::for_tests();
    let url = server.url("/revoke");
    revoke(
        &http,
        &url,
        &public(),
        "rt",
        Some(TokenTypeHint::RefreshToken),
    )
    .await
    .unwrap();
    let form = form_of(&server.requests()[0]);
    assert_eq!(form["token_type_hint"], "refresh_token");
    assert_eq!(form["client_id"], "public-client");
    assert!(server.requests()[0].headers.get("authorization").is_none());

    revoke(
        &http,
        &url,
        &confidential(TokenAuthMethod::ClientSecretBasic),
        "rt",
        None,
    )
    .await
    .unwrap();
    let second = &server.requests()[1];
    assert!(second.headers.get("authorization").is_some());
    assert!(!form_of(second).contains_key("token_type_hint"));

    // Any 2xx is success.
    revoke(&http, &url, &public(), "no-content", None)
        .await
        .unwrap();

    let err = revoke(&http, &url, &public(), "busy", None)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
    let err = revoke(
        &http,
        &url,
        &public(),
        "at",
        Some(TokenTypeHint::AccessToken),
    )
    .await
    .unwrap_err();
    assert_eq!(err.oauth_error(), Some("unsupported_token_type"));
}

#[tokio::test]
async fn public_revocation_refused_for_a_missing_client_secret_is_retried_once() {
    // The MCP Python SDK's answer when the form has no `client_secret` key.
    let server = token_server(|req| {
        if form_of(req).contains_key("client_secret") {
            status(200)
        } else {
            json(
                400,
                json!({"error": "invalid_request",
                       "error_description": "client_secret: Field required"}),
            )
        }
    })
    .await;
    let http = HttpClient::for_tests();
    let url = server.url("/revoke");
    revoke(
        &http,
        &url,
        &public(),
        "rt",
        Some(TokenTypeHint::RefreshToken),
    )
    .await
    .unwrap();
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(!form_of(&requests[0]).contains_key("client_secret"));
    let retry = form_of(&requests[1]);
    assert_eq!(retry["client_secret"], "");
    assert_eq!(retry["client_id"], "public-client");
    assert_eq!(retry["token"], "rt");
    assert!(requests[1].headers.get("authorization").is_none());
}

#[tokio::test]
async fn other_revocation_refusals_are_not_retried() {
    let server = token_server(|req| match form_of(req).get("token").map(String::as_str) {
        // Names client_secret, but a confidential client already sent its secret.
        Some("confidential") => json(
            400,
            json!({"error": "invalid_request", "error_description": "client_secret: wrong"}),
        ),
        // invalid_request about something else.
        _ => json(
            400,
            json!({"error": "invalid_request", "error_description": "token: Field required"}),
        ),
    })
    .await;
    let http = HttpClient::for_tests();
    let url = server.url("/revoke");
    let err = revoke(&http, &url, &public(), "public", None)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_request"));
    assert_eq!(server.requests().len(), 1);
    let err = revoke(
        &http,
        &url,
        &confidential(TokenAuthMethod::ClientSecretPost),
        "confidential",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_request"));
    assert_eq!(server.requests().len(), 2);
    // Refused again after the retry: that second refusal is the error, no third request.
    let stubborn = token_server(|_| {
        json(
            400,
            json!({"error": "invalid_request", "error_description": "client_secret: Field required"}),
        )
    })
    .await;
    let err = revoke(&http, &stubborn.url("/revoke"), &public(), "t", None)
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error(), Some("invalid_request"));
    assert_eq!(stubborn.requests().len(), 2);
}

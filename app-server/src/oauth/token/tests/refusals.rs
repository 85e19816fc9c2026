//! How answers are sorted: OAuth errors, transient failures, unusable answers (never
//! quoted), odd `expires_in` values, and endpoints that are not https.

use super::*;

#[tokio::test]
async fn oauth_errors_are_parsed() {
    let server = token_server(|req| match req.form_value("code").as_deref() {
        Some("the-code") => json(
            400,
            json!({"error": "invalid_grant", "error_description": "code expired"}),
        ),
        _ => status(500),
    })
    .await;
    let err = exchange(&server, &public()).await.unwrap_err();
    assert!(err.is_invalid_grant(), "{err:?}");
    let TokenError::OAuth {
        status,
        description,
        endpoint,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(*status, 400);
    assert_eq!(description.as_deref(), Some("code expired"));
    assert!(endpoint.ends_with("/token"));
    assert!(
        err.to_string().contains("invalid_grant: code expired"),
        "{err}"
    );

    let server = token_server(|_| json(401, json!({"error": "invalid_client"}))).await;
    let err = exchange(&server, &public()).await.unwrap_err();
    assert!(err.is_client_rejected(), "{err:?}");
    let server = token_server(|_| json(400, json!({"error": "unauthorized_client"}))).await;
    assert!(
        exchange(&server, &public())
            .await
            .unwrap_err()
            .is_client_rejected()
    );
}

#[tokio::test]
async fn server_errors_are_transient() {
    for answer in [
        status(503),
        json(500, json!({"error": "server_error"})),
        json(429, json!({"error": "slow_down"})),
    ] {
        let answer = std::sync::Mutex::new(Some(answer));
        let server = token_server(move |_| answer.lock().unwrap().take().unwrap()).await;
        let err = exchange(&server, &public()).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        assert!(err.to_string().contains("/token"), "{err}");
    }
    // Nothing listening: transient too.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let err = refresh(
        &HttpClient::for_tests(),
        &url,
        &public(),
        "rt",
        "r",
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn generic_token_requests_sort_answers_like_the_others() {
    let form = [("grant_type", "client_credentials")];
    type Check = fn(&TokenError) -> bool;
    let cases: Vec<(Response, Check)> = vec![
        (status(503), |e| e.is_transient()),
        (json(400, json!({"error": "invalid_grant"})), |e| {
            e.is_invalid_grant()
        }),
        (
            with_headers(302, &[("location", "http://127.0.0.1:1/x")], ""),
            |e| e.to_string().contains("do not follow redirects"),
        ),
        (
            json(200, json!({"access_token": "", "token_type": "Bearer"})),
            |e| matches!(e, TokenError::Invalid { .. }),
        ),
    ];
    for (answer, check) in cases {
        let answer = std::sync::Mutex::new(Some(answer));
        let server = token_server(move |_| answer.lock().unwrap().take().unwrap()).await;
        let url = server.url("/token");
        let err = request_token(&HttpClient::for_tests(), &url, &form, &HeaderMap::new())
            .await
            .unwrap_err();
        assert!(check(&err), "{err:?}");
    }
    let server = token_server(|_| tokens()).await;
    let ok = request_token(
        &HttpClient::for_tests(),
        &server.url("/token"),
        &form,
        &basic_auth_header("a b", "c"),
    )
    .await
    .unwrap();
    assert_eq!(ok.access_token, "at-1");
    assert_eq!(ok.token_type, "Bearer");
    assert_eq!(
        server.requests()[0].headers["authorization"],
        format!("Basic {}", STANDARD.encode("a+b:c"))
    );
}

#[tokio::test]
async fn unusable_answers_are_invalid_and_not_quoted() {
    let cases = [
        with_headers(
            200,
            &[("content-type", "application/json")],
            "{\"access_token\": \"leaked-token\"",
        ),
        with_headers(
            200,
            &[("content-type", "text/html")],
            "<html>leaked-token</html>",
        ),
        json(
            200,
            json!({"access_token": "leaked-token", "token_type": 7}),
        ),
        with_headers(302, &[("location", "/elsewhere")], ""),
        with_headers(
            400,
            &[("content-type", "text/html")],
            "<html>leaked-token</html>",
        ),
    ];
    for answer in cases {
        let answer = std::sync::Mutex::new(Some(answer));
        let server = token_server(move |_| answer.lock().unwrap().take().unwrap()).await;
        let err = exchange(&server, &public()).await.unwrap_err();
        assert!(matches!(err, TokenError::Invalid { .. }), "{err:?}");
        assert!(!err.to_string().contains("leaked-token"), "{err}");
        assert_eq!(server.count("/elsewhere"), 0);
    }
}

/// Through the oauth2 client too: an answer without `token_type` is a Bearer token, and an
/// `expires_in` of a million digits is clamped.
#[tokio::test]
async fn a_missing_token_type_and_a_huge_expires_in_keep_the_exchange() {
    let body = format!(
        r#"{{"access_token": "at", "expires_in": {}}}"#,
        "9".repeat(1_000_000 - 64)
    );
    let server = token_server(move |_| {
        with_headers(200, &[("content-type", "application/json")], body.clone())
    })
    .await;
    let response = exchange(&server, &public()).await.unwrap();
    assert_eq!(response.token_type, "Bearer");
    assert_eq!(response.expires_in, Some(MAX_EXPIRES_IN));
}

#[tokio::test]
async fn odd_expires_in_values_do_not_break_the_exchange() {
    for (expires_in, want) in [
        (json!("3600"), Some(3600)),
        (json!(1e30), Some(MAX_EXPIRES_IN)),
        (json!(u64::MAX), Some(MAX_EXPIRES_IN)),
        (json!(-1), None),
        (json!(0), None),
        (json!(12.75), Some(12)),
    ] {
        let body = json!({"access_token": "at", "token_type": "Bearer", "expires_in": expires_in});
        let server = token_server(move |_| json(200, body.clone())).await;
        let response = exchange(&server, &public())
            .await
            .unwrap_or_else(|e| panic!("{expires_in}: {e}"));
        assert_eq!(response.expires_in, want, "{expires_in}");
    }
    // A field of the wrong type is named, its value is not quoted.
    let server = token_server(|_| {
        json(
            200,
            json!({"access_token": ["leaked-token"], "token_type": "Bearer"}),
        )
    })
    .await;
    let err = exchange(&server, &public()).await.unwrap_err();
    assert!(
        err.to_string().contains("`access_token` is not a string"),
        "{err}"
    );
    assert!(!err.to_string().contains("leaked-token"), "{err}");
}

#[tokio::test]
async fn insecure_token_endpoint_is_refused() {
    let err = exchange_code(
        &HttpClient::for_tests(),
        &Url::parse("http://as.example.com/token").unwrap(),
        &public(),
        "c",
        "v",
        &Url::parse("http://127.0.0.1:1/callback/x").unwrap(),
        "r",
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, TokenError::Invalid { .. }), "{err:?}");
    assert!(err.to_string().contains("https"), "{err}");
}

//! The device authorization request, one poll, and the polling decisions, against small
//! loopback servers.

use serde_json::json;

use super::*;
use crate::oauth::test_server::{self, serve};
use mcp_app_server_protocol::RegistrationKind;

fn public_client() -> ClientRegistration {
    ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: "device-client".into(),
        client_secret: None,
        auth_method: TokenAuthMethod::None,
    }
}

fn endpoint() -> Url {
    Url::parse("https://as.example/device").unwrap()
}

fn answer(value: serde_json::Value) -> Result<DeviceAuthorization, DeviceError> {
    parse_device_authorization(&endpoint(), value.to_string().as_bytes())
}

#[tokio::test]
async fn the_request_carries_client_scope_and_resource_and_the_answer_is_read() {
    let server = serve(|_, _| {
        test_server::json(
            200,
            json!({"device_code": "dc-secret", "user_code": "WDJB-MJHT",
                "verification_uri": "https://as.example/device",
                "verification_uri_complete": "https://as.example/device?user_code=WDJB-MJHT",
                "expires_in": 1800, "interval": 7}),
        )
    })
    .await;
    let http = HttpClient::for_tests();
    let got = request_device_authorization(
        &http,
        &server.url("/device"),
        &public_client(),
        Some("mcp:read offline_access"),
        "https://mcp.example/mcp",
    )
    .await
    .unwrap();
    assert_eq!(got.device_code, "dc-secret");
    assert_eq!(got.user_code, "WDJB-MJHT");
    assert_eq!(got.verification_uri.as_str(), "https://as.example/device");
    assert!(got.verification_uri_complete.is_some());
    assert_eq!(got.expires_in, Duration::from_secs(1800));
    assert_eq!(got.interval, Duration::from_secs(7));
    let debug = format!("{got:?}");
    assert!(
        !debug.contains("dc-secret") && !debug.contains("WDJB"),
        "{debug}"
    );

    let request = &server.requests()[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.form_value("client_id").as_deref(),
        Some("device-client")
    );
    assert_eq!(
        request.form_value("scope").as_deref(),
        Some("mcp:read offline_access")
    );
    assert_eq!(
        request.form_value("resource").as_deref(),
        Some("https://mcp.example/mcp")
    );
    assert!(request.headers.get("authorization").is_none());
}

#[tokio::test]
async fn a_confidential_client_authenticates_as_its_method_says() {
    let server = serve(|_, _| test_server::status(500)).await;
    let http = HttpClient::for_tests();
    let basic = ClientRegistration {
        client_secret: Some("s3cret".into()),
        auth_method: TokenAuthMethod::ClientSecretBasic,
        ..public_client()
    };
    let err = request_device_authorization(&http, &server.url("/d"), &basic, None, "r")
        .await
        .unwrap_err();
    assert!(
        matches!(err, DeviceError::Endpoint(TokenError::Transient { .. })),
        "{err:?}"
    );
    let request = &server.requests()[0];
    assert!(request.headers.get("authorization").is_some());
    assert_eq!(request.form_value("client_secret"), None);
    assert_eq!(request.form_value("scope"), None);

    let post = ClientRegistration {
        auth_method: TokenAuthMethod::ClientSecretPost,
        ..basic
    };
    let _ = request_device_authorization(&http, &server.url("/d"), &post, None, "r").await;
    let request = &server.requests()[1];
    assert!(request.headers.get("authorization").is_none());
    assert_eq!(
        request.form_value("client_secret").as_deref(),
        Some("s3cret")
    );
}

#[tokio::test]
async fn a_refusal_is_an_oauth_error() {
    let server =
        serve(|_, _| test_server::json(400, json!({"error": "unauthorized_client"}))).await;
    let err = request_device_authorization(
        &HttpClient::for_tests(),
        &server.url("/d"),
        &public_client(),
        None,
        "r",
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("unauthorized_client"), "{err}");
}

#[test]
fn defaults_and_bounds_apply() {
    let got = answer(json!({"device_code": "d", "user_code": "U",
        "verification_url": "https://as.example/v", "expires_in": 999_999}))
    .unwrap();
    assert_eq!(got.interval, DEFAULT_INTERVAL);
    assert_eq!(got.expires_in, MAX_LIFETIME);
    let got = answer(json!({"device_code": "d", "user_code": "U",
        "verification_uri": "https://as.example/v", "expires_in": 60, "interval": 86400}))
    .unwrap();
    assert_eq!(got.interval, MAX_INTERVAL);
    let got = answer(json!({"device_code": "d", "user_code": "U",
        "verification_uri": "https://as.example/v", "expires_in": 60, "interval": 0}))
    .unwrap();
    assert_eq!(got.interval, Duration::from_secs(1));
}

#[test]
fn unusable_answers_are_refused_without_quoting_the_codes() {
    let base = json!({"device_code": "dc-secret", "user_code": "U",
        "verification_uri": "https://as.example/v", "expires_in": 60});
    let with = |k: &str, v: serde_json::Value| {
        let mut b = base.clone();
        b[k] = v;
        answer(b)
    };
    for bad in [
        with("verification_uri", json!("http://evil.example/v")),
        with("verification_uri", json!("javascript:alert(1)")),
        with("verification_uri_complete", json!("ftp://as.example/v")),
        with("expires_in", json!(0)),
        with("expires_in", json!(-5)),
        with("interval", json!("soon")),
        with("user_code", json!("")),
        with("user_code", json!("a\u{7}b")),
        with("user_code", json!("x".repeat(65))),
        with("device_code", json!("d".repeat(4097))),
        answer(json!({"device_code": "dc-secret"})),
        parse_device_authorization(&endpoint(), b"<html>dc-secret</html>"),
    ] {
        let err = bad.unwrap_err();
        assert!(matches!(err, DeviceError::Invalid { .. }), "{err:?}");
        assert!(!err.to_string().contains("dc-secret"), "{err}");
    }
}

#[tokio::test]
async fn a_poll_sends_the_device_code_grant_and_reads_the_tokens() {
    let server = serve(|req, _| {
        if req.form_value("device_code").as_deref() == Some("dc-1") {
            test_server::json(
                200,
                json!({"access_token": "at", "token_type": "Bearer", "expires_in": 60}),
            )
        } else {
            test_server::json(400, json!({"error": "authorization_pending"}))
        }
    })
    .await;
    let http = HttpClient::for_tests();
    let token_endpoint = server.url("/token");
    let tokens = poll_token(
        &http,
        &token_endpoint,
        &public_client(),
        "dc-1",
        "res",
        None,
    )
    .await
    .unwrap();
    assert_eq!(tokens.access_token, "at");
    let request = &server.requests()[0];
    assert_eq!(
        request.form_value("grant_type").as_deref(),
        Some(DEVICE_CODE_GRANT)
    );
    assert_eq!(request.form_value("resource").as_deref(), Some("res"));
    assert_eq!(
        request.form_value("client_id").as_deref(),
        Some("device-client")
    );
    let err = poll_token(
        &http,
        &token_endpoint,
        &public_client(),
        "dc-2",
        "res",
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(poll_step(&err), PollStep::Pending);
}

#[test]
fn each_answer_says_how_the_polling_goes_on() {
    let oauth = |error: &str| TokenError::OAuth {
        endpoint: "e".into(),
        status: 400,
        error: error.into(),
        description: None,
    };
    assert_eq!(
        poll_step(&oauth("authorization_pending")),
        PollStep::Pending
    );
    assert_eq!(poll_step(&oauth("slow_down")), PollStep::SlowDown);
    assert_eq!(poll_step(&oauth("access_denied")), PollStep::Denied);
    assert_eq!(poll_step(&oauth("expired_token")), PollStep::Expired);
    assert_eq!(poll_step(&oauth("invalid_grant")), PollStep::Failed);
    let transient = TokenError::Transient {
        endpoint: "e".into(),
        reason: "HTTP 503".into(),
    };
    assert_eq!(poll_step(&transient), PollStep::Retry);
    let invalid = TokenError::Invalid {
        endpoint: "e".into(),
        reason: "x".into(),
    };
    assert_eq!(poll_step(&invalid), PollStep::Failed);

    let five = Duration::from_secs(5);
    assert_eq!(next_interval(five, PollStep::Pending), five);
    assert_eq!(
        next_interval(five, PollStep::SlowDown),
        Duration::from_secs(10)
    );
    let mut interval = five;
    for _ in 0..100 {
        interval = next_interval(interval, PollStep::SlowDown);
    }
    assert_eq!(interval, MAX_INTERVAL);
}

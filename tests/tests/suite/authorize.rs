//! The authorization endpoint's checks and redirects.

use mcp_app_server_testkit::{KitConfig, authorize_redirect_location, browser_visit};

use super::common::{
    REDIRECT, STATE, authorize_url, exchange_code, get_code, http, query_of, register_public, start,
};

#[tokio::test]
async fn redirect_carries_code_state_and_iss() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, REDIRECT).await;
    let location = authorize_redirect_location(&authorize_url(&kit, &client_id, REDIRECT, &[]))
        .await
        .expect("redirect");
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let query = query_of(&location);
    assert_eq!(query.get("state").map(String::as_str), Some(STATE));
    assert_eq!(query.get("iss"), Some(&kit.issuer()));
    assert!(query.get("code").is_some_and(|c| c.len() >= 32));
    let recorded = kit.last_authorize_query().expect("recorded");
    assert_eq!(recorded.get("resource"), Some(&kit.mcp_url()));
    assert_eq!(kit.counters().authorize, 1);

    let quiet = start(KitConfig {
        send_iss: false,
        ..KitConfig::default()
    })
    .await;
    let client_id = register_public(&quiet, REDIRECT).await;
    let location = authorize_redirect_location(&authorize_url(&quiet, &client_id, REDIRECT, &[]))
        .await
        .expect("redirect");
    assert!(!query_of(&location).contains_key("iss"));
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_get_an_html_page() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, REDIRECT).await;
    let cases = [
        ("nobody", REDIRECT, "invalid_client"),
        (
            client_id.as_str(),
            "http://127.0.0.1:45678/callback/other",
            "invalid_request",
        ),
        (
            client_id.as_str(),
            "http://localhost:45678/callback/abc",
            "invalid_request",
        ),
        (
            client_id.as_str(),
            "https://attacker.example/callback/abc",
            "invalid_request",
        ),
    ];
    for (client, redirect, error) in cases {
        let page = browser_visit(&authorize_url(&kit, client, redirect, &[]))
            .await
            .expect("visit");
        assert_eq!(page.status, 400, "{client} {redirect}");
        assert_eq!(
            page.redirect_location, None,
            "never redirects to an unverified URI"
        );
        assert!(page.body.contains(error), "{}", page.body);
    }
    let missing = browser_visit(&authorize_url(
        &kit,
        &client_id,
        REDIRECT,
        &[("redirect_uri", "")],
    ))
    .await
    .expect("visit");
    assert_eq!(missing.status, 400);
}

#[tokio::test]
async fn loopback_redirect_port_may_differ() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, "http://127.0.0.1:1111/callback/abc").await;
    let other_port = "http://127.0.0.1:2222/callback/abc";
    let code = get_code(&kit, &client_id, other_port).await;
    let (status, body) = exchange_code(&kit, &client_id, &code, other_port).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn request_errors_go_back_to_the_client_with_state() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, REDIRECT).await;
    let wrong_resource = format!("{}/", kit.mcp_url());
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "too-short")], "invalid_request"),
        (vec![("resource", "")], "invalid_target"),
        (vec![("resource", &wrong_resource)], "invalid_target"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("response_type", "")], "invalid_request"),
        (vec![("scope", "mcp:read admin")], "invalid_scope"),
    ];
    for (overrides, error) in cases {
        let location =
            authorize_redirect_location(&authorize_url(&kit, &client_id, REDIRECT, &overrides))
                .await
                .expect("redirect");
        assert!(location.starts_with(REDIRECT), "{location}");
        let query = query_of(&location);
        assert_eq!(
            query.get("error").map(String::as_str),
            Some(error),
            "{overrides:?}"
        );
        assert_eq!(query.get("state").map(String::as_str), Some(STATE));
        assert_eq!(query.get("iss"), Some(&kit.issuer()));
        assert!(!query.contains_key("code"));
    }
}

#[tokio::test]
async fn consent_page_waits_for_a_decision() {
    let kit = start(KitConfig {
        auto_approve: false,
        ..KitConfig::default()
    })
    .await;
    let client_id = register_public(&kit, REDIRECT).await;
    let page = browser_visit(&authorize_url(&kit, &client_id, REDIRECT, &[]))
        .await
        .expect("visit");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<form"));
    assert_eq!(kit.pending_approvals(), 1);
    let location = kit.approve_pending(true).expect("pending");
    let code = query_of(&location).get("code").cloned().expect("code");
    assert_eq!(
        exchange_code(&kit, &client_id, &code, REDIRECT).await.0,
        200
    );
    assert_eq!(kit.approve_pending(true), None);

    browser_visit(&authorize_url(&kit, &client_id, REDIRECT, &[]))
        .await
        .expect("visit");
    let denied = query_of(&kit.approve_pending(false).expect("pending"));
    assert_eq!(
        denied.get("error").map(String::as_str),
        Some("access_denied")
    );
    assert_eq!(denied.get("state").map(String::as_str), Some(STATE));

    // The page's own form works too.
    let page = browser_visit(&authorize_url(&kit, &client_id, REDIRECT, &[]))
        .await
        .expect("visit");
    let id = page
        .body
        .split("name=\"request_id\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("request id");
    let response = http()
        .post(format!("{}/authorize/decision", kit.issuer()))
        .form(&[("request_id", id), ("decision", "approve")])
        .send()
        .await
        .expect("decision");
    assert_eq!(response.status().as_u16(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(query_of(&location).contains_key("code"));
}

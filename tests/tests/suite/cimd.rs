//! Client ID Metadata Documents, with a tiny document host on loopback.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use mcp_app_server_testkit::{KitConfig, authorize_redirect_location, browser_visit};
use serde_json::json;

use super::common::{REDIRECT, STATE, authorize_url, exchange_code, query_of, start};

/// Serves documents under `/<case>/client.json`; returns the origin.
async fn document_host() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    let base = Arc::new(origin.clone());
    let doc = move |case: &'static str, extra: serde_json::Value| {
        let base = base.clone();
        get(move || async move {
            let mut body = json!({
                "client_id": format!("{base}/{case}/client.json"),
                "client_name": "ide",
                "redirect_uris": ["http://127.0.0.1/callback/abc"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
            });
            if let (Some(obj), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                obj.extend(extra.clone());
            }
            (
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
        })
    };
    let router = Router::new()
        .route("/good/client.json", doc("good", json!({})))
        .route(
            "/mismatch/client.json",
            doc(
                "mismatch",
                json!({"client_id": "https://other.example/client.json"}),
            ),
        )
        .route(
            "/secret/client.json",
            doc("secret", json!({"client_secret": "s"})),
        )
        .route(
            "/big/client.json",
            doc("big", json!({"padding": "x".repeat(6 * 1024)})),
        )
        .route(
            "/moved/client.json",
            get(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "/good/client.json")]).into_response()
            }),
        )
        .route(
            "/broken/client.json",
            get(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        );
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });
    origin
}

#[tokio::test]
async fn documents_are_fetched_and_validated_strictly() {
    let host = document_host().await;
    let kit = start(KitConfig {
        cimd: true,
        ..KitConfig::default()
    })
    .await;

    let good = format!("{host}/good/client.json");
    let location = authorize_redirect_location(&authorize_url(&kit, &good, REDIRECT, &[]))
        .await
        .expect("redirect");
    let code = query_of(&location).get("code").cloned().expect("code");
    let (status, tokens) = exchange_code(&kit, &good, &code, REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(kit.counters().cimd_fetch, 1);

    let refused = [
        format!("{host}/mismatch/client.json"),
        format!("{host}/secret/client.json"),
        format!("{host}/big/client.json"),
        format!("{host}/moved/client.json"),
        format!("{host}/broken/client.json"),
        // Same document, but the URL differs from its client_id by one character.
        format!("{host}/good/client.json?"),
    ];
    for client_id in &refused {
        let page = browser_visit(&authorize_url(&kit, client_id, REDIRECT, &[]))
            .await
            .expect("visit");
        assert_eq!(page.status, 400, "{client_id}");
        assert!(page.body.contains("invalid_client"), "{}", page.body);
    }
    // A redirect URI the document does not list.
    let page = browser_visit(&authorize_url(
        &kit,
        &good,
        "http://localhost:45678/callback/abc",
        &[],
    ))
    .await
    .expect("visit");
    assert_eq!(page.status, 400);
    assert_eq!(kit.counters().cimd_fetch, 8);
}

#[tokio::test]
async fn url_client_ids_are_refused_when_cimd_is_off_or_rejected() {
    let host = document_host().await;
    let good = format!("{host}/good/client.json");

    let rejecting = start(KitConfig {
        cimd: true,
        reject_cimd: true,
        ..KitConfig::default()
    })
    .await;
    let location = authorize_redirect_location(&authorize_url(&rejecting, &good, REDIRECT, &[]))
        .await
        .expect("redirect");
    let query = query_of(&location);
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_client")
    );
    assert_eq!(query.get("state").map(String::as_str), Some(STATE));
    assert_eq!(rejecting.counters().cimd_fetch, 0);

    let plain = start(KitConfig::default()).await;
    let page = browser_visit(&authorize_url(&plain, &good, REDIRECT, &[]))
        .await
        .expect("visit");
    assert_eq!(page.status, 400);
    assert_eq!(plain.counters().cimd_fetch, 0);
}

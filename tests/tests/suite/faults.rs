//! Faults, the headless browser and shutdown.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use mcp_app_server_testkit::{
    Endpoint, Fault, KitConfig, OVERSIZED_BODY_BYTES, authorize_redirect_location, browser_visit,
};
use serde_json::{Value, json};

use super::common::{REDIRECT, authorize_url, http, login, register_public, start};

async fn raw_get(url: &str) -> (u16, String) {
    let response = http().get(url).send().await.expect("GET");
    (
        response.status().as_u16(),
        response.text().await.expect("body"),
    )
}

#[tokio::test]
async fn each_fault_replaces_the_endpoint_answer() {
    let kit = start(KitConfig::default()).await;
    let metadata_url = format!("{}/.well-known/oauth-authorization-server", kit.as_origin());

    kit.faults().set(Endpoint::AsMetadata, Fault::InvalidJson);
    let (status, body) = raw_get(&metadata_url).await;
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&body).is_err());

    kit.faults().set(Endpoint::Prm, Fault::Oversized);
    let (status, body) = raw_get(&kit.prm_url()).await;
    assert_eq!(status, 200);
    assert!(body.len() > OVERSIZED_BODY_BYTES && body.len() > 2 * 1024 * 1024);
    assert!(
        serde_json::from_str::<Value>(&body).is_ok(),
        "oversized but valid JSON"
    );

    kit.faults().set(Endpoint::Token, Fault::Status500);
    let response = http()
        .post(format!("{}/token", kit.issuer()))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .expect("token");
    assert_eq!(response.status().as_u16(), 500);
    assert_eq!(
        kit.counters().token_refresh,
        1,
        "faulted requests are counted"
    );

    kit.faults().set(Endpoint::Mcp, Fault::Status(503));
    let response = http()
        .post(kit.mcp_url())
        .json(&json!({}))
        .send()
        .await
        .expect("mcp");
    assert_eq!(response.status().as_u16(), 503);

    // Slow and Latency delay, then answer normally.
    kit.faults()
        .set(Endpoint::Register, Fault::Slow(Duration::from_millis(20)));
    kit.faults()
        .set(Endpoint::Mcp, Fault::Latency(Duration::from_millis(5)));
    register_public(&kit, REDIRECT).await;

    // All covers endpoints without their own fault; a per-endpoint fault wins.
    kit.faults().set(Endpoint::All, Fault::Status(502));
    let (status, _) = raw_get(&metadata_url).await;
    assert_eq!(status, 200, "AsMetadata still has InvalidJson");
    let response = http()
        .post(format!("{}/revoke", kit.issuer()))
        .form(&[("token", "x")])
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status().as_u16(), 502);
    let response = http()
        .post(kit.mcp_url())
        .json(&json!({}))
        .send()
        .await
        .expect("mcp");
    assert_eq!(
        response.status().as_u16(),
        503,
        "Latency did not replace the Mcp fault"
    );

    kit.faults().clear();
    let (status, body) = raw_get(&metadata_url).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["issuer"],
        json!(kit.issuer())
    );
    let (_, tokens) = login(&kit).await;
    assert!(tokens["access_token"].is_string());
}

#[tokio::test]
async fn browser_follows_the_redirect_to_the_callback_listener() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let callback = format!(
        "http://{}/callback/abc",
        listener.local_addr().expect("addr")
    );
    let router = Router::new().route(
        "/callback/abc",
        get(|| async { "signed in, you may close this tab" }),
    );
    tokio::spawn(async move { axum::serve(listener, router).await.ok() });

    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, &callback).await;
    let url = authorize_url(&kit, &client_id, &callback, &[]);
    let result = browser_visit(&url).await.expect("visit");
    assert_eq!(result.status, 200);
    assert_eq!(result.body, "signed in, you may close this tab");
    assert!(
        result.final_url.starts_with(&format!("{callback}?code=")),
        "{}",
        result.final_url
    );
    assert_eq!(
        result.redirect_location.as_deref(),
        Some(result.final_url.as_str())
    );

    let location = authorize_redirect_location(&url).await.expect("location");
    assert!(location.starts_with(&format!("{callback}?code=")));
    let unknown = authorize_url(&kit, "nobody", &callback, &[]);
    let error = authorize_redirect_location(&unknown)
        .await
        .expect_err("no redirect")
        .to_string();
    assert!(error.contains("400"), "{error}");
}

#[tokio::test]
async fn dropping_the_kit_stops_its_listeners() {
    let kit = start(KitConfig::default()).await;
    let (mcp_url, issuer) = (kit.mcp_url(), kit.issuer());
    assert_eq!(
        raw_get(&format!("{issuer}/.well-known/oauth-authorization-server"))
            .await
            .0,
        200
    );
    drop(kit);
    let fresh = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only(Vec::new())
        .build()
        .expect("client");
    // The aborted server tasks are dropped when the runtime next polls them.
    let mut stopped = false;
    for _ in 0..100 {
        if fresh.post(&mcp_url).send().await.is_err()
            && fresh.get(format!("{issuer}/token")).send().await.is_err()
        {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stopped, "listeners still answer after the kit was dropped");
}

//! The MCP resource server behind bearer tokens.

use mcp_app_server_testkit::KitConfig;
use serde_json::{Value, json};

use super::common::{http, mcp_post, start, www_authenticate};

#[tokio::test]
async fn valid_token_gets_a_streamable_http_session() {
    let kit = start(KitConfig::default()).await;
    let token = kit.mint_access_token(&["mcp:read"]);
    let call = async |body: Value| {
        let response = mcp_post(&kit, Some(&token), body).await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let text = response.text().await.expect("body");
        (
            status,
            content_type,
            serde_json::from_str::<Value>(&text).unwrap_or(Value::Null),
        )
    };
    let (status, content_type, init) = call(json!({"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})).await;
    assert_eq!(status, 200);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(init["id"], json!(1));
    assert_eq!(init["result"]["protocolVersion"], json!("2025-11-25"));
    assert_eq!(init["result"]["capabilities"], json!({"tools": {}}));

    let (status, _, _) =
        call(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
    assert_eq!(status, 202);
    let (_, _, list) = call(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})).await;
    assert_eq!(list["result"]["tools"][0]["name"], json!("test-tool"));
    let (_, _, result) = call(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "test-tool", "arguments": {}}}))
    .await;
    assert_eq!(
        result["result"]["content"],
        json!([{"type": "text", "text": "ok"}])
    );
    let (_, _, unknown) =
        call(json!({"jsonrpc": "2.0", "id": 4, "method": "resources/list"})).await;
    assert_eq!(unknown["error"]["code"], json!(-32601));

    let get = http()
        .get(kit.mcp_url())
        .bearer_auth(&token)
        .send()
        .await
        .expect("GET");
    assert_eq!(get.status().as_u16(), 405);
    assert_eq!(kit.counters().mcp, 6);
}

#[tokio::test]
async fn expired_or_unknown_tokens_get_invalid_token() {
    let kit = start(KitConfig {
        access_token_ttl_secs: 0,
        ..KitConfig::default()
    })
    .await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let expired = kit.mint_access_token(&[]);
    for token in [expired.as_str(), "made-up"] {
        let response = mcp_post(&kit, Some(token), ping.clone()).await;
        assert_eq!(response.status().as_u16(), 401);
        let challenge = www_authenticate(&response);
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        assert!(challenge.contains(&format!("resource_metadata=\"{}\"", kit.prm_url())));
    }

    let fresh = start(KitConfig::default()).await;
    let token = fresh.mint_access_token(&[]);
    assert_eq!(
        mcp_post(&fresh, Some(&token), ping.clone())
            .await
            .status()
            .as_u16(),
        200
    );
    fresh.expire_access_tokens();
    assert_eq!(
        mcp_post(&fresh, Some(&token), ping).await.status().as_u16(),
        401
    );
}

#[tokio::test]
async fn missing_required_scope_is_insufficient_scope() {
    let kit = start(KitConfig {
        required_scope: Some("mcp:write".into()),
        ..KitConfig::default()
    })
    .await;
    let ping = json!({"jsonrpc": "2.0", "id": 1, "method": "ping"});
    let response = mcp_post(
        &kit,
        Some(&kit.mint_access_token(&["mcp:read"])),
        ping.clone(),
    )
    .await;
    assert_eq!(response.status().as_u16(), 403);
    let challenge = www_authenticate(&response);
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"mcp:write\""), "{challenge}");
    assert!(challenge.contains("resource_metadata="), "{challenge}");
    let response = mcp_post(
        &kit,
        Some(&kit.mint_access_token(&["mcp:read", "mcp:write"])),
        ping,
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
}

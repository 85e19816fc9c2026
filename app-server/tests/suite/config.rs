//! Configuration through the daemon: status listing, pagination and reload.

use serde_json::json;

use super::harness::{self, write_config};

const THREE_SERVERS: &str = r#"
[mcp_servers.beta]
url = "https://beta.example.com/mcp"

[mcp_servers.alpha]
url = "https://alpha.example.com/mcp"

[mcp_servers.local]
command = "npx"
"#;

#[tokio::test]
async fn status_lists_servers_sorted_with_transport_and_auth_status() {
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), THREE_SERVERS);
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let r = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(
        r,
        json!({"data": [
            {"name": "alpha", "transport": "streamableHttp", "url": "https://alpha.example.com/mcp", "authStatus": "notLoggedIn", "reason": "neverLoggedIn", "loginPending": false},
            {"name": "beta", "transport": "streamableHttp", "url": "https://beta.example.com/mcp", "authStatus": "notLoggedIn", "reason": "neverLoggedIn", "loginPending": false},
            {"name": "local", "transport": "stdio", "authStatus": "unsupported", "loginPending": false}
        ]})
    );
}

#[tokio::test]
async fn status_paginates_with_cursor_and_limit() {
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), THREE_SERVERS);
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let mut names = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = c
            .ok(
                "mcpServerStatus/list",
                json!({"limit": 2, "cursor": cursor}),
            )
            .await;
        pages += 1;
        for s in r["data"].as_array().unwrap() {
            names.push(s["name"].as_str().unwrap().to_string());
        }
        match r.get("nextCursor").and_then(|v| v.as_str()) {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(names, ["alpha", "beta", "local"]);
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn reload_picks_up_changes_and_a_failed_reload_keeps_the_previous_config() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        "[mcp_servers.one]\nurl = \"https://one.example.com/mcp\"\n",
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;

    write_config(home.path(), THREE_SERVERS);
    assert_eq!(c.ok("config/mcpServer/reload", json!({})).await, json!({}));
    let r = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(r["data"].as_array().unwrap().len(), 3);

    write_config(
        home.path(),
        "[mcp_servers.broken]\nurl = \"https://x\"\nbogus_key = 1\n",
    );
    let e = c.err("config/mcpServer/reload", json!(null)).await;
    assert_eq!(e["data"]["kind"], "configInvalid");
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("bogus_key") && msg.contains(":3:"), "{msg}");
    let r = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(
        r["data"].as_array().unwrap().len(),
        3,
        "previous config still in force"
    );
}

#[tokio::test]
async fn invalid_config_at_startup_is_reported_until_fixed() {
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), "mcp_oauth_callback_port = \"high\"\n");
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let e = c.err("mcpServerStatus/list", json!({})).await;
    assert_eq!(e["data"]["kind"], "configInvalid");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("mcp_oauth_callback_port")
    );
    write_config(home.path(), THREE_SERVERS);
    c.ok("config/mcpServer/reload", json!({})).await;
    assert_eq!(
        c.ok("mcpServerStatus/list", json!({})).await["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

//! The JSON-RPC contract: handshake, error codes, batches, framing, notifications.

use mcp_app_server::transport::Framing;
use mcp_app_server_protocol::{AuthStatusChangedNotification, McpAuthStatus, ServerNotification};
use serde_json::{Value, json};

use super::harness;

fn kind(error: &Value) -> &str {
    error["data"]["kind"].as_str().unwrap_or("")
}

#[tokio::test]
async fn requests_before_initialize_are_refused_and_initialize_works_once() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    let e = c.err("mcpServerStatus/list", json!({})).await;
    assert_eq!(kind(&e), "notInitialized");
    assert!((-32099..=-32000).contains(&e["code"].as_i64().unwrap()));

    let init = c.initialize().await;
    assert_eq!(init["serverInfo"]["name"], "mcp-app-server");
    assert!(
        init["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("mcpServer/oauth/login"))
    );

    let e = c
        .err(
            "initialize",
            json!({"clientInfo": {"name": "x", "version": "1"}}),
        )
        .await;
    assert_eq!(kind(&e), "alreadyInitialized");
    // The connection still works.
    c.ok("mcpServerStatus/list", json!({})).await;
}

#[tokio::test]
async fn standard_error_codes() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;

    c.send_raw(b"{not json\n").await;
    let m = c.read().await;
    assert_eq!(m["error"]["code"], -32700);
    assert_eq!(m["id"], Value::Null);

    for (raw, id) in [
        (json!({"jsonrpc": "2.0", "id": 5, "method": 3}), json!(5)),
        (json!({"jsonrpc": "1.0", "id": 6, "method": "x"}), json!(6)),
        (json!({"jsonrpc": "2.0", "id": 7}), json!(7)),
        (
            json!({"jsonrpc": "2.0", "id": true, "method": "x"}),
            Value::Null,
        ),
        (
            json!({"jsonrpc": "2.0", "id": 8, "method": "x", "params": 3}),
            json!(8),
        ),
        (json!(42), Value::Null),
    ] {
        c.send(&raw).await;
        let m = c.read().await;
        assert_eq!(m["error"]["code"], -32600, "{raw} -> {m}");
        assert_eq!(m["id"], id, "{raw} -> {m}");
    }

    let e = c.err("no/such/method", json!({})).await;
    assert_eq!(e["code"], -32601);
    assert!(e["message"].as_str().unwrap().contains("no/such/method"));

    let e = c.err("mcpServerStatus/list", json!({"limit": "ten"})).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("limit"), "{e}");
    let e = c.err("mcpServer/oauth/login", json!({"nam": "x"})).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("nam"), "{e}");
    let e = c.err("mcpServerStatus/list", json!({"limit": 0})).await;
    assert_eq!(e["code"], -32602);
    assert!(e["message"].as_str().unwrap().contains("limit"), "{e}");
}

#[tokio::test]
async fn input_without_jsonrpc_field_is_accepted_and_answered_with_it() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.send(&json!({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "c", "version": "0"}}})).await;
    let m = c.read().await;
    assert_eq!(m["jsonrpc"], "2.0");
    assert!(m["result"]["serverInfo"].is_object(), "{m}");
}

#[tokio::test]
async fn batches_are_answered_as_batches_without_notification_replies() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.send(&json!([
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"clientInfo": {"name": "c", "version": "0"}}},
        {"jsonrpc": "2.0", "method": "initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "mcpServerStatus/list"},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
        17
    ]))
    .await;
    let m = c.read().await;
    let replies = m.as_array().expect("a batch reply");
    assert_eq!(replies.len(), 4, "{m}");
    assert_eq!(replies[0]["id"], 1);
    assert!(replies[0]["result"].is_object());
    assert_eq!(replies[1]["id"], 2);
    assert!(replies[1]["result"]["data"].is_array(), "{m}");
    assert_eq!(replies[2]["error"]["code"], -32601);
    assert_eq!(replies[3]["error"]["code"], -32600);

    c.send_raw(b"[]\n").await;
    assert_eq!(c.read().await["error"]["code"], -32600);

    // A batch of notifications only gets no reply at all.
    c.send(&json!([{"jsonrpc": "2.0", "method": "initialized"}]))
        .await;
    let m = c.ok("mcpServerStatus/list", json!({})).await;
    assert!(m["data"].is_array());
}

#[tokio::test]
async fn client_notifications_and_replies_get_no_answer() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    c.send(&json!({"jsonrpc": "2.0", "method": "initialized"}))
        .await;
    c.send(&json!({"jsonrpc": "2.0", "method": "some/unknown/notification", "params": {}}))
        .await;
    c.send(&json!({"jsonrpc": "2.0", "id": 99, "result": {}}))
        .await;
    let m = c.request("mcpServerStatus/list", json!({})).await;
    assert_eq!(
        m["id"],
        1 + 1,
        "the next message is the reply to the request: {m}"
    );
}

#[tokio::test]
async fn content_length_framing_is_detected_and_used_for_replies() {
    let home = tempfile::tempdir().unwrap();
    let (server, c) = harness::start(home.path());
    drop(c);
    let mut c = harness::connect(&server).with_framing(Framing::ContentLength);
    let init = c.initialize().await;
    assert!(init["serverInfo"].is_object());
    assert_eq!(c.reply_framing(), Some(Framing::ContentLength));
    c.ok("mcpServerStatus/list", json!({})).await;
}

#[tokio::test]
async fn two_messages_in_one_write_and_one_message_in_many_writes() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.send_raw(b"{\"id\":1,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"a\",\"version\":\"1\"}}}\n{\"id\":2,\"method\":\"mcpServerStatus/list\"}\n").await;
    let a = c.response(1).await;
    let b = c.response(2).await;
    assert!(
        a["result"].is_object() && b["result"].is_object(),
        "{a} {b}"
    );
    let msg = b"{\"id\":3,\"method\":\"mcpServerStatus/list\",\"params\":{}}\n";
    for chunk in msg.chunks(5) {
        c.send_raw(chunk).await;
        tokio::task::yield_now().await;
    }
    assert!(c.response(3).await["result"].is_object());
}

#[tokio::test]
async fn oversized_message_gets_an_error_and_the_connection_goes_on() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let big = format!(
        "{{\"id\":9,\"method\":\"mcpServerStatus/list\",\"params\":{{\"cursor\":\"{}\"}}}}\n",
        "x".repeat(5 * 1024 * 1024)
    );
    c.send_raw(big.as_bytes()).await;
    let m = c.read().await;
    assert_eq!(m["error"]["data"]["kind"], "messageTooLarge", "{m}");
    c.ok("mcpServerStatus/list", json!({})).await;
}

#[tokio::test]
async fn notifications_go_to_initialized_connections_that_did_not_opt_out() {
    let home = tempfile::tempdir().unwrap();
    let (server, mut a) = harness::start(home.path());
    let mut b = harness::connect(&server);
    let mut not_initialized = harness::connect(&server);
    a.initialize().await;
    b.initialize_opting_out(&["mcpServer/authStatus/changed"])
        .await;

    server.notify(ServerNotification::AuthStatusChanged(
        AuthStatusChangedNotification {
            name: "srv".into(),
            auth_status: McpAuthStatus::LoggedIn,
            reason: None,
        },
    ));
    let n = a.notification("mcpServer/authStatus/changed").await;
    assert_eq!(n, json!({"name": "srv", "authStatus": "loggedIn"}));

    // b and the uninitialized connection see nothing: their next message is the reply.
    let r = b.request("mcpServerStatus/list", json!({})).await;
    assert!(r["result"].is_object(), "{r}");
    let r = not_initialized
        .request(
            "initialize",
            json!({"clientInfo": {"name": "n", "version": "1"}}),
        )
        .await;
    assert!(r["result"].is_object(), "{r}");
}

#[tokio::test]
async fn end_of_input_closes_the_connection_after_pending_replies() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.send(&json!({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "a", "version": "1"}}})).await;
    c.send(&json!({"id": 2, "method": "mcpServerStatus/list"}))
        .await;
    // Close our writing side: the daemon must still answer both, then close.
    c.close_input();
    let mut ids = vec![c.read().await["id"].clone(), c.read().await["id"].clone()];
    ids.sort_by_key(|v| v.as_i64());
    assert_eq!(ids, vec![json!(1), json!(2)]);
    assert!(c.read_eof().await);
}

//! A new DCR registration is saved after the login has answered: it must still be stored
//! when the daemon shuts down right after the answer, and reused by the next daemon.

use serde_json::json;

use mcp_app_server_testkit::{Kit, KitConfig, browser_visit};

use super::harness::{self, write_config};

#[tokio::test]
async fn a_registration_made_just_before_shutdown_is_saved_and_reused_by_the_next_daemon() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n[mcp_servers.kit]\nurl = \"{}\"\n",
            kit.mcp_url()
        ),
    );
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    let first = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(kit.registered_clients().len(), 1);
    // Shut down at once: the login's task is still saving its registration.
    server.shutdown().await;
    drop(c);
    drop(server);

    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    let second = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(second["redirectUri"], first["redirectUri"]);
    // The stored registration served: no second one was made.
    assert_eq!(kit.registered_clients().len(), 1);
    browser_visit(second["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    server.shutdown().await;
}

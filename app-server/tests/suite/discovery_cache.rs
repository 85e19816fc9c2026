//! The discovery cache file shared by several daemons on one state directory: each write
//! merges what the others wrote, so no daemon's discoveries are lost to another's write.
//! (Preregistered clients: the logins need no registration, so every request counted is
//! discovery.)

use mcp_app_server_testkit::Kit;
use serde_json::json;

use super::harness::{self, MemClient, write_config};
use super::rtt::preregistered_kit;

fn config(a: &Kit, b: &Kit) -> String {
    format!(
        "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n\
         [mcp_servers.a]\nurl = \"{}\"\n[mcp_servers.a.oauth]\nclient_id = \"pre-pub\"\n\
         [mcp_servers.b]\nurl = \"{}\"\n[mcp_servers.b.oauth]\nclient_id = \"pre-pub\"\n",
        a.mcp_url(),
        b.mcp_url()
    )
}

/// Starts a login to `name`; answers how many requests `kit` saw before the answer.
async fn login(c: &mut MemClient, kit: &Kit, name: &str) -> usize {
    let before = kit.request_log().len();
    c.ok("mcpServer/oauth/login", json!({"name": name})).await;
    kit.request_log().len() - before
}

#[tokio::test]
async fn two_daemons_on_one_state_directory_keep_each_others_discoveries() {
    let kit_a = Kit::start(preregistered_kit()).await.unwrap();
    let kit_b = Kit::start(preregistered_kit()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit_a, &kit_b));

    // Both daemons run at once; B read the cache file before A had written anything.
    let (daemon_b, mut b) = harness::start(home.path());
    b.initialize().await;
    assert!(login(&mut b, &kit_b, "b").await > 0);
    let (daemon_a, mut a) = harness::start(home.path());
    a.initialize().await;
    assert!(login(&mut a, &kit_a, "a").await > 0);
    // A writes first, B last: B's view alone holds only its own server.
    daemon_a.shutdown().await;
    daemon_b.shutdown().await;

    // A third daemon knows both servers: neither login sends a request before its answer.
    let (daemon, mut c) = harness::start(home.path());
    c.initialize().await;
    assert_eq!(
        login(&mut c, &kit_a, "a").await,
        0,
        "{:?}",
        kit_a.request_log()
    );
    assert_eq!(
        login(&mut c, &kit_b, "b").await,
        0,
        "{:?}",
        kit_b.request_log()
    );
    daemon.shutdown().await;
}

//! Several daemons on one state directory: the discovery cache and the sticky callback
//! ports are merged on every write, so no daemon's discoveries or registrations are lost to
//! another's write.

use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::json;

use super::harness::{self, MemClient, write_config};
use super::rtt::preregistered_kit;

/// Servers `a` and `b`; with `preregistered`, each with the kit's preregistered client (the
/// logins then need no registration, so every request counted is discovery).
fn config(a: &Kit, b: &Kit, preregistered: bool) -> String {
    let oauth = |name: &str| {
        if preregistered {
            format!("[mcp_servers.{name}.oauth]\nclient_id = \"pre-pub\"\n")
        } else {
            String::new()
        }
    };
    format!(
        "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n\
         [mcp_servers.a]\nurl = \"{}\"\n{}[mcp_servers.b]\nurl = \"{}\"\n{}",
        a.mcp_url(),
        oauth("a"),
        b.mcp_url(),
        oauth("b"),
    )
}

/// Daemon B starts (and reads the state files) before daemon A writes anything; both log
/// in, A shuts down first and B last, so B's own view alone would hold only its server.
async fn two_daemons_log_in(home: &std::path::Path, kit_a: &Kit, kit_b: &Kit) {
    let (daemon_b, mut b) = harness::start(home);
    b.initialize().await;
    assert!(login(&mut b, kit_b, "b").await > 0);
    let (daemon_a, mut a) = harness::start(home);
    a.initialize().await;
    assert!(login(&mut a, kit_a, "a").await > 0);
    daemon_a.shutdown().await;
    daemon_b.shutdown().await;
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
    write_config(home.path(), &config(&kit_a, &kit_b, true));
    two_daemons_log_in(home.path(), &kit_a, &kit_b).await;

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

#[tokio::test]
async fn two_daemons_on_one_state_directory_keep_each_others_callback_ports() {
    let kit_a = Kit::start(KitConfig::default()).await.unwrap();
    let kit_b = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit_a, &kit_b, false));
    two_daemons_log_in(home.path(), &kit_a, &kit_b).await;
    assert_eq!(kit_a.registered_clients().len(), 1);
    assert_eq!(kit_b.registered_clients().len(), 1);

    // A third daemon listens on each server's remembered port again, so the stored
    // registrations serve: no new one at either server.
    let (daemon, mut c) = harness::start(home.path());
    c.initialize().await;
    login(&mut c, &kit_a, "a").await;
    login(&mut c, &kit_b, "b").await;
    assert_eq!(
        kit_a.registered_clients().len(),
        1,
        "{:?}",
        kit_a.request_log()
    );
    assert_eq!(
        kit_b.registered_clients().len(),
        1,
        "{:?}",
        kit_b.request_log()
    );
    daemon.shutdown().await;
}

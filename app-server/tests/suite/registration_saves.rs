//! A new DCR registration is saved after the login has answered: it must still be stored
//! when the daemon shuts down right after the answer, and reused by the next daemon.

use serde_json::json;

use mcp_app_server_testkit::{Kit, KitConfig, browser_visit};

use super::harness::{self, write_config};

/// A file store, no pre-warm, the kit as server `kit`.
fn config(kit: &Kit) -> String {
    format!(
        "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n[mcp_servers.kit]\nurl = \"{}\"\n",
        kit.mcp_url()
    )
}

#[tokio::test]
async fn a_registration_made_just_before_shutdown_is_saved_and_reused_by_the_next_daemon() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit));
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

/// The credential document's lock is held by another writer, so the first login's new
/// registration waits to be written; a second login to the same server meanwhile (a second
/// click: it replaces the first) uses that registration instead of registering again, and
/// completes with it once the lock is free.
#[tokio::test]
async fn a_second_login_while_the_first_registration_waits_for_the_disk_reuses_it() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit));
    let lock_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(home.path().join("credentials.json.lock"))
        .unwrap();
    lock_file.lock().unwrap();
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    let first = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(kit.registered_clients().len(), 1);
    let second = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(second["redirectUri"], first["redirectUri"]);
    assert_eq!(kit.registered_clients().len(), 1, "no second registration");
    let client_id = |r: &serde_json::Value| {
        url::Url::parse(r["authorizationUrl"].as_str().unwrap())
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "client_id")
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(client_id(&second), client_id(&first));

    drop(lock_file);
    browser_visit(second["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    // The first login ended when the second replaced it; the second one succeeds.
    loop {
        let done = c.notification("mcpServer/oauthLogin/completed").await;
        if done["success"] == true {
            break;
        }
        assert!(done.to_string().contains("newer login"), "{done}");
    }
    server.shutdown().await;
    drop(c);
    drop(server);

    // Written once the lock was free: a new daemon reuses it too.
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    let third = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(client_id(&third), client_id(&first));
    assert_eq!(kit.registered_clients().len(), 1);
    server.shutdown().await;
}

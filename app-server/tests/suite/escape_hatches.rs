//! Escape hatches for authorization servers that do not publish their metadata as the specs
//! say (requirements rules 43 and 60-64), against the test kit: strict by default with an
//! error naming the key that would accept the server, a full login and a refresh with the
//! key, status (JSON-RPC and CLI) showing it, and no effect on another server.

use std::path::Path;

use mcp_app_server::credentials::{CredentialStore, FileStore};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::{daemon_for, file_store_config, login, status_of};
use super::rules::stored;

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

/// The issuer the kit's metadata names with `wrong_issuer`.
fn impostor(kit: &Kit) -> String {
    format!("{}/impostor", kit.issuer())
}

/// A login that must fail at discovery: the message of its error.
async fn refused(c: &mut MemClient, name: &str) -> String {
    let e = c.err("mcpServer/oauth/login", json!({"name": name})).await;
    assert_eq!(kind(&e), "discoveryFailed", "{e}");
    e["message"].as_str().unwrap().to_string()
}

/// The stored token made to look expired, then a token request: the daemon refreshes.
async fn refresh(c: &mut MemClient, home: &Path, name: &str, kit: &Kit) -> Value {
    let before = kit.counters().token_refresh;
    let mut creds = stored(home, name, kit).expect("stored credentials");
    creds.expires_at = Some(1);
    FileStore::open(&Home::at(home))
        .unwrap()
        .save(&creds)
        .unwrap();
    let token = c.ok("mcpServer/oauth/token", json!({"name": name})).await;
    assert_eq!(kit.counters().token_refresh, before + 1, "{token}");
    token
}

#[tokio::test]
async fn an_issuer_mismatch_is_refused_naming_the_key_and_accepted_with_it() {
    let kit = Kit::start(KitConfig {
        wrong_issuer: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "atl", "").await;
    let message = refused(&mut c, "atl").await;
    assert!(
        message.contains(&format!("{:?}", kit.issuer())),
        "{message}"
    );
    assert!(
        message.contains(&format!("set `issuer = \"{}\"`", impostor(&kit))),
        "{message}"
    );
    assert!(message.contains("[mcp_servers.atl.oauth]"), "{message}");
    assert_eq!(kit.counters().authorize, 0);
    assert!(
        status_of(&mut c, "atl")
            .await
            .get("escapeHatches")
            .is_none()
    );

    let extra = format!("[mcp_servers.atl.oauth]\nissuer = \"{}\"\n", impostor(&kit));
    let (home, _server, mut c) = daemon_for(&kit, "atl", &extra).await;
    let out = login(&mut c, "atl", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let creds = stored(home.path(), "atl", &kit).unwrap();
    // The login works with the issuer the server names itself by (its `iss` included).
    assert_eq!(creds.issuer, impostor(&kit));
    let status = status_of(&mut c, "atl").await;
    assert_eq!(status["escapeHatches"], json!(["issuer"]), "{status}");
    assert_eq!(status["authStatus"], "loggedIn", "{status}");
    refresh(&mut c, home.path(), "atl", &kit).await;
    assert_eq!(status_of(&mut c, "atl").await["authStatus"], "loggedIn");
}

#[tokio::test]
async fn a_metadata_document_at_another_path_is_used_only_when_configured() {
    let kit = Kit::start(KitConfig {
        metadata_path: Some("/custom/oauth-metadata.json".into()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let url = kit.custom_metadata_url().unwrap();
    let extra = format!("[mcp_servers.kit.oauth]\nauthorization_server_metadata_url = \"{url}\"\n");
    let (home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    // That document, and no well-known location, was asked (pre-warm included).
    let counters = kit.counters();
    assert_eq!(counters.as_metadata_openid, 0);
    assert!(counters.as_metadata_oauth > 0);
    assert_eq!(
        status_of(&mut c, "kit").await["escapeHatches"],
        json!(["authorization_server_metadata_url"])
    );
    refresh(&mut c, home.path(), "kit", &kit).await;

    // Without the key: refused, naming it.
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let message = refused(&mut c, "kit").await;
    assert!(
        message.contains("`authorization_server_metadata_url`")
            && message.contains("[mcp_servers.kit.oauth]"),
        "{message}"
    );

    // A configured document that is not there fails, naming the key and the URL.
    let extra = format!(
        "[mcp_servers.kit.oauth]\nauthorization_server_metadata_url = \"{}/nowhere.json\"\n",
        kit.issuer()
    );
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let message = refused(&mut c, "kit").await;
    assert!(
        message.contains("`authorization_server_metadata_url`")
            && message.contains("nowhere.json")
            && message.contains("404"),
        "{message}"
    );
}

#[tokio::test]
async fn a_missing_endpoint_is_named_and_a_configured_one_stands_in_for_it() {
    let kit = Kit::start(KitConfig {
        metadata_without: vec!["token_endpoint".into()],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let message = refused(&mut c, "kit").await;
    assert!(
        message.contains("has no token_endpoint") && message.contains("`token_endpoint = "),
        "{message}"
    );

    let token_endpoint = format!("{}/token", kit.issuer());
    let extra = format!("[mcp_servers.kit.oauth]\ntoken_endpoint = \"{token_endpoint}\"\n");
    let (home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        stored(home.path(), "kit", &kit).unwrap().token_endpoint,
        token_endpoint
    );
    refresh(&mut c, home.path(), "kit", &kit).await;
}

#[tokio::test]
async fn a_configured_endpoint_replaces_the_documents() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    // The kit serves its token endpoint at `/v2/token` as well; the document names `/token`.
    let token_endpoint = format!("{}/v2/token", kit.issuer());
    let extra = format!("[mcp_servers.kit.oauth]\ntoken_endpoint = \"{token_endpoint}\"\n");
    let (home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        stored(home.path(), "kit", &kit).unwrap().token_endpoint,
        token_endpoint
    );
    // The document's endpoint goes away: the refresh still works at the configured one.
    kit.move_endpoints();
    refresh(&mut c, home.path(), "kit", &kit).await;
}

#[tokio::test]
async fn without_any_metadata_the_configured_endpoints_are_enough() {
    let kit = Kit::start(KitConfig {
        publish_oauth_metadata: false,
        publish_openid_metadata: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let message = refused(&mut c, "kit").await;
    assert!(
        message.contains("`authorization_endpoint` and `token_endpoint`"),
        "{message}"
    );

    let issuer = kit.issuer();
    let extra = format!(
        "[mcp_servers.kit.oauth]\nauthorization_endpoint = \"{issuer}/authorize\"\ntoken_endpoint = \"{issuer}/token\"\nregistration_endpoint = \"{issuer}/register\"\nrevocation_endpoint = \"{issuer}/revoke\"\n"
    );
    let (home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.counters().register, 1);
    assert_eq!(
        status_of(&mut c, "kit").await["escapeHatches"],
        json!([
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "revocation_endpoint"
        ])
    );
    refresh(&mut c, home.path(), "kit", &kit).await;
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r["revoked"], true, "{r}");
    assert!(kit.counters().revoke > 0);
}

#[tokio::test]
async fn a_hatch_of_one_server_does_not_serve_another_on_the_same_authorization_server() {
    // Two names for the same MCP server (so the same discovery, but for the hatch): the one
    // without it must stay strict, whichever is discovered first, pre-warm included.
    let kit = Kit::start(KitConfig {
        wrong_issuer: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = kit.mcp_url();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "[mcp_servers.relaxed]\nurl = \"{url}\"\n[mcp_servers.relaxed.oauth]\nissuer = \"{}\"\n\n[mcp_servers.strict]\nurl = \"{url}\"\n",
            impostor(&kit)
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    assert!(refused(&mut c, "strict").await.contains("issuer"));
    let out = login(&mut c, "relaxed", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(
        refused(&mut c, "strict")
            .await
            .contains("[mcp_servers.strict.oauth]")
    );
    assert!(stored(home.path(), "strict", &kit).is_none());
    assert_eq!(
        status_of(&mut c, "relaxed").await["escapeHatches"],
        json!(["issuer"])
    );
    assert!(
        status_of(&mut c, "strict")
            .await
            .get("escapeHatches")
            .is_none()
    );

    // A daemon started later reads the discovery cache the first one wrote: still strict.
    drop(c);
    let (_server2, mut c) = harness::start(home.path());
    c.initialize().await;
    assert!(refused(&mut c, "strict").await.contains("issuer"));

    // And the CLI shows which server relies on what.
    let list = super::cli::status_json(home.path()).await;
    let entry = |name: &str| list.iter().find(|s| s["name"] == name).unwrap().clone();
    assert_eq!(entry("relaxed")["escapeHatches"], json!(["issuer"]));
    assert!(entry("strict").get("escapeHatches").is_none());
    let out = super::cli::run(home.path(), &["status"]).await;
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("Escape hatches in use"), "{table}");
    assert!(table.contains("  relaxed: issuer"), "{table}");
    assert!(!table.contains("strict: "), "{table}");
}

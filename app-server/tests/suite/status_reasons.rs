//! Status says why: the `reason` of `mcpServerStatus/list` and `mcpServer/authStatus/changed`
//! for the causes not covered where their flows are tested (a dropped registration, a
//! step-up asked for), kept in the store across a restart and seen by another daemon that
//! shares it.

use std::path::Path;
use std::time::Duration;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Kit, KitConfig, browser_visit};
use serde_json::{Value, json};

use super::harness::{self, MemClient};
use super::login::{daemon_for, login};

const CHANGED: &str = "mcpServer/authStatus/changed";

fn stored(home: &Path, kit: &Kit) -> Option<StoredCredentials> {
    let key = CredentialKey::new("kit", url::Url::parse(&kit.mcp_url()).unwrap().to_string());
    FileStore::open(&Home::at(home))
        .unwrap()
        .load(&key)
        .unwrap()
}

fn edit_stored(home: &Path, kit: &Kit, edit: impl FnOnce(&mut StoredCredentials)) {
    let mut creds = stored(home, kit).expect("stored credentials");
    edit(&mut creds);
    FileStore::open(&Home::at(home))
        .unwrap()
        .save(&creds)
        .unwrap();
}

async fn status_of(c: &mut MemClient, name: &str) -> Value {
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

async fn logged_in(
    kit: &Kit,
    extra: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let (home, server, mut c) = daemon_for(kit, "kit", extra).await;
    let s = status_of(&mut c, "kit").await;
    assert_eq!(
        (&s["authStatus"], &s["reason"]),
        (&json!("notLoggedIn"), &json!("neverLoggedIn")),
        "{s}"
    );
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    (home, server, c)
}

#[tokio::test]
async fn a_dropped_registration_is_the_reason_here_after_a_restart_and_in_another_daemon() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, server, mut c) = logged_in(&kit, "").await;
    // A second daemon shares the store.
    let (other_server, mut other) = harness::start(home.path());
    other.initialize().await;
    assert_eq!(status_of(&mut other, "kit").await["authStatus"], "loggedIn");

    // The authorization server forgot the client: the refresh gets `invalid_client`.
    edit_stored(home.path(), &kit, |c| {
        c.client.client_id = "dropped-client".into();
        c.expires_at = Some(1);
    });
    let e = c.err("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(e["data"]["kind"], "reauthenticationRequired", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("invalid_client"),
        "{e}"
    );
    let flagged = json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "registrationDropped"});
    assert_eq!(c.notification(CHANGED).await, flagged);
    let stored_now = stored(home.path(), &kit).unwrap();
    assert!(stored_now.reauthentication_required);
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["reason"], "registrationDropped", "{s}");
    // A later token request says why, in words.
    let e = c.err("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("no longer knows the registered client"),
        "{e}"
    );

    // The other daemon announces it with its reason, and lists it.
    let seen = tokio::time::timeout(Duration::from_secs(30), other.notification(CHANGED))
        .await
        .expect("the other daemon announces the change");
    assert_eq!(seen, flagged);
    assert_eq!(
        status_of(&mut other, "kit").await["reason"],
        "registrationDropped"
    );
    other_server.shutdown().await;
    server.shutdown().await;

    // After a restart the cause is still known.
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    let s = status_of(&mut c, "kit").await;
    assert_eq!(
        (&s["authStatus"], &s["reason"]),
        (
            &json!("reauthenticationRequired"),
            &json!("registrationDropped")
        ),
        "{s}"
    );
    // A login registers anew and clears it.
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "loggedIn");
    assert!(s.get("reason").is_none(), "{s}");
    assert!(stored(home.path(), &kit).unwrap().login_reason.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn a_step_up_asked_for_shows_until_the_wider_login_lands() {
    let kit = Kit::start(KitConfig {
        required_scope: Some("mcp:write".into()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit, "scopes = [\"mcp:read\"]").await;
    let before = stored(home.path(), &kit).unwrap();
    let response = reqwest::Client::new()
        .get(kit.mcp_url())
        .bearer_auth(&before.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let header = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();

    let r = c
        .ok(
            "mcpServer/oauth/challenge",
            json!({"name": "kit", "status": 403, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "login", "{r}");
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "loggedIn", "reason": "moreScopesNeeded"})
    );
    // The tokens still serve for what they cover, and a refresh keeps the cause.
    let s = status_of(&mut c, "kit").await;
    assert_eq!(
        (&s["authStatus"], &s["reason"]),
        (&json!("loggedIn"), &json!("moreScopesNeeded")),
        "{s}"
    );
    let t = c
        .ok(
            "mcpServer/oauth/token",
            json!({"name": "kit", "minValiditySecs": 4_000_000}),
        )
        .await;
    assert_ne!(t["accessToken"], before.access_token.as_str());
    assert_eq!(status_of(&mut c, "kit").await["reason"], "moreScopesNeeded");

    browser_visit(r["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    let s = status_of(&mut c, "kit").await;
    assert!(s.get("reason").is_none(), "{s}");
}

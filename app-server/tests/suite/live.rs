//! Credential state that stays live without a frontend asking: expiry announced when it
//! happens, tokens in use refreshed in the background, other processes' logins and logouts
//! announced, pending logins and planned refreshes in the status list.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig, browser_visit};
use serde_json::{Value, json};
use tokio::process::Command;

use super::harness::{self, Client, MemClient};
use super::login::{daemon_for, login};

/// Upper bound on waiting for something the daemon does by itself.
const PATIENCE: Duration = Duration::from_secs(30);

const CHANGED: &str = "mcpServer/authStatus/changed";

fn stored(home: &Path, kit: &Kit) -> Option<StoredCredentials> {
    let key = CredentialKey::new("kit", url::Url::parse(&kit.mcp_url()).unwrap().to_string());
    FileStore::open(&Home::at(home))
        .unwrap()
        .load(&key)
        .unwrap()
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

/// A daemon logged in to `kit` as server `kit`, its `loggedIn` announcement consumed.
async fn logged_in(kit: &Kit) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let (home, server, mut c) = daemon_for(kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    (home, server, c)
}

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn token(c: &mut MemClient, min_validity: u32) -> Value {
    let r = c
        .request(
            "mcpServer/oauth/token",
            json!({"name": "kit", "minValiditySecs": min_validity}),
        )
        .await;
    r["result"].clone()
}

#[tokio::test]
async fn a_token_without_refresh_token_is_announced_expired_when_it_runs_out() {
    let kit = Kit::start(KitConfig {
        issue_refresh_tokens: false,
        access_token_ttl_secs: 3,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = logged_in(&kit).await;

    // No request: the daemon's own timer notices.
    let changed = tokio::time::timeout(PATIENCE, c.notification(CHANGED))
        .await
        .expect("expired announced");
    assert_eq!(
        changed,
        json!({"name": "kit", "authStatus": "expired", "reason": "tokenExpired"})
    );
    assert_eq!(status_of(&mut c, "kit").await["authStatus"], "expired");
    assert_eq!(kit.counters().token_refresh, 0);

    // A new login makes it loggedIn again, announced once.
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    status_of(&mut c, "kit").await;
    assert_eq!(c.backlog_count(CHANGED), 0);
}

#[tokio::test]
async fn a_token_in_use_is_refreshed_in_the_background_and_then_served_from_memory() {
    // Tokens live 12 s: refreshed in the background at half their life.
    let kit = Kit::start(KitConfig {
        access_token_ttl_secs: 12,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let first = token(&mut c, 1).await;
    let login_token = stored(home.path(), &kit).unwrap();
    assert_eq!(first["accessToken"], login_token.access_token.as_str());
    assert_eq!(kit.counters().token_refresh, 0);

    eventually("the background refresh", || {
        kit.counters().token_refresh >= 1
    })
    .await;
    let requests_after_refresh = kit.token_requests().len();
    assert_eq!(kit.counters().token_refresh, 1);
    // The refresh presented the login's refresh token (rule 20), and its result is stored.
    let refresh = kit.last_token_request().unwrap();
    assert_eq!(refresh.form["grant_type"], "refresh_token");
    assert_eq!(
        refresh.form.get("refresh_token"),
        login_token.refresh_token.as_ref()
    );
    eventually("the refreshed token stored", || {
        stored(home.path(), &kit).unwrap().access_token != login_token.access_token
    })
    .await;
    let refreshed = stored(home.path(), &kit).unwrap();

    // The next request answers from memory: the refreshed token, no request to the server.
    let next = token(&mut c, 1).await;
    assert_eq!(next["accessToken"], refreshed.access_token.as_str());
    assert_eq!(next["expiresAt"], json!(refreshed.expires_at));
    assert_eq!(kit.token_requests().len(), requests_after_refresh);
    assert_eq!(kit.counters().invalid_grant, 0);

    // Refreshing is no status change.
    status_of(&mut c, "kit").await;
    assert_eq!(c.backlog_count(CHANGED), 0);
}

#[tokio::test]
async fn failed_background_refreshes_are_retried_and_only_a_refusal_is_announced() {
    let kit = Kit::start(KitConfig {
        access_token_ttl_secs: 12,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let before = stored(home.path(), &kit).unwrap();
    token(&mut c, 1).await;

    // The token endpoint fails: the background refresh tries again, quietly.
    kit.faults().set(Endpoint::Token, Fault::Status(503));
    eventually("a retried background refresh", || {
        kit.counters().token_refresh >= 2
    })
    .await;
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "loggedIn");
    assert!(s["nextRefreshAt"].is_i64(), "{s}");
    assert_eq!(c.backlog_count(CHANGED), 0);
    assert_eq!(stored(home.path(), &kit).unwrap(), before);

    // Then the server refuses the grant for good: that is announced.
    kit.invalidate_all_tokens();
    kit.faults().clear();
    let changed = tokio::time::timeout(PATIENCE, c.notification(CHANGED))
        .await
        .expect("refusal announced");
    assert_eq!(
        changed,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "refreshRefused"})
    );
    assert_eq!(kit.counters().invalid_grant, 1);
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "reauthenticationRequired");
    assert!(s.get("nextRefreshAt").is_none(), "{s}");
}

fn spawn_daemon(home: &Path) -> tokio::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn another_process_logging_out_and_in_is_announced_to_every_frontend() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, server, mut first) = logged_in(&kit).await;
    let mut second = harness::connect(&server);
    second.initialize().await;

    let mut child = spawn_daemon(home.path());
    let mut other = Client::new(child.stdin.take().unwrap(), child.stdout.take().unwrap());
    other.initialize().await;
    let r = other
        .request("mcpServer/oauth/logout", json!({"name": "kit"}))
        .await;
    assert_eq!(r["result"]["removed"], true, "{r}");
    for c in [&mut first, &mut second] {
        assert_eq!(
            c.notification(CHANGED).await,
            json!({"name": "kit", "authStatus": "notLoggedIn", "reason": "neverLoggedIn"})
        );
        assert_eq!(status_of(c, "kit").await["authStatus"], "notLoggedIn");
    }

    // The other daemon logs in again.
    let started = other
        .request("mcpServer/oauth/login", json!({"name": "kit"}))
        .await;
    browser_visit(started["result"]["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        other.notification("mcpServer/oauthLogin/completed").await["success"],
        true
    );
    for c in [&mut first, &mut second] {
        assert_eq!(
            c.notification(CHANGED).await,
            json!({"name": "kit", "authStatus": "loggedIn"})
        );
    }
    // Each change once.
    for c in [&mut first, &mut second] {
        status_of(c, "kit").await;
        assert_eq!(c.backlog_count(CHANGED), 0);
    }
    drop(other);
    let _ = tokio::time::timeout(PATIENCE, child.wait()).await;
}

#[tokio::test]
async fn the_status_list_shows_a_pending_login_and_the_planned_refresh() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["loginPending"], false, "{s}");
    assert!(s.get("nextRefreshAt").is_none(), "{s}");

    let started = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(status_of(&mut c, "kit").await["loginPending"], true);
    browser_visit(started["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        c.notification("mcpServer/oauthLogin/completed").await["success"],
        true
    );
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["loginPending"], false, "{s}");
    // Nobody uses the token yet: it is refreshed on demand, nothing is planned.
    assert!(s.get("nextRefreshAt").is_none(), "{s}");

    // Once a frontend uses it, its refresh is planned 90 s before it expires.
    let t = token(&mut c, 60).await;
    let expires_at = t["expiresAt"].as_i64().unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let s = loop {
        let s = status_of(&mut c, "kit").await;
        if s.get("nextRefreshAt").is_some() || tokio::time::Instant::now() > deadline {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(s["nextRefreshAt"], json!(expires_at - 90), "{s}");

    // A cancelled login is no longer pending.
    c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(status_of(&mut c, "kit").await["loginPending"], true);
    c.ok("mcpServer/oauth/cancel", json!({"name": "kit"})).await;
    c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(status_of(&mut c, "kit").await["loginPending"], false);
}

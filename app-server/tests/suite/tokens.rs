//! After login: token vending with single-flight refresh, logout with revocation, and the
//! auth status a frontend sees, against the test kit's servers.

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig, browser_visit};
use serde_json::{Value, json};
use tokio::process::Command;

use super::harness::{self, Client, MemClient, write_config};
use super::login::{daemon_for, file_store_config, free_port, login, server_config};

/// Forces a refresh on every call: the kit's tokens live 3600 s.
pub(super) const FORCE_REFRESH: u32 = 7200;

pub(super) fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

pub(super) fn store(home: &Path) -> FileStore {
    FileStore::open(&Home::at(home)).unwrap()
}

pub(super) fn key_for(name: &str, kit: &Kit) -> CredentialKey {
    CredentialKey::new(name, url::Url::parse(&kit.mcp_url()).unwrap().to_string())
}

pub(super) fn stored(home: &Path, name: &str, kit: &Kit) -> Option<StoredCredentials> {
    store(home).load(&key_for(name, kit)).unwrap()
}

fn edit_stored(home: &Path, name: &str, kit: &Kit, edit: impl FnOnce(&mut StoredCredentials)) {
    let mut creds = stored(home, name, kit).expect("stored credentials");
    edit(&mut creds);
    store(home).save(&creds).unwrap();
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A daemon logged in to `kit` as server `kit`, its `loggedIn` announcement consumed.
pub(super) async fn logged_in(
    kit: &Kit,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let (home, server, mut c) = daemon_for(kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    (home, server, c)
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

pub(super) async fn token<W, R>(
    c: &mut Client<W, R>,
    name: &str,
    min_validity: Option<u32>,
) -> Value
where
    W: tokio::io::AsyncWrite + Unpin,
    R: tokio::io::AsyncRead + Unpin,
{
    let mut params = json!({"name": name});
    if let Some(v) = min_validity {
        params["minValiditySecs"] = json!(v);
    }
    c.request("mcpServer/oauth/token", params).await
}

/// Whether the kit's MCP server takes this bearer token (a GET passes authentication and
/// then gets 405; a refused token gets 401).
pub(super) async fn bearer_accepted(kit: &Kit, access_token: &str) -> bool {
    let status = reqwest::Client::new()
        .get(kit.mcp_url())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status();
    status != reqwest::StatusCode::UNAUTHORIZED
}

/// The `refresh_token` of every refresh request the kit received, in order.
pub(super) fn refresh_tokens_presented(kit: &Kit) -> Vec<String> {
    kit.token_requests()
        .into_iter()
        .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .map(|r| r.form.get("refresh_token").cloned().unwrap_or_default())
        .collect()
}

/// Sends `count` token requests at once and returns the answers in request order.
async fn concurrent_tokens(c: &mut MemClient, count: i64, params: Value) -> Vec<Value> {
    for id in 0..count {
        c.send(&json!({"jsonrpc": "2.0", "id": 1000 + id, "method": "mcpServer/oauth/token", "params": params}))
            .await;
    }
    let mut answers = Vec::new();
    for id in 0..count {
        answers.push(c.response(1000 + id).await);
    }
    answers
}

#[tokio::test]
async fn concurrent_token_requests_cause_exactly_one_refresh() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let before = stored(home.path(), "kit", &kit).unwrap();

    // Without a need to refresh, the stored token is handed out as it is.
    let r = token(&mut c, "kit", None).await;
    assert_eq!(
        r["result"]["accessToken"],
        before.access_token.as_str(),
        "{r}"
    );
    assert_eq!(r["result"]["tokenType"], "Bearer");
    assert_eq!(r["result"]["expiresAt"], json!(before.expires_at));
    assert_eq!(kit.counters().token_refresh, 0);

    // Eight callers that all need a refresh share one, also while it is slow.
    kit.faults()
        .set(Endpoint::Token, Fault::Slow(Duration::from_millis(400)));
    let answers = concurrent_tokens(
        &mut c,
        8,
        json!({"name": "kit", "minValiditySecs": FORCE_REFRESH}),
    )
    .await;
    let tokens: HashSet<&str> = answers
        .iter()
        .map(|a| a["result"]["accessToken"].as_str().expect("token answer"))
        .collect();
    assert_eq!(tokens.len(), 1, "{answers:?}");
    assert_eq!(kit.counters().token_refresh, 1);
    let refreshed = *tokens.iter().next().unwrap();
    assert_ne!(refreshed, before.access_token);
    assert!(bearer_accepted(&kit, refreshed).await);

    // Rule 20: `resource` sent, the client's id, the stored refresh token; the rotated one
    // was persisted before the answer went out.
    let t = kit.last_token_request().unwrap();
    assert_eq!(t.form["grant_type"], "refresh_token");
    assert_eq!(t.form["resource"], kit.mcp_url());
    assert_eq!(t.form["client_id"], before.client.client_id);
    assert_eq!(t.form.get("refresh_token"), before.refresh_token.as_ref());
    let after = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(after.access_token, refreshed);
    assert_ne!(after.refresh_token, before.refresh_token);
    assert!(after.refresh_token.is_some());

    // A token close to expiry: callers arriving after the refresh find the fresh token.
    kit.faults().clear();
    edit_stored(home.path(), "kit", &kit, |c| {
        c.expires_at = Some(now() + 10)
    });
    let answers = concurrent_tokens(&mut c, 8, json!({"name": "kit"})).await;
    let tokens: HashSet<&str> = answers
        .iter()
        .map(|a| a["result"]["accessToken"].as_str().expect("token answer"))
        .collect();
    assert_eq!(tokens.len(), 1, "{answers:?}");
    assert_eq!(kit.counters().token_refresh, 2);
    assert!(!tokens.contains(refreshed));
    assert!(answers[0]["result"]["expiresAt"].as_i64().unwrap() > now() + 3000);
    assert_eq!(kit.counters().invalid_grant, 0);

    // The status list shows what is stored.
    let after = stored(home.path(), "kit", &kit).unwrap();
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "loggedIn");
    assert_eq!(s["expiresAt"], json!(after.expires_at));
    assert_eq!(s["scopes"], json!(after.scopes));
    assert_eq!(s["registration"], "dcr");
    assert_eq!(s["issuer"], kit.issuer());
    // Refreshing is no status change.
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);
}

#[tokio::test]
async fn refresh_without_a_new_refresh_token_keeps_the_old_one() {
    let kit = Kit::start(KitConfig {
        rotate_refresh_tokens: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let rt = stored(home.path(), "kit", &kit).unwrap().refresh_token;
    let mut seen = HashSet::new();
    for _ in 0..2 {
        let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
        let at = r["result"]["accessToken"].as_str().expect("token answer");
        assert!(seen.insert(at.to_string()));
        assert!(bearer_accepted(&kit, at).await);
        assert_eq!(stored(home.path(), "kit", &kit).unwrap().refresh_token, rt);
    }
    assert_eq!(
        refresh_tokens_presented(&kit),
        vec![rt.clone().unwrap(), rt.unwrap()]
    );
}

#[tokio::test]
async fn invalid_grant_requires_a_new_login_and_says_so() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let rt = stored(home.path(), "kit", &kit)
        .unwrap()
        .refresh_token
        .unwrap();
    kit.invalidate_all_tokens();

    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    let e = &r["error"];
    assert_eq!(kind(e), "reauthenticationRequired", "{r}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("invalid_grant"), "{message}");
    assert!(!message.contains(&rt));
    assert_eq!(kit.counters().invalid_grant, 1);
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "refreshRefused"})
    );
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "reauthenticationRequired");
    assert_eq!(s["issuer"], kit.issuer());

    // Later calls answer the same without asking the server again, whatever the validity.
    let r = token(&mut c, "kit", None).await;
    assert_eq!(kind(&r["error"]), "reauthenticationRequired", "{r}");
    assert_eq!(kit.counters().token_refresh, 1);

    // A new login clears it, and says so.
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    assert_eq!(status_of(&mut c, "kit").await["authStatus"], "loggedIn");
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(
        bearer_accepted(&kit, r["result"]["accessToken"].as_str().expect("token")).await,
        "{r}"
    );
    assert_eq!(kit.counters().invalid_grant, 1);
}

#[tokio::test]
async fn transient_refresh_failures_keep_the_credentials() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let before = stored(home.path(), "kit", &kit).unwrap();

    for fault in [Fault::Status500, Fault::Status(503), Fault::Status(429)] {
        kit.faults().set(Endpoint::Token, fault);
        let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
        assert_eq!(
            kind(&r["error"]),
            "refreshFailedRetryable",
            "{fault:?}: {r}"
        );
        assert_eq!(stored(home.path(), "kit", &kit).unwrap(), before);
    }
    kit.faults().clear();

    // The token endpoint cannot be reached at all.
    let closed = format!("http://127.0.0.1:{}/token", free_port());
    edit_stored(home.path(), "kit", &kit, |c| {
        c.token_endpoint = closed.clone()
    });
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert_eq!(kind(&r["error"]), "refreshFailedRetryable", "{r}");
    assert!(
        r["error"]["message"].as_str().unwrap().contains(&closed),
        "{r}"
    );
    edit_stored(home.path(), "kit", &kit, |c| {
        c.token_endpoint = before.token_endpoint.clone()
    });
    assert_eq!(stored(home.path(), "kit", &kit).unwrap(), before);

    assert_eq!(status_of(&mut c, "kit").await["authStatus"], "loggedIn");
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);

    // Once the server is back, the kept refresh token works.
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(
        kit.last_token_request().unwrap().form.get("refresh_token"),
        before.refresh_token.as_ref()
    );
    assert_eq!(kit.counters().invalid_grant, 0);
}

#[tokio::test]
async fn expired_token_without_a_refresh_token_needs_a_login() {
    let kit = Kit::start(KitConfig {
        issue_refresh_tokens: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    // Still valid: handed out although it cannot be refreshed.
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    edit_stored(home.path(), "kit", &kit, |c| c.expires_at = Some(now() - 1));
    let r = token(&mut c, "kit", None).await;
    assert_eq!(kind(&r["error"]), "reauthenticationRequired", "{r}");
    assert_eq!(status_of(&mut c, "kit").await["authStatus"], "expired");
    assert_eq!(kit.counters().token_refresh, 0);
}

#[tokio::test]
async fn logout_with_revoke_revokes_refresh_then_access_token_and_deletes() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let creds = stored(home.path(), "kit", &kit).unwrap();
    let rt = creds.refresh_token.clone().unwrap();
    assert!(bearer_accepted(&kit, &creds.access_token).await);

    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r, json!({"removed": true, "revoked": true}));
    assert_eq!(
        kit.revoked_tokens(),
        vec![rt.clone(), creds.access_token.clone()]
    );
    assert!(!bearer_accepted(&kit, &creds.access_token).await);
    // The refresh token is dead at the server too.
    let refused = reqwest::Client::new()
        .post(&creds.token_endpoint)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", creds.client.client_id.as_str()),
            ("resource", creds.resource.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("invalid_grant"));

    assert!(stored(home.path(), "kit", &kit).is_none());
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "notLoggedIn", "reason": "neverLoggedIn"})
    );
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "notLoggedIn");
    assert!(s.get("issuer").is_none_or(Value::is_null), "{s}");
    let r = token(&mut c, "kit", None).await;
    assert_eq!(kind(&r["error"]), "notLoggedIn", "{r}");

    // Nothing left: nothing removed, nothing revoked, and it says why.
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r["removed"], false);
    assert_eq!(r["revoked"], false);
    assert!(r["revocationError"].is_string(), "{r}");
    assert_eq!(kit.counters().revoke, 2);
    c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);
}

#[tokio::test]
async fn failed_or_impossible_revocation_still_deletes_and_says_so() {
    // The revocation endpoint fails.
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    kit.faults().set(Endpoint::Revoke, Fault::Status500);
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r["removed"], true, "{r}");
    assert_eq!(r["revoked"], false, "{r}");
    let why = r["revocationError"].as_str().unwrap();
    assert!(
        why.contains("500") && why.contains("deleted anyway"),
        "{why}"
    );
    assert!(kit.revoked_tokens().is_empty());
    assert!(stored(home.path(), "kit", &kit).is_none());
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "notLoggedIn", "reason": "neverLoggedIn"})
    );

    // The server has no revocation endpoint.
    let kit = Kit::start(KitConfig {
        revocation: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r["removed"], true, "{r}");
    assert_eq!(r["revoked"], false, "{r}");
    assert!(
        r["revocationError"]
            .as_str()
            .unwrap()
            .contains("no revocation endpoint"),
        "{r}"
    );
    assert_eq!(kit.counters().revoke, 0);
    assert!(stored(home.path(), "kit", &kit).is_none());

    // Without `revoke`, nothing is sent to the server.
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let r = c.ok("mcpServer/oauth/logout", json!({"name": "kit"})).await;
    assert_eq!(r, json!({"removed": true, "revoked": false}));
    assert_eq!(kit.counters().revoke, 0);
    assert!(stored(home.path(), "kit", &kit).is_none());
}

/// The server's URL stays; its protected resource metadata now names another authorization
/// server. Simulated by giving server `kit` (at kit `b`) the credentials issued by kit `a`.
/// The old tokens go when the login to `b` succeeds, not when it starts: a login that is
/// cancelled (or never finished, or started by a forged request) leaves the user logged in.
#[tokio::test]
async fn tokens_of_a_previous_authorization_server_are_replaced_when_the_new_login_succeeds() {
    let a = Kit::start(KitConfig::default()).await.unwrap();
    let b = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "{}{}",
            server_config("old", &a, ""),
            server_config("kit", &b, "")
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let out = login(&mut c, "old", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await["name"],
        "old"
    );
    let mut moved = stored(home.path(), "old", &a).unwrap();
    moved.server_name = "kit".into();
    moved.server_url = key_for("kit", &b).server_url;
    store(home.path()).save(&moved).unwrap();
    // Written behind the daemon's back, as another process would: announced all the same.
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    assert_eq!(status_of(&mut c, "kit").await["issuer"], a.issuer());

    // Until a login to `b` succeeds, tokens only go to the token endpoint they came from.
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(a.counters().token_refresh, 1);
    assert_eq!(b.counters().token_refresh, 0);
    let a_stored = stored(home.path(), "kit", &b).unwrap();
    let a_tokens: Vec<String> = [
        Some(moved.access_token.clone()),
        moved.refresh_token.clone(),
        Some(a_stored.access_token.clone()),
        a_stored.refresh_token.clone(),
    ]
    .into_iter()
    .flatten()
    .collect();

    // A login that discovers `b` and is cancelled changes nothing.
    c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(stored(home.path(), "kit", &b), Some(a_stored.clone()));
    let r = token(&mut c, "kit", None).await;
    assert_eq!(
        r["result"]["accessToken"],
        a_stored.access_token.as_str(),
        "{r}"
    );
    assert_eq!(
        c.ok("mcpServer/oauth/cancel", json!({"name": "kit"})).await["cancelled"],
        true
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(stored(home.path(), "kit", &b), Some(a_stored.clone()));
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["issuer"], a.issuer());
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(a.counters().token_refresh, 2);
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);
    let a_stored = stored(home.path(), "kit", &b).unwrap();
    // What `kit` holds now (`old` keeps its own tokens, also issued by `a`).
    let kit_a_tokens: Vec<String> = [a_stored.access_token.clone()]
        .into_iter()
        .chain(a_stored.refresh_token.clone())
        .collect();
    let a_tokens: Vec<String> = a_tokens.into_iter().chain(kit_a_tokens.clone()).collect();

    // The login to `b` that succeeds replaces them.
    let started = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(stored(home.path(), "kit", &b), Some(a_stored));
    browser_visit(started["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    // Logged in before and after: the status did not change, so it is not announced again
    // (the completed notification says the login happened).
    let now = stored(home.path(), "kit", &b).unwrap();
    assert_eq!(now.issuer, b.issuer());
    assert!(!a_tokens.contains(&now.access_token));
    let text = std::fs::read_to_string(home.path().join("credentials.json")).unwrap();
    for old in &kit_a_tokens {
        assert!(
            !text.contains(old.as_str()),
            "a token of `a` is still stored"
        );
    }
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "loggedIn");
    assert_eq!(s["issuer"], b.issuer());

    // Neither server ever saw the old tokens again: `b` not at all, `a` not revoked.
    for request in b.token_requests() {
        for value in request.form.values() {
            assert!(!a_tokens.contains(value), "an old token went to b");
        }
    }
    assert!(b.revoked_tokens().is_empty());
    assert_eq!(a.counters().revoke, 0);
    assert_eq!(a.counters().token_refresh, 2);
    // `old` keeps its own login.
    assert_eq!(status_of(&mut c, "old").await["authStatus"], "loggedIn");
}

/// `url` changed in config.toml to a server of another authorization server: credentials
/// are keyed by name and URL, so the old tokens are not offered to the new URL at all.
/// Token requests between writes are answered from the daemon's copy in memory without a
/// hand-off to a blocking thread; a write of another process is seen by the very next one.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn tokens_come_from_memory_and_another_processs_write_is_seen_by_the_next_request() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, server, mut c) = logged_in(&kit).await;
    let first = token(&mut c, "kit", None).await;
    let issued = first["result"]["accessToken"].as_str().unwrap().to_owned();
    // Let the refresh scheduler take the server into its plan (one look at the store).
    tokio::time::sleep(Duration::from_millis(300)).await;

    let before = server.store_counts();
    let answers = concurrent_tokens(&mut c, 50, json!({"name": "kit"})).await;
    for a in &answers {
        assert_eq!(a["result"]["accessToken"], issued.as_str(), "{a}");
    }
    let after = server.store_counts();
    assert_eq!(
        after.in_memory - before.in_memory,
        50,
        "{before:?} -> {after:?}"
    );
    assert_eq!(after.hand_offs, before.hand_offs, "{before:?} -> {after:?}");

    for round in 0..5 {
        let rotated = format!("rotated-by-another-process-{round}");
        edit_stored(home.path(), "kit", &kit, |creds| {
            creds.access_token = rotated.clone();
        });
        let next = token(&mut c, "kit", None).await;
        assert_eq!(
            next["result"]["accessToken"],
            rotated.as_str(),
            "round {round}"
        );
        let again = token(&mut c, "kit", None).await;
        assert_eq!(
            again["result"]["accessToken"],
            rotated.as_str(),
            "round {round}"
        );
    }
}

#[tokio::test]
async fn changed_server_url_needs_a_login_and_never_sees_old_tokens() {
    let a = Kit::start(KitConfig::default()).await.unwrap();
    let b = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&a).await;
    let old = stored(home.path(), "kit", &a).unwrap();

    write_config(
        home.path(),
        &file_store_config(&server_config("kit", &b, "")),
    );
    c.ok("config/mcpServer/reload", json!({})).await;
    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "notLoggedIn", "{s}");
    assert_eq!(s["url"], b.mcp_url());
    let r = token(&mut c, "kit", None).await;
    assert_eq!(kind(&r["error"]), "notLoggedIn", "{r}");

    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(
        bearer_accepted(&b, r["result"]["accessToken"].as_str().expect("token")).await,
        "{r}"
    );
    let old_tokens = [old.access_token.clone(), old.refresh_token.clone().unwrap()];
    for request in b.token_requests() {
        assert!(request.form.values().all(|v| !old_tokens.contains(v)));
    }
    assert_eq!(a.counters().token_refresh, 0);
    assert_eq!(status_of(&mut c, "kit").await["issuer"], b.issuer());
}

pub(super) fn spawn_daemon(home: &Path) -> tokio::process::Child {
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

/// Two daemon processes on one home, each refreshing in a loop: refresh tokens are rotated
/// on every use and a reused one revokes the whole grant, so one refresh too many (or one
/// lost rotation) shows up as `invalid_grant`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemon_processes_on_one_home_never_reuse_a_refresh_token() {
    const ROUNDS: usize = 150;
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;

    let mut children = [spawn_daemon(home.path()), spawn_daemon(home.path())];
    let mut clients: Vec<_> = children
        .iter_mut()
        .map(|child| Client::new(child.stdin.take().unwrap(), child.stdout.take().unwrap()))
        .collect();
    for client in &mut clients {
        client.initialize().await;
    }
    let hammer = |mut client: Client<_, _>| async move {
        let mut answers = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            answers.push(token(&mut client, "kit", Some(FORCE_REFRESH)).await);
        }
        (client, answers)
    };
    let second = clients.pop().unwrap();
    let first = clients.pop().unwrap();
    let ((first, a), (second, b)) = tokio::join!(hammer(first), hammer(second));

    let mut successes = 0;
    for answer in a.iter().chain(&b) {
        assert!(answer["result"]["accessToken"].is_string(), "{answer}");
        successes += 1;
    }
    assert_eq!(successes, 2 * ROUNDS);
    assert_eq!(kit.counters().invalid_grant, 0);
    // Every refresh presented a refresh token no refresh had used before.
    let presented = refresh_tokens_presented(&kit);
    let distinct: HashSet<&String> = presented.iter().collect();
    assert_eq!(distinct.len(), presented.len());
    assert_eq!(presented.len() as u64, kit.counters().token_refresh);
    // A caller gets a refreshed token, or one the other process refreshed meanwhile.
    assert!(presented.len() >= ROUNDS && presented.len() <= 2 * ROUNDS);
    for last in [a.last().unwrap(), b.last().unwrap()] {
        let at = last["result"]["accessToken"].as_str().unwrap();
        assert!(bearer_accepted(&kit, at).await);
    }

    // No token was lost: the stored refresh token is the current one.
    first.close().await;
    second.close().await;
    for child in &mut children {
        let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
    }
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(kit.counters().invalid_grant, 0);
}

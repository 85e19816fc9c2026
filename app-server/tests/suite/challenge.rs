//! `mcpServer/oauth/challenge`: what a frontend gets when the MCP server refuses a request,
//! against the test kit's real 401 `invalid_token` and 403 `insufficient_scope` answers.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig, PrmMode, browser_visit};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::{daemon_for, file_store_config, login, server_config};

const CHALLENGE: &str = "mcpServer/oauth/challenge";

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

fn stored(home: &Path, name: &str, kit: &Kit) -> Option<StoredCredentials> {
    let key = CredentialKey::new(name, url::Url::parse(&kit.mcp_url()).unwrap().to_string());
    FileStore::open(&Home::at(home))
        .unwrap()
        .load(&key)
        .unwrap()
}

fn edit_stored(home: &Path, name: &str, kit: &Kit, edit: impl FnOnce(&mut StoredCredentials)) {
    let mut creds = stored(home, name, kit).expect("stored credentials");
    edit(&mut creds);
    FileStore::open(&Home::at(home))
        .unwrap()
        .save(&creds)
        .unwrap();
}

/// What the kit's MCP server answers a request with this token: the status and the raw
/// `WWW-Authenticate` header, as a frontend would see them (a GET that passes the token
/// and scope checks gets 405).
async fn mcp_answer(kit: &Kit, access_token: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .get(kit.mcp_url())
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let header = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), header)
}

async fn challenge(c: &mut MemClient, name: &str, status: u16, header: &str) -> Value {
    c.request(
        CHALLENGE,
        json!({"name": name, "status": status, "wwwAuthenticate": header}),
    )
    .await
}

async fn logged_in(
    kit: &Kit,
    extra: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let (home, server, mut c) = daemon_for(kit, "kit", extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    (home, server, c)
}

async fn auth_status(c: &mut MemClient, name: &str) -> Value {
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["authStatus"]
        .clone()
}

#[tokio::test]
async fn a_refused_token_is_refreshed_now_even_while_it_looks_valid() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    assert!(before.expires_at.unwrap() > 3000 + now());
    let discovery_requests = kit.counters().prm_path + kit.counters().as_metadata_oauth;

    // The server drops the token long before its expiry: a 401 invalid_token.
    kit.expire_access_tokens();
    let (status, header) = mcp_answer(&kit, &before.access_token).await;
    assert_eq!(status, 401);
    assert!(header.contains("invalid_token"), "{header}");
    // mcpServer/oauth/token sees nothing wrong: the stored expiry is an hour away.
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(r["accessToken"], before.access_token.as_str());
    assert_eq!(kit.counters().token_refresh, 0);

    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "token", "{r}");
    let fresh = r["accessToken"].as_str().unwrap().to_string();
    assert_ne!(fresh, before.access_token);
    assert_eq!(r["tokenType"], "Bearer");
    assert!(r["expiresAt"].as_i64().unwrap() > now() + 3000);
    assert_eq!(kit.counters().token_refresh, 1);
    assert_eq!(
        mcp_answer(&kit, &fresh).await.0,
        405,
        "the new token is taken"
    );
    // The rotated refresh token was stored with the new access token.
    let after = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(after.access_token, fresh);
    assert_ne!(after.refresh_token, before.refresh_token);
    // The challenge named the metadata the login's discovery used: no discovery again.
    assert_eq!(
        kit.counters().prm_path + kit.counters().as_metadata_oauth,
        discovery_requests
    );

    // A token without any expiry is refreshed too.
    edit_stored(home.path(), "kit", &kit, |c| c.expires_at = None);
    kit.expire_access_tokens();
    let (status, header) = mcp_answer(&kit, &fresh).await;
    assert_eq!(status, 401);
    let r = challenge(&mut c, "kit", status, &header).await;
    assert_eq!(r["result"]["action"], "token", "{r}");
    assert_eq!(kit.counters().token_refresh, 2);
    let newest = r["result"]["accessToken"].as_str().unwrap().to_string();
    assert_eq!(mcp_answer(&kit, &newest).await.0, 405);

    // Refreshing is no change of status.
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);
    assert_eq!(auth_status(&mut c, "kit").await, "loggedIn");
}

#[tokio::test]
async fn concurrent_challenges_share_one_refresh() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    kit.expire_access_tokens();
    let (status, header) = mcp_answer(&kit, &before.access_token).await;
    kit.faults()
        .set(Endpoint::Token, Fault::Slow(Duration::from_millis(400)));
    let params = json!({"name": "kit", "status": status, "wwwAuthenticate": header});
    for id in 0..6 {
        c.send(&json!({"jsonrpc": "2.0", "id": 500 + id, "method": CHALLENGE, "params": params}))
            .await;
    }
    let mut tokens = HashSet::new();
    for id in 0..6 {
        let r = c.response(500 + id).await;
        assert_eq!(r["result"]["action"], "token", "{r}");
        tokens.insert(r["result"]["accessToken"].as_str().unwrap().to_string());
    }
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert_eq!(kit.counters().token_refresh, 1);
    assert_eq!(kit.counters().invalid_grant, 0);
}

#[tokio::test]
async fn a_refused_token_without_refresh_token_needs_a_login_and_is_flagged() {
    let kit = Kit::start(KitConfig {
        issue_refresh_tokens: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    assert!(before.refresh_token.is_none());
    kit.expire_access_tokens();
    let (status, header) = mcp_answer(&kit, &before.access_token).await;

    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "reauthenticationRequired", "{r}");
    assert!(
        r["reason"].as_str().unwrap().contains("no refresh token"),
        "{r}"
    );
    assert!(!r.to_string().contains(&before.access_token));
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "tokenRevoked"})
    );
    assert!(
        stored(home.path(), "kit", &kit)
            .unwrap()
            .reauthentication_required
    );
    assert_eq!(auth_status(&mut c, "kit").await, "reauthenticationRequired");
    // The refused token is not handed out any more.
    let e = c.err("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(kind(&e), "reauthenticationRequired", "{e}");
    assert_eq!(kit.counters().token_refresh, 0);

    // Asking again says the same, without announcing it again.
    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "reauthenticationRequired", "{r}");
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);

    // A login clears it.
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(auth_status(&mut c, "kit").await, "loggedIn");
}

#[tokio::test]
async fn a_refused_refresh_needs_a_login() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    // Server-side logout: the access token and the refresh token are refused.
    kit.invalidate_all_tokens();
    let (status, header) = mcp_answer(&kit, &before.access_token).await;
    assert_eq!(status, 401);

    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "reauthenticationRequired", "{r}");
    assert!(r["reason"].as_str().unwrap().contains("refused"), "{r}");
    assert_eq!(kit.counters().token_refresh, 1);
    assert_eq!(kit.counters().invalid_grant, 1);
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "tokenRevoked"})
    );
    assert!(
        stored(home.path(), "kit", &kit)
            .unwrap()
            .reauthentication_required
    );
}

#[tokio::test]
async fn a_challenge_from_a_not_logged_in_server_says_so() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let (status, header) = mcp_answer(&kit, "no-such-token").await;
    assert_eq!(status, 401);
    let e = c
        .err(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(kind(&e), "notLoggedIn", "{e}");
}

#[tokio::test]
async fn insufficient_scope_starts_a_step_up_login_for_the_union() {
    let kit = Kit::start(KitConfig {
        required_scope: Some("mcp:write".into()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit, "scopes = [\"mcp:read\"]").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(before.scopes, ["mcp:read", "offline_access"]);
    let (status, header) = mcp_answer(&kit, &before.access_token).await;
    assert_eq!(status, 403);
    assert!(header.contains("insufficient_scope"), "{header}");

    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "login", "{r}");
    assert_eq!(
        r["scopes"],
        json!(["mcp:read", "offline_access", "mcp:write"])
    );
    assert!(
        r["redirectUri"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let url = url::Url::parse(r["authorizationUrl"].as_str().unwrap()).unwrap();
    let scope = url
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert_eq!(scope, "mcp:read offline_access mcp:write");
    // No tokens are stored before the browser comes back; only the cause is recorded.
    let marked = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(
        marked.login_reason,
        Some(mcp_app_server_protocol::McpAuthStatusReason::MoreScopesNeeded)
    );
    assert_eq!(
        StoredCredentials {
            login_reason: None,
            ..marked
        },
        before
    );

    browser_visit(url.as_str()).await.unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    let t = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(
        t["scopes"],
        json!(["mcp:read", "offline_access", "mcp:write"])
    );
    assert_eq!(
        mcp_answer(&kit, t["accessToken"].as_str().unwrap()).await.0,
        405
    );
}

#[tokio::test]
async fn step_ups_stop_after_three_for_one_scope_set() {
    // The server wants a scope its authorization server never grants.
    let kit = Kit::start(KitConfig {
        required_scope: Some("mcp:admin".into()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    let (status, header) = mcp_answer(&kit, &before.access_token).await;
    assert_eq!(status, 403);

    let mut urls = HashSet::new();
    for attempt in 1..=3 {
        let r = challenge(&mut c, "kit", status, &header).await;
        assert_eq!(r["result"]["action"], "login", "attempt {attempt}: {r}");
        urls.insert(
            r["result"]["authorizationUrl"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(urls.len(), 3, "each step-up is a new login");
    let e = c
        .err(
            CHALLENGE,
            json!({"name": "kit", "status": status, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(kind(&e), "stepUpLimitReached", "{e}");
    assert_eq!(e["code"], -32033);
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("mcp:admin") && message.contains('3'),
        "{message}"
    );
    // The refusal started nothing: the third login is still the pending one.
    assert_eq!(
        c.ok("mcpServer/oauth/cancel", json!({"name": "kit"})).await["cancelled"],
        true
    );
    let after = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(after.access_token, before.access_token);
    assert_eq!(after.refresh_token, before.refresh_token);

    // A login the user asks for starts the count over.
    let started = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert!(started["authorizationUrl"].is_string());
    let r = challenge(&mut c, "kit", status, &header).await;
    assert_eq!(r["result"]["action"], "login", "{r}");
}

#[tokio::test]
async fn another_resource_metadata_runs_discovery_again_without_the_cache() {
    let kit = Kit::start(KitConfig {
        prm: PrmMode::PathOnly,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    kit.expire_access_tokens();
    let counters = kit.counters();

    // The document discovery used: no discovery.
    let same = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}\"",
        kit.prm_url()
    );
    let r = challenge(&mut c, "kit", 401, &same).await;
    assert_eq!(r["result"]["action"], "token", "{r}");
    assert_eq!(kit.counters().prm_path, counters.prm_path);

    // Another document: fetched, and the authorization server's metadata with it although
    // the login cached it minutes ago.
    kit.expire_access_tokens();
    let other = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}?moved=1\"",
        kit.prm_url()
    );
    let r = challenge(&mut c, "kit", 401, &other).await;
    assert_eq!(r["result"]["action"], "token", "{r}");
    let now_counted = kit.counters();
    assert_eq!(now_counted.prm_path, counters.prm_path + 1);
    assert!(
        now_counted.as_metadata_oauth + now_counted.as_metadata_openid
            > counters.as_metadata_oauth + counters.as_metadata_openid
    );
    assert_eq!(now_counted.token_refresh, 2);
    // Remembered: the same document again needs no discovery.
    kit.expire_access_tokens();
    let r = challenge(&mut c, "kit", 401, &other).await;
    assert_eq!(r["result"]["action"], "token", "{r}");
    assert_eq!(kit.counters().prm_path, now_counted.prm_path);
    assert_ne!(
        stored(home.path(), "kit", &kit).unwrap().access_token,
        before.access_token
    );
}

#[tokio::test]
async fn a_server_that_moved_to_another_authorization_server_needs_a_login() {
    let a = Kit::start(KitConfig::default()).await.unwrap();
    // `b` publishes metadata for `a`'s MCP URL that names `b` as its authorization server.
    let b = Kit::start(KitConfig {
        prm_resource_override: Some(a.mcp_url()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&a, "").await;
    let before = stored(home.path(), "kit", &a).unwrap();
    let header = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}\"",
        b.prm_url()
    );
    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": 401, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "reauthenticationRequired", "{r}");
    assert!(r["reason"].as_str().unwrap().contains(&b.issuer()), "{r}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "authorizationServerChanged"})
    );
    // No refresh anywhere: `a`'s tokens cannot serve a server that trusts `b`, and `b`
    // never sees them.
    assert_eq!(a.counters().token_refresh, 0);
    assert!(b.token_requests().is_empty());
    let after = stored(home.path(), "kit", &a).unwrap();
    assert!(after.reauthentication_required);
    assert_eq!(after.access_token, before.access_token);
}

#[tokio::test]
async fn bad_challenges_are_refused_and_change_nothing() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "{}[mcp_servers.local]\ncommand = \"true\"\n",
            server_config("kit", &kit, "")
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    c.notification("mcpServer/authStatus/changed").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    let counters = kit.counters();
    let valid = "Bearer error=\"invalid_token\"";

    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "kit", "status": 200, "wwwAuthenticate": valid}),
            "`status`",
        ),
        (
            json!({"name": "kit", "status": 500, "wwwAuthenticate": valid}),
            "`status`",
        ),
        (
            json!({"name": "kit", "status": 401, "wwwAuthenticate": ""}),
            "`wwwAuthenticate`",
        ),
        (
            json!({"name": "kit", "status": 401, "wwwAuthenticate": "Basic realm=\"x\""}),
            "`wwwAuthenticate`",
        ),
        (
            json!({"name": "kit", "status": 403, "wwwAuthenticate": valid}),
            "`wwwAuthenticate`",
        ),
        (
            json!({"name": "kit", "status": 401,
                   "wwwAuthenticate": "Bearer resource_metadata=\"http://[::1\""}),
            "`wwwAuthenticate`",
        ),
        (json!({"name": "kit", "status": 401}), "wwwAuthenticate"),
        (
            json!({"name": "kit", "status": 70000, "wwwAuthenticate": valid}),
            "status",
        ),
        (
            json!({"name": "kit", "status": 401, "wwwAuthenticate": valid, "x": 1}),
            "x",
        ),
    ];
    for (params, field) in cases {
        let e = c.err(CHALLENGE, params.clone()).await;
        assert_eq!(e["code"], -32602, "{params}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(field),
            "{params}: {e}"
        );
    }
    let e = c
        .err(
            CHALLENGE,
            json!({"name": "nope", "status": 401, "wwwAuthenticate": valid}),
        )
        .await;
    assert_eq!(kind(&e), "serverNotFound", "{e}");
    assert!(e["message"].as_str().unwrap().contains("nope"));
    let e = c
        .err(
            CHALLENGE,
            json!({"name": "local", "status": 401, "wwwAuthenticate": valid}),
        )
        .await;
    assert_eq!(kind(&e), "notOAuthServer", "{e}");

    // Nothing was stored, refreshed, discovered or announced, and the daemon still answers.
    assert_eq!(stored(home.path(), "kit", &kit).unwrap(), before);
    assert_eq!(kit.counters(), counters);
    assert_eq!(c.backlog_count("mcpServer/authStatus/changed"), 0);
    assert_eq!(auth_status(&mut c, "kit").await, "loggedIn");
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_step_up_follows_the_server_to_its_new_authorization_server() {
    let a = Kit::start(KitConfig::default()).await.unwrap();
    let b = Kit::start(KitConfig {
        prm_resource_override: Some(a.mcp_url()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&a, "").await;
    let old = stored(home.path(), "kit", &a).unwrap();
    let header = format!(
        "Bearer error=\"insufficient_scope\", scope=\"mcp:write\", resource_metadata=\"{}\"",
        b.prm_url()
    );
    let r = c
        .ok(
            CHALLENGE,
            json!({"name": "kit", "status": 403, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(r["action"], "login", "{r}");
    let url = r["authorizationUrl"].as_str().unwrap();
    assert!(url.starts_with(&b.issuer()), "{url}");
    // The tokens of `a` stay stored until a login to `b` succeeds (a step-up that is never
    // finished must not log the user out), and were never sent to `b`.
    assert!(stored(home.path(), "kit", &a).is_some());
    // (The kit's `b` protects only its own URL, so the login is not finished here.)
    assert!(b.token_requests().is_empty());
    assert_eq!(a.counters().token_refresh, 0);
    assert_eq!(a.counters().revoke, 0);
    assert!(
        !url.contains(&old.client.client_id),
        "a's client id went to b: {url}"
    );
}

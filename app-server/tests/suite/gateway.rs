//! One login for servers behind one gateway (requirements rules 85-87): servers whose
//! protected resource metadata names the same authorization server share its login, with
//! exact counts of what reached the authorization server.

use std::path::Path;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::{file_store_config, login};

/// Past the kit's access token lifetime (3,600 s): a token request with it renews.
const RENEW: u32 = 4000;

fn stored(home: &Path, name: &str, url: &str) -> Option<StoredCredentials> {
    let key = CredentialKey::new(name, url::Url::parse(url).unwrap().to_string());
    FileStore::open(&Home::at(home))
        .unwrap()
        .load(&key)
        .unwrap()
}

async fn daemon(
    servers: &[(&str, &str, &str)],
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let home = tempfile::tempdir().unwrap();
    let body: String = servers
        .iter()
        .map(|(name, url, extra)| format!("[mcp_servers.{name}]\nurl = \"{url}\"\n{extra}\n"))
        .collect();
    // No registrations made ahead of a login (pre-warm): the counts are the logins' own.
    let body = format!("mcp_oauth_preregister = false\n{body}");
    write_config(home.path(), &file_store_config(&body));
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    (home, server, c)
}

async fn status(c: &mut MemClient, name: &str) -> Value {
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

async fn token(c: &mut MemClient, name: &str, min_validity: Option<u32>) -> String {
    let mut params = json!({"name": name});
    if let Some(v) = min_validity {
        params["minValiditySecs"] = json!(v);
    }
    let r = c.ok("mcpServer/oauth/token", params).await;
    r["accessToken"].as_str().unwrap().to_string()
}

/// A login that must need no browser: the direct answer, then its completion.
async fn direct_login(c: &mut MemClient, name: &str) {
    let r = c.ok("mcpServer/oauth/login", json!({"name": name})).await;
    assert_eq!(r, json!({"flow": "direct", "grant": "sharedLogin"}));
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["name"], name);
    assert_eq!(done["success"], true, "{done}");
}

/// One kit whose protected resource metadata names its origin as the resource (a gateway
/// in front of several MCP servers), and two servers behind it.
async fn gateway() -> (Kit, String, String) {
    let kit = Kit::start(KitConfig {
        prm_resource_pathless: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let a = kit.mcp_url();
    let b = format!("{}?tenant=b", kit.mcp_url());
    (kit, a, b)
}

#[tokio::test]
async fn servers_with_one_issuer_and_one_resource_share_one_login() {
    let (kit, a, b) = gateway().await;
    let (home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, "")]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    direct_login(&mut c, "b").await;

    // One browser round trip, one registration, one code exchange for both.
    let n = kit.counters();
    assert_eq!((n.authorize, n.register, n.token_code), (1, 1, 1), "{n:?}");
    for name in ["a", "b"] {
        assert_eq!(status(&mut c, name).await["authStatus"], "loggedIn");
    }
    assert_eq!(
        token(&mut c, "a", None).await,
        token(&mut c, "b", None).await
    );

    // Kept once: the file holds the tokens a single time, and a link for `b`.
    let a_creds = stored(home.path(), "a", &a).unwrap();
    let file = walk(home.path(), "credentials.json").expect("a credentials file");
    let text = std::fs::read_to_string(file).unwrap();
    assert_eq!(
        text.matches(&a_creds.access_token).count(),
        1,
        "{}",
        text.len()
    );
    assert_eq!(
        text.matches(a_creds.refresh_token.as_deref().unwrap())
            .count(),
        1
    );
    assert!(text.contains("\"links\""));

    // Refreshes are shared: two at once through either name make one refresh, and the
    // rotated refresh token serves both afterwards.
    let first = c
        .send_request(
            "mcpServer/oauth/token",
            json!({"name": "a", "minValiditySecs": RENEW}),
        )
        .await;
    let second = c
        .send_request(
            "mcpServer/oauth/token",
            json!({"name": "b", "minValiditySecs": RENEW}),
        )
        .await;
    let (ra, rb) = (c.response(first).await, c.response(second).await);
    assert_eq!(
        ra["result"]["accessToken"], rb["result"]["accessToken"],
        "{ra} {rb}"
    );
    assert_eq!(kit.counters().token_refresh, 1);
    let renewed = ra["result"]["accessToken"].as_str().unwrap().to_string();
    assert_ne!(renewed, a_creds.access_token);
    assert_eq!(token(&mut c, "b", None).await, renewed);
    token(&mut c, "b", Some(RENEW)).await;
    assert_eq!(
        token(&mut c, "a", None).await,
        token(&mut c, "b", None).await
    );
    let n = kit.counters();
    assert_eq!((n.token_refresh, n.invalid_grant), (2, 0), "{n:?}");

    // The authorization server ends the grant: a refusal through one name flags both, and
    // both are announced.
    kit.invalidate_all_tokens();
    let e = c
        .err(
            "mcpServer/oauth/token",
            json!({"name": "a", "minValiditySecs": RENEW}),
        )
        .await;
    assert_eq!(e["data"]["kind"], "reauthenticationRequired", "{e}");
    let mut announced = std::collections::BTreeSet::new();
    while announced.len() < 2 {
        let changed = c.notification("mcpServer/authStatus/changed").await;
        if changed["authStatus"] == "reauthenticationRequired" {
            announced.insert(changed["name"].as_str().unwrap().to_string());
        }
    }
    for name in ["a", "b"] {
        assert_eq!(
            status(&mut c, name).await["authStatus"],
            "reauthenticationRequired"
        );
    }
}

fn walk(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.is_dir()
            && let Some(found) = walk(&path, name)
        {
            return Some(found);
        }
    }
    None
}

#[tokio::test]
async fn logout_of_one_server_sharing_a_login_keeps_the_other_and_revokes_nothing() {
    let (kit, a, b) = gateway().await;
    let (_home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, "")]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    direct_login(&mut c, "b").await;
    let shared = token(&mut c, "a", None).await;

    // The server sharing the login lets go of it; nothing is revoked.
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "b", "revoke": true}),
        )
        .await;
    assert_eq!(
        (r["removed"].clone(), r["revoked"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        r["revocationError"].as_str().unwrap().contains("`a`"),
        "{r}"
    );
    assert_eq!(kit.counters().revoke, 0);
    assert_eq!(status(&mut c, "b").await["authStatus"], "notLoggedIn");
    assert_eq!(status(&mut c, "a").await["authStatus"], "loggedIn");
    assert_eq!(token(&mut c, "a", None).await, shared);

    // The server that logged in first lets go: the other keeps the tokens.
    direct_login(&mut c, "b").await;
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "a", "revoke": true}),
        )
        .await;
    assert_eq!(
        (r["removed"].clone(), r["revoked"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        r["revocationError"].as_str().unwrap().contains("`b`"),
        "{r}"
    );
    assert_eq!(kit.counters().revoke, 0);
    assert_eq!(status(&mut c, "a").await["authStatus"], "notLoggedIn");
    assert_eq!(status(&mut c, "b").await["authStatus"], "loggedIn");
    assert_eq!(token(&mut c, "b", None).await, shared);
    token(&mut c, "b", Some(RENEW)).await;
    assert_eq!(kit.counters().invalid_grant, 0);

    // The last one to let go revokes.
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "b", "revoke": true}),
        )
        .await;
    assert_eq!(r["revoked"], true, "{r}");
    assert!(kit.counters().revoke > 0);
    assert_eq!(kit.counters().authorize, 1);
}

#[tokio::test]
async fn share_login_false_keeps_the_browser_login() {
    let (kit, a, b) = gateway().await;
    let extra = "[mcp_servers.b.oauth]\nshare_login = false\n";
    let (_home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, extra)]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let out = login(&mut c, "b", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.counters().authorize, 2);
    assert_ne!(
        token(&mut c, "a", None).await,
        token(&mut c, "b", None).await
    );
}

#[tokio::test]
async fn the_same_resource_at_another_issuer_never_gets_the_token() {
    let (kit, a, b) = gateway().await;
    kit.set_metadata_max_age(Some(0));
    let other = Kit::start(KitConfig {
        also_protects: vec![kit.resource()],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, "")]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let a_creds = stored(home.path(), "a", &a).unwrap();

    // The gateway now names another authorization server: same resource, other issuer.
    kit.set_prm_authorization_server(Some(other.issuer()));
    let out = login(&mut c, "b", json!({})).await;
    assert_eq!(out["start"]["flow"], "browser", "{out}");
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(other.counters().authorize, 1);
    let b_creds = stored(home.path(), "b", &b).unwrap();
    assert_eq!(b_creds.issuer, other.issuer());
    assert_ne!(b_creds.access_token, a_creds.access_token);
    for request in other.token_requests() {
        let values: Vec<&String> = request.form.values().collect();
        for secret in [
            &a_creds.access_token,
            a_creds.refresh_token.as_ref().unwrap(),
        ] {
            assert!(!values.contains(&secret), "{:?}", request.form);
        }
    }
    assert_eq!(kit.counters().token_refresh, 0);
}

/// Two MCP servers with their own resources whose metadata name one authorization server
/// (`issuer`), which may answer a refresh for either resource.
async fn two_resources(refresh_to_other_resources: bool) -> (Kit, Kit) {
    let second = Kit::start(KitConfig::default()).await.unwrap();
    let issuer = Kit::start(KitConfig {
        also_protects: vec![second.resource()],
        refresh_to_other_resources,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    second.set_prm_authorization_server(Some(issuer.issuer()));
    (issuer, second)
}

#[tokio::test]
async fn another_resource_at_the_same_issuer_gets_its_own_token_from_the_refresh_token() {
    let (kit, second) = two_resources(true).await;
    let (a, b) = (kit.mcp_url(), second.mcp_url());
    let (home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, "")]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let before = stored(home.path(), "a", &a).unwrap();

    direct_login(&mut c, "b").await;
    let n = kit.counters();
    assert_eq!(
        (n.authorize, n.register, n.token_code, n.token_refresh),
        (1, 1, 1, 1),
        "{n:?}"
    );
    assert_eq!(second.counters().authorize, 0);
    // RFC 8707: the refresh named b's resource, with a's refresh token and client.
    let t = kit.last_token_request().unwrap();
    assert_eq!(t.form["grant_type"], "refresh_token");
    assert_eq!(t.form["resource"], second.resource());
    assert_eq!(
        t.form["refresh_token"],
        *before.refresh_token.as_ref().unwrap()
    );

    // b's token is its own; the refresh token the answer rotated went to a.
    let b_creds = stored(home.path(), "b", &b).unwrap();
    assert_eq!(b_creds.resource, second.resource());
    assert_eq!(b_creds.refresh_token, None);
    assert_eq!(b_creds.client.client_id, before.client.client_id);
    let a_creds = stored(home.path(), "a", &a).unwrap();
    assert_eq!(a_creds.access_token, before.access_token);
    assert_ne!(a_creds.refresh_token, before.refresh_token);
    assert_ne!(
        token(&mut c, "a", None).await,
        token(&mut c, "b", None).await
    );
    for name in ["a", "b"] {
        assert_eq!(status(&mut c, name).await["authStatus"], "loggedIn");
    }

    // Both renew through the one refresh token chain, each for its resource.
    token(&mut c, "b", Some(RENEW)).await;
    assert_eq!(
        kit.last_token_request().unwrap().form["resource"],
        second.resource()
    );
    token(&mut c, "a", Some(RENEW)).await;
    assert_eq!(
        kit.last_token_request().unwrap().form["resource"],
        kit.resource()
    );
    token(&mut c, "b", Some(RENEW)).await;
    let n = kit.counters();
    assert_eq!(
        (n.token_refresh, n.invalid_grant, n.authorize),
        (4, 0, 1),
        "{n:?}"
    );
}

#[tokio::test]
async fn a_refused_refresh_for_another_resource_falls_back_to_the_browser() {
    let (kit, second) = two_resources(false).await;
    let (a, b) = (kit.mcp_url(), second.mcp_url());
    let (home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, "")]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let before = stored(home.path(), "a", &a).unwrap();

    let out = login(&mut c, "b", json!({})).await;
    assert_eq!(out["start"]["flow"], "browser", "{out}");
    assert_eq!(out["completed"]["success"], true, "{out}");
    let n = kit.counters();
    assert_eq!(
        (n.authorize, n.token_refresh, n.token_code),
        (2, 1, 2),
        "{n:?}"
    );
    // a is untouched by the refusal.
    assert_eq!(stored(home.path(), "a", &a).unwrap(), before);
    assert_eq!(status(&mut c, "a").await["authStatus"], "loggedIn");
    let b_creds = stored(home.path(), "b", &b).unwrap();
    assert_eq!(b_creds.resource, second.resource());
    assert!(b_creds.refresh_token.is_some());
}

#[tokio::test]
async fn a_server_claiming_another_servers_resource_gets_nothing() {
    let (kit, a, _) = gateway().await;
    // Another origin whose metadata names the gateway's resource and authorization server.
    let liar = Kit::start(KitConfig {
        prm_resource_override: Some(kit.resource()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    liar.set_prm_authorization_server(Some(kit.issuer()));
    let b = liar.mcp_url();
    let (_home, _server, mut c) = daemon(&[("a", &a, ""), ("b", &b, "")]).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let before = kit.counters();

    // Rule 3 refuses the document before anything is shared or asked for.
    let e = c.err("mcpServer/oauth/login", json!({"name": "b"})).await;
    assert_eq!(e["data"]["kind"], "discoveryFailed", "{e}");
    assert_eq!(status(&mut c, "b").await["authStatus"], "notLoggedIn");
    let e = c.err("mcpServer/oauth/token", json!({"name": "b"})).await;
    assert_eq!(e["data"]["kind"], "notLoggedIn", "{e}");
    let after = kit.counters();
    assert_eq!(
        (after.token_refresh, after.authorize),
        (before.token_refresh, before.authorize)
    );
}

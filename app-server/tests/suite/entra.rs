//! Microsoft Entra ID's shape (rule 70): a pathless `resource`, `api://<app>/...` scopes,
//! a granted scope set the server refuses on refresh (AADSTS70011) and a refresh without
//! `scope` refused (AADSTS90009), against the test kit behaving that way; and
//! `refresh_scope` choosing what a refresh sends.

use std::path::Path;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::{Value, json};

use super::harness::MemClient;
use super::login::{daemon_for, login};

const CHANGED: &str = "mcpServer/authStatus/changed";
const ACCESS: &str = "api://c0ffee-app/access_as_user";
const DEFAULT: &str = "api://c0ffee-app/.default";
/// What the login asks for: the configured scope and `offline_access` (rule 30).
const ASKED: &str = "api://c0ffee-app/access_as_user offline_access";
/// What the kit reports as granted, as Entra does: the scopes plus `.default`.
const GRANTED_MIX: &str =
    "api://c0ffee-app/access_as_user offline_access api://c0ffee-app/.default";

async fn entra_kit() -> Kit {
    Kit::start(KitConfig {
        entra: true,
        prm_resource_pathless: true,
        scopes_supported: vec![ACCESS.into(), DEFAULT.into(), "offline_access".into()],
        ..KitConfig::default()
    })
    .await
    .unwrap()
}

fn stored(home: &Path, kit: &Kit) -> StoredCredentials {
    let key = CredentialKey::new("kit", url::Url::parse(&kit.mcp_url()).unwrap().to_string());
    FileStore::open(&Home::at(home))
        .unwrap()
        .load(&key)
        .unwrap()
        .expect("stored credentials")
}

async fn status_of(c: &mut MemClient) -> Value {
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "kit")
        .cloned()
        .unwrap()
}

/// Logs in with `scopes` configured and `oauth` as the server's oauth table.
async fn logged_in(
    kit: &Kit,
    scopes: &str,
    oauth: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let extra = format!("scopes = [{scopes}]\n[mcp_servers.kit.oauth]\n{oauth}\n");
    let (home, server, mut c) = daemon_for(kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "loggedIn"})
    );
    (home, server, c)
}

/// The refresh requests the kit has seen, as (`scope`, `resource`).
fn refreshes(kit: &Kit) -> Vec<(Option<String>, Option<String>)> {
    kit.token_requests()
        .into_iter()
        .filter(|r| r.form.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .map(|r| {
            (
                r.form.get("scope").cloned(),
                r.form.get("resource").cloned(),
            )
        })
        .collect()
}

/// A token request that must refresh now (the kit's tokens live an hour).
async fn forced_token(c: &mut MemClient) -> Value {
    c.request(
        "mcpServer/oauth/token",
        json!({"name": "kit", "minValiditySecs": 7200}),
    )
    .await
}

#[tokio::test]
async fn requested_sends_the_login_scopes_on_every_refresh() {
    let kit = entra_kit().await;
    let (home, server, mut c) = logged_in(
        &kit,
        &format!("\"{ACCESS}\""),
        "refresh_scope = \"requested\"",
    )
    .await;
    // The pathless resource went out as published, with no `/` appended.
    let resource = kit.resource();
    assert!(!resource.ends_with('/') && url::Url::parse(&resource).unwrap().path() == "/");
    let code = &kit.token_requests()[0];
    assert_eq!(code.form["grant_type"], "authorization_code");
    assert_eq!(code.form["resource"], resource);
    let creds = stored(home.path(), &kit);
    assert_eq!(creds.scopes.join(" "), GRANTED_MIX);
    assert_eq!(creds.requested_scopes.join(" "), ASKED);
    assert_eq!(creds.resource, resource);

    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = forced_token(&mut c).await;
        tokens.push(
            r["result"]["accessToken"]
                .as_str()
                .expect("a new token")
                .to_string(),
        );
    }
    assert_ne!(tokens[0], tokens[1]);
    // One request per refresh, each with the scopes the login asked for.
    let expected = (Some(ASKED.to_string()), Some(resource.clone()));
    assert_eq!(refreshes(&kit), vec![expected.clone(), expected]);
    assert_eq!(kit.counters().token_refresh, 2);
    assert_eq!(status_of(&mut c).await["authStatus"], "loggedIn");
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_a_refused_granted_mix_is_retried_once_with_the_login_scopes() {
    let kit = entra_kit().await;
    let (_home, server, mut c) = logged_in(&kit, &format!("\"{ACCESS}\""), "").await;
    for _ in 0..2 {
        let r = forced_token(&mut c).await;
        assert!(r["result"]["accessToken"].is_string(), "{r}");
    }
    let resource = Some(kit.resource());
    let mix = (Some(GRANTED_MIX.to_string()), resource.clone());
    let asked = (Some(ASKED.to_string()), resource);
    // Each refresh: the granted mix (refused, AADSTS70011), then what the login asked for.
    assert_eq!(
        refreshes(&kit),
        vec![mix.clone(), asked.clone(), mix, asked]
    );
    assert_eq!(status_of(&mut c).await["authStatus"], "loggedIn");
    server.shutdown().await;
}

#[tokio::test]
async fn credentials_without_the_login_scopes_fail_as_users_saw_it_and_say_what_to_set() {
    let kit = entra_kit().await;
    let (home, server, mut c) = logged_in(&kit, &format!("\"{ACCESS}\""), "").await;
    // An entry saved before the login's scopes were kept.
    let mut creds = stored(home.path(), &kit);
    creds.requested_scopes.clear();
    FileStore::open(&Home::at(home.path()))
        .unwrap()
        .save(&creds)
        .unwrap();
    let e = forced_token(&mut c).await["error"].clone();
    assert_eq!(e["data"]["kind"], "reauthenticationRequired", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("AADSTS70011"), "{message}");
    assert!(
        message.contains("refresh_scope = \"requested\""),
        "{message}"
    );
    assert_eq!(
        c.notification(CHANGED).await,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "refreshRefused"})
    );
    let s = status_of(&mut c).await;
    assert_eq!(s["reason"], "refreshRefused", "{s}");
    assert_eq!(
        refreshes(&kit),
        vec![(Some(GRANTED_MIX.to_string()), Some(kit.resource()))]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn none_sends_no_scope_and_entra_refuses_it() {
    let kit = entra_kit().await;
    let (_home, server, mut c) =
        logged_in(&kit, &format!("\"{ACCESS}\""), "refresh_scope = \"none\"").await;
    let e = forced_token(&mut c).await["error"].clone();
    assert_eq!(e["data"]["kind"], "reauthenticationRequired", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("AADSTS90009"),
        "{e}"
    );
    assert_eq!(status_of(&mut c).await["reason"], "refreshRefused");
    // No `scope` was sent, and no second try.
    assert_eq!(refreshes(&kit), vec![(None, Some(kit.resource()))]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_default_scope_goes_out_verbatim_and_refreshes() {
    let kit = entra_kit().await;
    let (home, server, mut c) = logged_in(
        &kit,
        &format!("\"{DEFAULT}\""),
        "refresh_scope = \"requested\"",
    )
    .await;
    let creds = stored(home.path(), &kit);
    assert_eq!(
        creds.requested_scopes.join(" "),
        format!("{DEFAULT} offline_access")
    );
    let r = forced_token(&mut c).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(
        refreshes(&kit),
        vec![(
            Some(format!("{DEFAULT} offline_access")),
            Some(kit.resource())
        )]
    );
    server.shutdown().await;
}

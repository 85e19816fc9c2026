//! The MCP 2026-07-28 authorization rules a client must follow (requirements rules 25-31),
//! and revocation at servers built on the MCP Python SDK, against the test kit.

use std::path::Path;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{
    IssVariant, Kit, KitConfig, PreregisteredClient, PrmMode, browser_visit,
};
use serde_json::{Value, json};

use super::login::{daemon_for, login};

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

pub(super) fn stored(home: &Path, name: &str, kit: &Kit) -> Option<StoredCredentials> {
    let key = CredentialKey::new(name, url::Url::parse(&kit.mcp_url()).unwrap().to_string());
    FileStore::open(&Home::at(home))
        .unwrap()
        .load(&key)
        .unwrap()
}

fn kit_redirect() -> String {
    format!(
        "http://127.0.0.1/callback/{}",
        mcp_app_server_testkit::CALLBACK_ID_PLACEHOLDER
    )
}

#[tokio::test]
async fn an_iss_equal_only_after_normalisation_is_refused_before_the_code_is_exchanged() {
    for variant in [
        IssVariant::TrailingSlash,
        IssVariant::UpperCase,
        IssVariant::Foreign,
    ] {
        let kit = Kit::start(KitConfig {
            iss_variant: variant,
            ..KitConfig::default()
        })
        .await
        .unwrap();
        let (home, _server, mut c) = daemon_for(&kit, "kit", "").await;
        let out = login(&mut c, "kit", json!({})).await;
        let done = &out["completed"];
        assert_eq!(done["success"], false, "{variant:?}: {out}");
        assert_eq!(
            done["errorKind"], "authorizationFailed",
            "{variant:?}: {done}"
        );
        assert!(
            done["error"].as_str().unwrap().contains("RFC 9207"),
            "{variant:?}: {done}"
        );
        // The code never reached the token endpoint, and nothing was stored.
        assert_eq!(kit.counters().token_code, 0, "{variant:?}");
        assert!(kit.token_requests().is_empty(), "{variant:?}");
        assert!(stored(home.path(), "kit", &kit).is_none(), "{variant:?}");
    }
}

#[tokio::test]
async fn an_advertised_iss_that_is_missing_is_refused() {
    let kit = Kit::start(KitConfig {
        iss_variant: IssVariant::Omitted,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], false, "{out}");
    assert!(
        out["completed"]["error"]
            .as_str()
            .unwrap()
            .contains("announces the iss parameter"),
        "{out}"
    );
    assert!(kit.token_requests().is_empty());
}

#[tokio::test]
async fn an_error_response_with_a_foreign_iss_is_neither_acted_on_nor_shown() {
    let kit = Kit::start(KitConfig {
        iss_variant: IssVariant::Foreign,
        auto_approve: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let r = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let url = r["authorizationUrl"].as_str().unwrap().to_string();
    assert_eq!(browser_visit(&url).await.unwrap().status, 200);
    // The user denies: the redirect carries error=access_denied and the foreign iss.
    let denied = kit.approve_pending(false).expect("a consent page waits");
    assert!(denied.contains("error=access_denied"), "{denied}");
    let page = reqwest::get(&denied).await.unwrap().text().await.unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false);
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("mix-up"), "{done}");
    // Neither the notification nor the browser page repeats the untrusted error.
    assert!(!error.contains("access_denied"), "{done}");
    assert!(!page.contains("access_denied"), "{page}");
}

#[tokio::test]
async fn metadata_whose_issuer_differs_only_by_a_slash_is_not_used() {
    let kit = Kit::start(KitConfig {
        metadata_issuer_trailing_slash: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(kind(&e), "discoveryFailed", "{e}");
    assert!(e["message"].as_str().unwrap().contains("issuer"), "{e}");
    // None of its endpoints was used.
    let c = kit.counters();
    assert_eq!((c.register, c.authorize, c.token_code), (0, 0, 0), "{c:?}");
}

#[tokio::test]
async fn a_pathless_prm_resource_is_sent_verbatim_in_every_request() {
    let kit = Kit::start(KitConfig {
        prm: PrmMode::RootOnly,
        prm_resource_pathless: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let resource = kit.resource();
    assert!(!resource.ends_with('/') && !resource.ends_with("/mcp"));
    let (home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.last_authorize_query().unwrap()["resource"], resource);
    assert_eq!(kit.token_requests()[0].form["resource"], resource);
    assert_eq!(stored(home.path(), "kit", &kit).unwrap().resource, resource);
    // Every refresh too.
    let t = c
        .ok(
            "mcpServer/oauth/token",
            json!({"name": "kit", "minValiditySecs": 7200}),
        )
        .await;
    assert!(t["accessToken"].is_string(), "{t}");
    let requests = kit.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].form["grant_type"], "refresh_token");
    assert_eq!(requests[1].form["resource"], resource);
}

#[tokio::test]
async fn offline_access_is_not_requested_when_the_authorization_server_does_not_list_it() {
    let kit = Kit::start(KitConfig {
        scopes_supported: vec!["mcp:read".into(), "mcp:write".into()],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) =
        daemon_for(&kit, "kit", "scopes = [\"mcp:read\", \"offline_access\"]").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.last_authorize_query().unwrap()["scope"], "mcp:read");
    // DCR still asks for the refresh_token grant and says it is a native client.
    let registered = &kit.registered_clients()[0];
    assert_eq!(
        registered["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(registered["application_type"], "native");
}

/// Logs in at `as1` (the kit whose resource server the daemon talks to), then moves the
/// resource to `as2` and logs in again.
/// Its metadata says `no-store`, so the daemon discovers at every login and sees the move
/// at once (a cached discovery sees it when the entry expires or an endpoint refuses).
async fn moved_resource() -> (Kit, Kit) {
    let as1 = Kit::start(KitConfig::default()).await.unwrap();
    as1.set_metadata_max_age(Some(0));
    let as2 = Kit::start(KitConfig {
        also_protects: vec![as1.mcp_url()],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    (as1, as2)
}

#[tokio::test]
async fn a_moved_authorization_server_gets_a_new_registration_and_none_of_the_old_credentials() {
    let (as1, as2) = moved_resource().await;
    let (home, _server, mut c) = daemon_for(&as1, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let old = stored(home.path(), "kit", &as1).unwrap();
    assert_eq!(old.issuer, as1.issuer());

    as1.set_prm_authorization_server(Some(as2.issuer()));
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");

    // A registration of its own at the new authorization server...
    assert_eq!(as2.registered_clients().len(), 1);
    let new = stored(home.path(), "kit", &as1).unwrap();
    assert_eq!(new.issuer, as2.issuer());
    assert_ne!(new.client.client_id, old.client.client_id);
    // ...and nothing of the old one was sent there: not its client id, not its tokens.
    let authorize = as2.last_authorize_query().unwrap();
    assert_eq!(authorize["client_id"], new.client.client_id);
    for request in as2.token_requests() {
        let values: Vec<&String> = request.form.values().collect();
        for secret in [
            &old.client.client_id,
            &old.access_token,
            old.refresh_token.as_ref().unwrap(),
        ] {
            assert!(!values.contains(&secret), "{:?}", request.form);
        }
    }
    // The old authorization server saw no second login.
    assert_eq!(as1.registered_clients().len(), 1);
    assert_eq!(as1.token_requests().len(), 1);
}

#[tokio::test]
async fn a_preregistered_client_is_not_sent_to_another_authorization_server() {
    // Pinned in config: refused at once.
    let (as1, as2) = moved_resource().await;
    as1.set_prm_authorization_server(Some(as2.issuer()));
    let extra = format!(
        "[mcp_servers.kit.oauth]\nclient_id = \"pre-pub\"\nissuer = \"{}\"\n",
        as1.issuer()
    );
    let (_home, _server, mut c) = daemon_for(&as1, "kit", &extra).await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(kind(&e), "registrationFailed", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains(&as1.issuer()) && message.contains(&as2.issuer()),
        "{message}"
    );
    assert_eq!(as2.counters().authorize, 0);

    // Not pinned: the issuer of the credentials it obtained is its binding.
    let as1 = Kit::start(KitConfig {
        dcr: false,
        preregistered: vec![PreregisteredClient::public("pre-pub", &[&kit_redirect()])],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let as2 = Kit::start(KitConfig {
        also_protects: vec![as1.mcp_url()],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    as1.set_metadata_max_age(Some(0));
    let extra = "[mcp_servers.kit.oauth]\nclient_id = \"pre-pub\"\n";
    let (home, _server, mut c) = daemon_for(&as1, "kit", extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    as1.set_prm_authorization_server(Some(as2.issuer()));
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(kind(&e), "registrationFailed", "{e}");
    assert!(e["message"].as_str().unwrap().contains("pre-pub"), "{e}");
    assert_eq!(as2.counters().authorize, 0);
    assert!(as2.token_requests().is_empty());
    // The credentials stay for the user to decide; the daemon keeps serving.
    assert!(stored(home.path(), "kit", &as1).is_some());
    c.ok("mcpServerStatus/list", json!({})).await;
}

#[tokio::test]
async fn logout_revokes_at_a_server_that_wants_a_client_secret_field_from_public_clients() {
    let kit = Kit::start(KitConfig {
        revocation_requires_client_secret_field: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(creds.client.token_endpoint_auth_method, "none");
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r, json!({"removed": true, "revoked": true}));
    assert_eq!(
        kit.revoked_tokens(),
        vec![creds.refresh_token.clone().unwrap(), creds.access_token]
    );
    // Each token: refused once without the field, accepted with an empty one.
    assert_eq!(kit.counters().revoke, 4);
}

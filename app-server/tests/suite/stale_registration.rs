//! Stale DCR registrations: an authorization server that pruned the daemon's client
//! answers `invalid_client` to its refresh. The registration is dropped, the user is told,
//! and the next login registers a new client at once (the pruned client id would only get
//! an error page at the authorization endpoint, with no way back to the daemon).

use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::json;

use super::harness;
use super::login::login;
use super::tokens::{FORCE_REFRESH, kind, logged_in, stored, token};

#[tokio::test]
async fn a_refresh_refused_with_invalid_client_drops_the_registration_and_the_next_login_registers_again()
 {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit).await;
    let first_client = stored(home.path(), "kit", &kit).unwrap().client.client_id;
    assert_eq!(kit.registered_clients().len(), 1);
    kit.forget_registered_clients();

    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    let e = &r["error"];
    assert_eq!(kind(e), "reauthenticationRequired", "{r}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("invalid_client"), "{message}");
    assert!(message.contains("registration was dropped"), "{message}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "kit", "authStatus": "reauthenticationRequired", "reason": "registrationDropped"})
    );

    // After a restart: one browser round trip with a new client, no visit to the
    // authorization page with the pruned client id.
    drop(c);
    drop(_server);
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(list["data"][0]["reason"], "registrationDropped", "{list}");
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.registered_clients().len(), 2);
    assert_eq!(kit.counters().authorize, 2);
    let now = stored(home.path(), "kit", &kit).unwrap();
    assert_ne!(now.client.client_id, first_client);
    assert!(!now.reauthentication_required);
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
}

/// A confidential DCR client: its secret is kept and used (HTTP Basic at the token
/// endpoint); a registration whose secret expires within minutes is not reused, one that
/// never expires is.
#[tokio::test]
async fn a_confidential_dcr_client_keeps_its_secret_and_registers_again_before_it_expires() {
    for (ttl, registrations_after_second_login) in [(None, 1), (Some(120), 2)] {
        let kit = Kit::start(KitConfig {
            dcr_confidential_secret_ttl_secs: Some(ttl),
            ..KitConfig::default()
        })
        .await
        .unwrap();
        // The login's own registrations are counted: pre-warm registers none here.
        let home = tempfile::tempdir().unwrap();
        harness::write_config(
            home.path(),
            &super::login::file_store_config(&format!(
                "mcp_oauth_preregister = false\n{}",
                super::login::server_config("kit", &kit, "")
            )),
        );
        let (_server, mut c) = harness::start(home.path());
        c.initialize().await;
        let out = login(&mut c, "kit", json!({})).await;
        assert_eq!(out["completed"]["success"], true, "{out}");
        let creds = stored(home.path(), "kit", &kit).unwrap();
        assert!(creds.client.client_secret.is_some(), "{ttl:?}");
        assert_eq!(
            creds.client.token_endpoint_auth_method,
            "client_secret_basic"
        );
        let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
        assert!(r["result"]["accessToken"].is_string(), "{r}");
        let t = kit.last_token_request().unwrap();
        assert_eq!(t.basic_client_id.as_ref(), Some(&creds.client.client_id));
        assert!(
            !t.form.contains_key("client_secret"),
            "sent with HTTP Basic"
        );

        let out = login(&mut c, "kit", json!({})).await;
        assert_eq!(out["completed"]["success"], true, "{out}");
        assert_eq!(
            kit.registered_clients().len(),
            registrations_after_second_login,
            "{ttl:?}"
        );
    }
}

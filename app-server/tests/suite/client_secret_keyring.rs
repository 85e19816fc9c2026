//! A client secret kept in the OS keyring (rule 71): config.toml names the entry, a login
//! reads it off the async worker, a missing or locked entry fails the login with what to
//! do. The keyring is a map here (machines running tests have none).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mcp_app_server::credentials::{ClientSecretKeyring, Secrets, StoreError};
use mcp_app_server::home::Home;
use mcp_app_server::rpc::{AppServer, ServerOptions};
use mcp_app_server_testkit::{Kit, KitConfig, PreregisteredClient};
use serde_json::json;

use super::harness::{self, write_config};
use super::login::{file_store_config, login, server_config};

#[derive(Default)]
struct MapKeyring {
    items: Mutex<HashMap<String, String>>,
    locked: AtomicBool,
    reads: std::sync::atomic::AtomicUsize,
}

impl Secrets for MapKeyring {
    fn get(&self, account: &str) -> Result<Option<String>, StoreError> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        if self.locked.load(Ordering::SeqCst) {
            return Err(StoreError::Keyring {
                reason: "the collection is locked".into(),
            });
        }
        Ok(self.items.lock().unwrap().get(account).cloned())
    }
    fn set(&self, account: &str, secret: &str) -> Result<(), StoreError> {
        self.items
            .lock()
            .unwrap()
            .insert(account.into(), secret.into());
        Ok(())
    }
    fn delete(&self, account: &str) -> Result<bool, StoreError> {
        Ok(self.items.lock().unwrap().remove(account).is_some())
    }
}

const SECRET: &str = "kit-secret-from-the-keyring";

async fn setup() -> (
    Kit,
    tempfile::TempDir,
    Arc<MapKeyring>,
    AppServer,
    harness::MemClient,
) {
    let redirect = format!(
        "http://127.0.0.1/callback/{}",
        mcp_app_server_testkit::CALLBACK_ID_PLACEHOLDER
    );
    let kit = Kit::start(KitConfig {
        dcr: false,
        preregistered: vec![PreregisteredClient::confidential(
            "corp-client",
            SECRET,
            "client_secret_basic",
            &[&redirect],
        )],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let extra =
        "[mcp_servers.kit.oauth]\nclient_id = \"corp-client\"\nclient_secret_keyring = \"corp\"\n";
    write_config(
        home.path(),
        &file_store_config(&server_config("kit", &kit, extra)),
    );
    let keyring = Arc::new(MapKeyring::default());
    let options = ServerOptions::new(Home::at(home.path()))
        .with_client_secrets(ClientSecretKeyring::with_backend(keyring.clone()));
    let server = AppServer::new(options).unwrap();
    let mut c = harness::connect(&server);
    c.initialize().await;
    (kit, home, keyring, server, c)
}

#[tokio::test]
async fn a_missing_entry_says_which_command_stores_it_then_the_login_uses_it() {
    let (kit, home, keyring, server, mut c) = setup().await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(e["data"]["kind"], "grantCredentialUnavailable", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("mcp-app-server secret set kit"),
        "{message}"
    );
    assert!(message.contains("`corp`"), "{message}");
    // Nothing reached the authorization server's token endpoint.
    assert!(kit.token_requests().is_empty());

    // What `mcp-app-server secret set kit` stores.
    ClientSecretKeyring::with_backend(keyring.clone())
        .set("corp", SECRET)
        .unwrap();
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    // The kit checks the secret of the Basic header: the exchange succeeded with it.
    let exchange = kit.last_token_request().unwrap();
    assert_eq!(exchange.basic_client_id.as_deref(), Some("corp-client"));
    assert!(!exchange.form.contains_key("client_secret"));
    assert_eq!(keyring.reads.load(Ordering::SeqCst), 2);
    // config.toml never holds it.
    let config = std::fs::read_to_string(home.path().join("config.toml")).unwrap();
    assert!(!config.contains(SECRET));
    server.shutdown().await;
}

#[tokio::test]
async fn a_locked_keyring_fails_the_login_with_the_reason() {
    let (kit, _home, keyring, server, mut c) = setup().await;
    keyring.locked.store(true, Ordering::SeqCst);
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(e["data"]["kind"], "grantCredentialUnavailable", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("the collection is locked"), "{message}");
    assert!(
        message.contains("could not be read from the OS keyring"),
        "{message}"
    );
    assert!(kit.token_requests().is_empty());
    // The daemon goes on: once unlocked, the login works.
    keyring.locked.store(false, Ordering::SeqCst);
    ClientSecretKeyring::with_backend(keyring.clone())
        .set("corp", SECRET)
        .unwrap();
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    server.shutdown().await;
}

//! DPoP (RFC 9449) for the logins that need no browser: against the test kit in DPoP mode,
//! a client credentials or JWT bearer login binds its token to a key the daemon keeps, the
//! grant's renewal proves the same key (the authorization server's nonce costing one retry,
//! once), and `dpop = false` stays Bearer.

use std::path::Path;

use mcp_app_server::credentials::{CredentialStore, FileStore};
use mcp_app_server::decode_key;
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Es256Key, Kit, KitConfig, PreregisteredClient, verify_proof};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::file_store_config;
use super::tokens::stored;

const VAR: &str = "MCP_TEST_GRANT_DPOP_SECRET";

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[allow(unsafe_code)]
fn cc_dpop_kit(nonce: bool) -> KitConfig {
    // SAFETY: a variable name no other test reads or writes, always set to the same value.
    unsafe { std::env::set_var(VAR, "cc-secret") };
    KitConfig {
        client_credentials: true,
        dcr: false,
        dpop: true,
        dpop_as_nonce: nonce,
        token_endpoint_auth_methods: vec!["client_secret_basic".to_owned()],
        preregistered: vec![PreregisteredClient::confidential(
            "m2m",
            "cc-secret",
            "client_secret_basic",
            &[],
        )],
        ..KitConfig::default()
    }
}

fn cc_oauth() -> String {
    format!(
        "grant = \"client_credentials\"\nclient_id = \"m2m\"\nclient_secret_env_var = \"{VAR}\""
    )
}

async fn daemon(
    kit: &Kit,
    oauth: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let config = format!(
        "[mcp_servers.kit]\nurl = \"{}\"\n\n[mcp_servers.kit.oauth]\n{oauth}\n",
        kit.mcp_url()
    );
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(&config));
    let (server, mut c) = harness::start(home.path());
    c.initialize_dpop().await;
    (home, server, c)
}

/// Logs in with the configured grant and answers the token the daemon then hands out.
async fn login(c: &mut MemClient, grant: &str) -> Value {
    let answer = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(
        answer,
        json!({"flow": "direct", "grant": grant}),
        "{answer}"
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await
}

/// Makes the stored token look expired, as time would.
fn expire_stored(home: &Path, kit: &Kit) {
    let mut creds = stored(home, "kit", kit).expect("stored credentials");
    creds.expires_at = Some(1);
    FileStore::open(&Home::at(home))
        .unwrap()
        .save(&creds)
        .unwrap();
}

/// The thumbprint of the key whose proof the kit's last token request carried.
fn last_proof_jkt(kit: &Kit) -> String {
    let request = kit.last_token_request().unwrap();
    let proof = request
        .dpop_proof
        .expect("the token request carried a proof");
    let token_url = format!("{}/token", kit.issuer());
    verify_proof(&proof, "POST", &token_url, now())
        .expect("a valid proof for the token endpoint")
        .jkt
}

/// Renews by expiry and checks the new token is bound to `jkt` by a proof of that key.
async fn renew_bound(c: &mut MemClient, home: &Path, kit: &Kit, jkt: &str, before: &str) {
    expire_stored(home, kit);
    let renewed = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(renewed["tokenType"], "DPoP", "{renewed}");
    let access = renewed["accessToken"].as_str().unwrap();
    assert_ne!(access, before, "renewed");
    assert_eq!(
        last_proof_jkt(kit),
        jkt,
        "the renewal proves the login's key"
    );
    assert_eq!(kit.dpop_binding(access).as_deref(), Some(jkt));
}

#[tokio::test]
async fn client_credentials_login_binds_the_token_and_renewal_proves_the_same_key() {
    let kit = Kit::start(cc_dpop_kit(true)).await.unwrap();
    let (home, _server, mut c) = daemon(&kit, &cc_oauth()).await;
    let t = login(&mut c, "clientCredentials").await;
    assert_eq!(t["tokenType"], "DPoP", "{t}");
    let access = t["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(
        kit.counters().token_client_credentials,
        2,
        "one use_dpop_nonce refusal, one retry with the nonce"
    );

    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(creds.token_type, "DPoP");
    let stored_key = creds.dpop_key.clone().expect("the key is stored");
    let jkt = decode_key(&stored_key).unwrap().thumbprint().unwrap();
    assert_eq!(kit.dpop_binding(&access), Some(jkt.clone()), "cnf.jkt");
    assert_eq!(last_proof_jkt(&kit), jkt);

    renew_bound(&mut c, home.path(), &kit, &jkt, &access).await;
    let counters = kit.counters();
    assert_eq!(
        (counters.token_client_credentials, counters.token_refresh),
        (3, 0),
        "the grant ran again, its nonce remembered"
    );
    let after = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(after.dpop_key.as_deref(), Some(stored_key.as_str()));
    assert_eq!(after.token_type, "DPoP");
}

#[tokio::test]
async fn jwt_bearer_login_binds_the_token_and_renewal_proves_the_same_key() {
    let workload = Es256Key::generate();
    let kit = Kit::start(KitConfig {
        workload_key: Some(workload.public_point()),
        dcr: false,
        dpop: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let issuer = kit.config().workload_issuer.clone();
    let assertion = workload.workload_token(&issuer, "ci-job", &kit.issuer(), 600);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, &assertion).unwrap();
    let oauth = format!(
        "grant = \"jwt_bearer\"\nassertion_file = {:?}",
        file.display().to_string()
    );
    let (home, _server, mut c) = daemon(&kit, &oauth).await;
    let t = login(&mut c, "jwtBearer").await;
    assert_eq!(t["tokenType"], "DPoP", "{t}");
    let access = t["accessToken"].as_str().unwrap().to_owned();
    let creds = stored(home.path(), "kit", &kit).unwrap();
    let jkt = decode_key(creds.dpop_key.as_deref().unwrap())
        .unwrap()
        .thumbprint()
        .unwrap();
    assert_eq!(kit.dpop_binding(&access), Some(jkt.clone()));
    assert_eq!(last_proof_jkt(&kit), jkt);

    renew_bound(&mut c, home.path(), &kit, &jkt, &access).await;
    assert_eq!(kit.counters().token_jwt_bearer, 2);
}

#[tokio::test]
async fn dpop_false_keeps_grant_tokens_bearer() {
    let kit = Kit::start(cc_dpop_kit(false)).await.unwrap();
    let (home, _server, mut c) = daemon(&kit, &format!("{}\ndpop = false", cc_oauth())).await;
    let t = login(&mut c, "clientCredentials").await;
    assert_eq!(t["tokenType"], "Bearer", "{t}");
    let access = t["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(kit.dpop_binding(&access), None);
    assert_eq!(kit.last_token_request().unwrap().dpop_proof, None);
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(creds.dpop_key, None);

    // Renewal sends no proof either.
    expire_stored(home.path(), &kit);
    let renewed = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(renewed["tokenType"], "Bearer", "{renewed}");
    assert_ne!(renewed["accessToken"], access.as_str());
    assert_eq!(kit.last_token_request().unwrap().dpop_proof, None);
    assert_eq!(kit.counters().token_client_credentials, 2);
}

#[tokio::test]
async fn a_grant_login_started_by_a_frontend_without_dpop_stays_bearer() {
    let kit = Kit::start(cc_dpop_kit(false)).await.unwrap();
    let (home, server, prover) = daemon(&kit, &cc_oauth()).await;
    drop(prover);
    // Rule 49: the authorization server offers DPoP, but the frontend starting the login
    // cannot send proofs and nothing requires them.
    let mut c = harness::connect(&server);
    c.initialize().await;
    let t = login(&mut c, "clientCredentials").await;
    assert_eq!(t["tokenType"], "Bearer", "{t}");
    assert_eq!(kit.dpop_binding(t["accessToken"].as_str().unwrap()), None);
    assert_eq!(kit.last_token_request().unwrap().dpop_proof, None);
    assert_eq!(stored(home.path(), "kit", &kit).unwrap().dpop_key, None);
}

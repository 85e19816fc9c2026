//! Logins with no browser: the client credentials grant (secret or `private_key_jwt`) and
//! the JWT bearer grant with a workload identity token, against the test kit's token
//! endpoint, which checks the Basic header, the assertion's signature, `aud`, `exp` and
//! `jti` for real.

use std::path::Path;

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Es256Key, Kit, KitConfig, PreregisteredClient};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::file_store_config;

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

/// Makes the stored token of `name` look expired, as time would.
pub(super) fn expire_stored(home: &Path, name: &str, kit: &Kit) {
    let mut creds = stored(home, name, kit).expect("stored credentials");
    creds.expires_at = Some(1);
    FileStore::open(&Home::at(home))
        .unwrap()
        .save(&creds)
        .unwrap();
}

/// The status the MCP server answers a request carrying `token` with.
pub(super) async fn mcp_status(kit: &Kit, token: &str) -> u16 {
    mcp_status_over(&reqwest::Client::new(), kit, token).await
}

/// [`mcp_status`] over `client` (one presenting a certificate, trusting an authority).
pub(super) async fn mcp_status_over(client: &reqwest::Client, kit: &Kit, token: &str) -> u16 {
    client
        .post(kit.mcp_url())
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn server(name: &str, kit: &Kit, oauth: &str) -> String {
    format!(
        "[mcp_servers.{name}]\nurl = \"{}\"\n\n[mcp_servers.{name}.oauth]\n{oauth}\n",
        kit.mcp_url()
    )
}

async fn daemon(config: &str) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(config));
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    (home, server, c)
}

fn cc_kit(auth_methods: &[&str], client: PreregisteredClient) -> KitConfig {
    KitConfig {
        client_credentials: true,
        dcr: false,
        token_endpoint_auth_methods: auth_methods.iter().map(|m| (*m).to_owned()).collect(),
        preregistered: vec![client],
        ..KitConfig::default()
    }
}

/// Logs in and checks what every login with no browser shares: the answer has no URL and
/// names the grant, `completed` and `loggedIn` come, the token works at the MCP server,
/// and nothing of the browser login (registration, authorization) was asked for.
async fn login_without_browser(c: &mut MemClient, name: &str, kit: &Kit, grant: &str) -> String {
    let answer = c.ok("mcpServer/oauth/login", json!({"name": name})).await;
    assert_eq!(
        answer,
        json!({"flow": "direct", "grant": grant}),
        "{answer}"
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["name"], name);
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": name, "authStatus": "loggedIn"})
    );
    let token = c.ok("mcpServer/oauth/token", json!({"name": name})).await;
    let access = token["accessToken"].as_str().unwrap().to_owned();
    assert_eq!(mcp_status(kit, &access).await, 200);
    let counters = kit.counters();
    assert_eq!((counters.authorize, counters.register), (0, 0));
    access
}

#[tokio::test]
#[allow(unsafe_code)]
async fn client_secret_basic_login_needs_no_browser_and_renews_with_the_same_grant() {
    const VAR: &str = "MCP_TEST_GRANTS_CC_BASIC";
    // SAFETY: a variable name no other test or thread reads or writes.
    unsafe { std::env::set_var(VAR, "cc-secret") };
    let kit = Kit::start(cc_kit(
        &["client_secret_basic"],
        PreregisteredClient::confidential("m2m", "cc-secret", "client_secret_basic", &[]),
    ))
    .await
    .unwrap();
    let (home, _server, mut c) = daemon(&server(
        "m2m",
        &kit,
        &format!(
            "grant = \"client_credentials\"\nclient_id = \"m2m\"\nclient_secret_env_var = \"{VAR}\""
        ),
    ))
    .await;
    let first = login_without_browser(&mut c, "m2m", &kit, "clientCredentials").await;
    let request = kit.last_token_request().unwrap();
    assert_eq!(request.form["grant_type"], "client_credentials");
    assert_eq!(request.basic_client_id.as_deref(), Some("m2m"));
    assert!(!request.form.contains_key("client_secret"), "{request:?}");
    assert_eq!(request.form["resource"], kit.resource());
    let creds = stored(home.path(), "m2m", &kit).unwrap();
    assert_eq!(creds.refresh_token, None);
    assert_eq!(
        creds.client.client_secret, None,
        "the secret is never stored"
    );
    let status = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(status["data"][0]["authStatus"], "loggedIn");

    // Expired: the token request runs the grant again (there is no refresh token).
    expire_stored(home.path(), "m2m", &kit);
    let renewed = c.ok("mcpServer/oauth/token", json!({"name": "m2m"})).await;
    let second = renewed["accessToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    assert_eq!(mcp_status(&kit, &second).await, 200);
    let counters = kit.counters();
    assert_eq!(
        (counters.token_client_credentials, counters.token_refresh),
        (2, 0)
    );

    // The MCP server drops the token: the challenge answers with one from the grant.
    kit.expire_access_tokens();
    assert_eq!(mcp_status(&kit, &second).await, 401);
    let header = format!(
        "Bearer error=\"invalid_token\", resource_metadata=\"{}\"",
        kit.prm_url()
    );
    let answer = c
        .ok(
            "mcpServer/oauth/challenge",
            json!({"name": "m2m", "status": 401, "wwwAuthenticate": header}),
        )
        .await;
    assert_eq!(answer["action"], "token", "{answer}");
    let third = answer["accessToken"].as_str().unwrap();
    assert_eq!(mcp_status(&kit, third).await, 200);
    assert_eq!(kit.counters().token_client_credentials, 3);
}

#[tokio::test]
#[allow(unsafe_code)]
async fn client_secret_post_when_the_server_only_takes_that() {
    const VAR: &str = "MCP_TEST_GRANTS_CC_POST";
    // SAFETY: a variable name no other test or thread reads or writes.
    unsafe { std::env::set_var(VAR, "post-secret") };
    let kit = Kit::start(cc_kit(
        &["client_secret_post"],
        PreregisteredClient::confidential("m2m-post", "post-secret", "client_secret_post", &[]),
    ))
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon(&server(
        "p",
        &kit,
        &format!(
            "grant = \"client_credentials\"\nclient_id = \"m2m-post\"\nclient_secret_env_var = \"{VAR}\""
        ),
    ))
    .await;
    login_without_browser(&mut c, "p", &kit, "clientCredentials").await;
    let request = kit.last_token_request().unwrap();
    assert!(!request.authorization_header);
    assert_eq!(request.form["client_id"], "m2m-post");
    assert_eq!(request.form["client_secret"], "post-secret");
}

#[tokio::test]
async fn private_key_jwt_assertions_are_fresh_at_every_renewal() {
    let key = Es256Key::generate();
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("client.pem");
    std::fs::write(&key_file, key.private_pem()).unwrap();
    let kit = Kit::start(cc_kit(
        &["private_key_jwt"],
        PreregisteredClient::private_key_jwt("m2m-jwt", key.public_point()),
    ))
    .await
    .unwrap();
    let (home, _server, mut c) = daemon(&server(
        "k",
        &kit,
        &format!(
            "grant = \"client_credentials\"\nclient_id = \"m2m-jwt\"\nprivate_key_file = {:?}\nprivate_key_kid = \"k1\"",
            key_file.display().to_string()
        ),
    ))
    .await;
    login_without_browser(&mut c, "k", &kit, "clientCredentials").await;
    // The kit refuses a reused jti, a wrong aud, a long or past exp and a bad signature:
    // each renewal passing means each assertion was new and right.
    for _ in 0..2 {
        expire_stored(home.path(), "k", &kit);
        let token = c.ok("mcpServer/oauth/token", json!({"name": "k"})).await;
        assert_eq!(
            mcp_status(&kit, token["accessToken"].as_str().unwrap()).await,
            200
        );
    }
    let requests = kit.token_requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.form["grant_type"], "client_credentials");
        assert!(!r.authorization_header && !r.form.contains_key("client_secret"));
    }
    let assertions: std::collections::HashSet<_> = requests
        .iter()
        .map(|r| r.form["client_assertion"].clone())
        .collect();
    assert_eq!(assertions.len(), 3);
    assert_eq!(
        stored(home.path(), "k", &kit)
            .unwrap()
            .client
            .token_endpoint_auth_method,
        "private_key_jwt"
    );
}

#[tokio::test]
#[allow(unsafe_code)]
async fn refused_or_unreadable_credentials_are_typed_errors_and_other_servers_keep_their_tokens() {
    const GOOD: &str = "MCP_TEST_GRANTS_REFUSAL_GOOD";
    const WRONG: &str = "MCP_TEST_GRANTS_REFUSAL_WRONG";
    const UNSET: &str = "MCP_TEST_GRANTS_REFUSAL_UNSET";
    // SAFETY: variable names no other test or thread reads or writes.
    unsafe {
        std::env::set_var(GOOD, "right");
        std::env::set_var(WRONG, "wrong");
    }
    let kit = Kit::start(cc_kit(
        &["client_secret_basic"],
        PreregisteredClient::confidential("m2m", "right", "client_secret_basic", &[]),
    ))
    .await
    .unwrap();
    let oauth = |var: &str| {
        format!(
            "grant = \"client_credentials\"\nclient_id = \"m2m\"\nclient_secret_env_var = \"{var}\""
        )
    };
    let config = format!(
        "{}{}{}",
        server("good", &kit, &oauth(GOOD)),
        server("bad", &kit, &oauth(WRONG)),
        server("unset", &kit, &oauth(UNSET)),
    );
    let (home, _server, mut c) = daemon(&config).await;
    login_without_browser(&mut c, "good", &kit, "clientCredentials").await;
    let good_before = stored(home.path(), "good", &kit).unwrap();

    let e = c.err("mcpServer/oauth/login", json!({"name": "bad"})).await;
    assert_eq!(kind(&e), "tokenExchangeFailed", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("invalid_client") && message.contains("client_id"),
        "{message}"
    );
    assert!(!message.contains("wrong"), "no secret in errors: {message}");
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(
        (done["name"].as_str(), done["success"].as_bool()),
        (Some("bad"), Some(false))
    );
    assert_eq!(done["errorKind"], "tokenExchangeFailed");

    let e = c
        .err("mcpServer/oauth/login", json!({"name": "unset"}))
        .await;
    assert_eq!(kind(&e), "grantCredentialUnavailable", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("mcp_servers.unset.oauth.client_secret_env_var"),
        "{e}"
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false);

    assert_eq!(stored(home.path(), "good", &kit).unwrap(), good_before);
    let token = c.ok("mcpServer/oauth/token", json!({"name": "good"})).await;
    assert_eq!(token["accessToken"], good_before.access_token.as_str());
    assert_eq!(
        kit.counters().token_client_credentials,
        2,
        "one request each, no retry"
    );
}

#[tokio::test]
async fn jwt_bearer_presents_the_rotated_workload_token_and_a_refusal_is_final() {
    let workload = Es256Key::generate();
    let config = KitConfig {
        workload_key: Some(workload.public_point()),
        dcr: false,
        ..KitConfig::default()
    };
    let kit = Kit::start(config).await.unwrap();
    let issuer = kit.config().workload_issuer.clone();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    let first = workload.workload_token(&issuer, "ci-job", &kit.issuer(), 600);
    std::fs::write(&token_file, format!("{first}\n")).unwrap();
    let (home, _server, mut c) = daemon(&server(
        "wif",
        &kit,
        &format!(
            "grant = \"jwt_bearer\"\nassertion_file = {:?}",
            token_file.display().to_string()
        ),
    ))
    .await;
    login_without_browser(&mut c, "wif", &kit, "jwtBearer").await;
    let request = kit.last_token_request().unwrap();
    assert_eq!(
        request.form["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(request.form["assertion"], first);

    // The platform rotates the file in place: the renewal presents the new token.
    let second = workload.workload_token(&issuer, "ci-job", &kit.issuer(), 600);
    std::fs::write(&token_file, &second).unwrap();
    expire_stored(home.path(), "wif", &kit);
    let token = c.ok("mcpServer/oauth/token", json!({"name": "wif"})).await;
    assert_eq!(
        mcp_status(&kit, token["accessToken"].as_str().unwrap()).await,
        200
    );
    assert_eq!(kit.last_token_request().unwrap().form["assertion"], second);

    // An expired workload token is refused: a new login is needed, and no other grant
    // is tried.
    let expired = workload.workload_token(&issuer, "ci-job", &kit.issuer(), -60);
    std::fs::write(&token_file, &expired).unwrap();
    expire_stored(home.path(), "wif", &kit);
    let e = c.err("mcpServer/oauth/token", json!({"name": "wif"})).await;
    assert_eq!(kind(&e), "reauthenticationRequired", "{e}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "wif", "authStatus": "reauthenticationRequired", "reason": "refreshRefused"})
    );
    let counters = kit.counters();
    assert_eq!(counters.token_jwt_bearer, 3);
    assert_eq!(
        (
            counters.token_other,
            counters.token_refresh,
            counters.token_client_credentials,
            counters.authorize
        ),
        (0, 0, 0, 0)
    );
    let e = c.err("mcpServer/oauth/token", json!({"name": "wif"})).await;
    assert_eq!(kind(&e), "reauthenticationRequired");
    assert_eq!(
        kit.counters().token_jwt_bearer,
        3,
        "nothing is sent once refused"
    );

    // A fresh token and a new login recover.
    std::fs::write(
        &token_file,
        workload.workload_token(&issuer, "ci-job", &kit.issuer(), 600),
    )
    .unwrap();
    let answer = c.ok("mcpServer/oauth/login", json!({"name": "wif"})).await;
    assert_eq!(answer["grant"], "jwtBearer");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "wif", "authStatus": "loggedIn"})
    );

    // The workload token file is gone: the unexpired token still serves, and once it
    // expired a new login is needed, and the status says why.
    std::fs::remove_file(&token_file).unwrap();
    c.ok("mcpServer/oauth/token", json!({"name": "wif"})).await;
    expire_stored(home.path(), "wif", &kit);
    let e = c.err("mcpServer/oauth/token", json!({"name": "wif"})).await;
    assert_eq!(kind(&e), "grantCredentialUnavailable", "{e}");
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "wif", "authStatus": "reauthenticationRequired", "reason": "grantCredentialMissing"})
    );
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(
        list["data"][0]["reason"], "grantCredentialMissing",
        "{list}"
    );
    let e = c.err("mcpServer/oauth/token", json!({"name": "wif"})).await;
    assert_eq!(kind(&e), "reauthenticationRequired", "{e}");
    assert!(e["message"].as_str().unwrap().contains("credential"), "{e}");
}

//! Login end to end through the daemon against the test kit's servers.

use std::time::Duration;

use mcp_app_server_testkit::{
    Endpoint, Fault, Kit, KitConfig, PreregisteredClient, PrmMode, authorize_redirect_location,
    browser_visit,
};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};

pub fn server_config(name: &str, kit: &Kit, extra: &str) -> String {
    format!(
        "[mcp_servers.{name}]\nurl = \"{}\"\n{extra}\n",
        kit.mcp_url()
    )
}

pub fn file_store_config(body: &str) -> String {
    format!("mcp_oauth_credentials_store = \"file\"\n{body}")
}

/// Starts a daemon whose config lists `name` -> the kit's MCP server.
pub async fn daemon_for(
    kit: &Kit,
    name: &str,
    extra: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&server_config(name, kit, extra)),
    );
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    (home, server, c)
}

/// Logs in as a user would: open the URL in the "browser", wait for completion.
pub async fn login(c: &mut MemClient, name: &str, params: Value) -> Value {
    let mut p = json!({"name": name});
    p.as_object_mut()
        .unwrap()
        .extend(params.as_object().cloned().unwrap_or_default());
    let r = c.ok("mcpServer/oauth/login", p).await;
    let url = r["authorizationUrl"].as_str().unwrap().to_string();
    let page = browser_visit(&url).await.unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["name"], name);
    json!({"start": r, "completed": done, "pageStatus": page.status, "page": page.body})
}

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

pub(super) async fn status_of(c: &mut MemClient, name: &str) -> Value {
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap()
}

#[tokio::test]
async fn dcr_login_end_to_end_stores_credentials_and_announces_completion() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(out["pageStatus"], 200);
    assert!(
        out["page"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("close this"),
        "{out}"
    );

    // The authorization request: PKCE S256, state, resource, scopes with offline_access.
    let q = kit.last_authorize_query().unwrap();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["resource"], kit.mcp_url());
    assert!(q["state"].len() >= 20);
    assert!(
        q["scope"].split(' ').any(|s| s == "offline_access"),
        "{q:?}"
    );
    let redirect = q["redirect_uri"].clone();
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.contains("/callback/"),
        "{redirect}"
    );
    assert_eq!(out["start"]["redirectUri"], redirect);

    // The token request of a public client: client_id in the body, no Basic header.
    let t = kit.last_token_request().unwrap();
    assert!(!t.authorization_header);
    assert_eq!(t.form["grant_type"], "authorization_code");
    assert_eq!(t.form["resource"], kit.mcp_url());
    assert!(t.form.contains_key("client_id") && t.form.contains_key("code_verifier"));
    assert!(!t.form.contains_key("client_secret"));

    // The DCR body.
    let reg = &kit.registered_clients()[0];
    assert_eq!(reg["token_endpoint_auth_method"], "none");
    assert_eq!(reg["application_type"], "native");
    assert_eq!(reg["redirect_uris"], json!([redirect]));

    let s = status_of(&mut c, "kit").await;
    assert_eq!(s["authStatus"], "loggedIn");
    assert_eq!(s["registration"], "dcr");
    assert_eq!(s["issuer"], kit.issuer());
    assert!(s["expiresAt"].as_i64().unwrap() > 0);
    let changed = c.notification("mcpServer/authStatus/changed").await;
    assert_eq!(changed, json!({"name": "kit", "authStatus": "loggedIn"}));
}

#[tokio::test]
async fn dcr_registration_is_reused_for_the_same_issuer_and_redirect_uri() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let port = free_port();
    let extra = format!("[mcp_servers.kit.oauth]\ncallback_port = {port}\n");
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    for _ in 0..2 {
        let out = login(&mut c, "kit", json!({})).await;
        assert_eq!(out["completed"]["success"], true, "{out}");
    }
    assert_eq!(kit.counters().register, 1);
    assert_eq!(kit.counters().token_code, 2);
}

#[tokio::test]
async fn issuer_with_a_path_and_metadata_only_at_openid_location() {
    let kit = Kit::start(KitConfig {
        issuer_path: Some("/tenant1".into()),
        publish_oauth_metadata: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(kit.issuer().ends_with("/tenant1"));
    assert_eq!(status_of(&mut c, "kit").await["issuer"], kit.issuer());
}

#[tokio::test]
async fn path_prm_answered_so_root_is_not_asked() {
    let kit = Kit::start(KitConfig {
        prm: PrmMode::PathOnly,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.counters().prm_root, 0);
    assert!(kit.counters().prm_path >= 1);
}

#[tokio::test]
async fn legacy_server_without_prm_uses_its_origin_as_issuer() {
    let kit = Kit::start(KitConfig {
        prm: PrmMode::None,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
}

#[tokio::test]
#[allow(unsafe_code)]
async fn preregistered_confidential_client_authenticates_with_basic() {
    let kit = Kit::start(KitConfig {
        dcr: false,
        preregistered: vec![PreregisteredClient::confidential(
            "pre-conf",
            "pre-secret",
            "client_secret_basic",
            &[&kit_redirect()],
        )],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    // SAFETY: a variable name no other test or thread reads or writes.
    unsafe { std::env::set_var("MCP_TEST_PRE_SECRET_BASIC", "pre-secret") };
    let extra = "[mcp_servers.kit.oauth]\nclient_id = \"pre-conf\"\nclient_secret_env_var = \"MCP_TEST_PRE_SECRET_BASIC\"\n";
    let (_home, _server, mut c) = daemon_for(&kit, "kit", extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let t = kit.last_token_request().unwrap();
    assert_eq!(t.basic_client_id.as_deref(), Some("pre-conf"));
    assert!(!t.form.contains_key("client_secret"));
    assert_eq!(kit.counters().register, 0);
    assert_eq!(
        status_of(&mut c, "kit").await["registration"],
        "preregistered"
    );
}

#[tokio::test]
async fn preregistered_public_client_sends_client_id_in_the_body() {
    let kit = Kit::start(KitConfig {
        dcr: false,
        preregistered: vec![PreregisteredClient::public("pre-pub", &[&kit_redirect()])],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let extra = "[mcp_servers.kit.oauth]\nclient_id = \"pre-pub\"\n";
    let (_home, _server, mut c) = daemon_for(&kit, "kit", extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let t = kit.last_token_request().unwrap();
    assert!(!t.authorization_header);
    assert_eq!(t.form["client_id"], "pre-pub");
}

#[tokio::test]
async fn explicit_scopes_win_and_are_sent() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "scopes = [\"mcp:write\"]\n").await;
    let out = login(&mut c, "kit", json!({"scopes": ["mcp:read"]})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let scope = kit.last_authorize_query().unwrap()["scope"].clone();
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert!(
        scopes.contains(&"mcp:read") && !scopes.contains(&"mcp:write"),
        "{scope}"
    );
}

/// Each misbehaviour ends in a clear error, and the daemon keeps serving.
#[tokio::test]
async fn misbehaving_servers_give_clear_errors_and_the_daemon_keeps_serving() {
    type Case = (
        KitConfig,
        Option<(Endpoint, Fault)>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            KitConfig {
                dcr: false,
                ..KitConfig::default()
            },
            None,
            "registrationFailed",
            "client_id",
        ),
        (
            KitConfig {
                s256_advertised: false,
                ..KitConfig::default()
            },
            None,
            "discoveryFailed",
            "S256",
        ),
        (
            KitConfig {
                wrong_issuer: true,
                ..KitConfig::default()
            },
            None,
            "discoveryFailed",
            "issuer",
        ),
        (
            KitConfig {
                prm_resource_override: Some("https://evil.example/mcp".into()),
                ..KitConfig::default()
            },
            None,
            "discoveryFailed",
            "evil.example",
        ),
        (
            KitConfig::default(),
            Some((Endpoint::AsMetadata, Fault::Status500)),
            "discoveryFailed",
            "500",
        ),
        (
            KitConfig::default(),
            Some((Endpoint::Prm, Fault::InvalidJson)),
            "discoveryFailed",
            "JSON",
        ),
        (
            KitConfig::default(),
            Some((Endpoint::AsMetadata, Fault::Oversized)),
            "discoveryFailed",
            "limit",
        ),
        (
            KitConfig::default(),
            Some((Endpoint::Register, Fault::Status500)),
            "registrationFailed",
            "500",
        ),
    ];
    for (config, fault, want_kind, want_text) in cases {
        let kit = Kit::start(config).await.unwrap();
        if let Some((endpoint, fault)) = fault {
            kit.faults().set(endpoint, fault);
        }
        let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
        let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
        assert_eq!(kind(&e), want_kind, "{e}");
        let msg = e["message"].as_str().unwrap();
        assert!(
            msg.to_lowercase().contains(&want_text.to_lowercase()),
            "{want_text} not in {msg}"
        );
        // Still serving.
        c.ok("mcpServerStatus/list", json!({})).await;
    }
}

#[tokio::test]
async fn token_endpoint_failure_ends_the_login_with_token_exchange_failed() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    kit.faults().set(Endpoint::Token, Fault::Status(400));
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], false);
    assert_eq!(
        out["completed"]["errorKind"], "tokenExchangeFailed",
        "{out}"
    );
    assert_eq!(status_of(&mut c, "kit").await["authStatus"], "notLoggedIn");
}

#[tokio::test]
async fn error_on_the_callback_ends_the_login_with_that_error() {
    let kit = Kit::start(KitConfig {
        auto_approve: false,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let r = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let url = r["authorizationUrl"].as_str().unwrap().to_string();
    // The browser shows the consent page; the user denies.
    let consent = browser_visit(&url).await.unwrap();
    assert_eq!(consent.status, 200);
    let denied = kit.approve_pending(false).expect("a consent page waits");
    let page = reqwest::get(&denied).await.unwrap();
    // "Access declined" (docs/login.md, the pages the browser shows).
    assert_eq!(page.status(), 403);
    let page_body = page.text().await.unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false);
    assert_eq!(done["errorKind"], "authorizationFailed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("access_denied"),
        "{done}"
    );
    assert!(page_body.contains("access_denied"), "{page_body}");
}

#[tokio::test]
async fn login_times_out_cancels_and_supersedes_with_one_completion_each() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;

    c.ok(
        "mcpServer/oauth/login",
        json!({"name": "kit", "timeoutSecs": 1}),
    )
    .await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["errorKind"], "loginTimedOut", "{done}");

    c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(
        c.ok("mcpServer/oauth/cancel", json!({"name": "kit"})).await,
        json!({"cancelled": true})
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["errorKind"], "loginCancelled", "{done}");
    assert_eq!(
        c.ok("mcpServer/oauth/cancel", json!({"name": "kit"})).await,
        json!({"cancelled": false})
    );

    c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let second = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["errorKind"], "loginSuperseded", "{done}");
    browser_visit(second["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    // Exactly one completion per login: nothing else is pending.
    c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(c.backlog_count("mcpServer/oauthLogin/completed"), 0);
}

#[tokio::test]
async fn two_servers_log_in_at_once_on_one_fixed_port() {
    let a = Kit::start(KitConfig::default()).await.unwrap();
    let b = Kit::start(KitConfig::default()).await.unwrap();
    let port = free_port();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "mcp_oauth_callback_port = {port}\n{}{}",
            server_config("a", &a, ""),
            server_config("b", &b, "")
        )),
    );
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    let ra = c.ok("mcpServer/oauth/login", json!({"name": "a"})).await;
    let rb = c.ok("mcpServer/oauth/login", json!({"name": "b"})).await;
    assert!(
        ra["redirectUri"]
            .as_str()
            .unwrap()
            .contains(&format!(":{port}/callback/"))
    );
    assert!(
        rb["redirectUri"]
            .as_str()
            .unwrap()
            .contains(&format!(":{port}/callback/"))
    );
    assert_ne!(ra["redirectUri"], rb["redirectUri"]);
    // A stray request does not disturb either flow.
    let stray = reqwest::get(format!("http://127.0.0.1:{port}/favicon.ico"))
        .await
        .unwrap();
    assert_eq!(stray.status(), 404);
    let (pa, pb) = tokio::join!(
        browser_visit(ra["authorizationUrl"].as_str().unwrap()),
        browser_visit(rb["authorizationUrl"].as_str().unwrap())
    );
    assert_eq!(pa.unwrap().status, 200);
    assert_eq!(pb.unwrap().status, 200);
    let mut names = [
        c.notification("mcpServer/oauthLogin/completed").await,
        c.notification("mcpServer/oauthLogin/completed").await,
    ];
    names.sort_by_key(|n| n["name"].as_str().unwrap().to_string());
    assert_eq!(names[0]["name"], "a");
    assert_eq!(names[0]["success"], true);
    assert_eq!(names[1]["name"], "b");
    assert_eq!(names[1]["success"], true);
    // The port stays open a while for late redirects (docs/login.md), and is free again as
    // soon as the daemon shuts down.
    let late = reqwest::get(format!("http://127.0.0.1:{port}/favicon.ico"))
        .await
        .unwrap();
    assert_eq!(late.status(), 404);
    server.shutdown().await;
    wait_until_bindable(port).await;
}

#[tokio::test]
async fn a_slow_login_does_not_block_other_requests() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    kit.faults()
        .set(Endpoint::Prm, Fault::Slow(Duration::from_secs(3)));
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    c.send(&json!({"jsonrpc": "2.0", "id": 100, "method": "mcpServer/oauth/login", "params": {"name": "kit"}})).await;
    c.send(&json!({"jsonrpc": "2.0", "id": 101, "method": "mcpServerStatus/list"}))
        .await;
    // The status reply arrives first although it was sent second.
    let first = c.read().await;
    assert_eq!(first["id"], 101, "{first}");
    let login = c.response(100).await;
    assert!(login["result"]["authorizationUrl"].is_string(), "{login}");
}

#[tokio::test]
async fn pasted_redirect_url_completes_the_login() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let r = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let location = authorize_redirect_location(r["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    // The browser could not reach the loopback listener; the user pastes the URL instead.
    let e = c
        .err(
            "mcpServer/oauth/complete",
            json!({"name": "kit", "callbackUrl": "https://example.com/elsewhere?code=x"}),
        )
        .await;
    assert_eq!(kind(&e), "authorizationFailed", "{e}");
    assert_eq!(
        c.ok(
            "mcpServer/oauth/complete",
            json!({"name": "kit", "callbackUrl": location})
        )
        .await,
        json!({})
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(status_of(&mut c, "kit").await["authStatus"], "loggedIn");
    let e = c
        .err(
            "mcpServer/oauth/complete",
            json!({"name": "kit", "callbackUrl": "http://127.0.0.1/x"}),
        )
        .await;
    assert_eq!(kind(&e), "noPendingLogin", "{e}");
}

#[tokio::test]
async fn unknown_and_stdio_servers_are_refused() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config("[mcp_servers.local]\ncommand = \"npx\"\n"),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let e = c
        .err("mcpServer/oauth/login", json!({"name": "nope"}))
        .await;
    assert_eq!(kind(&e), "serverNotFound");
    let e = c
        .err("mcpServer/oauth/login", json!({"name": "local"}))
        .await;
    assert_eq!(kind(&e), "notOAuthServer");
    let e = c
        .err(
            "mcpServer/oauth/login",
            json!({"name": "local", "timeoutSecs": 0}),
        )
        .await;
    assert_eq!(e["code"], -32602);
}

#[tokio::test]
async fn taken_fixed_port_is_a_clear_error() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let extra = format!("[mcp_servers.kit.oauth]\ncallback_port = {port}\n");
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(kind(&e), "callbackListenerFailed", "{e}");
    assert!(e["message"].as_str().unwrap().contains(&port.to_string()));
}

#[tokio::test]
async fn shutdown_ends_pending_logins_and_frees_the_port() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let port = free_port();
    let extra = format!("[mcp_servers.kit.oauth]\ncallback_port = {port}\n");
    let (_home, server, mut c) = daemon_for(&kit, "kit", &extra).await;
    c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    server.shutdown().await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false);
    assert_eq!(done["errorKind"], "shuttingDown", "{done}");
    wait_until_bindable(port).await;
}

/// The redirect URI the daemon uses for the kit's server, on any loopback port (RFC 8252).
fn kit_redirect() -> String {
    // The kit's MCP URL is not known before it starts: the kit fills in the callback id,
    // and compares loopback redirect URIs without the port.
    format!(
        "http://127.0.0.1/callback/{}",
        mcp_app_server_testkit::CALLBACK_ID_PLACEHOLDER
    )
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn wait_until_bindable(port: u16) {
    for _ in 0..200 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("port {port} still taken");
}

#[tokio::test]
async fn the_refresh_lock_is_made_while_the_browser_is_open() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, server, mut c) = daemon_for(&kit, "a", "").await;
    let locks = mcp_app_server::home::Home::at(home.path())
        .state_dir
        .join("locks");
    let lock_files = || {
        std::fs::read_dir(&locks)
            .map(|d| d.flatten().count())
            .unwrap_or(0)
    };
    let r = c.ok("mcpServer/oauth/login", json!({"name": "a"})).await;
    // Before the user comes back, the lock the code exchange takes exists.
    let mut waited = 0;
    while lock_files() == 0 && waited < 400 {
        tokio::time::sleep(Duration::from_millis(25)).await;
        waited += 1;
    }
    assert_eq!(lock_files(), 1, "no lock file while the browser is open");
    let url = r["authorizationUrl"].as_str().unwrap();
    assert_eq!(browser_visit(url).await.unwrap().status, 200);
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(lock_files(), 1, "the same lock file is used");
    server.shutdown().await;
}

//! Interop: the daemon logs in, refreshes and revokes against OAuth and MCP servers written
//! by others (tests/interop: oidc-provider and the MCP TypeScript SDK demo server), driven
//! only through its JSON-RPC API. The test kit's server checks details; these prove that the
//! daemon works with real implementations. Needs Node >= 20 and npm; the Node packages are
//! installed on first use by `.ci/interop-setup.sh` (instant when already installed);
//! `MCP_APP_SERVER_SKIP_NODE=1` skips these tests (suite/node.rs).

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_app_server::rpc::AppServer;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::harness::{self, MemClient, write_config};
use super::node::{node_ready, repo_root};

/// Node loads oidc-provider in about a second; a loaded CI machine may need much more.
const PEER_START: Duration = Duration::from_secs(60);
pub(crate) const BROWSER: Duration = Duration::from_secs(30);
const PEER_STOP: Duration = Duration::from_secs(10);

/// The preregistered confidential client of `oidc-server.mjs` (README: its defaults).
pub(crate) const PRE_CLIENT_ID: &str = "preregistered-confidential";
pub(crate) const PRE_CLIENT_SECRET: &str = "s3cret-for-tests";

pub(crate) fn interop_dir() -> PathBuf {
    repo_root().join("tests").join("interop")
}

/// One running peer process. Dropping it sends SIGTERM (and, as a backstop, tokio's
/// kill-on-drop SIGKILL); its stdin pipe closing also ends it (`--exit-with-stdin`).
pub(crate) struct Peer {
    script: &'static str,
    child: Child,
    ready: Value,
    log: Arc<Mutex<String>>,
    _stdin: Option<ChildStdin>,
    _stdout: BufReader<ChildStdout>,
}

impl Peer {
    pub(crate) async fn start(script: &'static str, env: &[(&str, &str)]) -> Peer {
        let mut child = Command::new("node")
            .arg(interop_dir().join(script))
            .arg("--exit-with-stdin")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e}"));
        // The peers log to stderr; keep it to show when something fails.
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = stderr.next_line().await {
                let mut log = sink.lock().unwrap();
                if log.len() < 64 << 10 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = tokio::time::timeout(PEER_START, stdout.read_line(&mut line)).await;
        if !matches!(read, Ok(Ok(n)) if n > 0) {
            // Let the last stderr lines arrive.
            tokio::time::sleep(Duration::from_millis(200)).await;
            panic!(
                "{script} printed no ready line ({read:?}); its log:\n{}",
                log.lock().unwrap()
            );
        }
        let ready: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{script} ready line is not JSON ({e}): {line}"));
        Peer {
            script,
            _stdin: child.stdin.take(),
            child,
            ready,
            log,
            _stdout: stdout,
        }
    }

    async fn oidc(env: &[(&str, &str)]) -> Peer {
        Peer::start("oidc-server.mjs", env).await
    }

    async fn sdk() -> Peer {
        Peer::start("sdk-server.mjs", &[]).await
    }

    pub(crate) fn get(&self, field: &str) -> String {
        self.ready[field]
            .as_str()
            .unwrap_or_else(|| panic!("{} ready line lacks {field}: {}", self.script, self.ready))
            .to_string()
    }

    pub(crate) fn mcp_url(&self) -> String {
        self.get("mcpUrl")
    }

    pub(crate) fn issuer(&self) -> String {
        self.get("issuer")
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn terminate(&self) {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }

    /// SIGTERM, and the peer must exit with 0 (its documented contract).
    pub(crate) async fn stop(mut self) {
        self.terminate();
        let status = tokio::time::timeout(PEER_STOP, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit on SIGTERM", self.script))
            .unwrap();
        assert!(
            status.success(),
            "{} exited with {status}; its log:\n{}",
            self.script,
            self.log()
        );
    }
}

impl Drop for Peer {
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.terminate();
        }
        if std::thread::panicking() {
            // Captured by the test harness and shown with the failure.
            eprintln!("--- {} log ---\n{}", self.script, self.log());
        }
    }
}

/// Opens `url` in the headless browser, which follows the authorization server's redirects
/// (with cookies) to the daemon's loopback callback and GETs it.
async fn browse(url: &str) -> Value {
    let out = tokio::time::timeout(
        BROWSER,
        Command::new("node")
            .arg(interop_dir().join("browser.mjs"))
            .arg(url)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("browser.mjs finishes")
    .expect("browser.mjs runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser.mjs failed on the authorization URL ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("browser.mjs output ({e}): {stdout}"))
}

/// A daemon in memory with the file credential store, so tests can read what it stored.
struct Daemon {
    home: tempfile::TempDir,
    _server: AppServer,
    c: MemClient,
}

impl Daemon {
    async fn start(servers: &str) -> Daemon {
        let home = tempfile::tempdir().unwrap();
        write_config(
            home.path(),
            &format!("mcp_oauth_credentials_store = \"file\"\n{servers}"),
        );
        let (server, mut c) = harness::start(home.path());
        // A frontend that sends proofs: oidc-provider's tokens are then DPoP-bound.
        c.initialize_dpop().await;
        Daemon {
            home,
            _server: server,
            c,
        }
    }

    /// `mcpServer/oauth/login`, the browser, and a successful completion.
    async fn login(&mut self, name: &str) -> Value {
        let start = self
            .c
            .ok("mcpServer/oauth/login", json!({"name": name}))
            .await;
        let url = start["authorizationUrl"].as_str().unwrap().to_string();
        let page = browse(&url).await;
        let done = self.c.notification("mcpServer/oauthLogin/completed").await;
        assert_eq!(done["name"], name, "{done}");
        assert_eq!(done["success"], true, "login failed: {done}; page: {page}");
        assert_eq!(page["status"], 200, "the daemon's callback page: {page}");
        start
    }

    async fn status(&mut self, name: &str) -> Value {
        let list = self.c.ok("mcpServerStatus/list", json!({})).await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} not listed: {list}"))
    }

    async fn token(&mut self, name: &str, min_validity_secs: u32) -> Value {
        self.c
            .ok(
                "mcpServer/oauth/token",
                json!({"name": name, "minValiditySecs": min_validity_secs}),
            )
            .await
    }

    /// The stored entry (file backend), to look at what only the daemon sees: the refresh
    /// token and the client.
    fn stored(&self, name: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.home.path().join("credentials.json")).ok()?;
        let doc: Value = serde_json::from_str(&text).unwrap();
        doc["credentials"]
            .as_object()?
            .values()
            .find(|c| c["serverName"] == name)
            .cloned()
    }

    fn stored_refresh_token(&self, name: &str) -> String {
        let entry = self.stored(name).expect("credentials stored");
        entry["refreshToken"]
            .as_str()
            .expect("a refresh token stored")
            .to_string()
    }
}

fn server_config(name: &str, url: &str, extra: &str) -> String {
    format!("[mcp_servers.{name}]\nurl = \"{url}\"\n{extra}\n")
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// POSTs one JSON-RPC message to an MCP endpoint, as an MCP client would.
async fn mcp_post(url: &str, token: Option<&str>, message: Value) -> reqwest::Response {
    let mut req = http()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(&message);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    req.send().await.expect("the MCP endpoint answers")
}

fn initialize_message() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "interop-test", "version": "1"}}})
}

/// `tools/call whoami` at the oidc-server resource: `Ok({sub, client_id, scope})` of the
/// token, or the HTTP status it was refused with.
async fn whoami(mcp_url: &str, token: &str) -> Result<Value, u16> {
    let res = mcp_post(
        mcp_url,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
               "params": {"name": "whoami", "arguments": {}}}),
    )
    .await;
    let status = res.status().as_u16();
    if status != 200 {
        return Err(status);
    }
    let body: Value = res.json().await.unwrap();
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("whoami answer: {body}"));
    Ok(serde_json::from_str(text).unwrap())
}

/// RFC 7662 introspection at oidc-provider, as the preregistered confidential client (which
/// may introspect any client's opaque tokens).
async fn introspect(issuer: &str, token: &str, hint: &str) -> Value {
    let res = http()
        .post(format!("{issuer}/token/introspection"))
        .basic_auth(PRE_CLIENT_ID, Some(PRE_CLIENT_SECRET))
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// A refresh grant sent by the test itself, as the public client `client_id`.
async fn refresh_as_public_client(issuer: &str, client_id: &str, refresh_token: &str) -> Value {
    let res = http()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
        ])
        .send()
        .await
        .unwrap();
    json!({"status": res.status().as_u16(), "body": res.json::<Value>().await.unwrap_or_default()})
}

fn access_token(token: &Value) -> String {
    token["accessToken"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn interop_sdk_demo_server_dcr_login_and_authorized_session() {
    if !node_ready("interop_sdk_demo_server_dcr_login_and_authorized_session") {
        return;
    }
    let sdk = Peer::sdk().await;
    let mcp_url = sdk.mcp_url();
    assert!(mcp_url.starts_with("http://localhost:"), "{mcp_url}");
    let mut d = Daemon::start(&server_config("sdk", &mcp_url, "")).await;

    // Without a token the SDK server challenges; that is where discovery starts.
    let res = mcp_post(&mcp_url, None, initialize_message()).await;
    assert_eq!(res.status(), 401);

    d.login("sdk").await;
    let s = d.status("sdk").await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["registration"], "dcr", "{s}");
    assert_eq!(s["issuer"], sdk.issuer(), "{s}");
    let stored = d.stored("sdk").unwrap();
    assert_eq!(stored["resource"], mcp_url.as_str());

    let token = d.token("sdk", 60).await;
    assert_eq!(token["tokenType"], "Bearer", "{token}");
    let res = mcp_post(&mcp_url, Some(&access_token(&token)), initialize_message()).await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("mcp-session-id"));
    let body = res.text().await.unwrap();
    assert!(body.contains("\"serverInfo\""), "{body}");

    sdk.stop().await;
}

#[tokio::test]
async fn interop_oidc_provider_dcr_login_and_authorized_call() {
    if !node_ready("interop_oidc_provider_dcr_login_and_authorized_call") {
        return;
    }
    let oidc = Peer::oidc(&[]).await;
    let mcp_url = oidc.mcp_url();
    let mut d = Daemon::start(&server_config("oidc", &mcp_url, "")).await;
    let start = d.login("oidc").await;
    assert!(
        start["redirectUri"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"),
        "{start}"
    );

    let s = d.status("oidc").await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["registration"], "dcr", "{s}");
    assert_eq!(s["issuer"], oidc.issuer(), "{s}");
    let stored = d.stored("oidc").unwrap();
    let client_id = stored["client"]["clientId"].as_str().unwrap().to_string();
    assert_ne!(client_id, PRE_CLIENT_ID);
    assert!(
        stored["refreshToken"].is_string(),
        "a public DCR client asked for refresh"
    );

    let token = d.token("oidc", 60).await;
    // oidc-provider offers DPoP and this frontend declared it sends proofs: the daemon's
    // proof was accepted and the token is bound.
    assert_eq!(token["tokenType"], "DPoP", "{token}");
    assert!(stored["dpopKey"].is_string());
    let me = whoami(&mcp_url, &access_token(&token)).await.unwrap();
    assert_eq!(me["client_id"], client_id.as_str(), "{me}");
    assert_eq!(me["sub"], "interop-user", "{me}");
    let scopes: Vec<&str> = me["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        scopes.contains(&"mcp:read") && scopes.contains(&"mcp:write"),
        "{me}"
    );
    // The resource really checks tokens.
    assert_eq!(whoami(&mcp_url, "forged").await, Err(401));

    oidc.stop().await;
}

#[tokio::test]
#[allow(unsafe_code)]
async fn interop_oidc_provider_preregistered_confidential_client() {
    if !node_ready("interop_oidc_provider_preregistered_confidential_client") {
        return;
    }
    const SECRET_VAR: &str = "MCP_INTEROP_TEST_PRE_SECRET_LOGIN";
    // SAFETY: a variable name no other test or thread reads or writes.
    unsafe { std::env::set_var(SECRET_VAR, PRE_CLIENT_SECRET) };
    let oidc = Peer::oidc(&[]).await;
    let mcp_url = oidc.mcp_url();
    let extra = format!(
        "[mcp_servers.pre.oauth]\nclient_id = \"{PRE_CLIENT_ID}\"\nclient_secret_env_var = \"{SECRET_VAR}\"\n"
    );
    let mut d = Daemon::start(&server_config("pre", &mcp_url, &extra)).await;
    d.login("pre").await;

    let s = d.status("pre").await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["registration"], "preregistered", "{s}");
    let first = d.token("pre", 60).await;
    let me = whoami(&mcp_url, &access_token(&first)).await.unwrap();
    assert_eq!(me["client_id"], PRE_CLIENT_ID, "{me}");

    // Refresh as the confidential client: a new access token; oidc-provider does not rotate
    // a confidential client's refresh token, and the daemon keeps it.
    let refresh_token = d.stored_refresh_token("pre");
    let second = d.token("pre", 7200).await;
    assert_ne!(access_token(&second), access_token(&first));
    assert_eq!(d.stored_refresh_token("pre"), refresh_token);
    let me = whoami(&mcp_url, &access_token(&second)).await.unwrap();
    assert_eq!(me["client_id"], PRE_CLIENT_ID, "{me}");

    oidc.stop().await;
}

#[tokio::test]
async fn interop_oidc_provider_refresh_rotation() {
    if !node_ready("interop_oidc_provider_refresh_rotation") {
        return;
    }
    let oidc = Peer::oidc(&[("ACCESS_TOKEN_TTL", "5")]).await;
    let mcp_url = oidc.mcp_url();
    // oidc-provider rotates only refresh tokens that are not bound to a DPoP key (a bound
    // one needs no rotation): this test is about rotation, so the tokens stay Bearer.
    let mut d = Daemon::start(&server_config(
        "oidc",
        &mcp_url,
        "[mcp_servers.oidc.oauth]\ndpop = false\n",
    ))
    .await;
    d.login("oidc").await;
    let login_token = d.token("oidc", 0).await;
    let rt0 = d.stored_refresh_token("oidc");
    let client_id = d.stored("oidc").unwrap()["client"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();

    // The access token lives 5 s: asking for an hour of validity forces a refresh, twice.
    let first = d.token("oidc", 3600).await;
    let rt1 = d.stored_refresh_token("oidc");
    let second = d.token("oidc", 3600).await;
    let rt2 = d.stored_refresh_token("oidc");
    assert_ne!(rt1, rt0, "the first refresh rotates the refresh token");
    assert_ne!(rt2, rt1, "the second refresh rotates it again");
    assert_ne!(access_token(&first), access_token(&login_token));
    assert_ne!(access_token(&second), access_token(&first));
    let me = whoami(&mcp_url, &access_token(&second)).await.unwrap();
    assert_eq!(me["client_id"], client_id.as_str(), "{me}");

    // Two refreshes asked at once run one after the other: reusing a rotated-away refresh
    // token would make oidc-provider revoke the grant.
    d.c.send(
        &json!({"jsonrpc": "2.0", "id": 9001, "method": "mcpServer/oauth/token",
                     "params": {"name": "oidc", "minValiditySecs": 3600}}),
    )
    .await;
    d.c.send(
        &json!({"jsonrpc": "2.0", "id": 9002, "method": "mcpServer/oauth/token",
                     "params": {"name": "oidc", "minValiditySecs": 3600}}),
    )
    .await;
    let a = d.c.response(9001).await;
    let b = d.c.response(9002).await;
    assert!(a["result"]["accessToken"].is_string(), "{a}");
    assert!(b["result"]["accessToken"].is_string(), "{b}");
    let rt3 = d.stored_refresh_token("oidc");
    assert!(rt3 != rt2, "concurrent refreshes rotated the token");
    assert!(
        whoami(&mcp_url, b["result"]["accessToken"].as_str().unwrap())
            .await
            .is_ok()
    );

    // The rotated-away token is dead: oidc-provider refuses it (and so revokes the grant),
    // after which the daemon's next refresh fails and asks for a new login.
    let reuse = refresh_as_public_client(&oidc.issuer(), &client_id, &rt0).await;
    assert_eq!(reuse["status"], 400, "{reuse}");
    assert_eq!(reuse["body"]["error"], "invalid_grant", "{reuse}");
    let e =
        d.c.err(
            "mcpServer/oauth/token",
            json!({"name": "oidc", "minValiditySecs": 3600}),
        )
        .await;
    assert_eq!(e["data"]["kind"], "reauthenticationRequired", "{e}");
    assert_eq!(
        d.status("oidc").await["authStatus"],
        "reauthenticationRequired"
    );

    oidc.stop().await;
}

#[tokio::test]
async fn interop_oidc_provider_logout_revokes_the_grant() {
    if !node_ready("interop_oidc_provider_logout_revokes_the_grant") {
        return;
    }
    let oidc = Peer::oidc(&[]).await;
    let issuer = oidc.issuer();
    let mcp_url = oidc.mcp_url();
    let mut d = Daemon::start(&server_config("oidc", &mcp_url, "")).await;
    d.login("oidc").await;
    let refresh_token = d.stored_refresh_token("oidc");
    let client_id = d.stored("oidc").unwrap()["client"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();
    let before = introspect(&issuer, &refresh_token, "refresh_token").await;
    assert_eq!(before["active"], true, "{before}");

    let out =
        d.c.ok(
            "mcpServer/oauth/logout",
            json!({"name": "oidc", "revoke": true}),
        )
        .await;
    assert_eq!(out["removed"], true, "{out}");
    assert_eq!(out["revoked"], true, "{out}");
    assert!(out.get("revocationError").is_none(), "{out}");

    let after = introspect(&issuer, &refresh_token, "refresh_token").await;
    assert_eq!(after["active"], false, "{after}");
    let reuse = refresh_as_public_client(&issuer, &client_id, &refresh_token).await;
    assert_eq!(reuse["body"]["error"], "invalid_grant", "{reuse}");
    assert_eq!(d.status("oidc").await["authStatus"], "notLoggedIn");
    assert!(d.stored("oidc").is_none());

    oidc.stop().await;
}

/// With opaque access tokens the MCP resource asks the issuer about each token, so a
/// revoked one is refused there at once (JWTs stay valid until they expire).
#[tokio::test]
#[allow(unsafe_code)]
async fn interop_oidc_provider_logout_revokes_an_opaque_access_token() {
    if !node_ready("interop_oidc_provider_logout_revokes_an_opaque_access_token") {
        return;
    }
    const SECRET_VAR: &str = "MCP_INTEROP_TEST_PRE_SECRET_REVOKE";
    // SAFETY: a variable name no other test or thread reads or writes.
    unsafe { std::env::set_var(SECRET_VAR, PRE_CLIENT_SECRET) };
    let oidc = Peer::oidc(&[("ACCESS_TOKEN_FORMAT", "opaque")]).await;
    let mcp_url = oidc.mcp_url();
    // The peer's resource server takes opaque tokens as Bearer only, so a DPoP-bound one
    // would be refused there: this server is configured without DPoP.
    let extra = format!(
        "[mcp_servers.pre.oauth]\nclient_id = \"{PRE_CLIENT_ID}\"\nclient_secret_env_var = \"{SECRET_VAR}\"\ndpop = false\n"
    );
    let mut d = Daemon::start(&server_config("pre", &mcp_url, &extra)).await;
    d.login("pre").await;
    let token = access_token(&d.token("pre", 60).await);
    assert_ne!(token.split('.').count(), 3, "an opaque token, not a JWT");
    let me = whoami(&mcp_url, &token).await.unwrap();
    assert_eq!(me["client_id"], PRE_CLIENT_ID, "{me}");

    let out =
        d.c.ok(
            "mcpServer/oauth/logout",
            json!({"name": "pre", "revoke": true}),
        )
        .await;
    assert_eq!(out["removed"], true, "{out}");
    assert_eq!(out["revoked"], true, "{out}");
    assert_eq!(whoami(&mcp_url, &token).await, Err(401));
    let gone = introspect(&oidc.issuer(), &token, "access_token").await;
    assert_eq!(gone["active"], false, "{gone}");
    assert_eq!(d.status("pre").await["authStatus"], "notLoggedIn");
    let e =
        d.c.err("mcpServer/oauth/token", json!({"name": "pre"}))
            .await;
    assert_eq!(e["data"]["kind"], "notLoggedIn", "{e}");

    oidc.stop().await;
}

/// Plays the user of a device login at oidc-provider (`device-user.mjs`): opens the link
/// with the code, submits and confirms it (or aborts, `deny`), through login and consent.
async fn device_user(verification_uri_complete: &str, deny: bool) -> Value {
    let mut command = Command::new("node");
    command.arg(interop_dir().join("device-user.mjs"));
    if deny {
        command.arg("--deny");
    }
    let out = tokio::time::timeout(
        BROWSER,
        command
            .arg(verification_uri_complete)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("device-user.mjs finishes")
    .expect("device-user.mjs runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "device-user.mjs output ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[tokio::test]
async fn interop_oidc_provider_device_login_approved_and_denied() {
    if !node_ready("interop_oidc_provider_device_login_approved_and_denied") {
        return;
    }
    let oidc = Peer::oidc(&[("DEVICE_FLOW", "1")]).await;
    let mcp_url = oidc.mcp_url();
    let mut d = Daemon::start(&server_config("oidc", &mcp_url, "")).await;
    let start =
        d.c.ok(
            "mcpServer/oauth/login",
            json!({"name": "oidc", "flow": "device"}),
        )
        .await;
    assert_eq!(start["flow"], "device", "{start}");
    assert!(
        start["verificationUri"]
            .as_str()
            .unwrap()
            .starts_with(&oidc.issuer()),
        "{start}"
    );
    let complete = start["verificationUriComplete"].as_str().unwrap();
    let page = device_user(complete, false).await;
    assert_eq!(page["status"], 200, "{page}");
    let done = d.c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(
        done["success"], true,
        "{done}; the user's last page: {page}"
    );

    let s = d.status("oidc").await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["registration"], "dcr", "{s}");
    let stored = d.stored("oidc").unwrap();
    let client_id = stored["client"]["clientId"].as_str().unwrap().to_string();
    let token = d.token("oidc", 60).await;
    // This frontend sends proofs: every poll carried one, and the token is bound.
    assert_eq!(token["tokenType"], "DPoP", "{token}");
    let me = whoami(&mcp_url, &access_token(&token)).await.unwrap();
    assert_eq!(me["client_id"], client_id.as_str(), "{me}");
    assert_eq!(me["sub"], "interop-user", "{me}");
    assert!(
        me["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "mcp:read"),
        "{me}"
    );

    // The user aborts at the confirmation: the login ends as denied, the tokens stay.
    let again =
        d.c.ok(
            "mcpServer/oauth/login",
            json!({"name": "oidc", "flow": "device"}),
        )
        .await;
    device_user(again["verificationUriComplete"].as_str().unwrap(), true).await;
    let done = d.c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "authorizationFailed", "{done}");
    assert_eq!(d.status("oidc").await["authStatus"], "loggedIn");

    oidc.stop().await;
}

//! The commands for people, through the real binary: login (browser, paste-back, failures),
//! status, logout, callback-url, and connect (login on 401, step-up on 403, event streams
//! and sessions).

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use mcp_app_server_testkit::{Kit, KitConfig, authorize_redirect_location, callback_id_for};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use super::harness::write_config;
use super::login::{file_store_config, free_port, server_config};

const WAIT: Duration = Duration::from_secs(60);

/// The binary with a home of its own and nothing from the environment that would open a
/// real browser or change how it opens one.
fn command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"));
    c.args(args)
        .env("MCP_APP_SERVER_HOME", home)
        .env_remove("BROWSER")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("MCP_APP_SERVER_BROWSER")
        .env_remove("MCP_APP_SERVER_CLIENT_METADATA_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

pub(super) async fn run(home: &Path, args: &[&str]) -> Output {
    let child = command(home, args).spawn().unwrap();
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the command finished")
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub(super) fn kit_home(kit: &Kit, extra_servers: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!("{}{extra_servers}", server_config("kit", kit, ""))),
    );
    home
}

pub(super) async fn status_json(home: &Path) -> Vec<Value> {
    let out = run(home, &["status", "--json"]).await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}

fn entry<'a>(list: &'a [Value], name: &str) -> &'a Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list:?}"))
}

/// A running login: its stdout so far, read line by line.
pub(super) struct Running {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
    seen: Vec<String>,
}

impl Running {
    pub(super) fn start(home: &Path, args: &[&str], configure: impl FnOnce(&mut Command)) -> Self {
        let mut c = command(home, args);
        c.stdin(Stdio::piped());
        configure(&mut c);
        let mut child = c.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            child,
            stdout,
            seen: Vec::new(),
        }
    }

    /// Reads stdout until the printed authorization URL.
    pub(super) async fn authorization_url(&mut self) -> String {
        loop {
            let line = tokio::time::timeout(WAIT, self.stdout.next_line())
                .await
                .expect("the login printed its URL")
                .unwrap()
                .unwrap_or_else(|| panic!("stdout ended early: {:?}", self.seen));
            self.seen.push(line.clone());
            let t = line.trim();
            if (t.starts_with("http://") || t.starts_with("https://")) && t.contains("/authorize?")
            {
                return t.to_string();
            }
        }
    }

    pub(super) async fn paste(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        stdin.flush().await.unwrap();
    }

    /// Waits for the exit; answers (success, all stdout, stderr).
    pub(super) async fn finish(mut self) -> (bool, String, String) {
        while let Some(line) = tokio::time::timeout(WAIT, self.stdout.next_line())
            .await
            .expect("the login ended")
            .unwrap()
        {
            self.seen.push(line);
        }
        let out = tokio::time::timeout(WAIT, self.child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        (
            out.status.success(),
            self.seen.join("\n"),
            text(&out.stderr),
        )
    }
}

#[tokio::test]
async fn login_no_browser_completes_from_a_pasted_redirect() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = kit_home(&kit, "");
    let mut login = Running::start(home.path(), &["login", "kit", "--no-browser"], |_| {});
    let url = login.authorization_url().await;
    assert!(url.starts_with(&kit.issuer()), "{url}");
    let redirect = authorize_redirect_location(&url).await.unwrap();
    // Something that is not the redirect is refused and the login keeps waiting.
    login
        .paste("https://example.com/somewhere-else?code=x")
        .await;
    login.paste(&redirect).await;
    let (ok, stdout, stderr) = login.finish().await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("Not accepted"), "{stderr}");
    assert!(stdout.contains("Logged in to `kit`"), "{stdout}");
    assert!(stdout.contains("refresh token: yes"), "{stdout}");
    // Nothing secret on the terminal.
    let creds = std::fs::read(home.path().join("credentials.json")).unwrap();
    let stored: Value = serde_json::from_slice(&creds).unwrap();
    let entry_value = stored["credentials"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    for secret in ["accessToken", "refreshToken"] {
        let token = entry_value[secret].as_str().unwrap();
        assert!(
            !stdout.contains(token) && !stderr.contains(token),
            "{secret} shown"
        );
    }
    let code = redirect
        .split("code=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    assert!(!stdout.contains(code) && !stderr.contains(code));

    let list = status_json(home.path()).await;
    assert_eq!(entry(&list, "kit")["authStatus"], "loggedIn");
    assert_eq!(kit.counters().authorize, 1);
}

/// Two logins from the terminal use the same sticky callback port, so the second reuses the
/// registration the first made instead of registering a new client at the server.
#[tokio::test]
async fn a_second_cli_login_reuses_the_port_and_the_registration() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = kit_home(&kit, "");
    let mut redirect_uris = Vec::new();
    for _ in 0..2 {
        let mut login = Running::start(home.path(), &["login", "kit", "--no-browser"], |_| {});
        let url = login.authorization_url().await;
        let query: std::collections::HashMap<String, String> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        redirect_uris.push(query["redirect_uri"].clone());
        let redirect = authorize_redirect_location(&url).await.unwrap();
        login.paste(&redirect).await;
        let (ok, stdout, stderr) = login.finish().await;
        assert!(ok, "{stdout}\n{stderr}");
    }
    assert_eq!(redirect_uris[0], redirect_uris[1]);
    assert_eq!(kit.counters().register, 1);
    assert_eq!(kit.counters().authorize, 2);
}

#[cfg(unix)]
#[tokio::test]
async fn login_opens_browser_env_with_the_whole_url_and_accepts_a_paste() {
    use std::os::unix::fs::PermissionsExt;
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = kit_home(&kit, "");
    // A "browser" that only records what it was asked to open.
    let script = home.path().join("browser.sh");
    let opened = home.path().join("opened.txt");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", opened.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut login = Running::start(home.path(), &["login", "kit"], |c| {
        c.env("BROWSER", &script);
    });
    let url = login.authorization_url().await;
    let mut recorded = String::new();
    for _ in 0..200 {
        recorded = std::fs::read_to_string(&opened).unwrap_or_default();
        if !recorded.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One argument, not cut at `&`.
    assert_eq!(recorded, url);
    assert!(url.matches('&').count() >= 5, "{url}");
    login
        .paste(&authorize_redirect_location(&url).await.unwrap())
        .await;
    let (ok, stdout, stderr) = login.finish().await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("Opened the browser"), "{stdout}");
    assert!(stdout.contains("Logged in to `kit`"), "{stdout}");
}

#[tokio::test]
async fn login_failures_exit_non_zero_with_a_message() {
    let closed = free_port();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "[mcp_servers.down]\nurl = \"http://127.0.0.1:{closed}/mcp\"\n[mcp_servers.local]\ncommand = \"x\"\n"
        )),
    );

    let out = run(home.path(), &["login", "nope", "--no-browser"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("no MCP server named `nope`"), "{err}");
    assert!(err.contains("--url"), "{err}");

    let out = run(home.path(), &["login", "down", "--no-browser"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("login to `down` failed"), "{err}");
    assert!(err.contains("discovery failed"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{closed}")), "{err}");

    let out = run(home.path(), &["login", "local"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("stdio server"));

    let out = run(home.path(), &["login"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--url"));

    // logout has no --url: its advice names what works.
    let out = run(home.path(), &["logout", "nosuch"]).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = text(&out.stderr);
    assert!(err.contains("no MCP server named `nosuch`"), "{err}");
    assert!(
        !err.contains("--url") && err.contains("mcp-app-server status"),
        "{err}"
    );
}

#[tokio::test]
async fn status_table_and_json_then_logout_with_revocation() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = kit_home(
        &kit,
        "[mcp_servers.other]\nurl = \"https://other.example.com/mcp\"\n[mcp_servers.local]\ncommand = \"x\"\n",
    );
    let out = run(home.path(), &["status"]).await;
    assert!(out.status.success());
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("STATUS"),
        "{table}"
    );
    let kit_line = lines.iter().find(|l| l.starts_with("kit ")).unwrap();
    assert!(kit_line.contains("not logged in") && kit_line.contains(&kit.mcp_url()));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("local") && l.contains("stdio"))
    );

    // Log in (paste-back), then the status shows it.
    let mut login = Running::start(home.path(), &["login", "kit", "--no-browser"], |_| {});
    let url = login.authorization_url().await;
    login
        .paste(&authorize_redirect_location(&url).await.unwrap())
        .await;
    assert!(login.finish().await.0);

    let out = run(home.path(), &["status"]).await;
    let table = text(&out.stdout);
    let kit_line = table.lines().find(|l| l.starts_with("kit ")).unwrap();
    assert!(
        kit_line.contains("logged in") && !kit_line.contains("not logged in"),
        "{table}"
    );
    assert!(
        kit_line.contains("in 59m") || kit_line.contains("in 1h"),
        "{table}"
    );
    assert!(kit_line.contains("dcr"), "{table}");
    let list = status_json(home.path()).await;
    assert_eq!(list.len(), 3, "{list:?}");
    let kit_entry = entry(&list, "kit");
    assert_eq!(kit_entry["authStatus"], "loggedIn");
    assert_eq!(kit_entry["registration"], "dcr");
    assert_eq!(kit_entry["issuer"], kit.issuer());
    assert_eq!(entry(&list, "other")["authStatus"], "notLoggedIn");
    assert_eq!(entry(&list, "local")["authStatus"], "unsupported");

    let out = run(home.path(), &["logout", "kit", "--revoke"]).await;
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains("revoked"), "{out:?}");
    assert_eq!(kit.revoked_tokens().len(), 2, "refresh and access token");
    assert_eq!(
        entry(&status_json(home.path()).await, "kit")["authStatus"],
        "notLoggedIn"
    );

    let out = run(home.path(), &["logout", "kit"]).await;
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("no stored credentials"));
    let out = run(home.path(), &["logout", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no MCP server named `nope`"));
}

#[tokio::test]
async fn callback_url_prints_the_fixed_redirect_uri_or_says_how_to_fix_one() {
    let url = "https://mcp.example.com/mcp?tenant=one";
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "[mcp_servers.a]\nurl = \"{url}\"\n[mcp_servers.b]\nurl = \"{url}\"\n[mcp_servers.b.oauth]\ncallback_port = 9100\n"
        ),
    );
    let out = run(home.path(), &["callback-url", "a"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("mcp_oauth_callback_port = 8765")
            && err.contains("[mcp_servers.a.oauth]")
            && err.contains("callback_port"),
        "{err}"
    );
    let out = run(home.path(), &["callback-url", "b"]).await;
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        text(&out.stdout).trim(),
        "http://127.0.0.1:9100/callback/XuuuHAzzHOni"
    );

    write_config(
        home.path(),
        &format!("mcp_oauth_callback_port = 8765\n[mcp_servers.a]\nurl = \"{url}\"\n"),
    );
    let out = run(home.path(), &["callback-url", "a"]).await;
    assert_eq!(
        text(&out.stdout).trim(),
        "http://127.0.0.1:8765/callback/XuuuHAzzHOni"
    );
    assert_eq!(callback_id_for(url), "XuuuHAzzHOni");

    // A forwarded callback URL keeps its host and path; the callback id is appended.
    write_config(
        home.path(),
        &format!(
            "mcp_oauth_callback_port = 8765\nmcp_oauth_callback_url = \"https://dev.example.com/oauth/callback\"\n[mcp_servers.a]\nurl = \"{url}\"\n"
        ),
    );
    let out = run(home.path(), &["callback-url", "a"]).await;
    assert_eq!(
        text(&out.stdout).trim(),
        "https://dev.example.com/oauth/callback/XuuuHAzzHOni"
    );
    let out = run(home.path(), &["callback-url", "zzz"]).await;
    assert_eq!(out.status.code(), Some(1));
}

#[tokio::test]
async fn connect_logs_in_on_401_lists_and_calls_tools_then_reuses_the_token() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(""));
    let mcp = kit.mcp_url();
    let args = [
        "connect",
        "--browser-mode=http-get",
        "--call",
        "test-tool",
        mcp.as_str(),
    ];
    let out = run(home.path(), &args).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("needs authorization"), "{stdout}");
    assert!(stdout.contains("Tools (1): test-tool"), "{stdout}");
    assert!(stdout.contains("\"text\": \"ok\""), "{stdout}");
    assert_eq!(kit.counters().authorize, 1);

    // Stored under a name from the host, listed although not in config.toml.
    let port = url::Url::parse(&mcp).unwrap().port().unwrap();
    let name = format!("127-0-0-1-{port}");
    assert_eq!(
        entry(&status_json(home.path()).await, &name)["authStatus"],
        "loggedIn"
    );

    // The stored token is used: no second login.
    let out = run(home.path(), &args).await;
    assert!(out.status.success(), "{out:?}");
    assert!(!text(&out.stdout).contains("needs authorization"));
    assert_eq!(kit.counters().authorize, 1);

    // The server drops the token before its expiry: a refresh, not a new login.
    kit.expire_access_tokens();
    let out = run(home.path(), &args).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("refreshed it"), "{stdout}");
    assert_eq!(kit.counters().authorize, 1);

    // A login by name works for a server known only by URL.
    let mut login = Running::start(home.path(), &["login", &name, "--no-browser"], |_| {});
    let url = login.authorization_url().await;
    login
        .paste(&authorize_redirect_location(&url).await.unwrap())
        .await;
    let (ok, stdout, stderr) = login.finish().await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("Logged in to `{name}`")),
        "{stdout}"
    );

    let out = run(home.path(), &["logout", &name]).await;
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn connect_steps_up_scopes_on_403_insufficient_scope() {
    let kit = Kit::start(KitConfig {
        challenge_scope: Some("mcp:read".into()),
        // Only the new scope: the union must keep the one held.
        required_scope: Some("mcp:write".into()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(""));
    let mcp = kit.mcp_url();
    let out = run(
        home.path(),
        &["connect", "--browser-mode", "http-get", mcp.as_str()],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("needs more scopes"), "{stdout}");
    assert_eq!(kit.counters().authorize, 2);
    let scope = kit.last_authorize_query().unwrap()["scope"].clone();
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert!(
        scopes.contains(&"mcp:read") && scopes.contains(&"mcp:write"),
        "{scope}"
    );
}

/// A Streamable HTTP server without auth that answers with event streams and demands the
/// session it assigned and the negotiated protocol version on every later request.
async fn sse_server() -> String {
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::IntoResponse;

    async fn mcp(headers: HeaderMap, body: axum::body::Bytes) -> axum::response::Response {
        let msg: Value = serde_json::from_slice(&body).unwrap();
        let method = msg["method"].as_str().unwrap_or_default().to_string();
        let get = |h: &str| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let accept = get("accept").unwrap_or_default();
        if !(accept.contains("application/json") && accept.contains("text/event-stream")) {
            return StatusCode::NOT_ACCEPTABLE.into_response();
        }
        if method != "initialize"
            && (get("mcp-session-id").as_deref() != Some("session-1")
                || get("mcp-protocol-version").as_deref() != Some("2025-11-25"))
        {
            return (
                StatusCode::BAD_REQUEST,
                "missing session or protocol version",
            )
                .into_response();
        }
        let Some(id) = msg.get("id").cloned() else {
            return StatusCode::ACCEPTED.into_response();
        };
        let result = match method.as_str() {
            "initialize" => json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                                   "serverInfo": {"name": "sse-test", "version": "1"}}),
            "tools/list" => json!({"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}),
            "tools/call" => {
                json!({"content": [{"type": "text", "text": msg["params"]["arguments"]["say"]}]})
            }
            _ => json!({}),
        };
        let reply = json!({"jsonrpc": "2.0", "id": id, "result": result});
        // A priming event, a notification and a server request come before the response.
        let body = format!(
            "id: 1\nretry: 1000\n\n: keep-alive\n\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{}}}}\n\ndata: {{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"ping\"}}\n\ndata: {}\n\n",
            serde_json::to_string(&reply).unwrap()
        );
        let mut response = ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response();
        if method == "initialize" {
            response
                .headers_mut()
                .insert("mcp-session-id", "session-1".parse().unwrap());
        }
        response
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/mcp", axum::routing::post(mcp));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn connect_reads_event_streams_and_keeps_the_session() {
    let url = sse_server().await;
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(""));
    let out = run(
        home.path(),
        &[
            "connect",
            "--call",
            "echo",
            "--args",
            r#"{"say": "hello"}"#,
            &url,
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("Connected to sse-test 1"), "{stdout}");
    assert!(stdout.contains("with a session"), "{stdout}");
    assert!(stdout.contains("Tools (1): echo"), "{stdout}");
    assert!(stdout.contains("\"text\": \"hello\""), "{stdout}");

    let out = run(
        home.path(),
        &["connect", "--call", "echo", "--args", "[1]", &url],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--args must be a JSON object"));
}

#[tokio::test]
async fn secret_set_refuses_before_touching_the_keyring() {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        "[mcp_servers.plain]\nurl = \"https://plain.example/mcp\"\n\
         [mcp_servers.corp]\nurl = \"https://corp.example/mcp\"\n\
         [mcp_servers.corp.oauth]\nclient_id = \"c\"\nclient_secret_keyring = \"corp\"\n",
    );
    // A server whose oauth table names no entry: what to add.
    let out = run(home.path(), &["secret", "set", "plain"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("client_secret_keyring = \"plain\""), "{err}");
    // An unknown server.
    let out = run(home.path(), &["secret", "delete", "nope"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no MCP server named `nope`"));
    // Nothing on stdin: no secret, and the keyring is never asked.
    let out = run(home.path(), &["secret", "set", "corp"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("no secret given"), "{err}");
    assert!(text(&out.stdout).is_empty());
}

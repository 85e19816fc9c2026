//! The pages a person sees, in a real browser: Debian's Chromium driven by puppeteer-core
//! (tests/browser/driver.mjs) logs in through oidc-provider's own login and consent forms
//! (tests/browser/as-server.mjs) while the daemon waits on its loopback listener. Each case
//! checks what the page says, that it names the frontend and the server, and the headers
//! that forbid framing and caching; the screenshots are kept under the cargo target dir's
//! `tmp/browser-pages/` (printed). Needs Node >= 20 and npm; `.ci/browser-setup.sh` installs
//! Chromium (apt) and the npm packages on first use. `MCP_APP_SERVER_SKIP_NODE=1` skips it
//! with the other tests that need Node (suite/node.rs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::harness::{self, MemClient, write_config};
use super::node::{SKIP_NODE, node_ready, repo_root, run_setup_script};

/// Starting Chromium or oidc-provider on a loaded machine; a bound that detects a hang.
const START: Duration = Duration::from_secs(60);
/// One browser step (a form, a redirect, a page).
const STEP: Duration = Duration::from_secs(30);

/// The frontend as it introduces itself: the pages must use the title, escaped.
const FRONTEND_TITLE: &str = "Visual <Studio> & Co";

fn browser_dir() -> PathBuf {
    repo_root().join("tests").join("browser")
}

/// Runs `.ci/browser-setup.sh` once per test process.
fn ensure_setup() {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    let outcome = SETUP.get_or_init(|| {
        run_setup_script("browser-setup.sh").map_err(|e| {
            format!(
                "{e}\nit needs Node >= 20, npm and Debian's chromium package (installed with \
                 apt-get when run as root); set {SKIP_NODE}=1 to skip the tests that need Node"
            )
        })
    });
    if let Err(e) = outcome {
        panic!("browser setup: {e}");
    }
}

/// A node process speaking one JSON line per message; killed when dropped (and it exits
/// when its stdin closes).
struct Node {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    first: Value,
}

impl Node {
    async fn start(script: &str, args: &[&str]) -> Node {
        let mut child = Command::new("node")
            .arg(browser_dir().join(script))
            .args(args)
            .env("PUPPETEER_SKIP_DOWNLOAD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node {script}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(START, stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("{script} did not start within {START:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("{script} exited before it was ready"));
        let first = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{script} ready line ({e}): {line}"));
        Node {
            child,
            stdin,
            stdout,
            first,
        }
    }

    async fn ask(&mut self, command: Value) -> Value {
        let mut line = serde_json::to_vec(&command).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
        let answer = tokio::time::timeout(STEP, self.stdout.next_line())
            .await
            .unwrap_or_else(|_| panic!("the browser hung on {command}"))
            .unwrap()
            .expect("the browser driver exited");
        let answer: Value = serde_json::from_str(&answer).unwrap();
        assert!(
            answer.get("error").is_none(),
            "the browser failed on {command}: {}",
            answer["error"].as_str().unwrap_or_default()
        );
        answer
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Every page of the listener: framing and caching forbidden, no script.
fn assert_guarded(page: &Value) {
    let csp = page["csp"].as_str().unwrap_or_default();
    assert!(csp.contains("frame-ancestors 'none'"), "{page}");
    assert!(csp.contains("default-src 'none'"), "{page}");
    assert_eq!(page["frameOptions"], "DENY", "{page}");
    assert_eq!(page["cacheControl"], "no-store", "{page}");
    assert_eq!(page["scripts"], 0, "{page}");
}

/// The page names the frontend (its title, as text) and the server.
fn assert_names(page: &Value) {
    let text = page["text"].as_str().unwrap_or_default();
    assert!(text.contains(FRONTEND_TITLE), "{page}");
    assert!(text.contains("browser-as"), "{page}");
    assert!(!text.contains("your editor"), "{page}");
}

struct Run {
    c: MemClient,
    _server: mcp_app_server::rpc::AppServer,
    _home: tempfile::TempDir,
    browser: Node,
    shots: PathBuf,
}

impl Run {
    async fn login(&mut self, timeout_secs: Option<u32>) -> (String, String) {
        let mut params = json!({"name": "browser-as"});
        if let Some(secs) = timeout_secs {
            params["timeoutSecs"] = json!(secs);
        }
        let started = self.c.ok("mcpServer/oauth/login", params).await;
        (
            started["authorizationUrl"].as_str().unwrap().to_owned(),
            started["redirectUri"].as_str().unwrap().to_owned(),
        )
    }

    fn shot(&self, name: &str) -> String {
        self.shots.join(format!("{name}.png")).display().to_string()
    }

    /// Runs a browser command that ends on one of the listener's pages, and checks it: the
    /// status, the heading, the names and the guarding headers.
    async fn page(&mut self, command: Value, status: u16, heading: &str) -> Value {
        let page = self.browser.ask(command).await;
        assert_eq!(page["status"], status, "{page}");
        assert_eq!(page["heading"], heading, "{page}");
        assert_guarded(&page);
        assert_names(&page);
        page
    }

    async fn completed(&mut self) -> Value {
        self.c.notification("mcpServer/oauthLogin/completed").await
    }
}

#[tokio::test]
async fn a_real_browser_sees_what_happened_on_every_page() {
    if !node_ready("browser_pages") {
        return;
    }
    ensure_setup();
    let started = std::time::Instant::now();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-pages");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let (authorization_server, browser) = tokio::join!(
        Node::start("as-server.mjs", &["--exit-with-stdin"]),
        Node::start("driver.mjs", &[]),
    );
    let mcp_url = authorization_server.first["mcpUrl"].as_str().unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "mcp_oauth_credentials_store = \"file\"\n[mcp_servers.browser-as]\nurl = \"{mcp_url}\"\n"
        ),
    );
    let (server, mut c) = harness::start(home.path());
    c.ok(
        "initialize",
        json!({"clientInfo": {"name": "vsc", "title": FRONTEND_TITLE, "version": "1"}}),
    )
    .await;
    let mut run = Run {
        c,
        _server: server,
        _home: home,
        browser,
        shots,
    };

    // A full login: the page waits for the code exchange and says "logged in".
    let (url, _) = run.login(None).await;
    let shot = run.shot("1-logged-in");
    run.page(
        json!({"cmd": "login", "url": url, "then": "approve", "shot": shot}),
        200,
        "Logged in",
    )
    .await;
    let done = run.completed().await;
    assert_eq!(done["success"], true, "{done}");

    // A denial on the authorization server's own page.
    let (url, _) = run.login(None).await;
    let shot = run.shot("2-denied");
    run.page(
        json!({"cmd": "login", "url": url, "then": "deny", "shot": shot}),
        403,
        "Access declined",
    )
    .await;
    let done = run.completed().await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "authorizationFailed", "{done}");

    // A cancel while the person is on the consent page: the late redirect says so.
    let (url, _) = run.login(None).await;
    run.browser
        .ask(json!({"cmd": "login", "url": url, "then": "hold"}))
        .await;
    run.c
        .ok("mcpServer/oauth/cancel", json!({"name": "browser-as"}))
        .await;
    let done = run.completed().await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "loginCancelled", "{done}");
    let shot = run.shot("3-cancelled");
    run.page(
        json!({"cmd": "continue", "shot": shot}),
        410,
        "Login cancelled",
    )
    .await;

    // A time-out, with no other login waiting: the port stayed open to say so.
    let (url, _) = run.login(Some(2)).await;
    run.browser
        .ask(json!({"cmd": "login", "url": url, "then": "hold"}))
        .await;
    let done = run.completed().await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "loginTimedOut", "{done}");
    let shot = run.shot("4-expired");
    run.page(
        json!({"cmd": "continue", "shot": shot}),
        410,
        "Login expired",
    )
    .await;

    // A forged redirect (a state that is not the login's): discarded, the login waits on.
    let (url, redirect_uri) = run.login(None).await;
    let shot = run.shot("5-forged");
    run.page(
        json!({
            "cmd": "visit",
            "url": format!("{redirect_uri}?code=forged-code&state=forged-state"),
            "shot": shot,
        }),
        400,
        "This response was discarded",
    )
    .await;

    // A page on another origin fires requests at the callback port: nothing completes, it
    // reads nothing, and the frame of the callback page stays empty.
    let shot = run.shot("6-other-origin");
    let attack = run
        .browser
        .ask(json!({"cmd": "attack", "callback": redirect_uri, "shot": shot}))
        .await;
    assert!(attack["fired"].as_u64().unwrap_or(0) >= 8, "{attack}");
    assert_eq!(attack["readable"], 0, "{attack}");
    let framed = attack["framedText"].as_str().unwrap_or_default();
    assert!(
        !framed.contains("discarded") && !framed.contains(FRONTEND_TITLE),
        "the callback page was shown in another site's frame: {attack}"
    );
    assert_eq!(
        run.c.backlog_count("mcpServer/oauthLogin/completed"),
        0,
        "the forged redirect or the other site ended the login"
    );

    // The same login still completes in the browser.
    let shot = run.shot("7-logged-in-after-attacks");
    let page = run
        .browser
        .ask(json!({"cmd": "login", "url": url, "then": "approve", "shot": shot}))
        .await;
    assert_eq!(page["heading"], "Logged in", "{page}");
    let done = run.completed().await;
    assert_eq!(done["success"], true, "{done}");

    // The bare callback address after the login: a guarded page, not an error of the browser.
    let reload = run
        .browser
        .ask(json!({"cmd": "visit", "url": page["url"], "shot": run.shot("8-reload")}))
        .await;
    assert_eq!(reload["status"], 404, "{reload}");
    assert_guarded(&reload);

    #[allow(clippy::print_stderr)]
    {
        eprintln!(
            "browser pages: screenshots in {} ({:?} in all)",
            run.shots.display(),
            started.elapsed()
        );
    }
    drop(authorization_server);
}

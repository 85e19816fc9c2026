//! The real binary at start and with many logins pending: the time from spawn to the
//! `initialize` answer, the idle resident set, and 1,000 logins pending at once on one fixed
//! callback port (resident set while they wait, then the time until all 1,000 completed
//! once the browsers come back).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use futures::StreamExt;
use mcp_app_server_testkit::{Kit, KitConfig, browser_visit};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::row;

const LOGINS: usize = 1000;
/// Browsers coming back at once: below the callback listener's cap on connections.
const BROWSERS: usize = 32;

pub async fn run() {
    initialize_latency().await;
    pending_logins().await;
}

pub(super) struct Daemon {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
}

pub(super) fn spawn(home: &Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Daemon {
        pid: child.id().unwrap(),
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
    }
}

impl Daemon {
    pub(super) async fn send(&mut self, v: &Value) {
        let mut line = serde_json::to_vec(v).unwrap();
        line.push(b'\n');
        self.stdin.write_all(&line).await.unwrap();
    }

    pub(super) async fn read(&mut self) -> Value {
        let mut line = String::new();
        assert!(
            self.stdout.read_line(&mut line).await.unwrap() > 0,
            "stdout closed"
        );
        serde_json::from_str(&line).unwrap()
    }

    /// Sends a request and reads until its answer (notifications in between are dropped).
    pub(super) async fn call(&mut self, id: &str, method: &str, params: Value) -> Value {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let m = self.read().await;
            if m["id"] == id {
                return m;
            }
        }
    }

    /// Reads until the notification `method`.
    pub(super) async fn until(&mut self, method: &str) -> Value {
        loop {
            let m = self.read().await;
            if m["method"] == method {
                return m;
            }
        }
    }

    /// Closes stdin and waits for the exit.
    pub(super) async fn stop(mut self) {
        drop(self.stdin);
        let _ = self.child.wait().await;
    }

    pub(super) async fn initialize(&mut self) {
        self.send(
            &json!({"jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {"clientInfo": {"name": "bench", "version": "1"}}}),
        )
        .await;
        let r = self.read().await;
        assert!(r["result"].is_object(), "{r}");
    }
}

/// VmRSS in KiB.
fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A size field of /proc/<pid>/status in KiB (RssAnon: the heap and stacks, without the
/// mapped binary).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Spawn to `initialize` answered, median of 11, and the resident set of an idle daemon.
async fn initialize_latency() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n[mcp_servers.a]\nurl = \"https://a.example.com/mcp\"\n",
    )
    .unwrap();
    let mut times = Vec::new();
    let mut idle = Vec::new();
    for _ in 0..11 {
        let start = Instant::now();
        let mut d = spawn(home.path());
        d.initialize().await;
        times.push(start.elapsed());
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle.push(rss_kib(d.pid));
        drop(d.stdin);
        let _ = d.child.wait().await;
    }
    times.sort();
    idle.sort();
    row(
        "initialize, spawn to answer",
        format!("{:.1?}", times[times.len() / 2]),
        &format!(
            "real binary, median of 11 (min {:.1?}, max {:.1?})",
            times[0],
            times[times.len() - 1]
        ),
    );
    row(
        "idle RSS",
        format!("{:.1} MiB", mib(idle[idle.len() / 2])),
        "after initialize, one configured server, median of 11",
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn pending_logins() {
    let port = free_port();
    // One test-kit server (DCR); each configured server is its own URL (a query of its
    // own), so each login has its own callback path on the one fixed port.
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let urls: Vec<String> = (0..LOGINS)
        .map(|i| format!("{}?tenant={i}", kit.mcp_url()))
        .collect();
    // Pre-warm on (the default: it discovers the 1,000 servers while the logins start)
    // and off.
    for prewarm in [true, false] {
        drive(&kit, port, &urls, prewarm).await;
    }
}

fn home_for(port: u16, urls: &[String], prewarm: bool) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let mut config = format!(
        "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_callback_port = {port}\nmcp_oauth_prewarm = {prewarm}\n"
    );
    for (i, url) in urls.iter().enumerate() {
        config.push_str(&format!("[mcp_servers.s{i:04}]\nurl = \"{url}\"\n"));
    }
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

async fn drive(kit: &Kit, port: u16, urls: &[String], prewarm: bool) {
    let before = kit.counters().token_code;
    let home = home_for(port, urls, prewarm);
    let label = if prewarm {
        "pre-warm on"
    } else {
        "pre-warm off"
    };
    let mut d = spawn(home.path());
    d.initialize().await;
    let idle = rss_kib(d.pid);
    let start = Instant::now();
    for (i, _) in urls.iter().enumerate() {
        d.send(
            &json!({"jsonrpc": "2.0", "id": i, "method": "mcpServer/oauth/login",
            "params": {"name": format!("s{i:04}")}}),
        )
        .await;
    }
    let mut auth_urls = vec![String::new(); urls.len()];
    let mut answered = 0;
    while answered < urls.len() {
        let m = d.read().await;
        if let Some(id) = m["id"].as_u64() {
            let url = m["result"]["authorizationUrl"]
                .as_str()
                .unwrap_or_else(|| panic!("login failed: {m}"));
            auth_urls[id as usize] = url.to_string();
            answered += 1;
        }
    }
    let started_in = start.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pending = rss_kib(d.pid);
    let pending_anon = status_kib(d.pid, "RssAnon:");

    let start = Instant::now();
    let visits = tokio::spawn(async move {
        futures::stream::iter(auth_urls)
            .map(|u| async move { browser_visit(&u).await.unwrap().status })
            .buffer_unordered(BROWSERS)
            .collect::<Vec<u16>>()
            .await
    });
    let mut completed = 0;
    while completed < urls.len() {
        let m = d.read().await;
        if m["method"] == "mcpServer/oauthLogin/completed" {
            assert_eq!(m["params"]["success"], true, "{m}");
            completed += 1;
        }
    }
    let done_in = start.elapsed();
    let statuses = visits.await.unwrap();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "every browser got the success page"
    );
    let after = rss_kib(d.pid);
    assert_eq!(kit.counters().token_code - before, urls.len() as u64);
    row(
        &format!(
            "{} logins pending on one fixed callback port, {label}",
            urls.len()
        ),
        format!(
            "RSS {:.1} MiB idle -> {:.1} MiB pending",
            mib(idle),
            mib(pending)
        ),
        &format!(
            "real binary, one DCR client per callback path; all {} authorization URLs in {started_in:.1?}; {:.1} MiB of it anonymous (heap, stacks)",
            urls.len(),
            mib(pending_anon)
        ),
    );
    row(
        &format!("{} logins completing, {label}", urls.len()),
        format!("{done_in:.2?} for all"),
        &format!(
            "from the first browser back ({BROWSERS} at a time) to the last `completed`; each a token exchange and a durable save; RSS after {:.1} MiB",
            mib(after)
        ),
    );
    drop(d.stdin);
    let _ = d.child.wait().await;
}

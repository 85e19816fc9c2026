//! Pipelined token requests to the real binary over pipes, with the daemon's resident set
//! read from /proc: a burst answered in full, and a frontend that stops reading.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mcp_app_server::credentials::{CredentialStore, FileStore, StoredClient, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_protocol::RegistrationKind;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::row;

const BURST: usize = 20_000;

/// Requests a client keeps outstanding in the latency rows.
const WINDOW: usize = 32;

pub async fn run() {
    for servers in [1, 1000] {
        burst(servers).await;
        windowed(servers).await;
        windowed_on_one_thread(servers).await;
    }
    stalled_reader().await;
}

/// A home with `servers` servers configured and logged in, tokens valid for hours.
fn logged_in_home(servers: usize) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let mut config = String::from("mcp_oauth_credentials_store = \"file\"\n");
    let store = FileStore::open(&Home::at(home.path())).unwrap();
    let now = mcp_app_server::credentials::unix_now();
    for i in 0..servers {
        let url = format!("https://s{i}.example.com/mcp");
        config.push_str(&format!("[mcp_servers.s{i:04}]\nurl = \"{url}\"\n"));
        store
            .save(&StoredCredentials {
                server_name: format!("s{i:04}"),
                server_url: url::Url::parse(&url).unwrap().to_string(),
                account: None,
                selected_at: None,
                access_token: format!("access-{i}-{}", "a".repeat(40)),
                token_type: "Bearer".into(),
                refresh_token: Some(format!("refresh-{i}-{}", "r".repeat(40))),
                expires_at: Some(now + 7200),
                scopes: vec!["read".into(), "write".into()],
                requested_scopes: Vec::new(),
                issuer: format!("https://auth{i}.example.com"),
                token_endpoint: format!("https://auth{i}.example.com/token"),
                revocation_endpoint: Some(format!("https://auth{i}.example.com/revoke")),
                resource: url.clone(),
                client: StoredClient {
                    kind: RegistrationKind::Dcr,
                    client_id: format!("client-{i}"),
                    client_secret: None,
                    token_endpoint_auth_method: "none".into(),
                },
                reauthentication_required: false,
                login_reason: None,
                grant: None,
                dpop_key: None,
                certificate_x5t: None,
                updated_at: now,
                refreshed_through: None,
                shared_with: None,
            })
            .unwrap();
    }
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    home
}

struct Daemon {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    pid: u32,
}

async fn spawn(home: &Path) -> Daemon {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home)
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let mut d = Daemon {
        stdin: child.stdin.take().unwrap(),
        stdout: BufReader::new(child.stdout.take().unwrap()),
        child,
        pid,
    };
    d.stdin
        .write_all(b"{\"id\":\"init\",\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"bench\",\"version\":\"1\"}}}\n")
        .await
        .unwrap();
    read_reply(&mut d.stdout).await;
    d
}

async fn read_reply(stdout: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    assert!(
        stdout.read_line(&mut line).await.unwrap() > 0,
        "stdout closed"
    );
    serde_json::from_str(&line).unwrap()
}

fn requests(n: usize, servers: usize) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in 0..n {
        let name = format!("s{:04}", i % servers);
        let r = json!({"jsonrpc": "2.0", "id": i, "method": "mcpServer/oauth/token", "params": {"name": name}});
        wire.extend(serde_json::to_vec(&r).unwrap());
        wire.push(b'\n');
    }
    wire
}

/// The process's CPU time so far (user and system), from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th
    // of the line, in clock ticks (100 per second on Linux).
    let ticks: u64 = stat
        .rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// (VmRSS, VmHWM) in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn burst(servers: usize) {
    let home = logged_in_home(servers);
    let mut d = spawn(home.path()).await;
    // Warm up (first store read, allocator pools) so the figure is the burst's own growth.
    let warm = requests(200, servers);
    d.stdin.write_all(&warm).await.unwrap();
    for _ in 0..200 {
        read_reply(&mut d.stdout).await;
    }
    let (before, _) = memory_kib(d.pid);

    let wire = requests(BURST, servers);
    let mut stdin = d.stdin;
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        stdin.write_all(&wire).await.unwrap();
        stdin
    });
    let mut ok = 0;
    for _ in 0..BURST {
        let reply = read_reply(&mut d.stdout).await;
        if reply["result"]["accessToken"].is_string() {
            ok += 1;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (_, peak) = memory_kib(d.pid);
    assert_eq!(ok, BURST, "every request answered with a token");
    drop(writer.await.unwrap());
    let _ = d.child.wait().await;
    row(
        &format!("burst of {BURST} pipelined token requests, {servers} stored server(s)"),
        format!(
            "RSS {:.1} -> peak {:.1} MiB (+{:.1} MiB)",
            mib(before),
            mib(peak),
            mib(peak.saturating_sub(before))
        ),
        &format!(
            "real binary over pipes; all answered, {:.0} req/s",
            BURST as f64 / secs
        ),
    );
}

/// [`windowed_as`] with the client on a runtime of one thread, as a frontend's event loop is:
/// its writer and reader then take turns on one core instead of waking each other across
/// two, and leave the other core to the daemon.
async fn windowed_on_one_thread(servers: usize) {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(windowed_as(servers, "client on one thread"))
    })
    .await
    .unwrap();
}

/// [`windowed_as`] with the client on the bench's own runtime (two worker threads): its
/// writer and reader tasks may run on either, waking each other across threads.
async fn windowed(servers: usize) {
    windowed_as(servers, "client on the bench's runtime").await;
}

/// The same requests with at most [`WINDOW`] outstanding: the rate, and the latency of each
/// request from its write to its answer (with the whole burst written at once, the latency
/// would be the client's own queue).
async fn windowed_as(servers: usize, client: &str) {
    use std::sync::{Arc, Mutex};
    let home = logged_in_home(servers);
    let mut d = spawn(home.path()).await;
    let warm = requests(200, servers);
    d.stdin.write_all(&warm).await.unwrap();
    for _ in 0..200 {
        read_reply(&mut d.stdout).await;
    }
    let lines: Vec<Vec<u8>> = (0..BURST)
        .map(|i| {
            let name = format!("s{:04}", i % servers);
            let r = json!({"jsonrpc": "2.0", "id": i, "method": "mcpServer/oauth/token", "params": {"name": name}});
            let mut line = serde_json::to_vec(&r).unwrap();
            line.push(b'\n');
            line
        })
        .collect();
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; BURST]));
    let window = Arc::new(tokio::sync::Semaphore::new(WINDOW));
    let mut stdin = d.stdin;
    let cpu_before = cpu_time(d.pid);
    let start = Instant::now();
    let writer = tokio::spawn({
        let (sent, window) = (sent.clone(), window.clone());
        async move {
            for (i, line) in lines.into_iter().enumerate() {
                window.acquire().await.unwrap().forget();
                sent.lock().unwrap()[i] = Some(Instant::now());
                stdin.write_all(&line).await.unwrap();
            }
            stdin
        }
    });
    let mut latencies = Vec::with_capacity(BURST);
    // The same, only for the requests after every server was asked once (a server's first
    // request after start also brings it into the refresh scheduler's plan).
    let mut settled = Vec::with_capacity(BURST);
    for _ in 0..BURST {
        let reply = read_reply(&mut d.stdout).await;
        let at = Instant::now();
        assert!(reply["result"]["accessToken"].is_string(), "{reply}");
        let id = reply["id"].as_u64().unwrap() as usize;
        let sent_at = sent.lock().unwrap()[id].expect("answered after it was sent");
        latencies.push(at - sent_at);
        if id >= servers {
            settled.push(at - sent_at);
        }
        window.add_permits(1);
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_time(d.pid).saturating_sub(cpu_before);
    drop(writer.await.unwrap());
    let _ = d.child.wait().await;
    latencies.sort();
    settled.sort();
    row(
        &format!("token, {WINDOW} pipelined at a time, {servers} stored server(s), {client}"),
        format!("{:.0} req/s", BURST as f64 / secs),
        &format!(
            "real binary over pipes, {BURST} requests; daemon CPU {:.1} us per request; latency p50 {} us, p99 {} us, max {} us; after each server's first request ({} requests): p99 {} us, max {} us",
            cpu.as_secs_f64() * 1e6 / BURST as f64,
            latencies[BURST / 2].as_micros(),
            latencies[BURST * 99 / 100].as_micros(),
            latencies[BURST - 1].as_micros(),
            settled.len(),
            settled[settled.len() * 99 / 100].as_micros(),
            settled[settled.len() - 1].as_micros()
        ),
    );
}

/// The burst to a daemon whose stdout is not read for 3 s: how much input it took and its
/// resident set meanwhile. Then, with another daemon, the time from end of input to exit
/// with stdout still unread.
async fn stalled_reader() {
    let home = logged_in_home(1);
    let d = spawn(home.path()).await;
    let (before, _) = memory_kib(d.pid);
    let wire = requests(BURST, 1);
    let total = wire.len();
    let (taken_tx, taken_rx) = tokio::sync::watch::channel(0usize);
    let mut stdin = d.stdin;
    let writer = tokio::spawn(async move {
        for chunk in wire.chunks(4096) {
            stdin.write_all(chunk).await.unwrap();
            taken_tx.send_modify(|n| *n += chunk.len());
        }
        stdin
    });
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, peak) = memory_kib(d.pid);
    let taken = *taken_rx.borrow();
    writer.abort();
    let _ = writer.await;
    row(
        "stalled reader: stdout unread for 3 s",
        format!(
            "took {} KiB of {} KiB; RSS {:.1} -> peak {:.1} MiB",
            taken / 1024,
            total / 1024,
            mib(before),
            mib(peak)
        ),
        &format!("{BURST} pipelined token requests; the rest waits in the frontend's pipe"),
    );
    drop(d.stdout);
    drop(d.child);
    end_of_input_unread(home.path()).await;
}

/// Requests that fit in what the daemon reads ahead, so they are all taken and the end of
/// input is reached, while their answers are far more than stdout's pipe holds; then stdin
/// is closed and stdout never read. (Closing stdin while requests are still waiting in the
/// pipe is no end of input: the daemon has not read them yet and, paused by the unread
/// answers, never will; it ends on SIGTERM or when the frontend's end of stdout closes.)
async fn end_of_input_unread(home: &Path) {
    const REQUESTS: usize = 5_000;
    let mut d = spawn(home).await;
    let wire = requests(REQUESTS, 1);
    assert!(wire.len() < mcp_app_server::transport::READ_AHEAD_BYTES);
    tokio::time::timeout(Duration::from_secs(60), d.stdin.write_all(&wire))
        .await
        .expect("the daemon reads all of it ahead")
        .unwrap();
    let start = Instant::now();
    drop(d.stdin);
    let status = tokio::time::timeout(Duration::from_secs(120), d.child.wait()).await;
    let exit = start.elapsed();
    row(
        "stalled reader: end of input to exit",
        match status {
            Ok(Ok(s)) => format!("{exit:.1?} (exit code {:?})", s.code()),
            _ => "did not exit within 120 s".to_string(),
        },
        &format!(
            "{REQUESTS} pipelined token requests ({} KiB, all read ahead), stdout never read; bounded by the grace periods",
            wire.len() / 1024
        ),
    );
    drop(d.stdout);
}

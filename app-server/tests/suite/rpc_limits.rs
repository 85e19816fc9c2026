//! Bounded JSON-RPC: a frontend that stops reading gets backpressure, not a growing daemon;
//! EOF and SIGTERM end the daemon even then; notifications never wait for a slow reader;
//! batches have a size limit.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_app_server::credentials::{CredentialStore, FileStore, StoredClient, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_protocol::{
    AuthStatusChangedNotification, McpAuthStatus, RegistrationKind, ServerNotification,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use mcp_app_server::transport::Incoming;

use super::harness::{self, Client};

const ACCESS_TOKEN: &str = "stored-access-token";
/// Generous bounds: these tests are about exiting at all and memory staying bounded, not
/// about speed.
const EXIT_WITHIN: Duration = Duration::from_secs(90);
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// A home with server `k` configured and logged in (tokens valid for hours, so no request
/// leaves the machine).
fn logged_in_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let url = "https://mcp.example.com/mcp";
    std::fs::write(
        home.path().join("config.toml"),
        format!("mcp_oauth_credentials_store = \"file\"\n[mcp_servers.k]\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let now = mcp_app_server::credentials::unix_now();
    let creds = StoredCredentials {
        server_name: "k".into(),
        server_url: url::Url::parse(url).unwrap().to_string(),
        account: None,
        selected_at: None,
        access_token: ACCESS_TOKEN.into(),
        token_type: "Bearer".into(),
        refresh_token: Some("stored-refresh-token".into()),
        expires_at: Some(now + 7200),
        scopes: vec!["read".into()],
        requested_scopes: Vec::new(),
        issuer: "https://auth.example.com".into(),
        token_endpoint: "https://auth.example.com/token".into(),
        revocation_endpoint: None,
        resource: url.into(),
        client: StoredClient {
            kind: RegistrationKind::Dcr,
            client_id: "client".into(),
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
    };
    FileStore::open(&Home::at(home.path()))
        .unwrap()
        .save(&creds)
        .unwrap();
    home
}

fn spawn_daemon(home: &Path) -> (Child, ChildStdin, BufReader<ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    (child, stdin, stdout)
}

async fn read_line(stdout: &mut BufReader<ChildStdout>) -> Value {
    let mut line = String::new();
    let n = tokio::time::timeout(harness::TIMEOUT, stdout.read_line(&mut line))
        .await
        .expect("the daemon answers")
        .unwrap();
    assert!(n > 0, "the daemon closed stdout");
    serde_json::from_str(&line).unwrap()
}

async fn initialize(stdin: &mut ChildStdin, stdout: &mut BufReader<ChildStdout>) {
    stdin
        .write_all(b"{\"id\":0,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"limits\",\"version\":\"1\"}}}\n")
        .await
        .unwrap();
    let reply = read_line(stdout).await;
    assert!(reply["result"]["serverInfo"].is_object(), "{reply}");
}

/// `n` pipelined token requests with long string ids (so replies are big too).
fn token_requests(n: usize) -> (Vec<u8>, Vec<String>) {
    let pad = "p".repeat(200);
    let ids: Vec<String> = (0..n).map(|i| format!("{i:06}-{pad}")).collect();
    let mut wire = Vec::new();
    for id in &ids {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": "mcpServer/oauth/token", "params": {"name": "k"}});
        wire.extend(serde_json::to_vec(&request).unwrap());
        wire.push(b'\n');
    }
    (wire, ids)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    tokio::time::timeout(EXIT_WITHIN, child.wait())
        .await
        .expect("the daemon exits although nobody reads its stdout")
        .unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frontend_that_stops_reading_gets_backpressure_and_every_answer_afterwards() {
    const N: usize = 20_000;
    let home = logged_in_home();
    let (mut child, mut stdin, mut stdout) = spawn_daemon(home.path());
    let pid = child.id().unwrap();
    initialize(&mut stdin, &mut stdout).await;

    // ~5 MB of requests, far more than the daemon takes in while nobody reads its answers.
    let (wire, ids) = token_requests(N);
    let writer = tokio::spawn(async move {
        stdin.write_all(&wire).await.unwrap();
        stdin
    });

    // Nobody reads stdout for a while.
    let mut peak = 0;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(rss_kib(pid));
    }
    assert!(
        !writer.is_finished(),
        "the daemon took all {N} requests although nobody read its answers"
    );
    assert!(
        peak < RSS_BOUND_KIB,
        "the daemon grew to {peak} KiB while its answers were not read"
    );

    // Reading resumes: every request is answered, exactly once.
    let mut unanswered: std::collections::HashSet<String> = ids.into_iter().collect();
    while !unanswered.is_empty() {
        let reply = read_line(&mut stdout).await;
        let id = reply["id"].as_str().unwrap_or_default().to_string();
        assert!(
            unanswered.remove(&id),
            "unexpected or repeated reply: {reply}"
        );
        assert_eq!(reply["result"]["accessToken"], ACCESS_TOKEN, "{reply}");
        peak = peak.max(rss_kib(pid));
    }
    assert!(peak < RSS_BOUND_KIB, "the daemon grew to {peak} KiB");
    let stdin = tokio::time::timeout(harness::TIMEOUT, writer)
        .await
        .expect("every request was taken once answers were read")
        .unwrap();
    drop(stdin);
    assert!(wait_exit(&mut child).await.success());
}

#[tokio::test]
async fn end_of_input_with_a_frontend_that_never_reads_still_exits() {
    let home = logged_in_home();
    let (mut child, mut stdin, mut stdout) = spawn_daemon(home.path());
    initialize(&mut stdin, &mut stdout).await;
    // Less than the daemon reads ahead, so the write completes and the pipe can be closed,
    // while the answers are far more than stdout's pipe holds.
    let (wire, _) = token_requests(2_000);
    tokio::time::timeout(harness::TIMEOUT, stdin.write_all(&wire))
        .await
        .expect("the daemon reads ahead")
        .unwrap();
    drop(stdin);
    let status = wait_exit(&mut child).await;
    assert_eq!(status.code(), Some(0));
    drop(stdout);
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_with_a_frontend_that_never_reads_still_exits() {
    let home = logged_in_home();
    let (mut child, mut stdin, mut stdout) = spawn_daemon(home.path());
    initialize(&mut stdin, &mut stdout).await;
    let (wire, _) = token_requests(2_000);
    tokio::time::timeout(harness::TIMEOUT, stdin.write_all(&wire))
        .await
        .expect("the daemon reads ahead")
        .unwrap();
    let pid = child.id().unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait_exit(&mut child).await;
    assert_eq!(status.code(), Some(0));
    drop((stdin, stdout));
}

fn auth_status(name: String) -> ServerNotification {
    ServerNotification::AuthStatusChanged(AuthStatusChangedNotification {
        name,
        auth_status: McpAuthStatus::LoggedIn,
        reason: None,
    })
}

#[tokio::test]
async fn a_connection_that_never_reads_notifications_is_closed_and_the_others_get_all() {
    let home = tempfile::tempdir().unwrap();
    let (server, mut reading) = harness::start(home.path());
    reading.initialize().await;
    // A connection with a small pipe whose client stops reading after initialize.
    let (client_w, server_r) = tokio::io::duplex(4096);
    let (server_w, client_r) = tokio::io::duplex(4096);
    let s = server.clone();
    let stalled_conn = tokio::spawn(async move { s.serve(server_r, server_w).await });
    let mut stalled = Client::new(client_w, client_r);
    stalled.initialize().await;
    // The client's input stays open: it is alive, only not reading.
    let (_keep_open, mut stalled_reader) = stalled.into_parts();

    // Broadcasting never waits for the stalled client: every round reaches the reader.
    const ROUNDS: usize = 4;
    const PER_ROUND: usize = 1000;
    for round in 0..ROUNDS {
        for i in 0..PER_ROUND {
            server.notify(auth_status(format!("s{round}-{i}")));
        }
        for i in 0..PER_ROUND {
            let n = reading.notification("mcpServer/authStatus/changed").await;
            assert_eq!(n["name"], format!("s{round}-{i}"));
        }
    }

    // The stalled connection was closed rather than buffered for: it ends after what its
    // queue held, well short of everything.
    tokio::time::timeout(harness::TIMEOUT, stalled_conn)
        .await
        .expect("the stalled connection ends")
        .unwrap();
    let mut received = 0;
    loop {
        match tokio::time::timeout(harness::TIMEOUT, stalled_reader.next()).await {
            Ok(Ok(Some(Incoming::Message(_)))) => received += 1,
            Ok(Ok(None)) => break,
            other => panic!("expected notifications, then the end: {other:?}"),
        }
    }
    assert!(received < ROUNDS * PER_ROUND, "{received}");
    // The daemon goes on serving the others.
    reading.ok("mcpServerStatus/list", json!({})).await;
}

#[tokio::test]
async fn batches_up_to_the_limit_are_answered_and_larger_ones_refused() {
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let batch = |n: usize| -> Value {
        (0..n)
            .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "no/such/method"}))
            .collect()
    };
    c.send(&batch(1024)).await;
    let replies = c.read().await;
    let replies = replies.as_array().expect("a batch reply");
    assert_eq!(replies.len(), 1024);
    assert!(replies.iter().all(|r| r["error"]["code"] == -32601));

    c.send(&batch(1025)).await;
    let m = c.read().await;
    assert_eq!(m["error"]["code"], -32600, "{m}");
    assert_eq!(m["error"]["data"]["kind"], "messageTooLarge", "{m}");
    assert!(m["error"]["message"].as_str().unwrap().contains("1024"));
    c.ok("mcpServerStatus/list", json!({})).await;
}

//! The real binary over pipes.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

fn daemon(home: &std::path::Path) -> tokio::process::Child {
    Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home)
        .env("RUST_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The whole input written at once, then stdin closed: the daemon's exit, its stdout lines
/// (each must be a JSON-RPC message: stdout carries protocol only) and its stderr.
async fn session(home: &std::path::Path, input: &[u8]) -> (Vec<Value>, String) {
    let mut child = daemon(home);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(!stdout.contains("Content-Length"), "{stdout}");
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout line is JSON"))
        .collect();
    (lines, String::from_utf8_lossy(&out.stderr).into_owned())
}

const INITIALIZE_AND_LIST: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"e2e\",\"version\":\"1\"}}}\n{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"mcpServerStatus/list\"}\n";

#[tokio::test]
async fn binary_answers_over_stdio_and_exits_cleanly_on_eof() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "[mcp_servers.a]\nurl = \"https://a.example.com/mcp\"\n",
    )
    .unwrap();
    let (lines, stderr) = session(home.path(), INITIALIZE_AND_LIST).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let status = lines.iter().find(|m| m["id"] == 2).unwrap();
    assert_eq!(status["result"]["data"][0]["name"], "a");
    // Logs went to stderr.
    assert!(stderr.contains("client connected"));
}

#[cfg(unix)]
#[tokio::test]
async fn binary_exits_zero_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    let mut child = daemon(home.path());
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    stdin
        .write_all(b"{\"id\":1,\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"e2e\",\"version\":\"1\"}}}\n")
        .await
        .unwrap();
    let line = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let reply: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["id"], json!(1));
    let pid = child.id().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    drop(stdin);
}

/// Node gives a child process socket pairs, not pipes, for its stdio: the daemon drives
/// them like pipes, answers a burst in full and ends at the end of its input.
#[cfg(unix)]
#[tokio::test]
async fn binary_answers_over_socket_stdio_like_a_node_frontend_gives_it() {
    use std::os::unix::net::UnixStream;
    const REQUESTS: usize = 500;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        "mcp_oauth_prewarm = false\n[mcp_servers.a]\nurl = \"https://a.example.com/mcp\"\n",
    )
    .unwrap();
    let (ours_in, theirs_in) = UnixStream::pair().unwrap();
    let (ours_out, theirs_out) = UnixStream::pair().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home.path())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(theirs_in)))
        .stdout(Stdio::from(std::os::fd::OwnedFd::from(theirs_out)))
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    ours_in.set_nonblocking(true).unwrap();
    ours_out.set_nonblocking(true).unwrap();
    let mut input = tokio::net::UnixStream::from_std(ours_in).unwrap();
    let output = tokio::net::UnixStream::from_std(ours_out).unwrap();
    let mut wire = b"{\"id\":\"init\",\"method\":\"initialize\",\"params\":{\"clientInfo\":{\"name\":\"e2e\",\"version\":\"1\"}}}\n".to_vec();
    for i in 0..REQUESTS {
        wire.extend(format!("{{\"id\":{i},\"method\":\"mcpServerStatus/list\"}}\n").bytes());
    }
    let writer = tokio::spawn(async move {
        input.write_all(&wire).await.unwrap();
        input.shutdown().await.unwrap();
        input
    });
    let mut lines = BufReader::new(output).lines();
    let mut answered = 0;
    let read_all = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let reply: Value = serde_json::from_str(&line).expect("stdout line is JSON");
            if reply["result"]["data"][0]["name"] == "a" {
                answered += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read_all)
        .await
        .expect("every answer, then the end of output");
    assert_eq!(answered, REQUESTS);
    let _input = writer.await.unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

/// A typo on the first line of a hand-typed session is answered with a parse error and
/// the session goes on line by line; it does not switch the connection to header framing.
#[tokio::test]
async fn binary_answers_a_first_line_typo_and_keeps_reading_lines() {
    let home = tempfile::tempdir().unwrap();
    let input = [b"initialize please\n".as_slice(), INITIALIZE_AND_LIST].concat();
    let (lines, _) = session(home.path(), &input).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines.iter().any(|m| m["error"]["code"] == -32700),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|m| m["id"] == 1 && m.get("result").is_some())
    );
    assert!(
        lines
            .iter()
            .any(|m| m["id"] == 2 && m.get("result").is_some())
    );
}

//! `serve-client-metadata` as a public service, tried as an attacker would on the real
//! binary (requirements rule 38, docs/cimd.md "Serving the public"): slowloris, silent and
//! idle connections are closed within the configured timeouts; a flood of idle connections
//! at the cap cannot keep a real request out; SIGTERM with a half-sent request open ends
//! within the shutdown timeout; every error is JSON with `no-store`; the backlog is large.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::Child;

/// Bound on every wait that only detects a hang.
const HANG: Duration = Duration::from_secs(10);
const ID: &str = "XuuuHAzzHOni";

fn document_path() -> String {
    format!(
        "/mcp/oauth/{ID}/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2F{ID}"
    )
}

struct Host {
    child: Child,
    addr: SocketAddr,
    /// The connection cap the host announced.
    cap: Option<usize>,
}

/// Spawns the host on an ephemeral loopback port with `extra` flags, under a file
/// descriptor limit of `nofile` when given.
async fn spawn_host(extra: &[&str], nofile: Option<u32>) -> Host {
    let binary = env!("CARGO_BIN_EXE_mcp-app-server");
    let mut args = vec![
        "serve-client-metadata",
        "--listen",
        "127.0.0.1:0",
        "--public-base-url",
        "https://ide.example.com/mcp/oauth",
    ];
    args.extend_from_slice(extra);
    let mut command = match nofile {
        Some(limit) => {
            let mut c = tokio::process::Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
                .arg(binary);
            c
        }
        None => tokio::process::Command::new(binary),
    };
    let mut child = command
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = tokio::time::timeout(HANG, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("listening on http://") {
                return line;
            }
        }
        panic!("the host exited without announcing its address");
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let rest = line.split("listening on http://").nth(1).unwrap();
    let addr = rest.split(' ').next().unwrap().parse().unwrap();
    let cap = line
        .split("(at most ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok());
    Host { child, addr, cap }
}

/// Sends `request` as written and reads one response: status, lowercase head, body.
async fn exchange(stream: &mut TcpStream, request: &str) -> (u16, String, String) {
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    tokio::time::timeout(HANG, async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before a full response: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                let expected = if request.starts_with("HEAD ") {
                    0
                } else {
                    length
                };
                if body.len() >= expected {
                    return;
                }
            }
        }
    })
    .await
    .expect("no response in time");
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

async fn request(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    exchange(&mut stream, request).await
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: ide.example.com\r\n\r\n")
}

/// Waits until the host closes `stream` (end of file or reset), reading and discarding.
async fn closed_by_host(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[tokio::test]
async fn slowloris_silent_and_idle_connections_are_closed_within_the_timeouts() {
    let host = spawn_host(&["--header-timeout", "1s", "--idle-timeout", "2s"], None).await;
    let addr = host.addr;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for kind in ["silent", "slowloris", "idle"] {
        for _ in 0..5 {
            tasks.push(tokio::spawn(async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                match kind {
                    "silent" => closed_by_host(&mut stream).await,
                    "slowloris" => {
                        stream
                            .write_all(b"GET /healthz HTTP/1.1\r\n")
                            .await
                            .unwrap();
                        let (mut reader, mut writer) = stream.into_split();
                        let drip = async {
                            loop {
                                if writer.write_all(b"X").await.is_err() {
                                    return;
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        };
                        let mut buf = [0u8; 64];
                        tokio::select! {
                            () = drip => {}
                            _ = reader.read(&mut buf) => {}
                        }
                    }
                    _ => {
                        let (status, _, _) = exchange(&mut stream, &get("/healthz")).await;
                        assert_eq!(status, 200);
                        closed_by_host(&mut stream).await;
                    }
                }
                (kind, started.elapsed())
            }));
        }
    }
    for task in tasks {
        let (kind, after) = tokio::time::timeout(HANG, task)
            .await
            .unwrap_or_else(|_| panic!("a connection stayed open past {HANG:?}"))
            .unwrap();
        // Never before its timeout: the header timeout for a head, the idle one after a request.
        let floor = if kind == "idle" { 1900 } else { 900 };
        assert!(
            after >= Duration::from_millis(floor),
            "{kind} connection closed after {after:?}"
        );
    }
    // The host still answers.
    assert_eq!(request(addr, &get("/healthz")).await.0, 200);
}

#[tokio::test]
async fn a_flood_of_idle_connections_at_the_cap_cannot_keep_a_real_request_out() {
    // Under a descriptor limit of 128 the cap fits below it; the flood exceeds both.
    for (flags, nofile, flood) in [
        (&[][..], Some(128), 300),
        (&["--max-connections", "20"][..], None, 100),
    ] {
        let host = spawn_host(flags, nofile).await;
        let mut idle = Vec::new();
        tokio::time::timeout(HANG, async {
            for _ in 0..flood {
                idle.push(TcpStream::connect(host.addr).await.unwrap());
            }
        })
        .await
        .expect("the flood's connections were not taken in (backlog full)");
        // A real request on a new connection is answered.
        let (status, _, body) = request(host.addr, &get(&document_path())).await;
        assert_eq!(status, 200, "{body}");
        let cap = host.cap.expect("the host announces its connection cap");
        if nofile.is_some() {
            assert!(cap < 128, "cap {cap} does not fit the descriptor limit");
        } else {
            assert_eq!(cap, 20);
        }
        // The oldest idle connections were closed to make room; at most `cap` are left.
        let mut closed = 0;
        for stream in &mut idle[..flood - cap] {
            tokio::time::timeout(HANG, closed_by_host(stream))
                .await
                .expect("an idle connection was not evicted");
            closed += 1;
        }
        assert!(closed >= flood - cap);
    }
}

#[tokio::test]
async fn sigterm_with_a_half_sent_request_exits_within_the_shutdown_timeout() {
    let mut host = spawn_host(
        &[
            "--header-timeout",
            "60s",
            "--idle-timeout",
            "60s",
            "--shutdown-timeout",
            "1s",
        ],
        None,
    )
    .await;
    let mut half = TcpStream::connect(host.addr).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut kept = TcpStream::connect(host.addr).await.unwrap();
    assert_eq!(exchange(&mut kept, &get("/healthz")).await.0, 200);
    let pid = host.child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(HANG, host.child.wait())
        .await
        .expect("the host did not exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
    // Both connections were closed, and nothing listens any more.
    tokio::time::timeout(HANG, closed_by_host(&mut half))
        .await
        .unwrap();
    tokio::time::timeout(HANG, closed_by_host(&mut kept))
        .await
        .unwrap();
    assert!(TcpStream::connect(host.addr).await.is_err());
}

#[tokio::test]
async fn every_error_is_json_with_no_store_and_a_missing_host_is_refused() {
    let host = spawn_host(&[], None).await;
    let doc = document_path();
    let cases = [
        (get("/nowhere"), 404),
        (get(&format!("/mcp/oauth/{ID}/client.json")), 400),
        (
            format!(
                "POST {doc} HTTP/1.1\r\nHost: ide.example.com\r\nContent-Length: 5\r\n\r\nhello"
            ),
            405,
        ),
        (
            format!("DELETE {doc} HTTP/1.1\r\nHost: ide.example.com\r\n\r\n"),
            405,
        ),
        (format!("GET {doc} HTTP/1.1\r\n\r\n"), 400),
        (
            format!("GET {doc} HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n"),
            400,
        ),
        (format!("GET {doc} HTTP/1.1\r\nHost: a b\r\n\r\n"), 400),
    ];
    for (raw, expected) in cases {
        let (status, head, body) = request(host.addr, &raw).await;
        let first = raw.lines().next().unwrap();
        assert_eq!(status, expected, "{first}: {head}\n{body}");
        assert!(
            head.contains("content-type: application/json"),
            "{first}: {head}"
        );
        assert!(head.contains("cache-control: no-store"), "{first}: {head}");
        let error: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{first}: {e}: {body}"));
        assert!(error["error"].is_string(), "{body}");
        assert!(
            error["error_description"].as_str().unwrap().len() > 5,
            "{body}"
        );
        if expected == 405 {
            assert!(head.contains("allow: get, head"), "{head}");
        }
    }
    // HTTP/1.0 needs no Host; the document is served with its cache lifetime.
    let (status, head, _) = request(host.addr, &format!("GET {doc} HTTP/1.0\r\n\r\n")).await;
    assert_eq!(status, 200);
    assert!(
        head.contains("cache-control: public, max-age=3600"),
        "{head}"
    );
    // The health endpoint, at the root and under the prefix, never cached.
    for path in ["/healthz", "/mcp/oauth/healthz"] {
        for method in ["GET", "HEAD"] {
            let raw = format!("{method} {path} HTTP/1.1\r\nHost: ide.example.com\r\n\r\n");
            let (status, head, body) = request(host.addr, &raw).await;
            assert_eq!(status, 200, "{method} {path}");
            assert!(head.contains("cache-control: no-store"), "{head}");
            assert_eq!(body.trim(), if method == "GET" { "ok" } else { "" });
        }
    }
}

#[tokio::test]
async fn the_listen_backlog_holds_at_least_1024_connections() {
    let host = spawn_host(&[], None).await;
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(4096);
    // `ss` shows a listening socket's backlog as its Send-Q.
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", host.addr.port())])
        .output()
        .expect("ss (iproute2) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let backlog: u32 = text
        .split_whitespace()
        .nth(2)
        .and_then(|q| q.parse().ok())
        .unwrap_or_else(|| panic!("no listening socket in {text:?}"));
    assert_eq!(backlog, 4096.min(somaxconn), "{text}");
    assert!(backlog >= 1024.min(somaxconn));
}

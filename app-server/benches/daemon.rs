//! Benchmarks of the daemon's hot paths. Prints a Markdown table; the figures recorded in
//! docs/benchmarks.md come from `cargo bench -p mcp-app-server --bench daemon`.
//!
//! - framing: messages parsed per second from a buffer (both framings);
//! - status: `mcpServerStatus/list` round trips through an in-memory connection;
//! - login: wall time of a full login against the test kit, with and without 20 ms of added
//!   latency per request, and how many HTTP requests it made; and with 50 ms per request the
//!   time to the authorization URL of a cold login and of a warm one (discovery cache);
//! - token: `mcpServer/oauth/token` served from the store (no refresh) and with a forced
//!   refresh each time;
//! - burst: 20,000 pipelined `mcpServer/oauth/token` requests to the real binary (one and
//!   1,000 stored servers), answered in full, and how much the daemon's resident set grew;
//! - stalled reader: the same burst to a daemon whose stdout is not read for a while: how
//!   much input it takes, its resident set, and how long it takes to exit at end of input;
//! - logins: the real binary's time from spawn to the `initialize` answer, its idle resident
//!   set, and 1,000 logins pending at once on one fixed callback port: the resident set
//!   while they wait, and the time until all completed once the browsers came back;
//! - cold: the real binary's first login (DCR, a preregistered client, CIMD; the
//!   authorization server on its own origin and on the MCP server's) with 50 ms added to
//!   every answer, next to what that many of the kit's round trips cost alone, and the MCP
//!   TypeScript SDK's against the same kits;
//! - memory: the resident set of this process at the end.
//!
//! `MCP_BENCH_ONLY=burst` runs only the burst and stalled-reader rows, `MCP_BENCH_ONLY=logins`
//! only the start-up and pending-login rows, `MCP_BENCH_ONLY=login` only the login rows (the
//! cold rows included), `MCP_BENCH_ONLY=cold` only the cold rows.
#![allow(clippy::print_stdout)]

#[path = "daemon/burst.rs"]
mod burst;
#[path = "daemon/cold.rs"]
mod cold;
#[path = "daemon/logins.rs"]
mod logins;

use std::time::{Duration, Instant};

use mcp_app_server::home::Home;
use mcp_app_server::rpc::{AppServer, ServerOptions};
use mcp_app_server::transport::{Framing, Incoming, MessageReader, write_message};
use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig, browser_visit};
use serde_json::{Value, json};
use tokio::io::{BufReader, DuplexStream};

struct Client {
    writer: DuplexStream,
    reader: MessageReader<BufReader<DuplexStream>>,
    next_id: i64,
}

impl Client {
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        write_message(
            &mut self.writer,
            Framing::Lines,
            &serde_json::to_vec(&msg).unwrap(),
        )
        .await
        .unwrap();
        loop {
            let Ok(Some(Incoming::Message(bytes))) = self.reader.next().await else {
                panic!("connection closed")
            };
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    async fn until(&mut self, method: &str) -> Value {
        loop {
            let Ok(Some(Incoming::Message(bytes))) = self.reader.next().await else {
                panic!("connection closed")
            };
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            if v["method"] == method {
                return v;
            }
        }
    }
}

fn daemon(home: &std::path::Path) -> (AppServer, Client) {
    let server = AppServer::new(ServerOptions::new(Home::at(home))).unwrap();
    let (client_w, server_r) = tokio::io::duplex(1 << 20);
    let (server_w, client_r) = tokio::io::duplex(1 << 20);
    let s = server.clone();
    tokio::spawn(async move { s.serve(server_r, server_w).await });
    let client = Client {
        writer: client_w,
        reader: MessageReader::new(BufReader::new(client_r), 64 << 20),
        next_id: 1,
    };
    (server, client)
}

pub(crate) fn row(name: &str, value: String, note: &str) {
    println!("| {name} | {value} | {note} |");
}

async fn framing() {
    for framing in [Framing::Lines, Framing::ContentLength] {
        let mut buf = Vec::new();
        let msg = br#"{"jsonrpc":"2.0","id":1,"method":"mcpServer/oauth/token","params":{"name":"linear"}}"#;
        let n = 100_000;
        for _ in 0..n {
            write_message(&mut buf, framing, msg).await.unwrap();
        }
        let start = Instant::now();
        let mut reader = MessageReader::new(BufReader::new(&buf[..]), 4 << 20);
        let mut count = 0;
        while let Some(Incoming::Message(_)) = reader.next().await.unwrap() {
            count += 1;
        }
        assert_eq!(count, n);
        let secs = start.elapsed().as_secs_f64();
        row(
            &format!("framing {framing:?}"),
            format!("{:.2} M msg/s", n as f64 / secs / 1e6),
            "parse only, 85-byte messages",
        );
    }
}

async fn status() {
    let home = tempfile::tempdir().unwrap();
    let mut config = String::from("mcp_oauth_credentials_store = \"file\"\n");
    for i in 0..50 {
        config.push_str(&format!(
            "[mcp_servers.s{i:02}]\nurl = \"https://s{i}.example.com/mcp\"\n"
        ));
    }
    std::fs::write(home.path().join("config.toml"), config).unwrap();
    let (_server, mut c) = daemon(home.path());
    c.call(
        "initialize",
        json!({"clientInfo": {"name": "bench", "version": "1"}}),
    )
    .await;
    let n = 2000;
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let r = c.call("mcpServerStatus/list", json!({})).await;
        assert_eq!(r["result"]["data"].as_array().unwrap().len(), 50);
        lat.push(t.elapsed());
    }
    let total = start.elapsed().as_secs_f64();
    lat.sort();
    row(
        "mcpServerStatus/list, 50 servers",
        format!("{:.0} req/s", n as f64 / total),
        &format!(
            "p50 {:?}, p99 {:?} (one read of the credential file per listing)",
            lat[n / 2],
            lat[n * 99 / 100]
        ),
    );
}

async fn login_once(latency: Option<Duration>) -> (Duration, Duration, usize) {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    if let Some(l) = latency {
        kit.faults().set(Endpoint::All, Fault::Latency(l));
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "mcp_oauth_credentials_store = \"file\"\n[mcp_servers.k]\nurl = \"{}\"\n",
            kit.mcp_url()
        ),
    )
    .unwrap();
    let (_server, mut c) = daemon(home.path());
    c.call(
        "initialize",
        json!({"clientInfo": {"name": "bench", "version": "1"}}),
    )
    .await;
    let start = Instant::now();
    let r = c.call("mcpServer/oauth/login", json!({"name": "k"})).await;
    let to_url = start.elapsed();
    browser_visit(r["result"]["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.until("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["params"]["success"], true);
    (to_url, start.elapsed(), kit.request_log().len())
}

async fn login() {
    for latency in [None, Some(Duration::from_millis(20))] {
        let mut runs = Vec::new();
        for _ in 0..5 {
            runs.push(login_once(latency).await);
        }
        runs.sort();
        let (to_url, total, requests) = runs[runs.len() / 2];
        let label = match latency {
            None => "login, loopback".to_string(),
            Some(l) => format!("login, +{} ms per request", l.as_millis()),
        };
        row(
            &label,
            format!("{to_url:.1?} to the URL, {total:.1?} in all"),
            &format!("median of 5; {requests} HTTP requests to the servers, browser included"),
        );
    }
}

/// One cold login (nothing known, no pre-warm) and then a warm one (the same daemon: the
/// discovery cache and the stored registration answer), with `latency` added to every
/// request. Answers the times to the authorization URL and the requests before each.
async fn cold_and_warm(latency: Duration) -> ((Duration, usize), (Duration, usize)) {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(latency));
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n[mcp_servers.k]\nurl = \"{}\"\n",
            kit.mcp_url()
        ),
    )
    .unwrap();
    let (_server, mut c) = daemon(home.path());
    c.call(
        "initialize",
        json!({"clientInfo": {"name": "bench", "version": "1"}}),
    )
    .await;
    let mut out = Vec::new();
    for _ in 0..2 {
        let before = kit.request_log().len();
        let start = Instant::now();
        let r = c.call("mcpServer/oauth/login", json!({"name": "k"})).await;
        let to_url = start.elapsed();
        out.push((to_url, kit.request_log().len() - before));
        browser_visit(r["result"]["authorizationUrl"].as_str().unwrap())
            .await
            .unwrap();
        let done = c.until("mcpServer/oauthLogin/completed").await;
        assert_eq!(done["params"]["success"], true);
    }
    (out[0], out[1])
}

async fn login_round_trips() {
    let latency = Duration::from_millis(50);
    let mut runs = Vec::new();
    for _ in 0..5 {
        runs.push(cold_and_warm(latency).await);
    }
    let median = |mut v: Vec<(Duration, usize)>| {
        v.sort();
        v[v.len() / 2]
    };
    let (cold, cold_requests) = median(runs.iter().map(|r| r.0).collect());
    let (warm, warm_requests) = median(runs.iter().map(|r| r.1).collect());
    row(
        "login cold (DCR), +50 ms per request",
        format!("{cold:.1?} to the URL"),
        &format!("median of 5; {cold_requests} requests before the answer"),
    );
    row(
        "login warm (same daemon), +50 ms per request",
        format!("{warm:.1?} to the URL"),
        &format!("median of 5; {warm_requests} requests before the answer"),
    );
}

async fn token() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "mcp_oauth_credentials_store = \"file\"\n[mcp_servers.k]\nurl = \"{}\"\n",
            kit.mcp_url()
        ),
    )
    .unwrap();
    let (_server, mut c) = daemon(home.path());
    c.call(
        "initialize",
        json!({"clientInfo": {"name": "bench", "version": "1"}}),
    )
    .await;
    let r = c.call("mcpServer/oauth/login", json!({"name": "k"})).await;
    browser_visit(r["result"]["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    c.until("mcpServer/oauthLogin/completed").await;
    for (label, min_validity, n) in [
        ("token, from the store", 60, 2000),
        ("token, forced refresh", 7200, 200),
    ] {
        let start = Instant::now();
        for _ in 0..n {
            let r = c
                .call(
                    "mcpServer/oauth/token",
                    json!({"name": "k", "minValiditySecs": min_validity}),
                )
                .await;
            assert!(r["result"]["accessToken"].is_string(), "{r}");
        }
        let secs = start.elapsed().as_secs_f64();
        row(
            label,
            format!("{:.0} req/s", n as f64 / secs),
            &format!("{n} sequential requests"),
        );
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::main]
async fn main() {
    println!("| benchmark | figure | notes |");
    println!("|---|---|---|");
    match std::env::var("MCP_BENCH_ONLY").as_deref() {
        Ok("burst") => return burst::run().await,
        Ok("logins") => return logins::run().await,
        Ok("cold") => return cold::run().await,
        _ => {}
    }
    if std::env::var("MCP_BENCH_ONLY").as_deref() == Ok("login") {
        login().await;
        login_round_trips().await;
        cold::run().await;
        return;
    }
    framing().await;
    status().await;
    login().await;
    login_round_trips().await;
    cold::run().await;
    token().await;
    burst::run().await;
    logins::run().await;
    if let Some(kib) = rss_kib() {
        row(
            "peak RSS of the bench process",
            format!("{:.1} MiB", kib as f64 / 1024.0),
            "daemon + test kit + client in one process",
        );
    }
}

//! Cold logins on the real binary, one fresh process per run, against a test kit that adds
//! 50 ms to every answer: the time from the `mcpServer/oauth/login` request to its answer,
//! next to what the same number of the kit's round trips costs on their own. The daemon is
//! spawned with pre-warm off and asked once it has answered `initialize` and had a moment to
//! start (as a frontend's first login comes after its start), so nothing about the server is
//! known but what every process does at start (the TLS roots) is done. Each case runs with
//! the kit's authorization server on its own origin and on the MCP server's origin.
//!
//! In the same run, the MCP TypeScript SDK (`tests/interop`, installed by
//! `.ci/interop-setup.sh`) logs in against the same kits: `tests/interop/sdk-login-timing.mjs`
//! times its `connect` to the authorization URL in a fresh Node process per run. With
//! `MCP_BENCH_RMCP` naming a timing program built against rmcp (the Rust SDK; not part of
//! this repository, docs/benchmarks.md says how it is made), rmcp does the same in a fresh
//! process per run; without it the rmcp rows are skipped. Round trips of all come from the
//! kit's request spans (exact); times are medians.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mcp_app_server_testkit::{
    CALLBACK_ID_PLACEHOLDER, Endpoint, Fault, Kit, KitConfig, PreregisteredClient, browser_visit,
    sequential_round_trips,
};
use serde_json::json;

use super::logins::spawn;
use super::row;

const LATENCY: Duration = Duration::from_millis(50);
const RUNS: usize = 7;
const PEER_RUNS: usize = 5;
const CIMD_BASE: &str = "https://ide.example.com/meta";

/// One case: how the client is registered, where the authorization server lives.
#[derive(Clone, Copy, PartialEq)]
enum Registration {
    Cimd,
    Dcr,
    Preregistered,
}

impl Registration {
    fn label(self) -> &'static str {
        match self {
            Registration::Cimd => "CIMD",
            Registration::Dcr => "DCR",
            Registration::Preregistered => "preregistered client",
        }
    }

    fn kit(self, same_origin: bool) -> KitConfig {
        let config = match self {
            Registration::Cimd => KitConfig {
                cimd: true,
                ..KitConfig::default()
            },
            Registration::Dcr => KitConfig::default(),
            Registration::Preregistered => KitConfig {
                dcr: false,
                preregistered: vec![PreregisteredClient::public(
                    "pre-pub",
                    &[&format!(
                        "http://127.0.0.1/callback/{CALLBACK_ID_PLACEHOLDER}"
                    )],
                )],
                ..KitConfig::default()
            },
        };
        KitConfig {
            as_on_mcp_origin: same_origin,
            ..config
        }
    }

    fn oauth(self) -> &'static str {
        match self {
            Registration::Preregistered => "[mcp_servers.k.oauth]\nclient_id = \"pre-pub\"\n",
            _ => "",
        }
    }

    /// Login params beyond the name. The document is not fetched before the answer: the
    /// authorization server reads it when the browser arrives.
    fn params(self) -> serde_json::Value {
        match self {
            Registration::Cimd => json!({"clientMetadataUrlBase": CIMD_BASE}),
            _ => json!({}),
        }
    }
}

/// What one cold login measured.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Cold {
    time: Duration,
    round_trips: usize,
    requests: usize,
    /// The third login of the same process.
    warm: Duration,
}

pub async fn run() {
    let round_trip = fixture_round_trip().await;
    row(
        "one round trip of the kit, +50 ms",
        format!("{round_trip:.1?}"),
        "median of 11 GETs from a built client, each on a new connection: the unit of the cold rows",
    );
    let peers = peers();
    for same_origin in [false, true] {
        let place = if same_origin {
            "AS on the MCP origin"
        } else {
            "AS on its own origin"
        };
        for registration in [
            Registration::Cimd,
            Registration::Dcr,
            Registration::Preregistered,
        ] {
            let label = registration.label();
            let mut runs = Vec::new();
            for i in 0..RUNS {
                runs.push(cold_login(registration, same_origin, i == 0).await);
            }
            runs.sort();
            let median = runs[RUNS / 2];
            let trips = median.round_trips;
            let budget = round_trip * trips as u32;
            let mut warm: Vec<Duration> = runs.iter().map(|r| r.warm).collect();
            warm.sort();
            row(
                &format!("login cold ({label}, {place}), real binary, +50 ms per request"),
                format!("{:.1?} to the URL", median.time),
                &format!(
                    "median of {RUNS} (min {:.1?}, max {:.1?}); {} requests; {trips} round trips; {trips} round trips of the kit are {budget:.1?}, so the daemon's own time is {:.1?}; third login in the process {:.2?} (median)",
                    runs[0].time,
                    runs[RUNS - 1].time,
                    median.requests,
                    median.time.saturating_sub(budget),
                    warm[RUNS / 2],
                ),
            );
            for peer in &peers {
                peer_row(peer, registration, same_origin, place, round_trip).await;
            }
            if peers.iter().all(|p| !matches!(p, Peer::Sdk(_))) {
                row(
                    &format!("TS SDK login cold ({label}, {place})"),
                    "not measured".to_string(),
                    "tests/interop is not installed (.ci/interop-setup.sh)",
                );
            }
        }
    }
    prewarmed_dcr().await;
}

/// One GET of the kit's metadata on a new connection, as each of a cold login's round trips
/// but the registration is.
async fn fixture_round_trip() -> Duration {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = kit.prm_url();
    let mut times = Vec::new();
    for _ in 0..11 {
        let start = Instant::now();
        let r = client.get(&url).send().await.unwrap();
        r.bytes().await.unwrap();
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

fn config(kit: &Kit, prewarm: bool, oauth: &str) -> String {
    let prewarm = if prewarm {
        ""
    } else {
        "mcp_oauth_prewarm = false\n"
    };
    format!(
        "mcp_oauth_credentials_store = \"file\"\n{prewarm}[mcp_servers.k]\nurl = \"{}\"\n{oauth}",
        kit.mcp_url()
    )
}

/// A fresh daemon's first login, then two more in the same process (the third is the warm
/// figure); with `finish` (DCR), the browser comes back and the first login completes, so the
/// run also shows the flow works end to end.
async fn cold_login(registration: Registration, same_origin: bool, finish: bool) -> Cold {
    let kit = Kit::start(registration.kit(same_origin)).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        config(&kit, false, registration.oauth()),
    )
    .unwrap();
    let mut d = spawn(home.path());
    d.initialize().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut params = json!({"name": "k"});
    if let (Some(p), Some(e)) = (params.as_object_mut(), registration.params().as_object()) {
        p.extend(e.clone());
    }
    let start = Instant::now();
    let r = d
        .call("login", "mcpServer/oauth/login", params.clone())
        .await;
    let time = start.elapsed();
    let url = r["result"]["authorizationUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {r}"))
        .to_string();
    let spans = kit.request_spans();
    let (round_trips, requests) = (sequential_round_trips(&spans), spans.len());
    let finish = finish && registration == Registration::Dcr;
    if finish {
        kit.faults().clear();
        browser_visit(&url).await.unwrap();
        let done = d.until("mcpServer/oauthLogin/completed").await;
        assert_eq!(done["params"]["success"], true, "{done}");
        kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    }
    let mut warm = Duration::ZERO;
    for i in 0..2 {
        let start = Instant::now();
        let r = d
            .call(
                &format!("again{i}"),
                "mcpServer/oauth/login",
                params.clone(),
            )
            .await;
        warm = start.elapsed();
        assert!(r["result"]["authorizationUrl"].is_string(), "{r}");
    }
    d.stop().await;
    Cold {
        time,
        round_trips,
        requests,
        warm,
    }
}

/// A configured server the daemon pre-warmed (discovery and, with DCR, the client
/// registered) before its first login.
async fn prewarmed_dcr() {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let kit = Kit::start(KitConfig::default()).await.unwrap();
        kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), config(&kit, true, "")).unwrap();
        let mut d = spawn(home.path());
        d.initialize().await;
        for _ in 0..400 {
            if kit.counters().register == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = kit.request_spans().len();
        let start = Instant::now();
        let r = d
            .call("login", "mcpServer/oauth/login", json!({"name": "k"}))
            .await;
        let time = start.elapsed();
        assert!(r["result"]["authorizationUrl"].is_string(), "{r}");
        runs.push((time, kit.request_spans().len() - before));
        d.stop().await;
    }
    runs.sort();
    let (time, requests) = runs[RUNS / 2];
    row(
        "first login of a configured server after pre-warm (DCR), real binary, +50 ms per request",
        format!("{time:.2?} to the URL"),
        &format!(
            "median of {RUNS} (min {:.2?}, max {:.2?}); {requests} requests: pre-warm discovered the server and registered the client",
            runs[0].0,
            runs[RUNS - 1].0
        ),
    );
}

/// A client library timed against the same kits as the daemon: its program takes
/// `<mcp-url> <dcr|preregistered|cimd> <logins> [client id | document URL]` and prints
/// `{"times_ms": [...]}`, from its first request to the authorization URL.
enum Peer {
    /// The MCP TypeScript SDK: `tests/interop/sdk-login-timing.mjs`.
    Sdk(PathBuf),
    /// rmcp: the program `MCP_BENCH_RMCP` names.
    Rmcp(PathBuf),
}

impl Peer {
    fn label(&self) -> &'static str {
        match self {
            Peer::Sdk(_) => "TS SDK",
            Peer::Rmcp(_) => "rmcp",
        }
    }

    fn command(&self) -> tokio::process::Command {
        match self {
            Peer::Sdk(dir) => {
                let mut command = tokio::process::Command::new("node");
                command.current_dir(dir).arg("sdk-login-timing.mjs");
                command
            }
            Peer::Rmcp(program) => tokio::process::Command::new(program),
        }
    }

    fn unit(&self) -> &'static str {
        match self {
            Peer::Sdk(_) => "fresh Node processes",
            Peer::Rmcp(_) => "fresh processes",
        }
    }
}

/// The peers installed: the TS SDK when `tests/interop` has its packages, rmcp when
/// `MCP_BENCH_RMCP` names its timing program.
fn peers() -> Vec<Peer> {
    let mut peers = Vec::new();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop");
    if dir
        .join("node_modules/@modelcontextprotocol/sdk/package.json")
        .exists()
    {
        peers.push(Peer::Sdk(dir));
    }
    match std::env::var_os("MCP_BENCH_RMCP").map(PathBuf::from) {
        Some(program) if program.is_file() => peers.push(Peer::Rmcp(program)),
        Some(program) => panic!("MCP_BENCH_RMCP={} is not a file", program.display()),
        None => {}
    }
    peers
}

/// A peer's cold logins against the same kind of kit: one login per process for the round
/// trips and the cold time, three for the warm one.
async fn peer_row(
    peer: &Peer,
    registration: Registration,
    same_origin: bool,
    place: &str,
    round_trip: Duration,
) {
    let (mode, extra) = match registration {
        Registration::Cimd => ("cimd", format!("{CIMD_BASE}/sdk.json")),
        Registration::Dcr => ("dcr", String::new()),
        Registration::Preregistered => ("preregistered", "pre-pub".to_string()),
    };
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    for _ in 0..PEER_RUNS {
        let kit = Kit::start(registration.kit(same_origin)).await.unwrap();
        kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
        let times = match peer_logins(peer, &kit.mcp_url(), mode, 1, &extra).await {
            Ok(times) => times,
            Err(failure) => {
                // A peer that cannot log in against this kit is a row, not the end of the run.
                row(
                    &format!(
                        "{} login cold ({}, {place})",
                        peer.label(),
                        registration.label()
                    ),
                    "failed".to_string(),
                    &failure,
                );
                return;
            }
        };
        let spans = kit.request_spans();
        cold.push((times[0], sequential_round_trips(&spans), spans.len()));
        let kit = Kit::start(registration.kit(same_origin)).await.unwrap();
        kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
        let third = peer_logins(peer, &kit.mcp_url(), mode, 3, &extra)
            .await
            .ok()
            .and_then(|times| times.get(2).copied());
        warm.push(third.unwrap_or(Duration::MAX));
    }
    cold.sort();
    warm.sort();
    let (time, trips, requests) = cold[PEER_RUNS / 2];
    let budget = round_trip * trips as u32;
    row(
        &format!(
            "{} login cold ({}, {place}), +50 ms per request",
            peer.label(),
            registration.label()
        ),
        format!("{time:.1?} to the URL"),
        &format!(
            "median of {PEER_RUNS} {} (min {:.1?}, max {:.1?}); {requests} requests; {trips} round trips ({budget:.1?}), client time {:.1?}; third login in the process {:.1?} (median)",
            peer.unit(),
            cold[0].0,
            cold[PEER_RUNS - 1].0,
            time.saturating_sub(budget),
            warm[PEER_RUNS / 2],
        ),
    );
}

/// The times of `logins` logins in one process of the peer's program, or why it failed.
async fn peer_logins(
    peer: &Peer,
    url: &str,
    mode: &str,
    logins: usize,
    extra: &str,
) -> Result<Vec<Duration>, String> {
    let mut command = peer.command();
    command.arg(url).arg(mode).arg(logins.to_string());
    if !extra.is_empty() {
        command.arg(extra);
    }
    let out = command
        .output()
        .await
        .map_err(|e| format!("the timing program did not run: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{}: {}", out.status, stderr.trim()));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("its output is not one JSON line: {e}"))?;
    let times = v["times_ms"]
        .as_array()
        .ok_or("its output has no times_ms")?
        .iter()
        .map(|t| {
            t.as_f64()
                .map(|ms| Duration::from_secs_f64(ms / 1000.0))
                .ok_or_else(|| format!("not a number of milliseconds: {t}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if times.len() != logins {
        return Err(format!("{} times for {logins} logins", times.len()));
    }
    Ok(times)
}

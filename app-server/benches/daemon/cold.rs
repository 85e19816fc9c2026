//! Cold logins on the real binary, one fresh process per run, against a test kit that adds
//! 50 ms to every answer: the time from the `mcpServer/oauth/login` request to its answer,
//! next to what the same number of the kit's round trips costs on their own. The daemon is
//! spawned with pre-warm off and asked once it has answered `initialize` and had a moment to
//! start (as a frontend's first login comes after its start), so nothing about the server is
//! known but what every process does at start (the TLS roots) is done.

use std::time::{Duration, Instant};

use mcp_app_server_testkit::{
    CALLBACK_ID_PLACEHOLDER, Endpoint, Fault, Kit, KitConfig, PreregisteredClient, browser_visit,
};
use serde_json::json;

use super::logins::spawn;
use super::row;

const LATENCY: Duration = Duration::from_millis(50);
const RUNS: usize = 7;

pub async fn run() {
    let round_trip = fixture_round_trip().await;
    row(
        "one round trip of the kit, +50 ms",
        format!("{round_trip:.1?}"),
        "median of 11 GETs from a built client, each on a new connection: the unit of the cold rows",
    );
    let preregistered = KitConfig {
        dcr: false,
        preregistered: vec![PreregisteredClient::public(
            "pre-pub",
            &[&format!(
                "http://127.0.0.1/callback/{CALLBACK_ID_PLACEHOLDER}"
            )],
        )],
        ..KitConfig::default()
    };
    let cases = [
        ("DCR", KitConfig::default(), "", json!({}), 3),
        (
            "preregistered client",
            preregistered,
            "[mcp_servers.k.oauth]\nclient_id = \"pre-pub\"\n",
            json!({}),
            2,
        ),
        (
            "CIMD",
            KitConfig {
                cimd: true,
                ..KitConfig::default()
            },
            "",
            // Not fetched before the answer: the authorization server reads the document
            // when the browser arrives.
            json!({"clientMetadataUrlBase": "https://ide.example.com/meta"}),
            2,
        ),
    ];
    for (label, config, oauth, extra, trips) in cases {
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(cold_login(config.clone(), oauth, extra.clone(), label == "DCR").await);
        }
        runs.sort();
        let (time, requests) = runs[RUNS / 2];
        let budget = round_trip * trips;
        row(
            &format!("login cold ({label}), real binary, +50 ms per request"),
            format!("{time:.1?} to the URL"),
            &format!(
                "median of {RUNS} (min {:.1?}, max {:.1?}); {requests} requests; {trips} round trips of the kit are {budget:.1?}, so the daemon's own time is {:.1?}",
                runs[0].0,
                runs[RUNS - 1].0,
                time.saturating_sub(budget)
            ),
        );
    }
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

/// A fresh daemon's first login; with `finish`, the browser comes back and the login
/// completes (so the run also shows the flow works end to end).
async fn cold_login(
    config: KitConfig,
    oauth: &str,
    extra: serde_json::Value,
    finish: bool,
) -> (Duration, usize) {
    let kit = Kit::start(config).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("config.toml"),
        format!(
            "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n[mcp_servers.k]\nurl = \"{}\"\n{oauth}",
            kit.mcp_url()
        ),
    )
    .unwrap();
    let mut d = spawn(home.path());
    d.initialize().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut params = json!({"name": "k"});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let start = Instant::now();
    let r = d.call("login", "mcpServer/oauth/login", params).await;
    let time = start.elapsed();
    let url = r["result"]["authorizationUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {r}"))
        .to_string();
    let requests = kit.request_log().len();
    if finish {
        kit.faults().clear();
        browser_visit(&url).await.unwrap();
        let done = d.until("mcpServer/oauthLogin/completed").await;
        assert_eq!(done["params"]["success"], true, "{done}");
    }
    d.stop().await;
    (time, requests)
}

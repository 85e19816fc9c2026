//! Round trips of a login: the cold login at the limit (probe and PRM together, every
//! metadata location at once; the same-origin speculation is in `same_origin.rs`), known servers answered from the discovery cache (in the same
//! daemon and after a restart), pre-warm, stale metadata, and sticky callback ports that
//! keep one DCR registration per server. The stale-metadata retries are in
//! `stale_metadata.rs`.

use std::path::Path;
use std::time::Duration;

use mcp_app_server_testkit::{
    Endpoint, Fault, Kit, KitConfig, PreregisteredClient, browser_visit, sequential_round_trips,
};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};

/// Held before every answer, so requests a client sends together always overlap.
pub(super) const LATENCY: Duration = Duration::from_millis(150);

/// Pre-warm's discovery without its registration of a DCR client, for tests of what a
/// login does with a cached discovery.
pub(super) const DISCOVERY_ONLY: &str = "mcp_oauth_preregister = false\n";

fn config(kit: &Kit, prewarm: bool, oauth: &str) -> String {
    let prewarm = if prewarm {
        ""
    } else {
        "mcp_oauth_prewarm = false\n"
    };
    // Top-level keys `oauth` starts with go before the server's table.
    let (globals, oauth) = match oauth.strip_prefix(DISCOVERY_ONLY) {
        Some(rest) => (DISCOVERY_ONLY, rest),
        None => ("", oauth),
    };
    format!(
        "mcp_oauth_credentials_store = \"file\"\n{prewarm}{globals}[mcp_servers.kit]\nurl = \"{}\"\n{oauth}",
        kit.mcp_url()
    )
}

pub(super) async fn daemon(
    home: &Path,
    kit: &Kit,
    prewarm: bool,
    oauth: &str,
) -> (mcp_app_server::rpc::AppServer, MemClient) {
    write_config(home, &config(kit, prewarm, oauth));
    let (server, mut c) = harness::start(home);
    c.initialize().await;
    (server, c)
}

/// Starts a login; answers the result and the sequential round trips (and requests) the
/// kit saw between the request and its answer.
pub(super) async fn start_login(c: &mut MemClient, kit: &Kit) -> (Value, usize, usize) {
    start_login_with(c, kit, json!({"name": "kit"})).await
}

/// [`start_login`] with these login params.
pub(super) async fn start_login_with(
    c: &mut MemClient,
    kit: &Kit,
    params: Value,
) -> (Value, usize, usize) {
    let (r, spans) = login_requests(c, kit, params).await;
    (r, sequential_round_trips(&spans), spans.len())
}

/// Starts a login; answers the result and the requests the kit saw before the answer.
pub(super) async fn login_requests(
    c: &mut MemClient,
    kit: &Kit,
    params: Value,
) -> (Value, Vec<mcp_app_server_testkit::RequestSpan>) {
    let mark = kit.request_spans().len();
    let r = c.ok("mcpServer/oauth/login", params).await;
    (r, kit.request_spans()[mark..].to_vec())
}

/// The browser goes to the URL; the login must succeed.
pub(super) async fn finish(c: &mut MemClient, url: &str) {
    browser_visit(url).await.unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
}

pub(super) fn url_of(r: &Value) -> String {
    r["authorizationUrl"].as_str().unwrap().to_string()
}

fn port_of(r: &Value) -> u16 {
    url::Url::parse(r["redirectUri"].as_str().unwrap())
        .unwrap()
        .port()
        .unwrap()
}

pub(super) fn preregistered_kit() -> KitConfig {
    KitConfig {
        dcr: false,
        preregistered: vec![PreregisteredClient::public(
            "pre-pub",
            &[&format!(
                "http://127.0.0.1/callback/{}",
                mcp_app_server_testkit::CALLBACK_ID_PLACEHOLDER
            )],
        )],
        ..KitConfig::default()
    }
}

pub(super) const PREREGISTERED: &str = "[mcp_servers.kit.oauth]\nclient_id = \"pre-pub\"\n";

#[test]
fn round_trips_are_counted_from_what_had_been_answered() {
    use mcp_app_server_testkit::RequestSpan;
    let span = |arrived, answered| RequestSpan {
        request: String::new(),
        arrived,
        answered: Some(answered),
    };
    assert_eq!(sequential_round_trips(&[]), 0);
    // Two together, then one after both.
    assert_eq!(
        sequential_round_trips(&[span(1, 3), span(2, 4), span(5, 6)]),
        2
    );
    // A chain of three.
    assert_eq!(
        sequential_round_trips(&[span(1, 2), span(3, 4), span(5, 6)]),
        3
    );
}

#[tokio::test]
async fn a_cold_login_takes_two_round_trips_preregistered_and_three_with_dcr() {
    let kit = Kit::start(preregistered_kit()).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    let (r, round_trips, requests) = start_login(&mut c, &kit).await;
    assert_eq!(round_trips, 2, "{:?}", kit.request_spans());
    // probe, path PRM, both metadata documents of the MCP origin (same-origin speculation;
    // the kit's authorization server lives on its own origin), then its two.
    assert_eq!(requests, 6, "{:?}", kit.request_log());
    finish(&mut c, &url_of(&r)).await;

    let kit = Kit::start(KitConfig::default()).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, round_trips, requests) = start_login(&mut c, &kit).await;
    assert_eq!(round_trips, 3, "{:?}", kit.request_spans());
    assert_eq!(requests, 7, "{:?}", kit.request_log());
    finish(&mut c, &url_of(&r)).await;
}

#[tokio::test]
async fn a_cold_cimd_login_takes_two_round_trips_and_a_warm_one_none() {
    let (base, _) = super::cimd::start_host("/meta").await;
    let kit = Kit::start(KitConfig {
        cimd: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let params = json!({"name": "kit", "clientMetadataUrlBase": base});
    let (r, spans) = login_requests(&mut c, &kit, params.clone()).await;
    assert_eq!(sequential_round_trips(&spans), 2, "{spans:?}");
    // The probe with the path-form PRM and the MCP origin's metadata documents, then the
    // authorization server's; no registration, and the daemon never fetches its own
    // document.
    let mut requests: Vec<&str> = spans.iter().map(|s| s.request.as_str()).collect();
    requests.sort();
    assert_eq!(
        requests,
        [
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/openid-configuration",
            "GET /.well-known/openid-configuration",
            "POST /mcp",
        ],
        "{spans:?}"
    );
    let url = url_of(&r);
    let client_id = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
        .unwrap();
    assert!(client_id.starts_with(&format!("{base}/")), "{client_id}");
    finish(&mut c, &url).await;
    // The authorization server fetched the document from the host and accepted it.
    assert!(kit.counters().cimd_fetch >= 1);
    assert_eq!(
        kit.last_token_request().unwrap().form["client_id"],
        client_id
    );

    // Warm: nothing before the answer, and again a document client (its URL names the
    // redirect URI, whose port may differ).
    let (r, round_trips, requests) = start_login_with(&mut c, &kit, params).await;
    assert_eq!((round_trips, requests), (0, 0), "{:?}", kit.request_log());
    finish(&mut c, &url_of(&r)).await;
    assert_eq!(kit.counters().register, 0);
    let warm_id = kit.last_token_request().unwrap().form["client_id"].clone();
    assert!(warm_id.starts_with(&format!("{base}/")), "{warm_id}");
}

#[tokio::test]
async fn a_known_server_costs_no_request_and_keeps_one_registration_across_restarts() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, _, cold) = start_login(&mut c, &kit).await;
    assert!(cold > 0);
    let port = port_of(&r);
    finish(&mut c, &url_of(&r)).await;

    // The same daemon: nothing is asked before the answer.
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 0, "{:?}", kit.request_log());
    assert_eq!(port_of(&r), port);
    finish(&mut c, &url_of(&r)).await;

    // A new daemon on the same state directory: nothing either, same port, same client.
    server.shutdown().await;
    drop(c);
    drop(server);
    let (server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 0, "{:?}", kit.request_log());
    assert_eq!(port_of(&r), port);
    finish(&mut c, &url_of(&r)).await;
    assert_eq!(kit.registered_clients().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn a_taken_remembered_port_gets_a_new_port_and_a_new_registration() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, _, _) = start_login(&mut c, &kit).await;
    let port = port_of(&r);
    finish(&mut c, &url_of(&r)).await;
    server.shutdown().await;
    drop(c);
    drop(server);

    // Another program took the port meanwhile.
    let mut squatter = None;
    for _ in 0..200 {
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            squatter = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _squatter = squatter.expect("the daemon freed its callback port");
    let (server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, _, _) = start_login(&mut c, &kit).await;
    assert_ne!(port_of(&r), port);
    finish(&mut c, &url_of(&r)).await;
    assert_eq!(kit.registered_clients().len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_expired_entry_is_fetched_again() {
    let kit = Kit::start(preregistered_kit()).await.unwrap();
    kit.set_metadata_max_age(Some(1));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    let (r, _, _) = start_login(&mut c, &kit).await;
    finish(&mut c, &url_of(&r)).await;
    let before = kit.counters();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 6, "{:?}", kit.request_log());
    assert_eq!(kit.counters().prm_path, before.prm_path + 1);
    assert_eq!(
        kit.counters().as_metadata_oauth,
        before.as_metadata_oauth + 1
    );
    finish(&mut c, &url_of(&r)).await;
}

#[tokio::test]
async fn a_refused_stale_token_endpoint_gets_one_transparent_rediscovery() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, _, _) = start_login(&mut c, &kit).await;
    finish(&mut c, &url_of(&r)).await;

    kit.move_endpoints();
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 0);
    let metadata_before = kit.counters().as_metadata_oauth;
    browser_visit(&url_of(&r)).await.unwrap();
    let restarted = c.notification("mcpServer/oauthLogin/restarted").await;
    assert!(
        restarted["reason"]
            .as_str()
            .unwrap()
            .contains("metadata changed"),
        "{restarted}"
    );
    assert_eq!(kit.counters().as_metadata_oauth, metadata_before + 1);
    finish(&mut c, restarted["authorizationUrl"].as_str().unwrap()).await;
    let log = kit.request_log();
    assert_eq!(
        log.iter().filter(|l| l.ends_with("/v2/token")).count(),
        1,
        "{log:?}"
    );
    // The next login knows the new endpoints.
    let (_, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 0);
}

#[tokio::test]
async fn pre_warm_makes_the_first_login_free_and_the_key_turns_it_off() {
    let kit = Kit::start(preregistered_kit()).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, true, PREREGISTERED).await;
    // Wait until the pre-warm has started; a login then waits for its result at most.
    for _ in 0..800 {
        if !kit.request_log().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let r = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    // Only the pre-warm's discovery reached the servers: each request once (the MCP
    // origin's metadata locations, asked speculatively, answer 404 there).
    let log = kit.request_log();
    assert_eq!(log.len(), 6, "{log:?}");
    let counters = kit.counters();
    assert_eq!(
        (
            counters.mcp,
            counters.prm_path,
            counters.as_metadata_oauth,
            counters.as_metadata_openid
        ),
        (1, 1, 1, 1),
        "{log:?}"
    );
    finish(&mut c, &url_of(&r)).await;

    let kit = Kit::start(preregistered_kit()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    c.ok("mcpServerStatus/list", json!({})).await;
    c.ok("config/mcpServer/reload", json!({})).await;
    c.ok("mcpServerStatus/list", json!({})).await;
    assert!(kit.request_log().is_empty(), "{:?}", kit.request_log());
    let (_, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 6);
}

/// A server the user is logged in to is not pre-warmed (its tokens need no discovery), while
/// one without a login is, in the same start.
#[tokio::test]
async fn pre_warm_leaves_out_servers_with_a_stored_login() {
    let (logged_in, other) = (
        Kit::start(KitConfig::default()).await.unwrap(),
        Kit::start(KitConfig::default()).await.unwrap(),
    );
    let home = tempfile::tempdir().unwrap();
    let (server, mut c) = daemon(home.path(), &logged_in, false, "").await;
    let (r, _, _) = start_login(&mut c, &logged_in).await;
    finish(&mut c, &url_of(&r)).await;
    server.shutdown().await;
    drop(c);
    // Forget what the login discovered, so that a pre-warm of it would have to ask.
    let state = mcp_app_server::home::Home::at(home.path()).state_dir;
    std::fs::remove_file(state.join("discovery-cache.json")).unwrap();
    let before = logged_in.request_log().len();

    write_config(
        home.path(),
        &format!(
            "mcp_oauth_credentials_store = \"file\"\n[mcp_servers.kit]\nurl = \"{}\"\n[mcp_servers.other]\nurl = \"{}\"\n",
            logged_in.mcp_url(),
            other.mcp_url()
        ),
    );
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    // The other server's discovery (probe, PRM, the MCP origin's and the authorization
    // server's metadata documents) and pre-registration are done ...
    for _ in 0..800 {
        if other.request_log().len() >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(other.request_log().len(), 7, "{:?}", other.request_log());
    assert_eq!(other.counters().register, 1);
    // ... and the logged-in one, started together with it, was never asked.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        logged_in.request_log().len(),
        before,
        "{:?}",
        logged_in.request_log()
    );
    server.shutdown().await;
}

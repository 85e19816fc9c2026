//! Faster than the spec's order: the authorization server metadata of the MCP server's own
//! origin asked in the first round trip (one round trip to a cold server whose authorization
//! server shares its origin), a decoy there that must never be used, and the clients
//! pre-warm registers so that a configured server's first DCR login sends nothing.

use std::time::Duration;

use mcp_app_server_testkit::{
    Endpoint, Fault, Kit, KitConfig, RequestSpan, sequential_round_trips,
};
use serde_json::json;

use super::harness::{self, write_config};
use super::rtt::{
    LATENCY, PREREGISTERED, daemon, finish, login_requests, preregistered_kit, start_login, url_of,
};

fn same_origin(config: KitConfig) -> KitConfig {
    KitConfig {
        as_on_mcp_origin: true,
        ..config
    }
}

fn client_id_of(url: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

fn sorted(spans: &[RequestSpan]) -> Vec<&str> {
    let mut requests: Vec<&str> = spans.iter().map(|s| s.request.as_str()).collect();
    requests.sort();
    requests
}

#[tokio::test]
async fn a_cold_login_to_a_same_origin_server_takes_one_round_trip_and_two_with_dcr() {
    // Preregistered client: the probe, the PRM and both metadata documents together.
    let kit = Kit::start(same_origin(preregistered_kit())).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    let (r, spans) = login_requests(&mut c, &kit, json!({"name": "kit"})).await;
    assert_eq!(sequential_round_trips(&spans), 1, "{spans:?}");
    assert_eq!(
        sorted(&spans),
        [
            "GET /.well-known/oauth-authorization-server",
            "GET /.well-known/oauth-protected-resource/mcp",
            "GET /.well-known/openid-configuration",
            "POST /mcp",
        ],
        "{spans:?}"
    );
    assert!(url_of(&r).starts_with(&format!("{}/authorize?", kit.issuer())));
    finish(&mut c, &url_of(&r)).await;

    // DCR: the registration is the second and last round trip.
    let kit = Kit::start(same_origin(KitConfig::default())).await.unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, spans) = login_requests(&mut c, &kit, json!({"name": "kit"})).await;
    assert_eq!(sequential_round_trips(&spans), 2, "{spans:?}");
    assert_eq!(spans.len(), 5, "{spans:?}");
    assert_eq!(kit.counters().register, 1);
    finish(&mut c, &url_of(&r)).await;

    // CIMD: one round trip as well.
    let (base, _) = super::cimd::start_host("/meta").await;
    let kit = Kit::start(same_origin(KitConfig {
        cimd: true,
        ..KitConfig::default()
    }))
    .await
    .unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let params = json!({"name": "kit", "clientMetadataUrlBase": base});
    let (r, spans) = login_requests(&mut c, &kit, params).await;
    assert_eq!(sequential_round_trips(&spans), 1, "{spans:?}");
    assert_eq!(spans.len(), 4, "{spans:?}");
    finish(&mut c, &url_of(&r)).await;
    assert_eq!(kit.counters().register, 0);
}

/// A 2025-03-26 server (no PRM; its origin is the issuer) is answered a round trip sooner:
/// its metadata came with the probe.
#[tokio::test]
async fn a_server_without_prm_saves_a_round_trip() {
    let kit = Kit::start(KitConfig {
        prm: mcp_app_server_testkit::PrmMode::None,
        ..preregistered_kit()
    })
    .await
    .unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    let (r, spans) = login_requests(&mut c, &kit, json!({"name": "kit"})).await;
    // The probe, the path and root PRM (both missing), both metadata documents.
    assert_eq!(sequential_round_trips(&spans), 2, "{spans:?}");
    assert_eq!(kit.counters().as_metadata_oauth, 1, "{spans:?}");
    finish(&mut c, &url_of(&r)).await;
}

/// The speculative answer is judged like any other: a document whose `issuer` is not
/// exactly the one the PRM names fails discovery as it did before.
#[tokio::test]
async fn a_same_origin_document_with_another_issuer_is_still_refused() {
    let kit = Kit::start(same_origin(KitConfig {
        metadata_issuer_trailing_slash: true,
        ..preregistered_kit()
    }))
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert!(e.to_string().contains("issuer"), "{e}");
    assert_eq!(kit.counters().authorize, 0);
}

/// A decoy authorization server on the MCP server's origin (valid metadata naming that
/// origin, CIMD and DCR advertised) while the PRM names the real one elsewhere: its metadata
/// is asked speculatively but never used, nothing else goes to it, and the login takes the
/// round trips it took before speculation.
#[tokio::test]
async fn a_decoy_on_the_mcp_origin_is_never_used() {
    let (base, _) = super::cimd::start_host("/meta").await;
    let kit = Kit::start(KitConfig {
        decoy_as_on_mcp_origin: true,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    kit.faults().set(Endpoint::All, Fault::Latency(LATENCY));
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    // A metadata document base is offered: with the decoy's metadata the login would
    // choose CIMD; the real authorization server supports none, so DCR it is.
    let params = json!({"name": "kit", "clientMetadataUrlBase": base});
    let (r, spans) = login_requests(&mut c, &kit, params).await;
    assert_eq!(sequential_round_trips(&spans), 3, "{spans:?}");
    let url = url_of(&r);
    assert!(
        url.starts_with(&format!("{}/authorize?", kit.issuer())),
        "{url}"
    );
    let client_id = client_id_of(&url);
    assert!(!client_id.starts_with("http"), "{client_id}");
    finish(&mut c, &url).await;
    let counters = kit.counters();
    assert_eq!(counters.decoy, 0, "{:?}", kit.request_log());
    assert_eq!((counters.register, counters.token_code), (1, 1));
    assert!(
        kit.request_log().iter().all(|l| !l.contains("/decoy/")),
        "{:?}",
        kit.request_log()
    );
}

/// Waits (at most 10 s) until `kit` saw `n` registrations.
async fn registrations(kit: &Kit, n: u64) {
    for _ in 0..400 {
        if kit.counters().register >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} registrations expected: {:?}", kit.request_log());
}

#[tokio::test]
async fn pre_warm_registers_once_for_every_daemon_and_the_first_login_sends_nothing() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (server, c) = daemon(home.path(), &kit, true, "").await;
    registrations(&kit, 1).await;
    let registered = kit.registered_clients();
    // The port is remembered once the registration is stored; then stop: the next daemon
    // starts from disk.
    let ports = mcp_app_server::home::Home::at(home.path())
        .state_dir
        .join("callback-ports.json");
    for _ in 0..400 {
        if ports.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ports.exists());
    server.shutdown().await;
    drop(c);
    drop(server);

    let before = kit.request_log().len();
    let (server, mut c) = daemon(home.path(), &kit, true, "").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (r, round_trips, requests) = start_login(&mut c, &kit).await;
    assert_eq!((round_trips, requests), (0, 0), "{:?}", kit.request_log());
    // The second daemon's pre-warm and login asked nothing: discovery from the shared
    // cache, the client from the shared store, the port from the shared port file.
    assert_eq!(kit.request_log().len(), before, "{:?}", kit.request_log());
    let url = url_of(&r);
    // The client was registered for the redirect URI this login uses.
    assert_eq!(
        registered[0]["redirect_uris"][0], r["redirectUri"],
        "{registered:?}"
    );
    finish(&mut c, &url).await;
    assert_eq!(kit.registered_clients().len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn the_key_turns_pre_registration_off() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &format!(
            "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_preregister = false\n[mcp_servers.kit]\nurl = \"{}\"\n",
            kit.mcp_url()
        ),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    // The pre-warm's discovery: probe, PRM, the origin's two metadata locations, the
    // authorization server's two.
    for _ in 0..400 {
        if kit.request_log().len() >= 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(kit.request_log().len(), 6, "{:?}", kit.request_log());
    assert_eq!(kit.counters().register, 0);
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 1, "{:?}", kit.request_log());
    finish(&mut c, &url_of(&r)).await;
}

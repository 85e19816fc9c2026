//! Cached discovery results that turned out wrong: a registration endpoint that is gone or
//! unreachable (discovered again, once, before the login answers), a token endpoint that is
//! gone (see `rtt.rs`), a callback whose `iss` is not the cached issuer (the code is never
//! used; the entry is dropped so the next login discovers again), and metadata that stays
//! wrong (one retry, never a loop).

use std::path::Path;
use std::time::Duration;

use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig, browser_visit};
use serde_json::{Value, json};

use super::rtt::{
    DISCOVERY_ONLY, PREREGISTERED, daemon, finish, login_requests, preregistered_kit, start_login,
    url_of,
};

const RESTARTED: &str = "mcpServer/oauthLogin/restarted";
const COMPLETED: &str = "mcpServer/oauthLogin/completed";

/// Waits until the daemon's pre-warm has had all six discovery requests answered (probe,
/// PRM, the MCP origin's and the authorization server's metadata documents); the cache
/// holds the result from then on, and a login that starts earlier waits for it.
async fn prewarmed(kit: &Kit) {
    for _ in 0..800 {
        let spans = kit.request_spans();
        if spans.len() >= 6 && spans.iter().all(|s| s.answered.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the pre-warm never finished: {:?}", kit.request_log());
}

/// Discovers the kit's server in a first daemon (pre-warm) on `home` and shuts it down,
/// which leaves the result in `discovery-cache.json`.
async fn cache_on_disk(home: &Path, kit: &Kit, oauth: &str) {
    let (server, _c) = daemon(home, kit, true, &format!("{DISCOVERY_ONLY}{oauth}")).await;
    prewarmed(kit).await;
    // The answers are in; wait until the result is stored too (shutdown stops a pre-warm
    // that is still under way).
    let path = home.join("discovery-cache.json");
    for _ in 0..800 {
        let stored = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .is_some_and(|doc| doc["entries"].as_object().is_some_and(|e| !e.is_empty()));
        if stored {
            server.shutdown().await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the pre-warm's result never reached {}", path.display());
}

/// Rewrites every entry of the cache file with `edit` (what a stale file looks like).
fn edit_cache(home: &Path, edit: impl Fn(&mut Value)) {
    let path = home.join("discovery-cache.json");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entries = doc["entries"].as_object_mut().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    for entry in entries.values_mut() {
        edit(&mut entry["discovery"]);
    }
    std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
}

fn requests_of(spans: &[mcp_app_server_testkit::RequestSpan]) -> Vec<&str> {
    spans.iter().map(|s| s.request.as_str()).collect()
}

/// A cold discovery: the probe, the PRM and the MCP origin's metadata locations (404 on the
/// kit, whose authorization server has its own origin), then the authorization server's.
const DISCOVERY: [&str; 6] = [
    "GET /.well-known/oauth-authorization-server",
    "GET /.well-known/oauth-authorization-server",
    "GET /.well-known/oauth-protected-resource/mcp",
    "GET /.well-known/openid-configuration",
    "GET /.well-known/openid-configuration",
    "POST /mcp",
];

fn sorted<'a>(requests: &[&'a str]) -> Vec<&'a str> {
    let mut out = requests.to_vec();
    out.sort();
    out
}

#[tokio::test]
async fn a_gone_cached_registration_endpoint_is_discovered_again_before_the_answer() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, true, DISCOVERY_ONLY).await;
    prewarmed(&kit).await;
    // The registration and token endpoints moved; the cached metadata names the old ones.
    kit.move_endpoints();
    let (r, spans) = login_requests(&mut c, &kit, json!({"name": "kit"})).await;
    let requests = requests_of(&spans);
    // The old endpoint (404), discovery once, the new endpoint; then the answer.
    assert_eq!(requests.len(), 8, "{requests:?}");
    assert_eq!(requests[0], "POST /register", "{requests:?}");
    assert_eq!(sorted(&requests[1..7]), DISCOVERY, "{requests:?}");
    assert_eq!(requests[7], "POST /v2/register", "{requests:?}");
    // The URL works: the login ends with tokens from the new token endpoint.
    finish(&mut c, &url_of(&r)).await;
    assert_eq!(c.backlog_count(RESTARTED), 0);
    assert_eq!(kit.registered_clients().len(), 1);
    let log = kit.request_log();
    assert_eq!(
        log.last().map(String::as_str),
        Some("POST /v2/token"),
        "{log:?}"
    );
}

#[tokio::test]
async fn an_unreachable_cached_registration_endpoint_is_discovered_again_before_the_answer() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    cache_on_disk(home.path(), &kit, "").await;
    // The cached registration endpoint now refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}/register", closed.local_addr().unwrap());
    drop(closed);
    edit_cache(home.path(), |d| {
        d["metadata"]["registration_endpoint"] = json!(gone);
    });

    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, spans) = login_requests(&mut c, &kit, json!({"name": "kit"})).await;
    let requests = requests_of(&spans);
    assert_eq!(requests.len(), 7, "{requests:?}");
    assert_eq!(sorted(&requests[..6]), DISCOVERY, "{requests:?}");
    assert_eq!(requests[6], "POST /register", "{requests:?}");
    finish(&mut c, &url_of(&r)).await;
    assert_eq!(kit.registered_clients().len(), 1);
}

#[tokio::test]
async fn a_callback_from_another_issuer_never_spends_the_code_and_drops_the_cached_entry() {
    let kit = Kit::start(preregistered_kit()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    cache_on_disk(home.path(), &kit, PREREGISTERED).await;
    // The cache says the authorization server's issuer is another one than the issuer the
    // server now puts in `iss` (it moved, or the cache is stale; a mix-up attack looks the
    // same from here).
    let cached_issuer = format!("{}/previous", kit.issuer());
    edit_cache(home.path(), |d| {
        d["issuer"] = json!(cached_issuer);
        d["metadata"]["issuer"] = json!(cached_issuer);
    });

    let (_server, mut c) = daemon(home.path(), &kit, false, PREREGISTERED).await;
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 0, "{:?}", kit.request_log());
    browser_visit(&url_of(&r)).await.unwrap();
    let done = c.notification(COMPLETED).await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "authorizationFailed", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains(&kit.issuer()), "{error}");
    assert!(error.contains(&cached_issuer), "{error}");
    assert!(error.contains("not used"), "{error}");
    // The code went nowhere: not to the cached token endpoint, not to any other.
    assert!(kit.token_requests().is_empty(), "{:?}", kit.request_log());
    assert_eq!(c.backlog_count(RESTARTED), 0);

    // The next login discovers the server again and succeeds with the issuer it names.
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 6, "{:?}", kit.request_log());
    finish(&mut c, &url_of(&r)).await;
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(list["data"][0]["authStatus"], "loggedIn", "{list}");
}

#[tokio::test]
async fn a_token_endpoint_that_stays_gone_restarts_the_login_once_then_fails() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, false, "").await;
    let (r, _, _) = start_login(&mut c, &kit).await;
    finish(&mut c, &url_of(&r)).await;

    // From now on the token endpoint answers 404 whatever the metadata says.
    kit.faults().set(Endpoint::Token, Fault::Status(404));
    let before = kit.counters();
    let (r, _, requests) = start_login(&mut c, &kit).await;
    assert_eq!(requests, 0);
    browser_visit(&url_of(&r)).await.unwrap();
    let restarted = c.notification(RESTARTED).await;
    browser_visit(restarted["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.notification(COMPLETED).await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "tokenExchangeFailed", "{done}");
    assert_eq!(c.backlog_count(RESTARTED), 0);
    let after = kit.counters();
    // One code per attempt, and one discovery between them.
    assert_eq!(after.token_code, before.token_code + 2);
    assert_eq!(after.as_metadata_oauth, before.as_metadata_oauth + 1);
    assert_eq!(after.authorize, before.authorize + 2);
}

#[tokio::test]
async fn a_registration_endpoint_that_stays_gone_is_retried_once_then_fails() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, true, DISCOVERY_ONLY).await;
    prewarmed(&kit).await;
    kit.faults().set(Endpoint::Register, Fault::Status(404));
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(e["data"]["kind"], "registrationFailed", "{e}");
    let counters = kit.counters();
    // The cached endpoint, then once more after discovering again; nothing after that.
    assert_eq!(counters.register, 2, "{:?}", kit.request_log());
    assert_eq!(counters.as_metadata_oauth, 2, "{:?}", kit.request_log());
    assert_eq!(counters.authorize, 0);
}

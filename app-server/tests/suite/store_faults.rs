//! The credential store under faults, with the real binary: a lock another process keeps,
//! and a SIGTERM while a refresh is on the wire.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_app_server::credentials::{CredentialStore, LOCK_WAIT_ENV};
use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig};
use serde_json::json;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::harness::Client;
use super::tokens::{FORCE_REFRESH, key_for, kind, logged_in, store, stored, token};

/// The daemon binary on `home`, with lock waits bounded by `lock_wait`.
async fn daemon(home: &Path, lock_wait: Duration) -> (Child, Client<ChildStdin, ChildStdout>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .env("MCP_APP_SERVER_HOME", home)
        .env(LOCK_WAIT_ENV, lock_wait.as_millis().to_string())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut client = Client::new(child.stdin.take().unwrap(), child.stdout.take().unwrap());
    client.initialize().await;
    (child, client)
}

/// Another process holds the server's refresh lock longer than the daemon waits: the
/// refreshing token request ends with a retryable error instead of hanging, and the daemon
/// answers other requests meanwhile and afterwards. A writer holding the document's lock
/// keeps other writes waiting (the same retryable error) but not the handing out of the
/// token on disk: the stored one until the holder replaces the file, its token after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_elsewhere_ends_in_a_retryable_error_and_the_daemon_keeps_answering() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _in_process, _c) = logged_in(&kit).await;
    let (_child, mut c) = daemon(home.path(), Duration::from_millis(1500)).await;
    let before = stored(home.path(), "kit", &kit).unwrap();

    // The refresh lock, as a refresh in another daemon holds it.
    let held = store(home.path())
        .refresh_lock(&key_for("kit", &kit))
        .unwrap();
    c.send(
        &json!({"jsonrpc": "2.0", "id": 900, "method": "mcpServer/oauth/token",
                   "params": {"name": "kit", "minValiditySecs": FORCE_REFRESH}}),
    )
    .await;
    // While that request waits, others are answered.
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(list["data"][0]["authStatus"], "loggedIn", "{list}");
    let r = token(&mut c, "kit", None).await;
    assert_eq!(
        r["result"]["accessToken"],
        before.access_token.as_str(),
        "{r}"
    );
    let waited = c.response(900).await;
    assert_eq!(kind(&waited["error"]), "credentialStoreBusy", "{waited}");
    let message = waited["error"]["message"].as_str().unwrap();
    assert!(message.contains("try again"), "{message}");
    assert_eq!(kit.counters().token_refresh, 0);
    drop(held);

    // The document's own lock, held exclusively (a writer that hangs). Until it renames a
    // new document into place the stored token is still the current one, and is handed out
    // at once; a change that must write waits for the lock and ends in the retryable error.
    let lock_file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(home.path().join("credentials.json.lock"))
        .unwrap();
    lock_file.lock().unwrap();
    let r = token(&mut c, "kit", None).await;
    assert_eq!(
        r["result"]["accessToken"],
        before.access_token.as_str(),
        "{r}"
    );
    let r = c
        .request("mcpServer/oauth/logout", json!({"name": "kit"}))
        .await;
    assert_eq!(kind(&r["error"]), "credentialStoreBusy", "{r}");

    // The holder replaces the document (as a writer does, by renaming a new file over it)
    // and still holds the lock: the next request hands out the new token, never the one
    // that was replaced; and the old one again once the holder puts the old file back.
    let path = home.path().join("credentials.json");
    let original = std::fs::read(&path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    for entry in doc["credentials"].as_object_mut().unwrap().values_mut() {
        entry["accessToken"] = json!("written-by-another-process");
    }
    let replace = |bytes: &[u8]| {
        let temp = home.path().join("credentials.json.other-writer");
        std::fs::write(&temp, bytes).unwrap();
        std::fs::rename(&temp, &path).unwrap();
    };
    replace(&serde_json::to_vec(&doc).unwrap());
    let r = token(&mut c, "kit", None).await;
    assert_eq!(
        r["result"]["accessToken"], "written-by-another-process",
        "{r}"
    );
    replace(&original);
    let r = token(&mut c, "kit", None).await;
    assert_eq!(
        r["result"]["accessToken"],
        before.access_token.as_str(),
        "{r}"
    );
    drop(lock_file);

    // Nothing was lost or changed, and the same request works once the locks are free.
    assert_eq!(stored(home.path(), "kit", &kit).unwrap(), before);
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(kit.counters().token_refresh, 1);
    assert_eq!(kit.counters().invalid_grant, 0);
}

/// SIGTERM while the token endpoint takes its time (longer than the daemon used to wait
/// at shutdown) to answer a refresh that rotates the refresh token: the daemon waits for the
/// answer and saves it before exiting, so the grant stays usable.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_refresh_keeps_the_rotated_refresh_token() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _in_process, mut in_process) = logged_in(&kit).await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    let (mut child, mut c) = daemon(home.path(), Duration::from_secs(40)).await;

    let token_posts = || {
        kit.request_log()
            .iter()
            .filter(|r| *r == "POST /token")
            .count()
    };
    let posts_before = token_posts();
    // 27 s: beyond the 25 s an exit used to take at most (10 s for refreshes, twice, and the
    // connection's 5 s drain), within the 30 s bound of one token request.
    kit.faults()
        .set(Endpoint::Token, Fault::Slow(Duration::from_secs(27)));
    c.send(
        &json!({"jsonrpc": "2.0", "id": 901, "method": "mcpServer/oauth/token",
                   "params": {"name": "kit", "minValiditySecs": FORCE_REFRESH}}),
    )
    .await;
    // The refresh is on the wire once the kit has seen it.
    let arrived = async {
        while token_posts() == posts_before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(20), arrived)
        .await
        .expect("the refresh reached the token endpoint");
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the daemon exits after the refresh")
        .unwrap();
    assert!(status.success(), "{status:?}");
    kit.faults().clear();

    // The rotated refresh token was saved: the server issued exactly one rotation and the
    // store holds its result.
    assert_eq!(kit.counters().token_refresh, 1);
    let after = stored(home.path(), "kit", &kit).unwrap();
    assert_ne!(after.refresh_token, before.refresh_token);
    assert_ne!(after.access_token, before.access_token);
    // And it is the live one: refreshing with it works, the old one would be refused.
    let r = token(&mut in_process, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(
        kit.last_token_request().unwrap().form.get("refresh_token"),
        after.refresh_token.as_ref()
    );
    assert_eq!(kit.counters().invalid_grant, 0);
}

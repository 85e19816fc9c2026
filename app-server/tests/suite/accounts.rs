//! Several accounts per server (rules 80-82) against the test kit: each account its own
//! tokens, requests naming none use the account used last, a login that adds an account
//! asks the browser to choose the user, a logout leaves the other accounts, and a second
//! daemon sharing the home sees the same accounts and the same choice.

use std::path::Path;

use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::{daemon_for, file_store_config, login, server_config};
use super::tokens::{FORCE_REFRESH, bearer_accepted, kind, refresh_tokens_presented};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// A kit whose authorization server lists `select_account` among its prompt values.
async fn selecting_kit() -> Kit {
    Kit::start(KitConfig {
        prompt_values_supported: vec!["none".into(), "login".into(), "select_account".into()],
        ..KitConfig::default()
    })
    .await
    .unwrap()
}

/// Logs in to `kit` as `user` in the browser, under the account label `account` (none:
/// the request names no account). Answers the `prompt` the authorization request carried.
async fn login_as(
    c: &mut MemClient,
    kit: &Kit,
    user: &str,
    account: Option<&str>,
) -> Option<String> {
    kit.sign_in_as(Some(user));
    let params = match account {
        Some(a) => json!({"account": a}),
        None => json!({}),
    };
    let out = login(c, "kit", params).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    // Naming none, the login is for the account used last, and says which.
    if let Some(a) = account {
        assert_eq!(out["completed"]["account"], a, "{out}");
    }
    kit.authorize_prompts().last().cloned().flatten()
}

/// The access token answered for `account` (none: the request names none).
async fn token_of(c: &mut MemClient, account: Option<&str>, min_validity: Option<u32>) -> String {
    let mut params = json!({"name": "kit"});
    if let Some(a) = account {
        params["account"] = json!(a);
    }
    if let Some(v) = min_validity {
        params["minValiditySecs"] = json!(v);
    }
    let r = c.ok("mcpServer/oauth/token", params).await;
    r["accessToken"].as_str().unwrap().to_owned()
}

async fn status(c: &mut MemClient, params: Value) -> Value {
    let list = c.ok("mcpServerStatus/list", params).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "kit")
        .cloned()
        .unwrap()
}

/// `(label, authStatus, current)` of each account the status lists.
fn accounts(status: &Value) -> Vec<(Value, String, bool)> {
    status["accounts"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|a| {
                    (
                        a.get("account").cloned().unwrap_or(Value::Null),
                        a["authStatus"].as_str().unwrap().to_owned(),
                        a["current"].as_bool().unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn two_accounts_on_one_server_keep_their_own_tokens_and_the_last_used_serves_the_rest() {
    let kit = selecting_kit().await;
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;

    // The first account of a server adds nothing: the browser is not asked to choose.
    assert_eq!(login_as(&mut c, &kit, "alice", Some(ALICE)).await, None);
    // A second one is added: the browser must let the user choose (rule 82).
    assert_eq!(
        login_as(&mut c, &kit, "bob", Some(BOB)).await.as_deref(),
        Some("select_account")
    );

    let alice = token_of(&mut c, Some(ALICE), None).await;
    let bob = token_of(&mut c, Some(BOB), None).await;
    assert_ne!(alice, bob);
    assert_eq!(kit.user_of_token(&alice).as_deref(), Some("alice"));
    assert_eq!(kit.user_of_token(&bob).as_deref(), Some("bob"));

    // Naming none: the account named last (rule 81), following each change.
    assert_eq!(token_of(&mut c, None, None).await, bob);
    assert_eq!(token_of(&mut c, Some(ALICE), None).await, alice);
    assert_eq!(token_of(&mut c, None, None).await, alice);
    let s = status(&mut c, json!({})).await;
    assert_eq!(s["account"], ALICE, "{s}");
    assert_eq!(
        accounts(&s),
        vec![
            (json!(ALICE), "loggedIn".to_owned(), true),
            (json!(BOB), "loggedIn".to_owned(), false),
        ],
        "{s}"
    );
    let s = status(&mut c, json!({"account": BOB})).await;
    assert_eq!(
        (&s["account"], &s["authStatus"]),
        (&json!(BOB), &json!("loggedIn"))
    );

    // Each account refreshes with its own refresh token, under its own lock, and stays
    // its user's.
    let refreshed_bob = token_of(&mut c, Some(BOB), Some(FORCE_REFRESH)).await;
    let refreshed_alice = token_of(&mut c, Some(ALICE), Some(FORCE_REFRESH)).await;
    let presented = refresh_tokens_presented(&kit);
    assert_eq!(presented.len(), 2, "{presented:?}");
    assert_ne!(presented[0], presented[1]);
    assert_eq!(kit.user_of_token(&refreshed_bob).as_deref(), Some("bob"));
    assert_eq!(
        kit.user_of_token(&refreshed_alice).as_deref(),
        Some("alice")
    );

    // Logging in again to a stored account adds none: no prompt.
    assert_eq!(login_as(&mut c, &kit, "alice", Some(ALICE)).await, None);
    let alice = token_of(&mut c, Some(ALICE), None).await;

    // Logging out of one leaves the other.
    let out = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "account": BOB}),
        )
        .await;
    assert_eq!(out["removed"], true, "{out}");
    let e = c
        .err(
            "mcpServer/oauth/token",
            json!({"name": "kit", "account": BOB}),
        )
        .await;
    assert_eq!(kind(&e), "notLoggedIn", "{e}");
    assert_eq!(token_of(&mut c, Some(ALICE), None).await, alice);
    assert!(bearer_accepted(&kit, &alice).await);
    let s = status(&mut c, json!({})).await;
    assert_eq!(
        accounts(&s),
        vec![(json!(ALICE), "loggedIn".to_owned(), true)],
        "{s}"
    );
}

#[tokio::test]
async fn account_labels_are_checked_before_anything_is_done() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit));
    let (_server, mut c) = daemon(home.path()).await;
    let long = "x".repeat(257);
    for (method, bad) in [
        ("mcpServer/oauth/login", ""),
        ("mcpServer/oauth/token", long.as_str()),
        ("mcpServer/oauth/logout", "line\nbreak"),
        ("mcpServer/oauth/dpopProof", " padded"),
        ("mcpServerStatus/list", "\u{7}"),
    ] {
        let mut params = json!({"name": "kit", "account": bad});
        if method == "mcpServer/oauth/dpopProof" {
            params["method"] = json!("POST");
            params["url"] = json!(kit.mcp_url());
        }
        if method == "mcpServerStatus/list" {
            params = json!({"account": bad});
        }
        let e = c.err(method, params).await;
        assert_eq!(e["code"], -32602, "{method}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(
            message.contains("invalid params at `account`: the account label"),
            "{method}: {e}"
        );
    }
    // A good label is taken (nothing is stored for it yet).
    let s = status(&mut c, json!({"account": ALICE})).await;
    assert_eq!(
        (&s["account"], &s["authStatus"]),
        (&json!(ALICE), &json!("notLoggedIn"))
    );
    let e = c
        .err(
            "mcpServer/oauth/token",
            json!({"name": "kit", "account": ALICE}),
        )
        .await;
    assert_eq!(kind(&e), "notLoggedIn", "{e}");
    assert!(kit.authorize_prompts().is_empty());
    assert_eq!(kit.request_log().len(), 0, "{:?}", kit.request_log());
}

#[tokio::test]
async fn an_added_account_asks_for_a_new_sign_in_where_the_server_cannot_select_one() {
    // No `prompt_values_supported`: `login` makes the browser sign in again.
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    assert_eq!(login_as(&mut c, &kit, "alice", None).await, None);
    // A login naming an account while the unnamed one is stored adds one.
    assert_eq!(
        login_as(&mut c, &kit, "bob", Some(BOB)).await.as_deref(),
        Some("login")
    );
    // Naming none now means bob, the account used last; again without a prompt.
    kit.sign_in_as(Some("bob"));
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["account"], BOB, "{out}");
    assert_eq!(kit.authorize_prompts().last(), Some(&None));
    let s = status(&mut c, json!({})).await;
    assert_eq!(
        accounts(&s),
        vec![
            (Value::Null, "loggedIn".to_owned(), false),
            (json!(BOB), "loggedIn".to_owned(), true),
        ],
        "{s}"
    );
}

/// The daemon configuration of `kit` as server `kit`, file store.
fn config(kit: &Kit) -> String {
    file_store_config(&format!(
        "mcp_oauth_prewarm = false\n{}",
        server_config("kit", kit, "")
    ))
}

async fn daemon(home: &Path) -> (mcp_app_server::rpc::AppServer, MemClient) {
    let (server, mut c) = harness::start(home);
    c.initialize().await;
    (server, c)
}

#[tokio::test]
async fn a_second_daemon_sharing_the_home_sees_every_account_and_the_same_choice() {
    let kit = selecting_kit().await;
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit));
    let (a, mut first) = daemon(home.path()).await;
    login_as(&mut first, &kit, "alice", Some(ALICE)).await;
    login_as(&mut first, &kit, "bob", Some(BOB)).await;
    let alice = token_of(&mut first, Some(ALICE), None).await;
    let bob = token_of(&mut first, Some(BOB), None).await;

    let (b, mut second) = daemon(home.path()).await;
    let s = status(&mut second, json!({})).await;
    assert_eq!(
        accounts(&s),
        vec![
            (json!(ALICE), "loggedIn".to_owned(), false),
            (json!(BOB), "loggedIn".to_owned(), true),
        ],
        "{s}"
    );
    assert_eq!(token_of(&mut second, None, None).await, bob);
    assert_eq!(token_of(&mut second, Some(ALICE), None).await, alice);
    // The second daemon chose alice: the first follows.
    assert_eq!(token_of(&mut first, None, None).await, alice);

    // A logout in one is seen by the other; the remaining account still serves.
    second
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "account": ALICE}),
        )
        .await;
    assert_eq!(token_of(&mut first, None, None).await, bob);
    a.shutdown().await;
    b.shutdown().await;

    // And a restart agrees.
    let (c, mut third) = daemon(home.path()).await;
    assert_eq!(token_of(&mut third, None, None).await, bob);
    c.shutdown().await;
}

#[tokio::test]
async fn a_store_written_before_accounts_keeps_its_login_and_takes_new_accounts() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &config(&kit));
    let (server, mut c) = daemon(home.path()).await;
    login_as(&mut c, &kit, "alice", None).await;
    let issued = token_of(&mut c, None, None).await;
    server.shutdown().await;

    // The file as a daemon without accounts wrote it: no `account`, no `selectedAt`, and
    // the key `name|<16 hex digits>` it always had.
    let file = home.path().join("state").join("credentials.json");
    let file = if file.exists() {
        file
    } else {
        find_file(home.path(), "credentials.json").expect("a credentials file")
    };
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let entries = doc["credentials"].as_object_mut().unwrap();
    assert_eq!(entries.len(), 1);
    let (key, entry) = entries.iter_mut().next().unwrap();
    let (name, hash) = key.split_once('|').unwrap();
    assert_eq!(name, "kit");
    assert!(
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    let entry = entry.as_object_mut().unwrap();
    assert!(entry.remove("account").is_none());
    entry.remove("selectedAt");
    std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();

    let (server, mut c) = daemon(home.path()).await;
    assert_eq!(token_of(&mut c, None, None).await, issued);
    assert!(bearer_accepted(&kit, &issued).await);
    let s = status(&mut c, json!({})).await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert!(s.get("account").is_none(), "{s}");
    assert_eq!(
        accounts(&s),
        vec![(Value::Null, "loggedIn".to_owned(), true)],
        "{s}"
    );

    // An account added beside it: the old login stays stored.
    assert_eq!(
        login_as(&mut c, &kit, "bob", Some(BOB)).await.as_deref(),
        Some("login")
    );
    let s = status(&mut c, json!({})).await;
    assert_eq!(
        accounts(&s),
        vec![
            (Value::Null, "loggedIn".to_owned(), false),
            (json!(BOB), "loggedIn".to_owned(), true),
        ],
        "{s}"
    );
    assert!(bearer_accepted(&kit, &issued).await);
    server.shutdown().await;
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
        if path.is_dir()
            && let Some(found) = find_file(&path, name)
        {
            return Some(found);
        }
    }
    None
}

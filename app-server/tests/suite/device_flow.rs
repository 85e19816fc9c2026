//! The device login (RFC 8628) over JSON-RPC against the test kit's device authorization
//! endpoint: the answer with the code, the polling (pending, `slow_down`, denial, expiry),
//! the tokens stored like a browser login's, cancel, and the daemon answering meanwhile.

use std::time::Duration;

use mcp_app_server_testkit::{
    DeviceBehaviour, DeviceDecision, Kit, KitConfig, PreregisteredClient,
};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::{daemon_for, file_store_config};

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

async fn kit(device: DeviceBehaviour) -> Kit {
    Kit::start(KitConfig {
        device: Some(device),
        ..KitConfig::default()
    })
    .await
    .unwrap()
}

async fn start(c: &mut MemClient, name: &str) -> Value {
    c.ok(
        "mcpServer/oauth/login",
        json!({"name": name, "flow": "device"}),
    )
    .await
}

/// Waits (bounded) until the kit has seen `n` polls.
async fn polls_reach(kit: &Kit, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while kit.device_poll_times().len() < n {
        assert!(std::time::Instant::now() < deadline, "no poll {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_device_login_answers_the_code_polls_until_approved_and_stores_working_tokens() {
    let kit = kit(DeviceBehaviour {
        pending_polls: 2,
        ..DeviceBehaviour::default()
    })
    .await;
    let (_home, _server, mut c) = daemon_for(&kit, "dev", "").await;
    let answer = start(&mut c, "dev").await;
    assert_eq!(answer["flow"], "device", "{answer}");
    assert_eq!(answer["grant"], "deviceCode");
    assert_eq!(answer["interval"], 1);
    let uri = answer["verificationUri"].as_str().unwrap();
    assert_eq!(uri, format!("{}/device", kit.issuer()));
    let code = answer["userCode"].as_str().unwrap();
    assert_eq!(
        answer["verificationUriComplete"],
        format!("{uri}?user_code={code}")
    );
    assert!(answer.get("authorizationUrl").is_none());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expires_at = answer["expiresAt"].as_i64().unwrap();
    assert!((now + 590..=now + 610).contains(&expires_at), "{answer}");

    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done, json!({"name": "dev", "success": true}));
    assert_eq!(
        c.notification("mcpServer/authStatus/changed").await,
        json!({"name": "dev", "authStatus": "loggedIn"})
    );
    // Two pending answers, then the tokens: three polls, no browser.
    let counters = kit.counters();
    assert_eq!(
        (
            counters.device_authorization,
            counters.token_device,
            counters.authorize
        ),
        (1, 3, 0)
    );
    // A client for the device grant: no redirect URI, no response type. (The daemon may
    // also register a browser client ahead of a browser login.)
    let device_clients = || -> Vec<Value> {
        kit.registered_clients()
            .into_iter()
            .filter(|r| r["grant_types"][0] == "urn:ietf:params:oauth:grant-type:device_code")
            .collect()
    };
    let reg = &device_clients()[0];
    assert_eq!(
        reg["grant_types"],
        json!([
            "urn:ietf:params:oauth:grant-type:device_code",
            "refresh_token"
        ])
    );
    assert!(reg.get("redirect_uris").is_none(), "{reg}");
    assert_eq!(reg["response_types"], json!([]));
    let poll = kit.last_token_request().unwrap();
    assert_eq!(
        poll.form["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(poll.form["resource"], kit.resource());
    assert!(!poll.form["client_id"].is_empty());

    let token = c.ok("mcpServer/oauth/token", json!({"name": "dev"})).await;
    let access = token["accessToken"].as_str().unwrap();
    assert_eq!(super::grants::mcp_status(&kit, access).await, 200);

    // A second device login reuses the registration made for the device grant.
    start(&mut c, "dev").await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(device_clients().len(), 1);

    // The server prunes its clients: the stored registration is refused, the daemon
    // registers once more and the login goes on.
    kit.forget_registered_clients();
    start(&mut c, "dev").await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(device_clients().len(), 2);
    assert_eq!(kit.counters().device_authorization, 4);
}

#[tokio::test]
async fn slow_down_adds_five_seconds_to_the_interval() {
    let kit = kit(DeviceBehaviour {
        pending_polls: 1,
        slow_down_polls: vec![0],
        ..DeviceBehaviour::default()
    })
    .await;
    let (_home, _server, mut c) = daemon_for(&kit, "slow", "").await;
    start(&mut c, "slow").await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    let times = kit.device_poll_times();
    assert_eq!(times.len(), 2);
    // Interval 1 s plus 5 s: never sooner (a lower bound only, which no slow machine
    // breaks).
    assert!(
        times[1] - times[0] >= Duration::from_secs(6),
        "{:?}",
        times[1] - times[0]
    );
}

#[tokio::test]
async fn a_denial_and_an_expiry_end_the_login_with_their_error_and_store_nothing() {
    for (decision, error_kind, says) in [
        (DeviceDecision::Deny, "authorizationFailed", "denied"),
        (DeviceDecision::Expire, "loginTimedOut", "expired"),
    ] {
        let kit = kit(DeviceBehaviour {
            pending_polls: 0,
            decision,
            ..DeviceBehaviour::default()
        })
        .await;
        let (_home, _server, mut c) = daemon_for(&kit, "d", "").await;
        start(&mut c, "d").await;
        let done = c.notification("mcpServer/oauthLogin/completed").await;
        assert_eq!(done["success"], false, "{done}");
        assert_eq!(done["errorKind"], error_kind, "{done}");
        assert!(done["error"].as_str().unwrap().contains(says), "{done}");
        assert_eq!(kit.counters().token_device, 1);
        let err = c.err("mcpServer/oauth/token", json!({"name": "d"})).await;
        assert_eq!(kind(&err), "notLoggedIn", "{err}");
    }
}

#[tokio::test]
async fn the_codes_lifetime_ends_a_login_the_user_never_decides() {
    let kit = kit(DeviceBehaviour {
        expires_in_secs: 2,
        decision: DeviceDecision::Never,
        ..DeviceBehaviour::default()
    })
    .await;
    let (_home, _server, mut c) = daemon_for(&kit, "late", "").await;
    start(&mut c, "late").await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["errorKind"], "loginTimedOut", "{done}");
    // Polled at 1 s; at 2 s the code's lifetime is over: no poll after it.
    assert!(kit.device_poll_times().len() <= 2);
}

#[tokio::test]
async fn the_daemon_answers_while_polling_and_a_cancel_stops_the_polls() {
    let kit = kit(DeviceBehaviour {
        decision: DeviceDecision::Never,
        ..DeviceBehaviour::default()
    })
    .await;
    let (_home, _server, mut c) = daemon_for(&kit, "wait", "").await;
    start(&mut c, "wait").await;
    polls_reach(&kit, 2).await;
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(list["data"][0]["loginPending"], true, "{list}");
    // Nothing to paste into a device login.
    let err = c
        .err(
            "mcpServer/oauth/complete",
            json!({"name": "wait", "callbackUrl": "http://127.0.0.1:1/callback?code=x&state=y"}),
        )
        .await;
    assert_eq!(kind(&err), "noPendingLogin", "{err}");
    assert!(
        err["message"].as_str().unwrap().contains("device login"),
        "{err}"
    );

    let cancelled = c
        .ok("mcpServer/oauth/cancel", json!({"name": "wait"}))
        .await;
    assert_eq!(cancelled["cancelled"], true);
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["errorKind"], "loginCancelled", "{done}");
    let polls = kit.device_poll_times().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(kit.device_poll_times().len(), polls, "polled after cancel");
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(list["data"][0]["loginPending"], false, "{list}");
}

#[tokio::test]
async fn a_newer_login_replaces_a_polling_device_login() {
    let kit = kit(DeviceBehaviour {
        decision: DeviceDecision::Never,
        ..DeviceBehaviour::default()
    })
    .await;
    let (_home, _server, mut c) = daemon_for(&kit, "s", "").await;
    start(&mut c, "s").await;
    polls_reach(&kit, 1).await;
    let browser = c
        .ok(
            "mcpServer/oauth/login",
            json!({"name": "s", "flow": "browser"}),
        )
        .await;
    assert_eq!(browser["flow"], "browser");
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["errorKind"], "loginSuperseded", "{done}");
    let polls = kit.device_poll_times().len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(kit.device_poll_times().len(), polls);
}

#[tokio::test]
async fn without_a_device_endpoint_device_fails_clearly_and_auto_takes_the_browser() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "b", "").await;
    let err = c
        .err(
            "mcpServer/oauth/login",
            json!({"name": "b", "flow": "device"}),
        )
        .await;
    assert_eq!(kind(&err), "authorizationFailed", "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("device_authorization_endpoint"),
        "{err}"
    );
    // `auto` never answers a flow the server cannot do (whatever this test's environment).
    let answer = c
        .ok(
            "mcpServer/oauth/login",
            json!({"name": "b", "flow": "auto"}),
        )
        .await;
    assert_eq!(answer["flow"], "browser", "{answer}");
    // An unknown flow is a bad param.
    let err = c
        .err(
            "mcpServer/oauth/login",
            json!({"name": "b", "flow": "telepathy"}),
        )
        .await;
    assert_eq!(err["code"], -32602, "{err}");
}

#[tokio::test]
async fn a_preregistered_client_polls_with_dpop_proofs_and_gets_bound_tokens() {
    let kit = Kit::start(KitConfig {
        device: Some(DeviceBehaviour::default()),
        dcr: false,
        dpop: true,
        preregistered: vec![PreregisteredClient::public("device-app", &[])],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "[mcp_servers.p]\nurl = \"{}\"\n\n[mcp_servers.p.oauth]\nclient_id = \"device-app\"\n",
            kit.mcp_url()
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize_dpop().await;
    start(&mut c, "p").await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    let requests = kit.token_requests();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.form["client_id"], "device-app");
        assert!(r.dpop_proof.is_some(), "every poll carries a proof");
    }
    let token = c.ok("mcpServer/oauth/token", json!({"name": "p"})).await;
    assert_eq!(token["tokenType"], "DPoP", "{token}");
    assert_eq!(kit.counters().register, 0);
}

/// `mcp-app-server login` in an SSH session without a display picks the device login on
/// its own, prints the URL, the code and a QR code, and waits for the polling to end.
#[tokio::test]
async fn the_cli_in_an_ssh_session_prints_the_code_and_logs_in_without_a_browser() {
    let kit = kit(DeviceBehaviour::default()).await;
    let home = super::cli::kit_home(&kit, "");
    let running = super::cli::Running::start(home.path(), &["login", "kit"], |c| {
        c.env("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22");
    });
    let (ok, stdout, stderr) = running.finish().await;
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("open {}/device and enter this code", kit.issuer())),
        "{stdout}"
    );
    assert!(stdout.contains("?user_code="), "{stdout}");
    assert!(
        stdout.contains('▀') || stdout.contains('▄'),
        "a QR code: {stdout}"
    );
    assert!(stdout.contains("Logged in to `kit`"), "{stdout}");
    assert_eq!(kit.counters().authorize, 0);
    assert_eq!(kit.counters().token_device, 2);

    // `--flow browser` keeps the browser login in the same session.
    let mut running = super::cli::Running::start(
        home.path(),
        &["login", "kit", "--flow", "browser", "--no-browser"],
        |c| {
            c.env("SSH_CONNECTION", "10.0.0.1 50000 10.0.0.2 22");
        },
    );
    let url = running.authorization_url().await;
    assert!(url.contains("/authorize?"), "{url}");
}

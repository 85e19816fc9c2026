//! Client ID Metadata Documents end to end: the document host (`serve-client-metadata`), the
//! daemon's choice of CIMD, the DCR fallback after a refusal, and the host's refusals.

use std::net::SocketAddr;
use std::process::Stdio;

use mcp_app_server::cli::serve_client_metadata::{DocumentHost, serve};
use mcp_app_server_testkit::{Kit, KitConfig, PreregisteredClient, browser_visit, callback_id_for};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::harness::{self, MemClient, write_config};
use super::login::{daemon_for, file_store_config, login, server_config};

const RESTARTED: &str = "mcpServer/oauthLogin/restarted";

/// Starts an in-process document host on an ephemeral loopback port whose public base is
/// `http://127.0.0.1:<port><prefix>` (plain http is allowed for loopback hosts).
pub(super) async fn start_host(prefix: &str) -> (String, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}{prefix}");
    start_host_on(listener, &base);
    (base, addr)
}

/// Serves documents for `public_base` on `listener` (which need not match it: a proxy may
/// sit in between).
fn start_host_on(listener: tokio::net::TcpListener, public_base: &str) {
    let host = DocumentHost::new(public_base, "Test IDE", None, None).unwrap();
    tokio::spawn(serve(listener, host, std::future::pending()));
}

/// Percent-encodes a loopback redirect URI the way the client id spells it, written out
/// here instead of calling the daemon's encoder so the test checks it.
fn encode_redirect(redirect: &str) -> String {
    redirect.replace(':', "%3A").replace('/', "%2F")
}

/// One raw HTTP/1.1 GET, so the request target goes out exactly as written (an HTTP client
/// would resolve `..` and `%2e` segments first). Returns status, headers (lowercase) and body.
async fn raw_get(addr: SocketAddr, target: &str) -> (u16, String, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(harness::TIMEOUT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn cimd_kit() -> KitConfig {
    KitConfig {
        cimd: true,
        ..KitConfig::default()
    }
}

async fn start_login(c: &mut MemClient, name: &str, params: Value) -> String {
    let mut p = json!({"name": name});
    p.as_object_mut()
        .unwrap()
        .extend(params.as_object().cloned().unwrap_or_default());
    let r = c.ok("mcpServer/oauth/login", p).await;
    r["authorizationUrl"].as_str().unwrap().to_string()
}

async fn registration_of(c: &mut MemClient, name: &str) -> Value {
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()["registration"]
        .clone()
}

// ------------------------------------------------------------------ the document host

#[tokio::test]
async fn host_document_carries_the_public_url_under_a_path_prefix() {
    // The host listens on loopback but is published (through a proxy) under another origin.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    start_host_on(listener, "https://ide.example.com/mcp/oauth/");
    let id = "XuuuHAzzHOni";
    let redirect = format!("http://127.0.0.1:8765/callback/{id}");
    let path_and_query = format!(
        "/mcp/oauth/{id}/client.json?redirect_uri={}",
        encode_redirect(&redirect)
    );
    let (status, head, body) = raw_get(addr, &path_and_query).await;
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    assert!(head.contains("cache-control: public, max-age="), "{head}");
    assert!(body.len() < 5 * 1024);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        doc,
        json!({
            "client_id": format!("https://ide.example.com{path_and_query}"),
            "client_name": "Test IDE",
            "redirect_uris": [redirect],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        })
    );
}

#[tokio::test]
async fn host_refuses_foreign_redirects_other_ids_extra_params_dot_segments_and_unknown_paths() {
    let (_base, addr) = start_host("/meta").await;
    let id = "XuuuHAzzHOni";
    let good = encode_redirect(&format!("http://127.0.0.1:8765/callback/{id}"));
    let (status, _, _) =
        raw_get(addr, &format!("/meta/{id}/client.json?redirect_uri={good}")).await;
    assert_eq!(status, 200);

    let cases = [
        // A redirect to someone else's site.
        (
            format!(
                "/meta/{id}/client.json?redirect_uri={}",
                encode_redirect(&format!("https://evil.example/callback/{id}"))
            ),
            400,
        ),
        (
            format!(
                "/meta/{id}/client.json?redirect_uri={}",
                encode_redirect(&format!("http://evil.example:8765/callback/{id}"))
            ),
            400,
        ),
        // A loopback redirect for another callback id.
        (
            format!(
                "/meta/{id}/client.json?redirect_uri={}",
                encode_redirect("http://127.0.0.1:8765/callback/OtherId12345")
            ),
            400,
        ),
        (
            format!("/meta/{id}/client.json?redirect_uri={good}&scope=x"),
            400,
        ),
        (format!("/meta/{id}/client.json"), 400),
        (
            format!("/meta/x/../{id}/client.json?redirect_uri={good}"),
            400,
        ),
        (
            format!("/meta/%2e%2e/meta/{id}/client.json?redirect_uri={good}"),
            400,
        ),
        (format!("/other/{id}/client.json?redirect_uri={good}"), 404),
        (format!("/meta/{id}/other.json?redirect_uri={good}"), 404),
        ("/".to_string(), 404),
    ];
    for (target, expected) in cases {
        let (status, head, body) = raw_get(addr, &target).await;
        assert_eq!(status, expected, "{target}: {body}");
        assert!(head.contains("content-type: application/json"), "{head}");
        let error: Value = serde_json::from_str(&body).unwrap();
        assert!(
            error["error_description"].as_str().unwrap().len() > 5,
            "{body}"
        );
        assert!(error.get("client_id").is_none());
    }

    let (status, _, body) = raw_get(addr, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
}

#[tokio::test]
async fn binary_serves_documents_and_announces_its_address() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .args([
            "serve-client-metadata",
            "--listen",
            "127.0.0.1:0",
            "--public-base-url",
            "https://ide.example.com/mcp/oauth",
            "--client-name",
            "Binary IDE",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = announced_address(&mut child).await;
    let (status, _, _) = raw_get(addr, "/healthz").await;
    assert_eq!(status, 200);
    let id = "XuuuHAzzHOni";
    let pq = format!(
        "/mcp/oauth/{id}/client.json?redirect_uri={}",
        encode_redirect(&format!("http://127.0.0.1:1/callback/{id}"))
    );
    let (status, _, body) = raw_get(addr, &pq).await;
    assert_eq!(status, 200, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["client_id"], format!("https://ide.example.com{pq}"));
    assert_eq!(doc["client_name"], "Binary IDE");
    child.kill().await.unwrap();

    // A base that is not https is refused at startup.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .args([
            "serve-client-metadata",
            "--listen",
            "127.0.0.1:0",
            "--public-base-url",
            "http://ide.example.com/mcp/oauth",
        ])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("https"),
        "{out:?}"
    );
}

/// Reads the "listening on http://ADDR" line the host writes to stderr.
pub async fn announced_address(child: &mut tokio::process::Child) -> SocketAddr {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(harness::TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on http://").nth(1) {
                return rest
                    .split(' ')
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap();
            }
        }
        panic!("the host exited without announcing its address");
    })
    .await
    .unwrap();
    // Keep draining so the host never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
}

// ------------------------------------------------------------------ logins

#[tokio::test]
async fn cimd_login_through_the_host_makes_no_dcr_call_and_sends_no_secret() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(cimd_kit()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(
        &mut c,
        "kit",
        json!({"clientMetadataUrlBase": format!("{base}/")}),
    )
    .await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(c.backlog_count(RESTARTED), 0);

    let q = kit.last_authorize_query().unwrap();
    let redirect = q["redirect_uri"].clone();
    let expected_id = format!(
        "{base}/{}/client.json?redirect_uri={}",
        callback_id_for(&kit.mcp_url()),
        encode_redirect(&redirect)
    );
    assert_eq!(q["client_id"], expected_id);
    let counters = kit.counters();
    assert_eq!(counters.register, 0);
    assert!(counters.cimd_fetch >= 1);
    assert_eq!(counters.token_code, 1);

    let t = kit.last_token_request().unwrap();
    assert_eq!(t.form["client_id"], expected_id);
    assert!(!t.authorization_header);
    assert!(!t.form.contains_key("client_secret"));
    assert_eq!(registration_of(&mut c, "kit").await, "cimd");
}

#[tokio::test]
async fn configured_default_base_is_used_without_the_param() {
    let (base, _) = start_host("/docs").await;
    let kit = Kit::start(cimd_kit()).await.unwrap();
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "client_metadata_url_base = \"{base}\"\n{}",
            server_config("kit", &kit, "")
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let client_id = kit.last_authorize_query().unwrap()["client_id"].clone();
    assert!(client_id.starts_with(&format!("{base}/")), "{client_id}");
    assert_eq!(kit.counters().register, 0);
}

#[tokio::test]
async fn refused_document_falls_back_to_dcr_once_and_the_issuer_is_remembered() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(KitConfig {
        reject_cimd: true,
        ..cimd_kit()
    })
    .await
    .unwrap();
    let (home, server, mut c) = daemon_for(&kit, "kit", "").await;
    let first = start_login(&mut c, "kit", json!({"clientMetadataUrlBase": base})).await;
    // The server sends the browser back with invalid_client.
    browser_visit(&first).await.unwrap();
    let restarted = c.notification(RESTARTED).await;
    assert_eq!(restarted["name"], "kit");
    let reason = restarted["reason"].as_str().unwrap();
    assert!(reason.contains("client metadata document"), "{reason}");
    assert!(reason.contains("invalid_client"), "{reason}");
    assert!(reason.contains("Dynamic Client Registration"), "{reason}");
    let second = restarted["authorizationUrl"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(kit.counters().register, 1);

    let page = browser_visit(&second).await.unwrap();
    assert_eq!(page.status, 200);
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    let client_id = kit.last_authorize_query().unwrap()["client_id"].clone();
    assert!(!client_id.starts_with("http"), "{client_id}");
    assert_eq!(
        kit.last_token_request().unwrap().form["client_id"],
        client_id
    );
    assert_eq!(registration_of(&mut c, "kit").await, "dcr");
    assert_eq!(c.backlog_count(RESTARTED), 0);

    // A new daemon on the same home goes straight to DCR for this issuer.
    server.shutdown().await;
    let (_server2, mut c2) = harness::start(home.path());
    c2.initialize().await;
    let authorize_before = kit.counters().authorize;
    let out = login(&mut c2, "kit", json!({"clientMetadataUrlBase": base})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(c2.backlog_count(RESTARTED), 0);
    assert_eq!(kit.counters().authorize, authorize_before + 1);
    let client_id = kit.last_authorize_query().unwrap()["client_id"].clone();
    assert!(!client_id.starts_with("http"), "{client_id}");
    // The kit refused without fetching; nothing ever fetched a document.
    assert_eq!(kit.counters().cimd_fetch, 0);

    // Asking for CIMD explicitly now names the earlier refusal.
    let e = c2
        .err(
            "mcpServer/oauth/login",
            json!({"name": "kit", "clientMetadataUrlBase": base, "clientRegistration": "cimd"}),
        )
        .await;
    assert!(e["message"].as_str().unwrap().contains("refused"), "{e}");
}

#[tokio::test]
async fn document_refused_at_the_token_endpoint_also_falls_back_to_dcr() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(KitConfig {
        reject_cimd_at_token: true,
        ..cimd_kit()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let first = start_login(&mut c, "kit", json!({"clientMetadataUrlBase": base})).await;
    browser_visit(&first).await.unwrap();
    let restarted = c.notification(RESTARTED).await;
    let reason = restarted["reason"].as_str().unwrap();
    assert!(reason.contains("invalid_client"), "{reason}");
    assert!(kit.counters().cimd_fetch >= 1);
    let refused = kit.last_token_request().unwrap();
    assert!(refused.form["client_id"].starts_with(&base), "{refused:?}");

    browser_visit(restarted["authorizationUrl"].as_str().unwrap())
        .await
        .unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(kit.counters().register, 1);
    assert_eq!(kit.counters().token_code, 2);
    assert_eq!(registration_of(&mut c, "kit").await, "dcr");
}

#[tokio::test]
async fn refused_document_without_a_registration_endpoint_fails_without_looping() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(KitConfig {
        reject_cimd: true,
        dcr: false,
        ..cimd_kit()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let url = start_login(&mut c, "kit", json!({"clientMetadataUrlBase": base})).await;
    browser_visit(&url).await.unwrap();
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false, "{done}");
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("registration_endpoint"),
        "{done}"
    );
    assert_eq!(c.backlog_count(RESTARTED), 0);
    assert_eq!(kit.counters().authorize, 1);
}

#[tokio::test]
async fn cimd_mode_names_each_missing_precondition() {
    let (base, _) = start_host("/meta").await;
    let cases: [(KitConfig, bool, &str); 3] = [
        (
            KitConfig::default(),
            true,
            "client_id_metadata_document_supported",
        ),
        (cimd_kit(), false, "clientMetadataUrlBase"),
        (
            KitConfig {
                token_endpoint_auth_methods: vec!["client_secret_basic".into()],
                ..cimd_kit()
            },
            true,
            "\"none\"",
        ),
    ];
    for (config, with_base, needle) in cases {
        let kit = Kit::start(config).await.unwrap();
        // Pre-warm registers no client here: the failed login must not have made one.
        let home = tempfile::tempdir().unwrap();
        write_config(
            home.path(),
            &file_store_config(&format!(
                "mcp_oauth_preregister = false\n{}",
                server_config("kit", &kit, "")
            )),
        );
        let (_server, mut c) = harness::start(home.path());
        c.initialize().await;
        let mut params = json!({"name": "kit", "clientRegistration": "cimd"});
        if with_base {
            params["clientMetadataUrlBase"] = json!(base);
        }
        let e = c.err("mcpServer/oauth/login", params).await;
        let message = e["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle}: {e}");
        assert_eq!(e["data"]["kind"], "registrationFailed", "{e}");
        let counters = kit.counters();
        assert_eq!((counters.register, counters.authorize), (0, 0));
    }
}

#[tokio::test]
async fn dcr_mode_never_fetches_documents() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(cimd_kit()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(
        &mut c,
        "kit",
        json!({"clientMetadataUrlBase": base, "clientRegistration": "dcr"}),
    )
    .await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.counters().cimd_fetch, 0);
    assert_eq!(kit.counters().register, 1);
    assert_eq!(registration_of(&mut c, "kit").await, "dcr");
}

#[tokio::test]
async fn preregistered_client_id_wins_over_cimd() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(KitConfig {
        preregistered: vec![PreregisteredClient::public(
            "pre-public",
            &[&format!(
                "http://127.0.0.1/callback/{}",
                mcp_app_server_testkit::CALLBACK_ID_PLACEHOLDER
            )],
        )],
        ..cimd_kit()
    })
    .await
    .unwrap();
    let extra = "[mcp_servers.kit.oauth]\nclient_id = \"pre-public\"\n";
    let (_home, _server, mut c) = daemon_for(&kit, "kit", extra).await;
    let out = login(
        &mut c,
        "kit",
        json!({"clientMetadataUrlBase": base, "clientRegistration": "cimd"}),
    )
    .await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(
        kit.last_authorize_query().unwrap()["client_id"],
        "pre-public"
    );
    assert_eq!(kit.counters().cimd_fetch, 0);
    assert_eq!(registration_of(&mut c, "kit").await, "preregistered");
}

#[tokio::test]
async fn bad_bases_are_refused_before_any_network_io() {
    let kit = Kit::start(cimd_kit()).await.unwrap();
    // Without pre-warm, so any request the kit sees came from the logins.
    let home = tempfile::tempdir().unwrap();
    super::harness::write_config(
        home.path(),
        &format!(
            "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n{}",
            super::login::server_config("kit", &kit, "")
        ),
    );
    let (_server, mut c) = super::harness::start(home.path());
    c.initialize().await;
    let cases = [
        ("http://ide.example.com/meta", "https"),
        ("https://ide.example.com/meta?x=1", "query"),
        ("https://ide.example.com/meta#x", "fragment"),
        ("https://user@ide.example.com/meta", "user name or password"),
        ("https://ide.example.com/a/../meta", ". or .."),
        ("https://ide.example.com/a/%2E/meta", ". or .."),
        ("not a url", "not a URL"),
    ];
    for (base, needle) in cases {
        let e = c
            .err(
                "mcpServer/oauth/login",
                json!({"name": "kit", "clientMetadataUrlBase": base}),
            )
            .await;
        assert_eq!(e["code"], -32602, "{base}: {e}");
        let message = e["message"].as_str().unwrap();
        assert!(message.contains("clientMetadataUrlBase"), "{message}");
        assert!(message.contains(needle), "{base}: {message}");
    }
    let counters = kit.counters();
    assert_eq!(
        (counters.mcp, counters.prm_path, counters.as_metadata_oauth),
        (0, 0, 0),
        "{counters:?}"
    );

    // A bad configured default names the config key. Pre-warm off: its probe of the
    // configured server is no request of this login's.
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!(
            "mcp_oauth_prewarm = false\nclient_metadata_url_base = \"http://ide.example.com/meta\"\n{}",
            server_config("kit", &kit, "")
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(e["data"]["kind"], "configInvalid", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("client_metadata_url_base"), "{message}");
    assert!(message.contains("https"), "{message}");
    assert_eq!(kit.counters().mcp, 0);
}

#[tokio::test]
async fn a_cimd_login_that_times_out_says_the_document_may_have_been_refused() {
    let (base, _) = start_host("/meta").await;
    let kit = Kit::start(cimd_kit()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    // The browser never comes back (as when a server shows an error page).
    start_login(
        &mut c,
        "kit",
        json!({"clientMetadataUrlBase": base, "timeoutSecs": 1}),
    )
    .await;
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "loginTimedOut", "{done}");
    let error = done["error"].as_str().unwrap();
    assert!(error.contains("client metadata document"), "{error}");
    assert!(error.contains("clientRegistration \"dcr\""), "{error}");
    assert!(error.contains(&format!("{base}/")), "{error}");
}

// ------------------------------------------------------------------ interop: oidc-provider

use super::node::{node_ready, repo_root};

/// Spawns an interop peer (`node tests/interop/<script>`) and reads its ready line. It exits
/// when its stdin closes, so a failed test leaves nothing behind.
async fn start_peer(script: &str, env: &[(&str, String)]) -> (tokio::process::Child, Value) {
    let mut child = tokio::process::Command::new("node")
        .arg(format!("tests/interop/{script}"))
        .arg("--exit-with-stdin")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(repo_root())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let stdout = child.stdout.take().unwrap();
    let line = tokio::time::timeout(harness::TIMEOUT, BufReader::new(stdout).lines().next_line())
        .await
        .expect("the peer prints its ready line")
        .unwrap()
        .expect("the peer printed nothing");
    (child, serde_json::from_str(&line).unwrap())
}

#[tokio::test]
async fn cimd_login_against_oidc_provider_with_serve_client_metadata() {
    if !node_ready("cimd_login_against_oidc_provider_with_serve_client_metadata") {
        return;
    }
    let public_base = "https://client.test/ide/oauth";
    let mut host = tokio::process::Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .args([
            "serve-client-metadata",
            "--listen",
            "127.0.0.1:0",
            "--public-base-url",
            public_base,
            "--client-name",
            "Interop IDE",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let host_addr = announced_address(&mut host).await;
    let (mut peer, ready) = start_peer(
        "oidc-server.mjs",
        &[("CIMD_HOST_ORIGIN", format!("http://{host_addr}"))],
    )
    .await;
    let mcp_url = ready["mcpUrl"].as_str().unwrap().to_string();

    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&format!("[mcp_servers.oidc]\nurl = \"{mcp_url}\"\n")),
    );
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let url = start_login(
        &mut c,
        "oidc",
        json!({"clientMetadataUrlBase": public_base, "clientRegistration": "cimd"}),
    )
    .await;
    let client_id = url::Url::parse(&url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "client_id")
        .unwrap()
        .1
        .into_owned();
    assert!(
        client_id.starts_with(&format!("{public_base}/")),
        "{client_id}"
    );

    let browser = tokio::process::Command::new("node")
        .arg("tests/interop/browser.mjs")
        .arg(&url)
        .current_dir(repo_root())
        .output()
        .await
        .unwrap();
    let page: Value = serde_json::from_slice(&browser.stdout)
        .unwrap_or_else(|e| panic!("browser output: {e}: {browser:?}"));
    assert!(browser.status.success(), "{page}");
    assert_eq!(page["status"], 200, "{page}");
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    assert_eq!(c.backlog_count(RESTARTED), 0);
    assert_eq!(registration_of(&mut c, "oidc").await, "cimd");

    // The resource sees the document URL as the token's client.
    let token = c.ok("mcpServer/oauth/token", json!({"name": "oidc"})).await;
    let answer: Value = reqwest::Client::new()
        .post(&mcp_url)
        .bearer_auth(token["accessToken"].as_str().unwrap())
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let whoami: Value =
        serde_json::from_str(answer["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(whoami["client_id"], client_id, "{answer}");

    peer.kill().await.unwrap();
    host.kill().await.unwrap();
}

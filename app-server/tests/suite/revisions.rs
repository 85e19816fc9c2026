//! The MCP revisions the daemon speaks, against the test kit's MCP server in each mode:
//! `connect` at a 2026-07-28 server (stateless, request metadata headers, no
//! `initialize`), at a 2025-11-25 server (falls back to `initialize`), and discovery at a
//! server that answers the unauthenticated probe 405 instead of 401.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use mcp_app_server_testkit::{Kit, KitConfig, McpRevision};
use serde_json::json;
use tokio::process::Command;

use super::harness::write_config;
use super::login::{daemon_for, file_store_config, login};

async fn connect(home: &Path, url: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_mcp-app-server"))
        .args([
            "connect",
            "--browser-mode=http-get",
            "--call",
            "test-tool",
            url,
        ])
        .env("MCP_APP_SERVER_HOME", home)
        .env_remove("BROWSER")
        .env_remove("MCP_APP_SERVER_BROWSER")
        .env_remove("MCP_APP_SERVER_CLIENT_METADATA_URL")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("connect finished")
        .unwrap()
}

fn home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(""));
    home
}

fn methods(kit: &Kit) -> Vec<(String, Option<String>)> {
    kit.mcp_methods()
}

fn pair(method: &str, version: Option<&str>) -> (String, Option<String>) {
    (method.to_string(), version.map(str::to_string))
}

#[tokio::test]
async fn connect_speaks_2026_07_28_statelessly() {
    let kit = Kit::start(KitConfig {
        mcp_revision: McpRevision::Modern,
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let home = home();
    let out = connect(home.path(), &kit.mcp_url()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(MCP 2026-07-28)"), "{stdout}");
    assert!(!stdout.contains("with a session"), "{stdout}");
    assert!(stdout.contains("\"text\": \"ok\""), "{stdout}");
    assert_eq!(kit.counters().authorize, 1);
    // The server refuses any request whose headers disagree with the body, so these
    // answered requests carried MCP-Protocol-Version, Mcp-Method and Mcp-Name correctly.
    let modern = Some("2026-07-28");
    assert_eq!(
        methods(&kit),
        [
            pair("server/discover", modern),
            pair("tools/list", modern),
            pair("tools/call", modern)
        ]
    );
}

#[tokio::test]
async fn connect_falls_back_to_initialize_at_a_2025_11_25_server() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = home();
    let out = connect(home.path(), &kit.mcp_url()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("(MCP 2025-11-25)"), "{stdout}");
    assert!(stdout.contains("\"text\": \"ok\""), "{stdout}");
    assert_eq!(kit.counters().authorize, 1);
    // server/discover (refused: the version header names a revision it does not speak),
    // then initialize without the header, then the negotiated version on every request.
    let legacy = Some("2025-11-25");
    assert_eq!(
        methods(&kit),
        [
            pair("server/discover", Some("2026-07-28")),
            pair("initialize", None),
            pair("tools/list", legacy),
            pair("tools/call", legacy)
        ]
    );
}

#[tokio::test]
async fn a_server_answering_the_probe_405_is_logged_in_to_from_its_well_known_metadata() {
    let config = KitConfig {
        unauthenticated_status: Some(405),
        ..KitConfig::default()
    };

    // The daemon: discovery goes on past the 405 to the PRM and the login completes.
    let kit = Kit::start(config.clone()).await.unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let done = login(&mut c, "kit", json!({})).await;
    assert_eq!(done["completed"]["success"], true, "{done}");
    assert!(kit.counters().prm_path >= 1);

    // connect: no 401 anywhere, one login from the well-known metadata, then it works.
    let kit = Kit::start(config).await.unwrap();
    let home = home();
    let out = connect(home.path(), &kit.mcp_url()).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"text\": \"ok\""), "{stdout}");
    assert_eq!(kit.counters().authorize, 1);
}

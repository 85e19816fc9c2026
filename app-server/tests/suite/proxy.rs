//! Through a real HTTP proxy (tinyproxy, Debian's package, installed on first use by
//! `.ci/network-setup.sh`): discovery, registration, the code exchange, refresh and
//! revocation all go through the proxy the configuration or the environment names, and the
//! proxy's own log shows each request. tinyproxy closes every connection after its answer
//! without `Connection: close`: the daemon's requests on such dead kept-alive connections
//! are sent again on new ones (logout's second revocation used to fail that way).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use mcp_app_server_testkit::{Kit, KitConfig, authorize_redirect_location};
use serde_json::json;
use tokio::process::{Child, Command};

use super::cli::{Running, kit_home};
use super::login::{daemon_for, free_port, login};
use super::node::run_setup_script;
use super::tokens::{FORCE_REFRESH, token};

const START: Duration = Duration::from_secs(10);

/// Installs tinyproxy once per test process (instant when it is there).
fn ensure_tinyproxy() {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = SETUP.get_or_init(|| run_setup_script("network-setup.sh")) {
        panic!("{e}");
    }
}

/// A tinyproxy on a loopback port, logging every request; killed when dropped.
struct Tinyproxy {
    _dir: tempfile::TempDir,
    log: PathBuf,
    port: u16,
    _child: Child,
}

impl Tinyproxy {
    /// `auth`: the user and password the proxy demands.
    async fn start(auth: Option<(&str, &str)>) -> Self {
        ensure_tinyproxy();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("tinyproxy.log");
        let port = free_port();
        let mut conf = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nLogFile \"{}\"\nLogLevel Connect\n\
             MaxClients 100\nAllow 127.0.0.1\nDisableViaHeader Yes\n",
            log.display()
        );
        if let Some((user, password)) = auth {
            conf.push_str(&format!("BasicAuth {user} {password}\n"));
        }
        let conf_path = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("tinyproxy starts");
        let deadline = tokio::time::Instant::now() + START;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "tinyproxy did not listen"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            _dir: dir,
            log,
            port,
            _child: child,
        }
    }

    fn url(&self, auth: &str) -> String {
        format!("http://{auth}127.0.0.1:{}", self.port)
    }

    /// The requests the proxy forwarded, as `METHOD URL`.
    fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once("): ").filter(|_| l.contains("Request (")))
            .map(|(_, rest)| rest.trim_end_matches(" HTTP/1.1").to_string())
            .collect()
    }

    fn count(&self, method: &str, url_part: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(&format!("{method} ")) && r.contains(url_part))
            .count()
    }
}

#[tokio::test]
async fn login_refresh_and_logout_go_through_the_configured_proxy() {
    let proxy = Tinyproxy::start(Some(("corp-user", "corp-pass-7"))).await;
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let extra = format!("proxy = \"{}\"", proxy.url("corp-user:corp-pass-7@"));
    let (home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;

    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let as_origin = kit.as_origin();
    let rs_origin = kit.rs_origin();
    // Discovery (the MCP server's 401, its resource metadata, the authorization server's),
    // registration and the code exchange, each through the proxy.
    assert!(
        proxy.count("POST", &kit.mcp_url()) >= 1,
        "{:?}",
        proxy.requests()
    );
    assert!(
        proxy.count(
            "GET",
            &format!("{rs_origin}/.well-known/oauth-protected-resource")
        ) >= 1,
        "{:?}",
        proxy.requests()
    );
    assert!(
        proxy.count("GET", &format!("{as_origin}/.well-known/")) >= 1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(
        proxy.count("POST", "/register"),
        1,
        "{:?}",
        proxy.requests()
    );
    assert_eq!(proxy.count("POST", "/token"), 1, "{:?}", proxy.requests());

    // Refresh.
    let r = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
    assert_eq!(kit.counters().token_refresh, 1);
    assert_eq!(proxy.count("POST", "/token"), 2, "{:?}", proxy.requests());

    // Logout with revocation: both tokens revoked, through the proxy, each on a connection
    // the proxy closes after its answer.
    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r, json!({"removed": true, "revoked": true}));
    assert_eq!(kit.revoked_tokens().len(), 2);
    assert_eq!(proxy.count("POST", "/revoke"), 2, "{:?}", proxy.requests());
    drop(home);
}

#[tokio::test]
async fn a_proxy_refusing_the_credentials_fails_the_login_without_showing_them() {
    let proxy = Tinyproxy::start(Some(("corp-user", "corp-pass-7"))).await;
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let extra = format!("proxy = \"{}\"", proxy.url("corp-user:wrong-pass-9@"));
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let text = e.to_string();
    assert!(!text.contains("wrong-pass-9"), "{text}");
    assert!(!text.contains("corp-user"), "{text}");
    assert_eq!(kit.counters().authorize, 0);
    assert_eq!(kit.registered_clients().len(), 0, "{text}");
}

/// The environment's proxy variables, lower and upper case, through the real binary;
/// `proxy = "none"` and `NO_PROXY` go around the proxy.
#[tokio::test]
async fn the_environment_names_the_proxy_unless_no_proxy_or_none_says_otherwise() {
    let proxy = Tinyproxy::start(None).await;
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let cli_login = |home: &Path, env: Vec<(&'static str, String)>| {
        let mut login = Running::start(home, &["login", "kit", "--no-browser"], |c| {
            for var in [
                "http_proxy",
                "HTTP_PROXY",
                "https_proxy",
                "HTTPS_PROXY",
                "all_proxy",
                "ALL_PROXY",
                "no_proxy",
                "NO_PROXY",
            ] {
                c.env_remove(var);
            }
            for (k, v) in env {
                c.env(k, v);
            }
        });
        async move {
            let url = login.authorization_url().await;
            let redirect = authorize_redirect_location(&url).await.unwrap();
            login.paste(&redirect).await;
            let (ok, stdout, stderr) = login.finish().await;
            assert!(ok, "{stdout}\n{stderr}");
        }
    };
    let through = |before: usize| proxy.count("POST", "/token") > before;

    let home = kit_home(&kit, "");
    cli_login(home.path(), vec![("http_proxy", proxy.url(""))]).await;
    assert!(through(0), "{:?}", proxy.requests());
    let seen = proxy.count("POST", "/token");

    let home = kit_home(&kit, "");
    cli_login(home.path(), vec![("ALL_PROXY", proxy.url(""))]).await;
    assert!(through(seen), "{:?}", proxy.requests());
    let seen = proxy.count("POST", "/token");

    // NO_PROXY lists the kit's host: straight there.
    let home = kit_home(&kit, "");
    cli_login(
        home.path(),
        vec![
            ("HTTP_PROXY", proxy.url("")),
            ("no_proxy", "127.0.0.1".to_string()),
        ],
    )
    .await;
    assert!(!through(seen), "{:?}", proxy.requests());

    // `proxy = "none"` in the server's table wins over the environment.
    let home = tempfile::tempdir().unwrap();
    super::harness::write_config(
        home.path(),
        &super::login::file_store_config(&super::login::server_config(
            "kit",
            &kit,
            "proxy = \"none\"",
        )),
    );
    cli_login(home.path(), vec![("ALL_PROXY", proxy.url(""))]).await;
    assert!(!through(seen), "{:?}", proxy.requests());
}

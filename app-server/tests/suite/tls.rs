//! Private certificate authorities (rule 65) behind a real TLS-intercepting proxy:
//! mitmproxy (PyPI, installed on first use by `.ci/tls-setup.sh`) re-signs every HTTPS
//! connection with its own authority, in front of the kit served over TLS by a test
//! authority. Without that authority trusted the login fails with an error naming the host,
//! the reason and the `ca_certificates` key; with `ca_certificates` (or `SSL_CERT_FILE`) it
//! works, every request going through the proxy. Also the other certificate reasons a user
//! meets (expired, wrong name) against the kit directly.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use mcp_app_server_testkit::{Kit, KitConfig, KitTls, TestCa, authorize_redirect_location};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use super::cli::{Running, kit_home};
use super::login::{daemon_for, free_port, login};
use super::node::{repo_root, run_setup_script};

const START: Duration = Duration::from_secs(30);

/// Installs mitmproxy once per test process (instant when it is there).
fn mitmdump() -> PathBuf {
    static SETUP: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = SETUP.get_or_init(|| run_setup_script("tls-setup.sh")) {
        panic!("{e}");
    }
    repo_root().join(".ci/.cache/tls/mitmproxy-venv/bin/mitmdump")
}

/// A mitmproxy on a loopback port that trusts `upstream_ca` for the servers behind it and
/// logs every request it forwards; killed when dropped.
struct Mitmproxy {
    dir: tempfile::TempDir,
    port: u16,
    _child: Child,
}

impl Mitmproxy {
    async fn start(upstream_ca: &Path) -> Self {
        let mitmdump = mitmdump();
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("flows.log")).unwrap();
        let child = Command::new(mitmdump)
            .args(["--mode", "regular", "--listen-host", "127.0.0.1"])
            .args(["--listen-port", &port.to_string()])
            .args(["--set", &format!("confdir={}", dir.path().display())])
            .args([
                "--set",
                &format!("ssl_verify_upstream_trusted_ca={}", upstream_ca.display()),
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("mitmdump starts");
        let proxy = Self {
            dir,
            port,
            _child: child,
        };
        let deadline = tokio::time::Instant::now() + START;
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
            || !proxy.ca().exists()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "mitmproxy did not listen"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        proxy
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The proxy's own authority, which signs what the daemon sees.
    fn ca(&self) -> PathBuf {
        self.dir.path().join("mitmproxy-ca-cert.pem")
    }

    /// The requests mitmproxy forwarded, as it logs them (`METHOD URL ...`).
    fn count(&self, method: &str, url_part: &str) -> usize {
        std::fs::read_to_string(self.dir.path().join("flows.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&format!("{method} ")) && l.contains(url_part))
            .count()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("flows.log")).unwrap_or_default()
    }
}

/// The kit over TLS from a fresh test authority, and that authority's certificate in a
/// file (what mitmproxy trusts upstream).
async fn tls_kit() -> (Kit, tempfile::TempDir, PathBuf) {
    let ca = TestCa::new("Kit test CA").unwrap();
    let kit = Kit::start(KitConfig {
        tls: Some(KitTls::from_ca(&ca).unwrap()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("kit-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    (kit, dir, ca_file)
}

fn error_text(e: &Value) -> String {
    format!("{} {}", e["message"], e["data"])
}

#[tokio::test]
async fn behind_an_intercepting_proxy_the_login_needs_its_certificate_authority() {
    let (kit, _ca_dir, kit_ca) = tls_kit().await;
    assert!(kit.mcp_url().starts_with("https://127.0.0.1:"));
    let proxy = Mitmproxy::start(&kit_ca).await;
    let proxy_key = format!("proxy = \"{}\"", proxy.url());

    // The proxy's authority is not trusted: the login fails before any request reaches the
    // kit, naming the host, the reason and the key that fixes it.
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &proxy_key).await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let text = error_text(&e);
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(text.contains("unknown issuer"), "{text}");
    assert!(text.contains("ca_certificates"), "{text}");
    assert_eq!(kit.counters().authorize, 0);
    assert!(kit.registered_clients().is_empty());
    assert_eq!(proxy.count("POST", "/mcp"), 0, "{}", proxy.log());

    // The same server with the proxy's authority in `ca_certificates`: the whole login goes
    // through the proxy.
    let extra = format!(
        "{proxy_key}\nca_certificates = \"{}\"",
        proxy.ca().display()
    );
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(proxy.count("POST", &kit.mcp_url()) >= 1, "{}", proxy.log());
    assert_eq!(proxy.count("POST", "/register"), 1, "{}", proxy.log());
    assert_eq!(proxy.count("POST", "/token"), 1, "{}", proxy.log());

    // Global `ca_certificates` (top of config.toml) serves every server.
    let home = tempfile::tempdir().unwrap();
    super::harness::write_config(
        home.path(),
        &format!(
            "ca_certificates = \"{}\"\n{}",
            proxy.ca().display(),
            super::login::file_store_config(&super::login::server_config("kit", &kit, &proxy_key))
        ),
    );
    let (_server, mut c) = super::harness::start(home.path());
    c.initialize().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(proxy.count("POST", "/token"), 2, "{}", proxy.log());
}

/// Through the real binary: the message a terminal user reads, then `SSL_CERT_FILE` naming
/// the proxy's authority (with the proxy from `HTTPS_PROXY`).
#[tokio::test]
async fn the_cli_names_the_fix_and_ssl_cert_file_is_honoured() {
    let (kit, _ca_dir, kit_ca) = tls_kit().await;
    let proxy = Mitmproxy::start(&kit_ca).await;
    let env = |c: &mut Command, ca: Option<&Path>| {
        for var in [
            "http_proxy",
            "HTTP_PROXY",
            "all_proxy",
            "ALL_PROXY",
            "no_proxy",
            "NO_PROXY",
            "https_proxy",
            "SSL_CERT_DIR",
        ] {
            c.env_remove(var);
        }
        c.env("HTTPS_PROXY", proxy.url());
        match ca {
            Some(ca) => c.env("SSL_CERT_FILE", ca),
            None => c.env_remove("SSL_CERT_FILE"),
        };
    };

    let home = kit_home(&kit, "");
    let login = Running::start(home.path(), &["login", "kit", "--no-browser"], |c| {
        env(c, None)
    });
    let (ok, stdout, stderr) = login.finish().await;
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stderr.contains("unknown issuer"), "{stderr}");
    assert!(stderr.contains("ca_certificates"), "{stderr}");
    assert!(stderr.contains("SSL_CERT_FILE"), "{stderr}");

    let ca = proxy.ca();
    let mut login = Running::start(home.path(), &["login", "kit", "--no-browser"], |c| {
        env(c, Some(&ca))
    });
    let url = login.authorization_url().await;
    let redirect = authorize_redirect_location(&url).await.unwrap();
    login.paste(&redirect).await;
    let (ok, stdout, stderr) = login.finish().await;
    assert!(ok, "{stdout}\n{stderr}");
    assert_eq!(proxy.count("POST", "/token"), 1, "{}", proxy.log());
}

/// The kit straight, over TLS: an expired certificate, and one for another name, each
/// told as such (the authority is trusted through `ca_certificates`).
#[tokio::test]
async fn expired_and_wrong_name_certificates_are_told_apart() {
    let ca = TestCa::new("Kit test CA").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let extra = format!("ca_certificates = \"{}\"", ca_file.display());
    for (server, reason) in [
        (ca.expired_server(&["127.0.0.1"]).unwrap(), "expired"),
        (ca.server(&["auth.other.example"]).unwrap(), "wrong name"),
    ] {
        let kit = Kit::start(KitConfig {
            tls: Some(KitTls {
                server,
                client_ca_pem: None,
            }),
            ..KitConfig::default()
        })
        .await
        .unwrap();
        let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
        let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
        let text = error_text(&e);
        assert!(
            text.contains(reason) && text.contains("127.0.0.1"),
            "{text}"
        );
        assert!(!text.contains("ca_certificates"), "{reason}: {text}");
    }

    // A well-formed certificate from the same authority: the login works.
    let kit = Kit::start(KitConfig {
        tls: Some(KitTls::from_ca(&ca).unwrap()),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
}

/// Mutual TLS: the MCP server's listener requires a client certificate from its own
/// authority. `client_certificate` and `client_key` get the login through; without them,
/// or with a certificate from another authority, the login fails and says which keys to set.
#[tokio::test]
async fn a_server_requiring_a_client_certificate_gets_the_configured_one() {
    let ca = TestCa::new("Kit test CA").unwrap();
    let clients = TestCa::new("Corporate client CA").unwrap();
    let stranger = TestCa::new("Some other client CA").unwrap();
    let kit = Kit::start(KitConfig {
        tls: Some(KitTls {
            server: ca.server(&["127.0.0.1"]).unwrap(),
            client_ca_pem: Some(clients.cert_pem()),
        }),
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_file = write("ca.pem", &ca.cert_pem());
    let me = clients.client("alice").unwrap();
    let other = stranger.client("mallory").unwrap();
    let (cert, key) = (
        write("me.pem", &me.chain_pem),
        write("me-key.pem", &me.key_pem),
    );
    let (other_cert, other_key) = (
        write("other.pem", &other.chain_pem),
        write("other-key.pem", &other.key_pem),
    );
    let trust = format!("ca_certificates = \"{ca_file}\"");

    for extra in [
        trust.clone(),
        format!("{trust}\nclient_certificate = \"{other_cert}\"\nclient_key = \"{other_key}\""),
    ] {
        let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
        let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
        let text = error_text(&e);
        assert!(text.contains("127.0.0.1"), "{text}");
        assert!(
            text.contains("client_certificate") && text.contains("client_key"),
            "{text}"
        );
        assert!(!text.contains("PRIVATE KEY"), "{text}");
    }
    assert!(kit.registered_clients().is_empty());

    let extra = format!("{trust}\nclient_certificate = \"{cert}\"\nclient_key = \"{key}\"");
    let (_home, _server, mut c) = daemon_for(&kit, "kit", &extra).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let r = super::tokens::token(&mut c, "kit", None).await;
    assert!(r["result"]["accessToken"].is_string(), "{r}");
}

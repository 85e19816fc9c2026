//! Hostile servers, on the real binary: each step of a login (the probe, the protected
//! resource metadata, the authorization server metadata, registration, the code exchange),
//! refresh and revocation in turn answers huge, slow, stalled, malformed, compressed or
//! redirecting. Every case must end in an error or a success within the bounds of
//! docs/login.md, and `mcpServerStatus/list` must keep being answered while the hostile
//! step runs (each within [`STATUS_BOUND`], which catches the freezes of 5-70 s that
//! quadratic work on the daemon's one worker thread used to cause).
//!
//! One daemon serves every case of a step; each case has its own kit and server name
//! (added to config.toml and reloaded), so no registration, discovery or token of one case
//! serves another. The HTTP timeout is shortened to [`HTTP_TIMEOUT_MS`] so the stalled and
//! trickling cases take a second each. The worst status latency and the daemon's RSS are
//! printed (`--nocapture`) for docs/benchmarks.md. The tests run on two threads, so the
//! kit building a huge answer does not delay the test's own status requests.

use std::process::Stdio;
use std::time::{Duration, Instant};

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore, StoredCredentials};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Endpoint, Fault, Kit, KitConfig, browser_visit};
use serde_json::{Value, json};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::harness::Client;

/// Each status answer while a hostile step runs must come within this.
const STATUS_BOUND: Duration = Duration::from_secs(5);
/// Each case must end within this.
const CASE_DEADLINE: Duration = Duration::from_secs(20);
/// The daemon's whole-request timeout in these tests (`MCP_APP_SERVER_HTTP_TIMEOUT_MS`).
const HTTP_TIMEOUT_MS: u64 = 1500;
/// The bound on every list a server gives (`oauth::bounds::MAX_LIST_ENTRIES`).
const MAX_LIST_ENTRIES: usize = 1024;

/// How a case must end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ends {
    Error,
    Success,
    /// Either, as long as it ends (a redirect the step does not follow, a challenge whose
    /// body is malformed but whose header is fine).
    Either,
}

/// The faults every step meets, with a huge-lists fault sized for the step.
fn faults(huge: Fault) -> Vec<Fault> {
    vec![
        huge,
        Fault::Oversized,
        Fault::LyingLength(1 << 30),
        Fault::LyingLength(512 * 1024),
        Fault::Trickle,
        Fault::Stall,
        Fault::InvalidJson,
        Fault::WrongTypes,
        Fault::GzipBomb,
        Fault::RedirectLoop,
        Fault::RedirectToLinkLocal,
    ]
}

fn huge(entries: usize) -> Fault {
    Fault::HugeLists {
        entries,
        entry_bytes: 3,
    }
}

struct Daemon {
    child: Child,
    c: Client<ChildStdin, ChildStdout>,
    home: tempfile::TempDir,
    config: String,
    servers: usize,
    worst_status: Duration,
    /// The case during which the worst status answer came.
    worst_during: String,
    statuses: usize,
    start_rss_kib: u64,
}

impl Daemon {
    async fn start(config: &str) -> Self {
        let home = tempfile::tempdir().unwrap();
        let config = format!("mcp_oauth_credentials_store = \"file\"\n{config}");
        std::fs::write(home.path().join("config.toml"), &config).unwrap();
        // The measured run may take another build of the daemon (the release one).
        let bin = std::env::var_os("MCP_APP_SERVER_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_mcp-app-server").into());
        let mut child = Command::new(bin)
            .env("MCP_APP_SERVER_HOME", home.path())
            .env(
                "MCP_APP_SERVER_HTTP_TIMEOUT_MS",
                HTTP_TIMEOUT_MS.to_string(),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut c = Client::new(stdin, stdout);
        c.initialize().await;
        let mut daemon = Self {
            child,
            c,
            home,
            config,
            servers: 0,
            worst_status: Duration::ZERO,
            worst_during: String::new(),
            statuses: 0,
            start_rss_kib: 0,
        };
        daemon.start_rss_kib = daemon.rss_kib().0;
        daemon
    }

    /// (VmRSS, VmHWM) of the daemon, in KiB.
    fn rss_kib(&self) -> (u64, u64) {
        let pid = self.child.id().expect("the daemon runs");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Adds `[mcp_servers.sN]` for `kit` and reloads; returns the name.
    async fn add_server(&mut self, kit: &Kit) -> String {
        self.servers += 1;
        let name = format!("s{}", self.servers);
        self.config.push_str(&format!(
            "[mcp_servers.{name}]\nurl = \"{}\"\n",
            kit.mcp_url()
        ));
        std::fs::write(self.home.path().join("config.toml"), &self.config).unwrap();
        let reply = self.c.request("config/mcpServer/reload", json!({})).await;
        assert!(reply["result"].is_object(), "{reply}");
        name
    }

    /// One `mcpServerStatus/list`, answered within [`STATUS_BOUND`].
    async fn status_tick(&mut self, during: &str) {
        let id = self.c.send_request("mcpServerStatus/list", json!({})).await;
        let sent = Instant::now();
        let reply = tokio::time::timeout(STATUS_BOUND, self.c.response(id))
            .await
            .unwrap_or_else(|_| {
                panic!("mcpServerStatus/list unanswered for {STATUS_BOUND:?} during {during}")
            });
        assert!(reply["result"]["data"].is_array(), "{reply}");
        if sent.elapsed() > self.worst_status {
            self.worst_status = sent.elapsed();
            self.worst_during = during.to_string();
        }
        self.statuses += 1;
    }

    /// Sends `method` and asks for the status list until its answer comes.
    async fn answer(&mut self, method: &str, params: Value, during: &str) -> Value {
        let id = self.c.send_request(method, params).await;
        let start = Instant::now();
        loop {
            self.status_tick(during).await;
            if let Some(reply) = self.c.take_response(id) {
                return reply;
            }
            assert!(
                start.elapsed() < CASE_DEADLINE,
                "{method} did not end within {CASE_DEADLINE:?} during {during}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for `server`'s `mcpServer/oauthLogin/completed`, asking for the status list.
    async fn completed(&mut self, server: &str, during: &str) -> Value {
        let start = Instant::now();
        loop {
            self.status_tick(during).await;
            while let Some(done) = self.c.take_notification("mcpServer/oauthLogin/completed") {
                if done["name"] == server {
                    return done;
                }
            }
            assert!(
                start.elapsed() < CASE_DEADLINE,
                "the login did not complete within {CASE_DEADLINE:?} during {during}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A whole login of `server`: the authorization URL, the browser, the completion.
    async fn login(&mut self, server: &str, during: &str) -> Value {
        let reply = self
            .answer("mcpServer/oauth/login", json!({"name": server}), during)
            .await;
        let url = reply["result"]["authorizationUrl"]
            .as_str()
            .unwrap_or_else(|| panic!("{during}: {reply}"))
            .to_string();
        let browser = tokio::spawn(async move { browser_visit(&url).await });
        let done = self.completed(server, during).await;
        let _ = browser.await;
        done
    }

    fn stored(&self, server: &str, kit: &Kit) -> Option<StoredCredentials> {
        let key = CredentialKey::new(server, url::Url::parse(&kit.mcp_url()).unwrap().to_string());
        FileStore::open(&Home::at(self.home.path()))
            .unwrap()
            .load(&key)
            .unwrap()
    }

    /// The figures of docs/benchmarks.md, printed with `--nocapture`.
    #[allow(clippy::print_stderr)]
    fn report(&self, step: &str) {
        let (rss, peak) = self.rss_kib();
        eprintln!(
            "hostile {step}: {} cases, {} status answers, worst {:?} ({}); RSS {} KiB -> {} KiB (+{} KiB), peak {} KiB",
            self.servers,
            self.statuses,
            self.worst_status,
            self.worst_during,
            self.start_rss_kib,
            rss,
            rss.saturating_sub(self.start_rss_kib),
            peak
        );
    }
}

/// A kit whose discovery results are not cached (every case discovers afresh).
async fn kit() -> Kit {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    kit.set_metadata_max_age(Some(0));
    kit
}

fn check_end(reply: &Value, ends: Ends, during: &str) {
    match ends {
        Ends::Error => assert!(reply["error"].is_object(), "{during}: {reply}"),
        Ends::Success => assert!(reply["result"].is_object(), "{during}: {reply}"),
        Ends::Either => assert!(
            reply["error"].is_object() || reply["result"].is_object(),
            "{during}: {reply}"
        ),
    }
}

/// The `scope` parameter of an authorization URL, split.
fn requested_scopes(reply: &Value) -> Vec<String> {
    let url = url::Url::parse(reply["result"]["authorizationUrl"].as_str().unwrap()).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.split(' ').map(str::to_string).collect())
        .unwrap_or_default()
}

/// The discovery and registration steps: the login's answer (an authorization URL or an
/// error) is the end of the case.
async fn before_the_browser(
    d: &mut Daemon,
    endpoint: Endpoint,
    huge_entries: usize,
    expect: fn(Fault) -> Ends,
) {
    for fault in faults(huge(huge_entries)) {
        let kit = kit().await;
        let server = d.add_server(&kit).await;
        kit.faults().set(endpoint, fault);
        let during = format!("{endpoint:?} {fault:?}");
        let reply = d
            .answer("mcpServer/oauth/login", json!({"name": server}), &during)
            .await;
        check_end(&reply, expect(fault), &during);
        if let (Fault::HugeLists { .. }, Some(_)) = (fault, reply.get("result")) {
            let scopes = requested_scopes(&reply);
            let distinct: std::collections::HashSet<_> = scopes.iter().collect();
            assert_eq!(distinct.len(), scopes.len(), "{during}: duplicate scopes");
            match endpoint {
                // The challenge's 1,024 kept scopes, and offline_access the server offers.
                Endpoint::Mcp => assert_eq!(scopes.len(), MAX_LIST_ENTRIES + 1, "{during}"),
                Endpoint::Prm => assert_eq!(scopes.len(), MAX_LIST_ENTRIES, "{during}"),
                _ => assert!(scopes.len() <= 3, "{during}: {scopes:?}"),
            }
        }
        let cancel =
            d.c.request("mcpServer/oauth/cancel", json!({"name": server}))
                .await;
        assert!(cancel["result"].is_object(), "{cancel}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_probe_answer_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    probe_step(&mut d).await;
    d.report("probe step");
}

async fn probe_step(d: &mut Daemon) {
    // The probe reads no 2xx body (an MCP answer may be an endless stream), so the
    // faults that answer 200 end in "not an OAuth server"; redirects are not followed.
    // 70,000 scopes: as many as fit in the response head the HTTP client accepts (about
    // 400 KiB; a larger head fails the probe).
    before_the_browser(d, Endpoint::Mcp, 70_000, |fault| match fault {
        Fault::HugeLists { .. } => Ends::Success,
        Fault::WrongTypes | Fault::RedirectLoop | Fault::RedirectToLinkLocal => Ends::Either,
        _ => Ends::Error,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_protected_resource_metadata_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    prm_step(&mut d).await;
    d.report("prm step");
}

async fn prm_step(d: &mut Daemon) {
    before_the_browser(d, Endpoint::Prm, 140_000, |fault| match fault {
        Fault::HugeLists { .. } => Ends::Success,
        _ => Ends::Error,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_authorization_server_metadata_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    as_metadata_step(&mut d).await;
    d.report("as metadata step");
}

async fn as_metadata_step(d: &mut Daemon) {
    // Both documents (OAuth and OpenID) at once: 130,000 distinct scopes each to merge.
    before_the_browser(d, Endpoint::AsMetadata, 130_000, |fault| match fault {
        Fault::HugeLists { .. } => Ends::Success,
        _ => Ends::Error,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_registration_endpoint_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    registration_step(&mut d).await;
    d.report("registration step");
}

async fn registration_step(d: &mut Daemon) {
    // The kit's answer echoes `redirect_uris` and `scope`: 60,000 entries each.
    before_the_browser(d, Endpoint::Register, 60_000, |fault| match fault {
        Fault::HugeLists { .. } => Ends::Success,
        _ => Ends::Error,
    })
    .await;
}

/// The token faults beyond the common ones: answers a client must take.
fn token_faults() -> Vec<Fault> {
    let mut all = faults(huge(200_000));
    all.extend([Fault::HugeExpiresIn, Fault::NoTokenType]);
    all
}

fn token_fault_ends(fault: Fault) -> Ends {
    match fault {
        Fault::HugeLists { .. } | Fault::HugeExpiresIn | Fault::NoTokenType => Ends::Success,
        _ => Ends::Error,
    }
}

fn check_stored(d: &Daemon, server: &str, kit: &Kit, fault: Fault, during: &str) {
    let stored = d
        .stored(server, kit)
        .unwrap_or_else(|| panic!("{during}: nothing stored"));
    match fault {
        Fault::HugeLists { .. } => {
            assert_eq!(stored.scopes.len(), MAX_LIST_ENTRIES, "{during}");
        }
        Fault::HugeExpiresIn => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            let expires = stored.expires_at.expect("a lifetime");
            assert!(expires - now > 9 * 365 * 24 * 3600, "{during}: {expires}");
        }
        Fault::NoTokenType => assert_eq!(stored.token_type, "Bearer", "{during}"),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_token_endpoint_at_the_code_exchange_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    code_exchange_step(&mut d).await;
    d.report("code exchange");
}

async fn code_exchange_step(d: &mut Daemon) {
    for fault in token_faults() {
        let kit = kit().await;
        let server = d.add_server(&kit).await;
        kit.faults().set(Endpoint::Token, fault);
        let during = format!("code exchange {fault:?}");
        let done = d.login(&server, &during).await;
        let success = token_fault_ends(fault) == Ends::Success;
        assert_eq!(done["success"], success, "{during}: {done}");
        if success {
            check_stored(d, &server, &kit, fault, &during);
        } else {
            assert!(d.stored(&server, &kit).is_none(), "{during}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_token_endpoint_at_refresh_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    refresh_step(&mut d).await;
    d.report("refresh");
}

async fn refresh_step(d: &mut Daemon) {
    for fault in token_faults() {
        let kit = kit().await;
        let server = d.add_server(&kit).await;
        let during = format!("refresh {fault:?}");
        let done = d.login(&server, &during).await;
        assert_eq!(done["success"], true, "{during}: {done}");
        kit.faults().set(Endpoint::Token, fault);
        let reply = d
            .answer(
                "mcpServer/oauth/token",
                json!({"name": server, "minValiditySecs": 7200}),
                &during,
            )
            .await;
        check_end(&reply, token_fault_ends(fault), &during);
        if token_fault_ends(fault) == Ends::Success {
            check_stored(d, &server, &kit, fault, &during);
        } else {
            // The credentials from the login are kept.
            assert!(d.stored(&server, &kit).is_some(), "{during}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_revocation_endpoint_ends_within_bounds() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    revocation_step(&mut d).await;
    d.report("revocation");
}

async fn revocation_step(d: &mut Daemon) {
    for fault in faults(huge(100_000)) {
        let kit = kit().await;
        let server = d.add_server(&kit).await;
        let during = format!("revocation {fault:?}");
        let done = d.login(&server, &during).await;
        assert_eq!(done["success"], true, "{during}: {done}");
        kit.faults().set(Endpoint::Revoke, fault);
        let reply = d
            .answer(
                "mcpServer/oauth/logout",
                json!({"name": server, "revoke": true}),
                &during,
            )
            .await;
        // Whatever the revocation endpoint does, the credentials are deleted.
        assert_eq!(reply["result"]["removed"], true, "{during}: {reply}");
        assert!(d.stored(&server, &kit).is_none(), "{during}");
    }
}

/// Pre-warm at start-up discovers the configured servers in the background: two huge
/// metadata documents to merge must not keep the daemon from answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prewarm_of_huge_metadata_keeps_the_daemon_answering() {
    let kit = kit().await;
    kit.faults().set(Endpoint::AsMetadata, huge(130_000));
    let mut d = Daemon::start(&format!(
        "[mcp_servers.warm]\nurl = \"{}\"\n",
        kit.mcp_url()
    ))
    .await;
    let start = Instant::now();
    while kit.counters().as_metadata_oauth + kit.counters().as_metadata_openid < 2 {
        d.status_tick("pre-warm").await;
        assert!(start.elapsed() < CASE_DEADLINE, "no pre-warm seen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        d.status_tick("pre-warm").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.report("pre-warm");
}

/// The measured run of docs/benchmarks.md: every step's cases against one daemon, its RSS
/// growth and worst status latency over all of them. Run with
/// `cargo test -p mcp-app-server --test all hostile_servers::one_daemon -- --ignored --nocapture`,
/// with `MCP_APP_SERVER_BIN=target/release/mcp-app-server` in front for the release daemon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measured run (about a minute); figures in docs/benchmarks.md"]
async fn one_daemon_through_every_hostile_step() {
    let mut d = Daemon::start("mcp_oauth_prewarm = false\n").await;
    probe_step(&mut d).await;
    prm_step(&mut d).await;
    as_metadata_step(&mut d).await;
    registration_step(&mut d).await;
    code_exchange_step(&mut d).await;
    refresh_step(&mut d).await;
    revocation_step(&mut d).await;
    d.report("every step, one daemon");
}

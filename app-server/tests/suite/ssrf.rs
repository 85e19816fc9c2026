//! Rule 35 end to end: a hostile MCP server on loopback names places the daemon must not
//! go (0.0.0.0 and its IPv4-mapped form, which reach this machine, so a missing check shows
//! up as a connection on a loopback listener, never as traffic elsewhere).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};

/// A loopback listener counting the connections it accepts (each is closed at once).
struct Counting {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl Counting {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                drop(socket);
            }
        });
        Self { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// What the hostile server's documents point at.
#[derive(Clone, Default)]
struct Hostile {
    /// `resource_metadata` of the 401 challenge.
    hint: Option<String>,
    /// `authorization_servers[0]` of the PRM (else the server's own origin).
    issuer: Option<String>,
    token_endpoint: Option<String>,
    registration_endpoint: Option<String>,
}

/// An MCP server on 127.0.0.1 that is its own authorization server, except for what
/// `hostile` redirects elsewhere. Returns its MCP URL.
async fn hostile_server(hostile: Hostile) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let mcp = format!("{origin}/mcp");
    let h = hostile.clone();
    let challenge = match &h.hint {
        Some(hint) => format!("Bearer resource_metadata=\"{hint}\""),
        None => "Bearer".to_string(),
    };
    let prm = json!({
        "resource": mcp,
        "authorization_servers": [h.issuer.clone().unwrap_or_else(|| origin.clone())],
    });
    let metadata = json!({
        "issuer": origin,
        "authorization_endpoint": format!("{origin}/authorize"),
        "token_endpoint": h.token_endpoint.clone().unwrap_or_else(|| format!("{origin}/token")),
        "registration_endpoint": h
            .registration_endpoint
            .clone()
            .unwrap_or_else(|| format!("{origin}/register")),
        "code_challenge_methods_supported": ["S256"],
        "response_types_supported": ["code"],
    });
    let json_doc = |v: Value| move || async move { axum::Json(v) };
    let app = Router::new()
        .route(
            "/mcp",
            post(move || async move {
                Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header(header::WWW_AUTHENTICATE, challenge)
                    .body(axum::body::Body::empty())
                    .unwrap()
            }),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(json_doc(prm.clone())),
        )
        .route("/prm", get(json_doc(prm)))
        .route(
            "/.well-known/oauth-authorization-server",
            get(json_doc(metadata)),
        )
        .route(
            "/register",
            post(|| async {
                (
                    StatusCode::CREATED,
                    axum::Json(json!({"client_id": "c1", "token_endpoint_auth_method": "none"})),
                )
                    .into_response()
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    mcp
}

async fn daemon(
    mcp_url: &str,
    extra: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let home = tempfile::tempdir().unwrap();
    // No pre-warm: the tests count the connections each login makes.
    write_config(
        home.path(),
        &format!(
            "mcp_oauth_credentials_store = \"file\"\nmcp_oauth_prewarm = false\n[mcp_servers.evil]\nurl = \"{mcp_url}\"\n{extra}\n"
        ),
    );
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    (home, server, c)
}

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

/// Logs in to `evil` and expects the policy's refusal of `refused_url`.
async fn assert_refused(c: &mut MemClient, refused_url: &str) {
    let e = c
        .err("mcpServer/oauth/login", json!({"name": "evil"}))
        .await;
    assert_eq!(kind(&e), "discoveryFailed", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains(refused_url), "{message}");
    assert!(message.contains("special-use address"), "{message}");
    assert!(
        message.contains("`allow_link_local_and_special_use = true`"),
        "{message}"
    );
    // The daemon keeps answering.
    let list = c.ok("mcpServerStatus/list", json!({})).await;
    assert_eq!(list["data"][0]["name"], "evil", "{list}");
}

#[tokio::test]
async fn resource_metadata_hint_at_a_special_use_address_is_refused() {
    let target = Counting::start().await;
    let hint = format!("https://0.0.0.0:{}/prm", target.port);
    let mcp = hostile_server(Hostile {
        hint: Some(hint.clone()),
        ..Default::default()
    })
    .await;
    let (_home, _server, mut c) = daemon(&mcp, "").await;
    assert_refused(&mut c, &hint).await;
    assert_eq!(target.accepted(), 0);
}

#[tokio::test]
async fn authorization_server_at_a_special_use_address_is_refused() {
    let target = Counting::start().await;
    let issuer = format!("https://0.0.0.0:{}", target.port);
    let mcp = hostile_server(Hostile {
        issuer: Some(issuer.clone()),
        ..Default::default()
    })
    .await;
    let (_home, _server, mut c) = daemon(&mcp, "").await;
    assert_refused(&mut c, &format!("{issuer}/.well-known/")).await;
    assert_eq!(target.accepted(), 0);
}

#[tokio::test]
async fn token_and_registration_endpoints_at_special_use_addresses_are_refused() {
    let target = Counting::start().await;
    let token = format!("https://0.0.0.0:{}/token", target.port);
    let mcp = hostile_server(Hostile {
        token_endpoint: Some(token.clone()),
        ..Default::default()
    })
    .await;
    let (_home, _server, mut c) = daemon(&mcp, "").await;
    assert_refused(&mut c, &token).await;

    let register = format!("https://[::ffff:0.0.0.0]:{}/register", target.port);
    let mcp = hostile_server(Hostile {
        registration_endpoint: Some(register.clone()),
        ..Default::default()
    })
    .await;
    let (_home, _server, mut c) = daemon(&mcp, "").await;
    // The URL crate writes the mapped address in its canonical form.
    assert_refused(
        &mut c,
        &format!("https://[::ffff:0:0]:{}/register", target.port),
    )
    .await;
    assert_eq!(target.accepted(), 0);
}

/// `allow_private_network = true` lifts only the private-network rule: a special-use
/// destination (here 0.0.0.0, which reaches this machine) stays refused, never connected
/// to. Only `allow_link_local_and_special_use = true` lets the same hint be fetched (the
/// listener speaks no TLS, so the login still fails, but not by the policy).
#[tokio::test]
async fn only_the_special_use_key_lets_the_server_use_special_use_addresses() {
    let target = Counting::start().await;
    let hint = format!("https://0.0.0.0:{}/prm", target.port);
    let mcp = hostile_server(Hostile {
        hint: Some(hint.clone()),
        ..Default::default()
    })
    .await;
    let (_home, _server, mut c) = daemon(&mcp, "allow_private_network = true").await;
    assert_refused(&mut c, &hint).await;
    assert_eq!(target.accepted(), 0);

    let (_home, _server, mut c) = daemon(&mcp, "allow_link_local_and_special_use = true").await;
    let e = c
        .err("mcpServer/oauth/login", json!({"name": "evil"}))
        .await;
    let message = e["message"].as_str().unwrap();
    assert!(!message.contains("special-use address"), "{message}");
    assert_eq!(target.accepted(), 1, "{e}");

    // And a well-behaved loopback server logs in under the policy (its own origin is
    // loopback, which a loopback server may use), with or without the private opt-in.
    let mcp = hostile_server(Hostile::default()).await;
    for extra in ["", "allow_private_network = true"] {
        let (_home, _server, mut c) = daemon(&mcp, extra).await;
        let r = c.ok("mcpServer/oauth/login", json!({"name": "evil"})).await;
        assert!(
            r["authorizationUrl"]
                .as_str()
                .unwrap()
                .contains("/authorize"),
            "{extra}: {r}"
        );
    }
}

/// The cloud metadata address behind a redirect of the authorization server's metadata,
/// with `allow_private_network = true`: refused before any connection (the metadata GET
/// only follows redirects on its own origin, and the policy refuses link-local).
#[tokio::test]
async fn allow_private_network_never_reaches_the_cloud_metadata_address() {
    let mcp = hostile_server(Hostile {
        issuer: Some("https://169.254.169.254".to_string()),
        ..Default::default()
    })
    .await;
    let (_home, _server, mut c) = daemon(&mcp, "allow_private_network = true").await;
    let e = c
        .err("mcpServer/oauth/login", json!({"name": "evil"}))
        .await;
    assert_eq!(kind(&e), "discoveryFailed", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("169.254.169.254 is a link-local address"),
        "{message}"
    );
    assert!(
        message.contains("`allow_link_local_and_special_use = true`"),
        "{message}"
    );
}

#[tokio::test]
async fn the_network_opt_ins_must_be_booleans() {
    for key in ["allow_private_network", "allow_link_local_and_special_use"] {
        let home = tempfile::tempdir().unwrap();
        write_config(
            home.path(),
            &format!("[mcp_servers.evil]\nurl = \"https://mcp.example/mcp\"\n{key} = \"yes\"\n"),
        );
        let (_server, mut c) = harness::start(home.path());
        c.initialize().await;
        let e = c.err("mcpServerStatus/list", json!({})).await;
        assert_eq!(kind(&e), "configInvalid", "{e}");
        assert!(e["message"].as_str().unwrap().contains(key), "{e}");
    }
}

/// Refresh and revocation go to the stored endpoints, under the same policy: a stored
/// endpoint at a refused address is never contacted, and the stored credentials survive.
#[tokio::test]
async fn refresh_and_revocation_at_refused_addresses_are_not_sent() {
    use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore};
    use mcp_app_server::home::Home;
    use mcp_app_server_testkit::{Kit, KitConfig};

    use super::login::{daemon_for, login};

    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = daemon_for(&kit, "kit", "").await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let target = Counting::start().await;
    let store = FileStore::open(&Home::at(home.path())).unwrap();
    let key = CredentialKey::new("kit", url::Url::parse(&kit.mcp_url()).unwrap().to_string());
    let mut creds = store.load(&key).unwrap().expect("stored credentials");
    creds.token_endpoint = format!("https://0.0.0.0:{}/token", target.port);
    creds.revocation_endpoint = Some(format!("https://[::ffff:0:0]:{}/revoke", target.port));
    store.save(&creds).unwrap();

    let e = c
        .err(
            "mcpServer/oauth/token",
            json!({"name": "kit", "minValiditySecs": 7200}),
        )
        .await;
    assert_eq!(kind(&e), "refreshFailedRetryable", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("special-use address"), "{message}");
    assert_eq!(store.load(&key).unwrap().as_ref(), Some(&creds));

    let r = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(r["removed"], true, "{r}");
    assert_eq!(r["revoked"], false, "{r}");
    assert!(
        r["revocationError"]
            .as_str()
            .unwrap()
            .contains("special-use address"),
        "{r}"
    );
    assert_eq!(target.accepted(), 0);
    assert_eq!(kit.counters().token_refresh, 0);
}

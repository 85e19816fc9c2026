//! Interop: RFC 8705 mutual TLS against oidc-provider (`oidc-server.mjs` with `MTLS=1`:
//! HTTPS, token endpoint aliases that ask for client certificates, a resource that takes a
//! bound token only with its certificate). The daemon logs in as a dynamically registered
//! `self_signed_tls_client_auth` client and as a preregistered `tls_client_auth` one, hands
//! a frontend that presents certificates its bound token and the files to present, refreshes
//! and revokes at the aliases. Skipped with `MCP_APP_SERVER_SKIP_NODE=1` (suite/node.rs).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_app_server::rpc::AppServer;
use mcp_app_server_testkit::{IssuedCert, TestCa};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::process::Command;

use super::harness::{self, MemClient, write_config};
use super::interop::{BROWSER, PRE_CLIENT_ID, PRE_CLIENT_SECRET, Peer, interop_dir};
use super::node::node_ready;

/// The subject `oidc-server.mjs` registers for its preregistered `tls_client_auth` client.
const MTLS_SUBJECT: &str = "interop-mtls-client";
const MTLS_CLIENT_ID: &str = "preregistered-mtls";
/// JSON-RPC error code of `certificateRequired`.
const CERTIFICATE_REQUIRED: i64 = -32036;

/// The PEM files of one test, in its daemon's home.
struct Pki {
    server_ca: PathBuf,
    client_chain: PathBuf,
    client_key: PathBuf,
    /// RFC 8705 `x5t#S256` of the client certificate.
    x5t: String,
    /// The client certificate's DER in base64, as in a JWK's `x5c`.
    x5c: String,
}

fn write(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).unwrap();
    path
}

/// The certificate of `cert` (the first of its chain) as base64 DER, as in a JWK's `x5c`.
fn certificate_base64(cert: &IssuedCert) -> String {
    let base64: String = cert
        .chain_pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END CERTIFICATE-----"))
        .collect();
    let der = STANDARD.decode(&base64).unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(der)), cert.sha256);
    base64
}

/// A daemon whose frontend presents certificates, and the oidc-provider peer it logs in to.
struct Mtls {
    home: tempfile::TempDir,
    pki: Pki,
    peer: Peer,
    server: AppServer,
    c: MemClient,
    name: &'static str,
}

impl Mtls {
    /// `client_ca`: whose certificates the AS counts as verified; `client`: the certificate
    /// the daemon is configured with; `client_id`: a preregistered client to log in as.
    async fn start(
        name: &'static str,
        client_ca: &TestCa,
        client: &IssuedCert,
        client_id: Option<&str>,
    ) -> Mtls {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join("pki");
        std::fs::create_dir(&dir).unwrap();
        let server_ca = TestCa::new("interop-mtls-server-ca").unwrap();
        let server = server_ca.server(&["127.0.0.1", "localhost"]).unwrap();
        let pki = Pki {
            server_ca: write(&dir, "server-ca.pem", &server_ca.cert_pem()),
            client_chain: write(&dir, "client.pem", &client.chain_pem),
            client_key: write(&dir, "client-key.pem", &client.key_pem),
            x5t: URL_SAFE_NO_PAD.encode(client.sha256),
            x5c: certificate_base64(client),
        };
        let server_chain = write(&dir, "server.pem", &server.chain_pem);
        let server_key = write(&dir, "server-key.pem", &server.key_pem);
        let client_ca_file = write(&dir, "client-ca.pem", &client_ca.cert_pem());
        let subject = format!("CN={MTLS_SUBJECT}");
        let peer = Peer::start(
            "oidc-server.mjs",
            &[
                ("MTLS", "1"),
                ("TLS_CERT", server_chain.to_str().unwrap()),
                ("TLS_KEY", server_key.to_str().unwrap()),
                ("CLIENT_CA", client_ca_file.to_str().unwrap()),
                ("PREREGISTERED_MTLS_SUBJECT_DN", &subject),
            ],
        )
        .await;
        let oauth = client_id
            .map(|id| format!("[mcp_servers.{name}.oauth]\nclient_id = \"{id}\"\n"))
            .unwrap_or_default();
        write_config(
            home.path(),
            &format!(
                "mcp_oauth_credentials_store = \"file\"\nca_certificates = \"{}\"\n\
                 [mcp_servers.{name}]\nurl = \"{}\"\nclient_certificate = \"{}\"\n\
                 client_key = \"{}\"\n{oauth}",
                pki.server_ca.display(),
                peer.mcp_url(),
                pki.client_chain.display(),
                pki.client_key.display(),
            ),
        );
        let (server, mut c) = harness::start(home.path());
        c.ok(
            "initialize",
            json!({"clientInfo": {"name": "test-mtls", "version": "1"},
                   "capabilities": {"clientCertificate": true}}),
        )
        .await;
        Mtls {
            home,
            pki,
            peer,
            server,
            c,
            name,
        }
    }

    /// `mcpServer/oauth/login`, the browser (trusting the server authority), and success.
    async fn login(&mut self) {
        let start = self
            .c
            .ok("mcpServer/oauth/login", json!({"name": self.name}))
            .await;
        let url = start["authorizationUrl"].as_str().unwrap();
        assert!(url.starts_with(&self.peer.issuer()), "{start}");
        let page = browse(url, &self.pki.server_ca).await;
        let done = self.c.notification("mcpServer/oauthLogin/completed").await;
        assert_eq!(done["success"], true, "login failed: {done}; page: {page}");
        assert_eq!(page["status"], 200, "the daemon's callback page: {page}");
    }

    async fn status(&mut self) -> Value {
        let list = self.c.ok("mcpServerStatus/list", json!({})).await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == self.name)
            .cloned()
            .unwrap_or_else(|| panic!("{} not listed: {list}", self.name))
    }

    async fn token(&mut self, min_validity_secs: u32) -> Value {
        self.c
            .ok(
                "mcpServer/oauth/token",
                json!({"name": self.name, "minValiditySecs": min_validity_secs}),
            )
            .await
    }

    /// The stored credential entry (file backend).
    fn stored(&self) -> Option<Value> {
        let text = std::fs::read_to_string(self.home.path().join("credentials.json")).ok()?;
        let doc: Value = serde_json::from_str(&text).unwrap();
        doc["credentials"]
            .as_object()?
            .values()
            .find(|c| c["serverName"] == self.name)
            .cloned()
    }

    /// The peer's request counts and registrations (`GET /__requests`).
    async fn requests(&self) -> Value {
        let res = https(&self.pki.server_ca, None)
            .get(self.peer.get("requestsUrl"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

/// `browser.mjs` on the authorization URL, Node trusting the server authority.
async fn browse(url: &str, server_ca: &Path) -> Value {
    let out = tokio::time::timeout(
        BROWSER,
        Command::new("node")
            .arg(interop_dir().join("browser.mjs"))
            .arg(url)
            .env("NODE_EXTRA_CA_CERTS", server_ca)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("browser.mjs finishes")
    .expect("browser.mjs runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser.mjs failed on the authorization URL ({}): {stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("browser.mjs output ({e}): {stdout}"))
}

/// A client trusting only the server authority, presenting `identity` (chain + key PEM).
fn https(server_ca: &Path, identity: Option<&[u8]>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(server_ca).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_certs_only([ca]);
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem).unwrap());
    }
    builder.build().unwrap()
}

/// `tools/call whoami` at the resource: the token's claims, or the status and
/// `error_description` it was refused with.
async fn whoami(t: &Mtls, token: &str, identity: Option<&[u8]>) -> Result<Value, (u16, Value)> {
    let res = https(&t.pki.server_ca, identity)
        .post(t.peer.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(token)
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}}}))
        .send()
        .await
        .expect("the MCP endpoint answers");
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap_or_default();
    if status != 200 {
        return Err((status, body["error_description"].clone()));
    }
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("whoami answer: {body}"));
    Ok(serde_json::from_str(text).unwrap())
}

/// `route` ("POST /token") at the alias listener and at the AS's own: every one of `n`
/// requests went to the alias with the certificate and got `statuses`; none to the AS's.
fn assert_at_alias(requests: &Value, route: &str, n: u64, statuses: Value) {
    let expected = json!({"requests": n, "withCertificate": n, "statuses": statuses});
    assert_eq!(requests["mtls"][route], expected, "{requests}");
    assert!(requests["as"][route].is_null(), "{requests}");
}

/// RFC 7662 at the AS's own listener, as the preregistered confidential client.
async fn introspect(t: &Mtls, token: &str) -> Value {
    let res = https(&t.pki.server_ca, None)
        .post(format!("{}/token/introspection", t.peer.issuer()))
        .basic_auth(PRE_CLIENT_ID, Some(PRE_CLIENT_SECRET))
        .form(&[("token", token), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// What both registrations share once logged in: the bound token and its files, the
/// refusals without the certificate or the capability, a refresh and a logout at the aliases.
async fn bound_session(t: &mut Mtls, client_id: &str) {
    assert_at_alias(&t.requests().await, "POST /token", 1, json!({"200": 1}));
    let x5t = json!(t.pki.x5t);
    let token = t.token(60).await;
    assert_eq!(token["tokenType"], "Bearer", "{token}");
    let binding = &token["certificateBinding"];
    assert_eq!(binding["x5tS256"], x5t, "{token}");
    let files = [&binding["certificateFile"], &binding["keyFile"]]
        .map(|f| std::fs::read(f.as_str().unwrap_or_else(|| panic!("{token}"))).unwrap());
    let identity = [files[0].as_slice(), files[1].as_slice()].concat();
    let access = token["accessToken"].as_str().unwrap().to_string();

    let me = whoami(t, &access, Some(&identity)).await.unwrap();
    assert_eq!(me["client_id"], client_id, "{me}");
    assert_eq!(me["sub"], "interop-user", "{me}");
    assert_eq!(me["certificateBound"], true, "{me}");
    let (status, why) = whoami(t, &access, None).await.unwrap_err();
    assert_eq!(status, 401);
    assert!(why.as_str().unwrap().contains("presented none"), "{why}");

    // A frontend that cannot present the certificate gets no bound token.
    let mut plain = harness::connect(&t.server);
    plain.initialize().await;
    let e = plain
        .err("mcpServer/oauth/token", json!({"name": t.name}))
        .await;
    assert_eq!(e["code"], CERTIFICATE_REQUIRED, "{e}");
    assert_eq!(e["data"]["kind"], "certificateRequired", "{e}");

    // The access token lives an hour: asking for two forces a refresh, at the alias.
    let refreshed = t.token(7200).await;
    let second = refreshed["accessToken"].as_str().unwrap().to_string();
    assert_ne!(second, access);
    assert_eq!(refreshed["certificateBinding"]["x5tS256"], x5t);
    assert_at_alias(&t.requests().await, "POST /token", 2, json!({"200": 2}));
    let me = whoami(t, &second, Some(&identity)).await.unwrap();
    assert_eq!(me["certificateBound"], true, "{me}");

    // Logout revokes at the alias with the certificate: the refresh token (200), then the
    // access token, which oidc-provider cannot revoke as a JWT (400 unsupported_token_type).
    let refresh_token = t.stored().unwrap()["refreshToken"]
        .as_str()
        .expect("a refresh token stored")
        .to_string();
    let out =
        t.c.ok(
            "mcpServer/oauth/logout",
            json!({"name": t.name, "revoke": true}),
        )
        .await;
    assert_eq!(out["removed"], true, "{out}");
    assert_eq!(out["revoked"], true, "{out}");
    let requests = t.requests().await;
    let revocations = json!({"200": 1, "400": 1});
    assert_at_alias(&requests, "POST /token/revocation", 2, revocations);
    let after = introspect(t, &refresh_token).await;
    assert_eq!(after["active"], false, "{after}");
    assert_eq!(t.status().await["authStatus"], "notLoggedIn");
}

#[tokio::test]
async fn interop_mtls_dcr_self_signed_tls_client_auth() {
    if !node_ready("interop_mtls_dcr_self_signed_tls_client_auth") {
        return;
    }
    // A self-signed certificate: the AS trusts no authority for it, only the SHA-256
    // registered in `x5c`.
    let client = TestCa::self_signed_client("interop-mtls-dcr").unwrap();
    let client_ca = TestCa::new("interop-mtls-client-ca").unwrap();
    let mut t = Mtls::start("mtls_dcr", &client_ca, &client, None).await;
    t.login().await;
    let s = t.status().await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["registration"], "dcr", "{s}");
    let client_id = t.stored().unwrap()["client"]["clientId"]
        .as_str()
        .unwrap()
        .to_string();

    let requests = t.requests().await;
    let registrations = requests["registrations"].as_array().unwrap();
    assert_eq!(registrations.len(), 1, "{requests}");
    let r = &registrations[0];
    let seen = [
        &r["client_id"],
        &r["token_endpoint_auth_method"],
        &r["tls_client_certificate_bound_access_tokens"],
        &r["jwks"]["keys"][0]["x5c"][0],
    ];
    let wanted = json!([client_id, "self_signed_tls_client_auth", true, t.pki.x5c]);
    assert_eq!(json!(seen), wanted, "{r}");

    bound_session(&mut t, &client_id).await;
    t.peer.stop().await;
}

#[tokio::test]
async fn interop_mtls_preregistered_tls_client_auth() {
    if !node_ready("interop_mtls_preregistered_tls_client_auth") {
        return;
    }
    let client_ca = TestCa::new("interop-mtls-client-ca").unwrap();
    let client = client_ca.client(MTLS_SUBJECT).unwrap();
    let mut t = Mtls::start("mtls_pre", &client_ca, &client, Some(MTLS_CLIENT_ID)).await;
    t.login().await;
    let s = t.status().await;
    assert_eq!(s["authStatus"], "loggedIn", "{s}");
    assert_eq!(s["registration"], "preregistered", "{s}");
    let requests = t.requests().await;
    assert_eq!(requests["registrations"], json!([]), "{requests}");

    bound_session(&mut t, MTLS_CLIENT_ID).await;
    t.peer.stop().await;
}

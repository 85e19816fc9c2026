//! Mutual-TLS client authentication and certificate-bound tokens (RFC 8705, rule 42)
//! against the test kit served over TLS: a DCR client registered with its certificate
//! (`self_signed_tls_client_auth`), a preregistered `tls_client_auth` client, the
//! `mtls_endpoint_aliases` used for every request that authenticates the client, tokens
//! bound to the certificate handed only to frontends that present it, a changed
//! certificate that registers again, and a server refusing the certificate members.
//! The same against oidc-provider, a third-party server, is in `interop_mtls.rs`.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_app_server_testkit::{
    IssuedCert, Kit, KitConfig, KitMtls, KitTls, PreregisteredClient, TestCa,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::grants::{expire_stored, mcp_status_over, stored};
use super::harness::{self, MemClient, write_config};
use super::login::{file_store_config, login, server_config};

/// Files of one test: the server authority, and client certificates with their keys.
pub(super) struct Files(tempfile::TempDir);

impl Files {
    pub(super) fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    /// The path of a file written earlier.
    pub(super) fn path(&self, name: &str) -> String {
        self.0.path().join(name).display().to_string()
    }

    pub(super) fn write(&self, name: &str, text: &str) -> String {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// `client_certificate` and `client_key` lines for `cert`, written under `name`.
    pub(super) fn identity(&self, name: &str, cert: &IssuedCert) -> String {
        let chain = self.write(&format!("{name}.pem"), &cert.chain_pem);
        let key = self.write(&format!("{name}-key.pem"), &cert.key_pem);
        format!("client_certificate = \"{chain}\"\nclient_key = \"{key}\"\n")
    }
}

/// The kit over TLS from `ca`, speaking RFC 8705 as `mtls` says.
pub(super) async fn kit(
    ca: &TestCa,
    client_ca: Option<&TestCa>,
    mtls: KitMtls,
    config: KitConfig,
) -> Kit {
    Kit::start(KitConfig {
        tls: Some(KitTls {
            server: ca.server(&["127.0.0.1"]).unwrap(),
            client_ca_pem: client_ca.map(TestCa::cert_pem),
        }),
        mtls: Some(mtls),
        ..config
    })
    .await
    .unwrap()
}

/// A kit over TLS speaking RFC 8705 as `mtls` says, a self-signed client certificate
/// (`me`), and the server-table lines that trust the kit and present that certificate.
pub(super) struct Setup {
    pub(super) ca: TestCa,
    pub(super) me: IssuedCert,
    pub(super) kit: Kit,
    pub(super) files: Files,
    /// `ca_certificates`, `client_certificate` and `client_key`.
    pub(super) extra: String,
}

pub(super) async fn setup(name: &str, mtls: KitMtls, config: KitConfig) -> Setup {
    let ca = TestCa::new("Kit test CA").unwrap();
    let me = TestCa::self_signed_client(name).unwrap();
    let kit = kit(&ca, None, mtls, config).await;
    let files = Files::new();
    let extra = format!(
        "ca_certificates = \"{}\"\n{}",
        files.write("ca.pem", &ca.cert_pem()),
        files.identity("me", &me)
    );
    Setup {
        ca,
        me,
        kit,
        files,
        extra,
    }
}

/// A daemon on `home` for the kit's server `kit`, its table holding `extra`; the
/// connection declares `capabilities.clientCertificate` when `presents` says so.
pub(super) async fn daemon(
    home: &Path,
    kit: &Kit,
    extra: &str,
    presents: bool,
) -> (mcp_app_server::rpc::AppServer, MemClient) {
    write_config(home, &file_store_config(&server_config("kit", kit, extra)));
    let (server, mut c) = harness::start(home);
    initialize(&mut c, presents).await;
    (server, c)
}

pub(super) async fn initialize(c: &mut MemClient, presents: bool) {
    c.ok(
        "initialize",
        json!({"clientInfo": {"name": "test", "version": "1"},
               "capabilities": {"clientCertificate": presents}}),
    )
    .await;
}

pub(super) fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

/// The status the kit's MCP server answers `token` with, over a connection presenting
/// `cert` (or none).
async fn mcp_status(kit: &Kit, ca: &TestCa, token: &str, cert: Option<&IssuedCert>) -> u16 {
    let mut client = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).unwrap());
    if let Some(cert) = cert {
        let pem = format!("{}{}", cert.chain_pem, cert.key_pem);
        client = client.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    mcp_status_over(&client.build().unwrap(), kit, token).await
}

fn count(requests: &[String], method: &str, path_end: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.starts_with(&format!("{method} ")) && r.ends_with(path_end))
        .count()
}

/// DCR with a certificate: registered with it, every request authenticating the client
/// at the aliases presenting it, the tokens bound to it and handed only to a frontend
/// that presents it, with the files that hold it; a refresh and a logout at the aliases.
#[tokio::test]
async fn a_registered_certificate_authenticates_at_the_aliases_and_binds_the_tokens() {
    let Setup {
        ca,
        me,
        kit,
        extra,
        files: _files,
        ..
    } = setup(
        "laptop-7",
        KitMtls {
            self_signed_tls_client_auth: true,
            tls_client_auth: true,
            aliases: true,
            bound_tokens: true,
        },
        KitConfig::default(),
    )
    .await;
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, &extra, true).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");

    // The registration holds the certificate itself and asks for bound tokens.
    let registered = kit.registered_clients();
    assert_eq!(registered.len(), 1, "{registered:?}");
    let body = &registered[0];
    assert_eq!(
        body["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    assert_eq!(body["tls_client_certificate_bound_access_tokens"], true);
    let x5c = STANDARD
        .decode(body["jwks"]["keys"][0]["x5c"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&x5c)), me.sha256);

    // Registration and code exchange at the aliases, with the certificate; nothing else.
    let alias = kit.mtls_alias_requests();
    assert_eq!(count(&alias, "POST", "/register"), 1, "{alias:?}");
    assert_eq!(count(&alias, "POST", "/token"), 1, "{alias:?}");
    let exchanges = kit.token_requests();
    assert_eq!(exchanges.len(), 1);
    assert!(exchanges[0].at_alias);
    assert_eq!(exchanges[0].client_certificate_sha256, Some(me.sha256));
    assert!(!exchanges[0].authorization_header);
    assert!(!exchanges[0].form.contains_key("client_secret"));
    assert_eq!(kit.counters().mtls_client_auth_failures, 0);

    // The token goes to this connection with the files of its certificate.
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    let token = r["accessToken"].as_str().unwrap().to_string();
    assert_eq!(r["tokenType"], "Bearer");
    let binding = &r["certificateBinding"];
    assert_eq!(binding["x5tS256"], URL_SAFE_NO_PAD.encode(me.sha256));
    assert!(
        binding["certificateFile"]
            .as_str()
            .unwrap()
            .ends_with("me.pem")
    );
    assert!(binding["keyFile"].as_str().unwrap().ends_with("me-key.pem"));
    assert!(!r.to_string().contains("PRIVATE KEY"));
    assert_eq!(kit.certificate_binding(&token), Some(me.sha256));

    // Only the paths: the key's bytes stay in the daemon unless the user asks otherwise.
    assert!(binding.get("keyPem").is_none() && binding.get("certificatePem").is_none());

    // With that certificate the MCP server takes it; without, or with another, it does not.
    let other = TestCa::self_signed_client("someone-else").unwrap();
    assert_eq!(mcp_status(&kit, &ca, &token, Some(&me)).await, 200);
    assert_eq!(mcp_status(&kit, &ca, &token, None).await, 401);
    assert_eq!(mcp_status(&kit, &ca, &token, Some(&other)).await, 401);
    assert_eq!(kit.counters().bound_token_refusals, 2);

    // A frontend that does not present the certificate is told so, not handed the token.
    let mut plain = harness::connect(&_server);
    initialize(&mut plain, false).await;
    let e = plain
        .err("mcpServer/oauth/token", json!({"name": "kit"}))
        .await;
    assert_eq!(kind(&e), "certificateRequired", "{e}");
    assert_eq!(e["code"], -32036);
    assert!(
        e["message"].as_str().unwrap().contains("clientCertificate"),
        "{e}"
    );

    // A refresh and a logout authenticate at the aliases too.
    expire_stored(home.path(), "kit", &kit);
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_ne!(r["accessToken"], token.as_str());
    assert_eq!(r["certificateBinding"]["x5tS256"], binding["x5tS256"]);
    let refresh = kit.token_requests().pop().unwrap();
    assert_eq!(
        refresh.form.get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert!(refresh.at_alias);
    assert_eq!(refresh.client_certificate_sha256, Some(me.sha256));
    let out = c
        .ok(
            "mcpServer/oauth/logout",
            json!({"name": "kit", "revoke": true}),
        )
        .await;
    assert_eq!(out["removed"], true, "{out}");
    let alias = kit.mtls_alias_requests();
    assert!(count(&alias, "POST", "/revoke") >= 1, "{alias:?}");
    assert_eq!(count(&alias, "POST", "/token"), 2, "{alias:?}");
    assert_eq!(kit.counters().mtls_client_auth_failures, 0);
    assert!(!kit.revoked_tokens().is_empty());
}

/// A preregistered client the server knows by its certificate's subject
/// (`tls_client_auth`), with no aliases published: the regular token endpoint, the
/// certificate on the connection, no secret; tokens are not bound when the server does not
/// say it binds them.
#[tokio::test]
async fn a_preregistered_client_authenticates_by_its_certificate_subject() {
    let ca = TestCa::new("Kit test CA").unwrap();
    let clients = TestCa::new("Corporate client CA").unwrap();
    let me = clients.client("alice").unwrap();
    let redirect = format!(
        "http://127.0.0.1/callback/{}",
        mcp_app_server_testkit::CALLBACK_ID_PLACEHOLDER
    );
    let kit = kit(
        &ca,
        Some(&clients),
        KitMtls {
            tls_client_auth: true,
            ..KitMtls::default()
        },
        KitConfig {
            preregistered: vec![PreregisteredClient::tls_client_auth(
                "corp-client",
                "CN=alice",
                &[&redirect],
            )],
            ..KitConfig::default()
        },
    )
    .await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.cert_pem());
    let extra = format!(
        "ca_certificates = \"{ca_file}\"\n{}\n[mcp_servers.kit.oauth]\nclient_id = \"corp-client\"\n",
        files.identity("alice", &me)
    );
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, &extra, false).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let exchange = kit.last_token_request().unwrap();
    assert_eq!(
        exchange.form.get("client_id").map(String::as_str),
        Some("corp-client")
    );
    assert!(!exchange.at_alias);
    assert_eq!(exchange.client_certificate_sha256, Some(me.sha256));
    assert!(kit.mtls_alias_requests().is_empty());
    assert!(kit.registered_clients().is_empty());
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(creds.client.token_endpoint_auth_method, "tls_client_auth");
    // Not bound: any frontend gets it, with no certificate files.
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert!(r.get("certificateBinding").is_none(), "{r}");
}

/// A server that refuses the certificate members of a registration gets a public
/// client's request, and the login completes; the certificate still goes on the
/// connection.
#[tokio::test]
async fn a_refused_certificate_registration_falls_back_to_a_public_client() {
    // The kit lists only `tls_client_auth`, and refuses any other certificate method.
    let Setup {
        me,
        kit,
        extra,
        files: _files,
        ..
    } = setup(
        "laptop",
        KitMtls {
            tls_client_auth: true,
            ..KitMtls::default()
        },
        KitConfig::default(),
    )
    .await;
    let extra = format!(
        "{extra}\n[mcp_servers.kit.oauth]\ntoken_endpoint_auth_method = \"self_signed_tls_client_auth\"\n"
    );
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, &extra, false).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    // Two registration requests: the certificate one, refused, then the public one.
    let registered = kit.registered_clients();
    assert_eq!(registered.len(), 2, "{registered:?}");
    assert_eq!(
        registered[0]["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    assert!(registered[0]["jwks"].is_object());
    assert_eq!(registered[1]["token_endpoint_auth_method"], "none");
    assert!(registered[1].get("jwks").is_none());
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(creds.client.token_endpoint_auth_method, "none");
    assert_eq!(
        kit.last_token_request().unwrap().client_certificate_sha256,
        Some(me.sha256)
    );
    // The public registration serves the next login: the refusal is not repeated.
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert_eq!(kit.registered_clients().len(), 2);
}

/// DPoP and a client certificate together: the proofs of the code exchange and the refresh
/// name the alias token endpoint they are sent to, and the tokens, bound to both, go only
/// to a frontend that declared both.
#[tokio::test]
async fn dpop_proofs_name_the_alias_and_doubly_bound_tokens_need_both_capabilities() {
    let Setup {
        me,
        kit,
        extra,
        files: _files,
        ..
    } = setup(
        "laptop",
        KitMtls {
            self_signed_tls_client_auth: true,
            aliases: true,
            bound_tokens: true,
            ..KitMtls::default()
        },
        KitConfig {
            dpop: true,
            ..KitConfig::default()
        },
    )
    .await;
    let extra = format!("{extra}\n[mcp_servers.kit.oauth]\ndpop = true\n");
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&server_config("kit", &kit, &extra)),
    );
    let (server, mut c) = harness::start(home.path());
    c.ok(
        "initialize",
        json!({"clientInfo": {"name": "both", "version": "1"},
               "capabilities": {"dpop": true, "clientCertificate": true}}),
    )
    .await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let exchange = kit.last_token_request().unwrap();
    assert!(exchange.at_alias && exchange.dpop_proof.is_some());
    assert_eq!(exchange.client_certificate_sha256, Some(me.sha256));

    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(r["tokenType"], "DPoP", "{r}");
    assert_eq!(
        r["certificateBinding"]["x5tS256"],
        URL_SAFE_NO_PAD.encode(me.sha256)
    );
    expire_stored(home.path(), "kit", &kit);
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(r["tokenType"], "DPoP", "{r}");
    let refresh = kit.last_token_request().unwrap();
    assert_eq!(
        refresh.form.get("grant_type").map(String::as_str),
        Some("refresh_token")
    );
    assert!(refresh.at_alias && refresh.dpop_proof.is_some());

    // Either capability alone is not enough.
    for capabilities in [json!({"dpop": true}), json!({"clientCertificate": true})] {
        let mut one = harness::connect(&server);
        one.ok(
            "initialize",
            json!({"clientInfo": {"name": "one", "version": "1"}, "capabilities": capabilities}),
        )
        .await;
        let e = one
            .err("mcpServer/oauth/token", json!({"name": "kit"}))
            .await;
        let want = if capabilities["dpop"] == true {
            "certificateRequired"
        } else {
            "dpopRequired"
        };
        assert_eq!(kind(&e), want, "{capabilities}: {e}");
    }
}

/// A machine client (`grant = "client_credentials"`) known by its certificate: no secret,
/// no key, only `token_endpoint_auth_method = "tls_client_auth"`; the grant and its renewal
/// at the aliases with the certificate, the tokens bound to it. Without a certificate the
/// configuration is refused, naming the key to set.
#[tokio::test]
async fn a_machine_client_authenticates_by_its_certificate_alone() {
    let ca = TestCa::new("Kit test CA").unwrap();
    let clients = TestCa::new("Fleet CA").unwrap();
    let robot = clients.client("robot").unwrap();
    let kit = kit(
        &ca,
        Some(&clients),
        KitMtls {
            tls_client_auth: true,
            aliases: true,
            bound_tokens: true,
            ..KitMtls::default()
        },
        KitConfig {
            client_credentials: true,
            dcr: false,
            preregistered: vec![PreregisteredClient::tls_client_auth(
                "machine",
                "CN=robot",
                &[],
            )],
            ..KitConfig::default()
        },
    )
    .await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.cert_pem());
    let oauth = "[mcp_servers.kit.oauth]\ngrant = \"client_credentials\"\nclient_id = \"machine\"\n\
                 token_endpoint_auth_method = \"tls_client_auth\"\n";
    let extra = format!(
        "ca_certificates = \"{ca_file}\"\n{}{oauth}",
        files.identity("robot", &robot)
    );
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, &extra, true).await;
    let answer = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(
        answer,
        json!({"flow": "direct", "grant": "clientCredentials"})
    );
    let done = c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], true, "{done}");
    let grant = kit.last_token_request().unwrap();
    assert_eq!(
        grant.form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(
        grant.form.get("client_id").map(String::as_str),
        Some("machine")
    );
    assert!(
        !grant.form.contains_key("client_secret") && !grant.form.contains_key("client_assertion")
    );
    assert!(!grant.authorization_header && grant.at_alias);
    assert_eq!(grant.client_certificate_sha256, Some(robot.sha256));
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(creds.client.token_endpoint_auth_method, "tls_client_auth");
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(
        r["certificateBinding"]["x5tS256"],
        URL_SAFE_NO_PAD.encode(robot.sha256)
    );
    let token = r["accessToken"].as_str().unwrap().to_string();
    assert_eq!(mcp_status(&kit, &ca, &token, Some(&robot)).await, 200);

    // Renewed by running the grant again, the same way.
    expire_stored(home.path(), "kit", &kit);
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_ne!(r["accessToken"], token.as_str());
    let renewal = kit.last_token_request().unwrap();
    assert!(renewal.at_alias && !renewal.authorization_header);
    assert_eq!(renewal.client_certificate_sha256, Some(robot.sha256));
    assert_eq!(kit.counters().mtls_client_auth_failures, 0);
    assert_eq!((kit.counters().authorize, kit.counters().register), (0, 0));

    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, oauth, true).await;
    let e = c.err("mcpServer/oauth/login", json!({"name": "kit"})).await;
    let text = e.to_string();
    assert!(
        text.contains("mcp_servers.kit.client_certificate") && text.contains("client_key"),
        "{text}"
    );
}

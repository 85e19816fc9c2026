//! Tokens bound to a client certificate (RFC 8705 §3, rule 42) as the rest of the daemon
//! meets them: a certificate changed after a login, `mcp-app-server connect` presenting
//! it to the MCP server, a gateway's other server without it, and the key handed to
//! frontends only when the user says so. The kit set-up is `mtls.rs`'s.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_app_server_testkit::{IssuedCert, KitConfig, KitMtls, TestCa};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::grants::stored;
use super::harness::{self, write_config};
use super::login::{file_store_config, login, server_config};
use super::mtls::{Files, Setup, daemon, initialize, kind, kit, setup};

/// Another certificate configured after a login: the tokens bound to the old one are not
/// handed out (a new login is asked for), and the next login registers the new one.
#[tokio::test]
async fn a_changed_certificate_asks_for_a_login_and_registers_again() {
    let ca = TestCa::new("Kit test CA").unwrap();
    let (old, new) = (
        TestCa::self_signed_client("old-laptop").unwrap(),
        TestCa::self_signed_client("new-laptop").unwrap(),
    );
    let kit = kit(
        &ca,
        None,
        KitMtls {
            self_signed_tls_client_auth: true,
            bound_tokens: true,
            ..KitMtls::default()
        },
        KitConfig::default(),
    )
    .await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.cert_pem());
    let home = tempfile::tempdir().unwrap();
    let with = |cert: &IssuedCert, name: &str| {
        format!(
            "ca_certificates = \"{ca_file}\"\n{}",
            files.identity(name, cert)
        )
    };
    let (_server, mut c) = daemon(home.path(), &kit, &with(&old, "old"), true).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");

    write_config(
        home.path(),
        &file_store_config(&server_config("kit", &kit, &with(&new, "new"))),
    );
    c.ok("config/mcpServer/reload", json!({})).await;
    let e = c.err("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(kind(&e), "reauthenticationRequired", "{e}");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("client_certificate"),
        "{e}"
    );

    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let registered = kit.registered_clients();
    assert_eq!(registered.len(), 2, "the new certificate is registered");
    let x5c = STANDARD
        .decode(registered[1]["jwks"]["keys"][0]["x5c"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(<[u8; 32]>::from(Sha256::digest(&x5c)), new.sha256);
    assert_eq!(
        kit.last_token_request().unwrap().client_certificate_sha256,
        Some(new.sha256)
    );
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    assert_eq!(
        r["certificateBinding"]["x5tS256"],
        URL_SAFE_NO_PAD.encode(new.sha256)
    );
    assert_eq!(kit.counters().mtls_client_auth_failures, 0);
}

/// `mcp-app-server connect` reaches an MCP server behind mutual TLS with the server's
/// configured certificate and authorities, and its tokens bound to that certificate work
/// on its own MCP requests.
#[tokio::test]
async fn connect_presents_the_certificate_to_the_mcp_server() {
    let ca = TestCa::new("Kit test CA").unwrap();
    let clients = TestCa::new("Corporate client CA").unwrap();
    let me = clients.client("alice").unwrap();
    let kit = kit(
        &ca,
        Some(&clients),
        KitMtls {
            self_signed_tls_client_auth: true,
            bound_tokens: true,
            aliases: true,
            ..KitMtls::default()
        },
        KitConfig::default(),
    )
    .await;
    let files = Files::new();
    let ca_file = files.write("ca.pem", &ca.cert_pem());
    let extra = format!(
        "ca_certificates = \"{ca_file}\"\n{}",
        files.identity("alice", &me)
    );
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&server_config("kit", &kit, &extra)),
    );
    let mcp = kit.mcp_url();
    let out = super::cli::run(
        home.path(),
        &[
            "connect",
            "--browser-mode=http-get",
            "--call",
            "test-tool",
            &mcp,
        ],
    )
    .await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Tools (1): test-tool"), "{stdout}");
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(
        creds.certificate_x5t,
        Some(URL_SAFE_NO_PAD.encode(me.sha256))
    );
    assert_eq!(
        kit.certificate_binding(&creds.access_token),
        Some(me.sha256)
    );
    assert_eq!(kit.counters().bound_token_refusals, 0);
}

/// Two servers behind one gateway, one with a client certificate: its login, with tokens
/// bound to that certificate, is not shared with the other, which could not use them; the
/// other logs in through the browser with a client of its own.
#[tokio::test]
async fn tokens_bound_to_a_certificate_are_not_shared_with_a_server_without_it() {
    let Setup {
        kit, files, extra, ..
    } = setup(
        "laptop",
        KitMtls {
            self_signed_tls_client_auth: true,
            bound_tokens: true,
            ..KitMtls::default()
        },
        KitConfig {
            prm_resource_pathless: true,
            ..KitConfig::default()
        },
    )
    .await;
    let ca_file = files.path("ca.pem");
    let body = format!(
        "mcp_oauth_preregister = false\n\
         [mcp_servers.a]\nurl = \"{a}\"\n{extra}\n\
         [mcp_servers.b]\nurl = \"{a}?tenant=b\"\nca_certificates = \"{ca_file}\"\n",
        a = kit.mcp_url(),
    );
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), &file_store_config(&body));
    let (_server, mut c) = harness::start(home.path());
    initialize(&mut c, true).await;
    let out = login(&mut c, "a", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let out = login(&mut c, "b", json!({})).await;
    assert_eq!(out["start"]["flow"], "browser", "{out}");
    assert_eq!(out["completed"]["success"], true, "{out}");
    let n = kit.counters();
    assert_eq!((n.authorize, n.register, n.token_code), (2, 2, 2), "{n:?}");
    let r = c.ok("mcpServer/oauth/token", json!({"name": "b"})).await;
    assert!(r.get("certificateBinding").is_none(), "{r}");
    let r = c.ok("mcpServer/oauth/token", json!({"name": "a"})).await;
    assert!(r["certificateBinding"].is_object(), "{r}");
}

/// `client_key_to_frontends = true`: the answer for a bound token carries the certificate
/// and key themselves, for a frontend that cannot read the files; without a certificate the
/// key is a load error.
#[tokio::test]
async fn the_key_goes_to_frontends_only_when_the_user_says_so() {
    let Setup {
        me,
        kit,
        extra,
        files: _files,
        ..
    } = setup(
        "sandboxed",
        KitMtls {
            self_signed_tls_client_auth: true,
            bound_tokens: true,
            ..KitMtls::default()
        },
        KitConfig::default(),
    )
    .await;
    let extra = format!("{extra}client_key_to_frontends = true\n");
    let home = tempfile::tempdir().unwrap();
    let (_server, mut c) = daemon(home.path(), &kit, &extra, true).await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let r = c.ok("mcpServer/oauth/token", json!({"name": "kit"})).await;
    let binding = &r["certificateBinding"];
    assert_eq!(binding["keyPem"], me.key_pem.as_str());
    assert_eq!(binding["certificatePem"], me.chain_pem.as_str());
    // Still only for a frontend that presents the certificate.
    let mut plain = harness::connect(&_server);
    initialize(&mut plain, false).await;
    let e = plain
        .err("mcpServer/oauth/token", json!({"name": "kit"}))
        .await;
    assert_eq!(kind(&e), "certificateRequired", "{e}");
    assert!(!e.to_string().contains("PRIVATE KEY"), "{e}");

    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&server_config(
            "kit",
            &kit,
            "client_key_to_frontends = true\n",
        )),
    );
    let (_server, mut c) = harness::start(home.path());
    initialize(&mut c, true).await;
    let e = c.err("mcpServer/oauth/token", json!({"name": "kit"})).await;
    let text = e.to_string();
    assert!(
        text.contains("client_key_to_frontends") && text.contains("client_certificate"),
        "{text}"
    );
}

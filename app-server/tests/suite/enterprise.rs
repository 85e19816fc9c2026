//! Enterprise-managed authorization against the test kit: an identity provider (OpenID
//! Connect sign-in, RFC 8693 exchange for ID-JAGs) and the kit's authorization server
//! accepting those ID-JAGs with the JWT bearer grant.

use mcp_app_server::credentials::{CredentialKey, CredentialStore, FileStore};
use mcp_app_server::home::Home;
use mcp_app_server_testkit::{Idp, Kit, KitConfig, PreregisteredClient, browser_visit};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::file_store_config;

const IDP_CLIENT: &str = "ide";
const AS_CLIENT: &str = "chat-client";

struct Setup {
    idp: Idp,
    kit: Kit,
    home: tempfile::TempDir,
    _server: mcp_app_server::rpc::AppServer,
    c: MemClient,
}

/// An identity provider, a kit trusting it with the public client `chat-client`, and a
/// daemon with two enterprise servers (`chat` and `docs`) on the kit's MCP server.
async fn setup() -> Setup {
    let idp = Idp::start(IDP_CLIENT, AS_CLIENT).await.unwrap();
    let kit = Kit::start(KitConfig {
        trusted_idp: Some(idp.trust()),
        preregistered: vec![PreregisteredClient::public(AS_CLIENT, &[])],
        ..KitConfig::default()
    })
    .await
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let server = |name: &str| {
        format!(
            "[mcp_servers.{name}]\nurl = \"{}\"\nscopes = [\"mcp:read\"]\n[mcp_servers.{name}.oauth]\ngrant = \"enterprise\"\nclient_id = \"{AS_CLIENT}\"\n",
            kit.mcp_url()
        )
    };
    write_config(
        home.path(),
        &file_store_config(&format!(
            "[enterprise_idp]\nissuer = \"{}\"\nclient_id = \"{IDP_CLIENT}\"\n\n{}\n{}",
            idp.issuer(),
            server("chat"),
            server("docs")
        )),
    );
    let (server, mut c) = harness::start(home.path());
    c.initialize().await;
    Setup {
        idp,
        kit,
        home,
        _server: server,
        c,
    }
}

fn kind(e: &Value) -> &str {
    e["data"]["kind"].as_str().unwrap_or_default()
}

fn store(home: &std::path::Path) -> FileStore {
    FileStore::open(&Home::at(home)).unwrap()
}

fn key(name: &str, kit: &Kit) -> CredentialKey {
    CredentialKey::new(name, url::Url::parse(&kit.mcp_url()).unwrap().to_string())
}

async fn token(c: &mut MemClient, name: &str, min_validity: u32) -> Value {
    c.request(
        "mcpServer/oauth/token",
        json!({"name": name, "minValiditySecs": min_validity}),
    )
    .await
}

/// The first login goes through the identity provider's sign-in; then `chat` is logged in.
async fn first_login(s: &mut Setup) {
    let r =
        s.c.ok("mcpServer/oauth/login", json!({"name": "chat"}))
            .await;
    assert_eq!(r["grant"], "enterpriseManaged", "{r}");
    let url = r["authorizationUrl"].as_str().unwrap().to_string();
    assert!(url.starts_with(&s.idp.issuer()), "{url}");
    let page = browser_visit(&url).await.unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let done = s.c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done, json!({"name": "chat", "success": true}), "{done}");
}

#[tokio::test]
async fn one_sign_in_then_every_enterprise_server_without_a_browser() {
    let mut s = setup().await;
    first_login(&mut s).await;
    let exchange = s.idp.last_exchange().unwrap();
    assert_eq!(exchange["audience"], s.kit.issuer());
    assert_eq!(exchange["resource"], s.kit.resource());
    assert_eq!(exchange["scope"], "mcp:read");

    // The second server: no browser, the answer comes with the tokens stored.
    let r =
        s.c.ok("mcpServer/oauth/login", json!({"name": "docs"}))
            .await;
    assert_eq!(r, json!({"flow": "direct", "grant": "enterpriseManaged"}));
    let done = s.c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done, json!({"name": "docs", "success": true}));
    assert_eq!(
        s.idp.counters().authorize,
        1,
        "the identity provider opened once"
    );
    assert_eq!(s.idp.counters().code_tokens, 1);
    assert_eq!(s.idp.counters().exchanges, 2);

    // The tokens are the kit's and work at the MCP server.
    let t = token(&mut s.c, "docs", 60).await;
    let access = t["result"]["accessToken"].as_str().unwrap().to_string();
    let answer = reqwest::Client::new()
        .post(s.kit.mcp_url())
        .bearer_auth(&access)
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    // The ID token is stored as a secret entry, never shown in Debug output.
    let stored = store(s.home.path())
        .load(&CredentialKey::new("@enterprise-idp", s.idp.issuer()))
        .unwrap()
        .expect("identity provider session");
    assert_eq!(stored.token_type, "id_token");
    assert!(!format!("{stored:?}").contains(&stored.access_token));
}

#[tokio::test]
async fn an_expired_token_is_renewed_by_a_new_exchange() {
    let mut s = setup().await;
    first_login(&mut s).await;
    let before = s.idp.counters().exchanges;
    let old = store(s.home.path())
        .load(&key("chat", &s.kit))
        .unwrap()
        .unwrap();
    // Asking for more validity than the token has renews it, with the stored ID token.
    let t = token(&mut s.c, "chat", 7200).await;
    let fresh = t["result"]["accessToken"].as_str().unwrap();
    assert_ne!(fresh, old.access_token);
    assert_eq!(s.idp.counters().exchanges, before + 1);
    assert_eq!(s.idp.counters().authorize, 1, "no new sign-in");
    assert!(old.refresh_token.is_none());
}

#[tokio::test]
async fn a_refused_exchange_is_a_typed_error_and_loses_nothing_stored() {
    let mut s = setup().await;
    first_login(&mut s).await;
    let session_key = CredentialKey::new("@enterprise-idp", s.idp.issuer());
    let session = store(s.home.path()).load(&session_key).unwrap().unwrap();
    s.idp.refuse_exchanges(true);

    // A login of the other server: the refusal is the request's error and its completion.
    let e =
        s.c.err("mcpServer/oauth/login", json!({"name": "docs"}))
            .await;
    assert_eq!(kind(&e), "tokenExchangeFailed", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("access_denied"),
        "{e}"
    );
    let done = s.c.notification("mcpServer/oauthLogin/completed").await;
    assert_eq!(done["success"], false, "{done}");
    assert_eq!(done["errorKind"], "tokenExchangeFailed", "{done}");

    // Renewal of the logged-in server: refused, flagged, the session kept.
    let t = token(&mut s.c, "chat", 7200).await;
    assert_eq!(kind(&t["error"]), "reauthenticationRequired", "{t}");
    assert_eq!(s.idp.counters().refused_exchanges, 2);
    assert_eq!(
        store(s.home.path()).load(&session_key).unwrap(),
        Some(session),
        "the identity provider session is untouched"
    );
    assert!(
        store(s.home.path())
            .load(&key("docs", &s.kit))
            .unwrap()
            .is_none()
    );
    let chat = store(s.home.path())
        .load(&key("chat", &s.kit))
        .unwrap()
        .unwrap();
    assert!(chat.reauthentication_required);

    // Allowed again: a new login needs no browser.
    s.idp.refuse_exchanges(false);
    let r =
        s.c.ok("mcpServer/oauth/login", json!({"name": "chat"}))
            .await;
    assert_eq!(r, json!({"flow": "direct", "grant": "enterpriseManaged"}));
    assert_eq!(s.idp.counters().authorize, 1);
}

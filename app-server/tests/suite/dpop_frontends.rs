//! Rule 49 with frontends of both kinds against one DPoP-capable server, sharing a store: a
//! frontend that cannot send proofs is never handed a DPoP-bound token (it gets
//! `dpopRequired` naming `mcpServer/oauth/dpopProof`), logins bind tokens only when whoever
//! starts them can send proofs, the resource requires DPoP, or the config asks for it, and
//! `initialize` says which protocol version the daemon speaks.

use mcp_app_server_protocol::PROTOCOL_VERSION;
use mcp_app_server_testkit::{Kit, KitConfig};
use serde_json::{Value, json};

use super::harness::{self, MemClient, write_config};
use super::login::{file_store_config, login, server_config};
use super::tokens::{FORCE_REFRESH, kind, stored};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

fn dpop_kit() -> KitConfig {
    KitConfig {
        dpop: true,
        ..KitConfig::default()
    }
}

fn home_for(kit: &Kit, extra: &str) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    write_config(
        home.path(),
        &file_store_config(&server_config("kit", kit, extra)),
    );
    home
}

/// POSTs `BODY` to the kit's MCP endpoint; the HTTP status.
async fn mcp_status(kit: &Kit, scheme: &str, token: &str, proof: Option<&str>) -> u16 {
    let mut request = reqwest::Client::new()
        .post(kit.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("{scheme} {token}"))
        .body(BODY);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.send().await.unwrap().status().as_u16()
}

/// What a frontend sends with its MCP request: the Bearer token, or a proof and the bound
/// token from `mcpServer/oauth/dpopProof`.
async fn use_token(c: &mut MemClient, kit: &Kit, t: &Value) -> u16 {
    if t["tokenType"] == "DPoP" {
        return prove_and_post(c, kit).await;
    }
    mcp_status(kit, "Bearer", t["accessToken"].as_str().unwrap(), None).await
}

/// An MCP request with a proof and the bound token from `mcpServer/oauth/dpopProof`.
async fn prove_and_post(c: &mut MemClient, kit: &Kit) -> u16 {
    let p = c
        .ok(
            "mcpServer/oauth/dpopProof",
            json!({"name": "kit", "method": "POST", "url": kit.mcp_url(), "body": BODY}),
        )
        .await;
    let proof = p["proof"].as_str().unwrap();
    mcp_status(kit, "DPoP", p["accessToken"].as_str().unwrap(), Some(proof)).await
}

/// The answer of `mcpServer/oauth/token`, which must succeed.
async fn token(c: &mut MemClient, name: &str) -> Value {
    c.ok("mcpServer/oauth/token", json!({"name": name})).await
}

fn assert_dpop_required(e: &Value) {
    assert_eq!(kind(e), "dpopRequired", "{e}");
    assert_eq!(e["code"], -32035, "{e}");
    assert_eq!(e["data"]["useMethod"], "mcpServer/oauth/dpopProof", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(
        message.contains("capabilities.dpop") && message.contains("log"),
        "{message}"
    );
    // The refusal hands out nothing of the token.
    assert!(e.get("result").is_none() && e["data"].get("accessToken").is_none());
}

#[tokio::test]
async fn initialize_says_the_protocol_version() {
    let home = tempfile::tempdir().unwrap();
    write_config(home.path(), "");
    let (_server, mut c) = harness::start(home.path());
    let init = c.initialize().await;
    assert_eq!(init["protocolVersion"], PROTOCOL_VERSION, "{init}");
    let package: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/package.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(init["protocolVersion"], package["version"]);
}

#[tokio::test]
async fn frontends_with_and_without_dpop_take_turns_on_one_store() {
    let kit = Kit::start(dpop_kit()).await.unwrap();
    let home = home_for(&kit, "");

    // A frontend written as the README shows: no capability. Its login gets a Bearer
    // token although the authorization server offers DPoP, and the token works.
    let (server, mut bearer) = harness::start(home.path());
    bearer.initialize().await;
    let out = login(&mut bearer, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(kit.last_token_request().unwrap().dpop_proof.is_none());
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_none());
    let t = token(&mut bearer, "kit").await;
    assert_eq!(t["tokenType"], "Bearer", "{t}");
    assert_eq!(kit.dpop_binding(t["accessToken"].as_str().unwrap()), None);
    assert_eq!(use_token(&mut bearer, &kit, &t).await, 200);

    // A frontend that sends proofs, on the same daemon: the Bearer token is of use to it too.
    let mut prover = harness::connect(&server);
    prover.initialize_dpop().await;
    let same = token(&mut prover, "kit").await;
    assert_eq!(same["accessToken"], t["accessToken"]);
    assert_eq!(use_token(&mut prover, &kit, &same).await, 200);

    // Its own login binds the token.
    let out = login(&mut prover, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(kit.last_token_request().unwrap().dpop_proof.is_some());
    let bound = token(&mut prover, "kit").await;
    assert_eq!(bound["tokenType"], "DPoP", "{bound}");
    assert!(
        kit.dpop_binding(bound["accessToken"].as_str().unwrap())
            .is_some()
    );
    assert_eq!(use_token(&mut prover, &kit, &bound).await, 200);

    // The first frontend is refused the bound token, by `token` and by a `challenge` that
    // refreshes it, with a typed error naming the method to use.
    let e = bearer
        .err("mcpServer/oauth/token", json!({"name": "kit"}))
        .await;
    assert_dpop_required(&e);
    let e = bearer
        .err(
            "mcpServer/oauth/token",
            json!({"name": "kit", "minValiditySecs": FORCE_REFRESH}),
        )
        .await;
    assert_dpop_required(&e);
    let e = bearer
        .err(
            "mcpServer/oauth/challenge",
            json!({"name": "kit", "status": 401,
                   "wwwAuthenticate": "Bearer error=\"invalid_token\""}),
        )
        .await;
    assert_dpop_required(&e);
    drop((bearer, prover));
    server.shutdown().await;

    // Another daemon on the same store, a frontend without the capability: refused too,
    // until it logs in again, which gets it a Bearer token in place of the bound one.
    let (server, mut later) = harness::start(home.path());
    later.initialize().await;
    let e = later
        .err("mcpServer/oauth/token", json!({"name": "kit"}))
        .await;
    assert_dpop_required(&e);
    let out = login(&mut later, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    let t = token(&mut later, "kit").await;
    assert_eq!(t["tokenType"], "Bearer", "{t}");
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_none());
    assert_eq!(use_token(&mut later, &kit, &t).await, 200);

    // And the frontend that sends proofs uses that Bearer token as it is.
    let mut prover = harness::connect(&server);
    prover.initialize_dpop().await;
    let t = token(&mut prover, "kit").await;
    assert_eq!(t["tokenType"], "Bearer", "{t}");
    assert_eq!(use_token(&mut prover, &kit, &t).await, 200);
}

#[tokio::test]
async fn a_resource_that_requires_dpop_gets_bound_tokens_from_any_login() {
    let kit = Kit::start(KitConfig {
        dpop_required: true,
        ..dpop_kit()
    })
    .await
    .unwrap();
    let home = home_for(&kit, "");
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    // Bound although the frontend did not declare the capability: a Bearer token would be
    // of use to no one here.
    assert!(kit.last_token_request().unwrap().dpop_proof.is_some());
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_some());
    assert_dpop_required(&c.err("mcpServer/oauth/token", json!({"name": "kit"})).await);
    // What the error names works.
    assert_eq!(prove_and_post(&mut c, &kit).await, 200);
}

#[tokio::test]
async fn the_config_decides_over_the_frontend() {
    let kit = Kit::start(dpop_kit()).await.unwrap();

    // `dpop = true`: bound for a frontend without the capability.
    let home = home_for(&kit, "[mcp_servers.kit.oauth]\ndpop = true\n");
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_some());
    assert_dpop_required(&c.err("mcpServer/oauth/token", json!({"name": "kit"})).await);

    // `dpop = false`: Bearer for a frontend with it.
    let home = home_for(&kit, "[mcp_servers.kit.oauth]\ndpop = false\n");
    let (_server, mut c) = harness::start(home.path());
    c.initialize_dpop().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_none());
    let t = token(&mut c, "kit").await;
    assert_eq!(t["tokenType"], "Bearer", "{t}");
}

#[tokio::test]
async fn the_login_answer_is_told_apart_by_flow() {
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let home = home_for(&kit, "");
    let (_server, mut c) = harness::start(home.path());
    c.initialize().await;
    let r = c.ok("mcpServer/oauth/login", json!({"name": "kit"})).await;
    assert_eq!(r["flow"], "browser", "{r}");
    assert_eq!(r["grant"], "authorizationCode", "{r}");
    assert!(r["authorizationUrl"].as_str().unwrap().starts_with("http"));
    assert!(
        r["redirectUri"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    c.ok("mcpServer/oauth/cancel", json!({"name": "kit"})).await;
}

//! DPoP (RFC 9449) through the daemon, against the test kit's servers in DPoP mode: the
//! login binds the tokens to a key the daemon keeps, refresh proves the same key, the
//! authorization server's nonce costs one retry, `mcpServer/oauth/dpopProof` proofs verify
//! with the stored key and work at the MCP endpoint, a resource server nonce goes through
//! `mcpServer/oauth/challenge`, and servers without DPoP stay Bearer.

use mcp_app_server::decode_key;
use mcp_app_server_testkit::{
    Kit, KitConfig, access_token_hash, content_digest, jwk_thumbprint, verify_proof,
};
use serde_json::{Value, json};

use super::harness::{self, MemClient};
use super::login::{daemon_for, login};
use super::tokens::{FORCE_REFRESH, kind, stored, token};

const BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

fn dpop_kit() -> KitConfig {
    KitConfig {
        dpop: true,
        ..KitConfig::default()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn logged_in(
    kit: &Kit,
    extra: &str,
) -> (tempfile::TempDir, mcp_app_server::rpc::AppServer, MemClient) {
    let (home, server, c) = daemon_for(kit, "kit", extra).await;
    // A second connection, of a frontend that sends proofs: its logins bind tokens.
    drop(c);
    let mut c = harness::connect(&server);
    c.initialize_dpop().await;
    let out = login(&mut c, "kit", json!({})).await;
    assert_eq!(out["completed"]["success"], true, "{out}");
    (home, server, c)
}

async fn proof_for(c: &mut MemClient, kit: &Kit, extra: Value) -> Value {
    let mut params = json!({"name": "kit", "method": "POST", "url": kit.mcp_url(), "body": BODY});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().cloned().unwrap_or_default());
    c.ok("mcpServer/oauth/dpopProof", params).await
}

/// POSTs `BODY` to the kit's MCP endpoint as a frontend would with a proof.
async fn mcp_post(kit: &Kit, scheme: &str, token: &str, proof: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(kit.mcp_url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", format!("{scheme} {token}"))
        .body(BODY);
    if let Some(proof) = proof {
        request = request.header("dpop", proof);
    }
    request.send().await.unwrap()
}

fn header_jwk(proof: &str) -> Value {
    use base64::Engine;
    let h = proof.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(h)
        .unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["jwk"].clone()
}

#[tokio::test]
async fn login_binds_the_token_and_proofs_verify_with_the_stored_key() {
    let kit = Kit::start(dpop_kit()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;

    let t = token(&mut c, "kit", None).await;
    assert_eq!(t["result"]["tokenType"], "DPoP", "{t}");
    let access = t["result"]["accessToken"].as_str().unwrap().to_string();

    let creds = stored(home.path(), "kit", &kit).unwrap();
    let key = decode_key(creds.dpop_key.as_deref().expect("the key is stored")).unwrap();
    let jkt = key.thumbprint().unwrap();
    assert_eq!(
        kit.dpop_binding(&access),
        Some(jkt.clone()),
        "cnf.jkt is the stored key's"
    );
    assert!(!format!("{creds:?}").contains(creds.dpop_key.as_deref().unwrap()));
    let code_request = kit.last_token_request().unwrap();
    assert!(
        code_request.dpop_proof.is_some(),
        "the code exchange carried a proof"
    );

    let url_with_query = format!("{}?tenant=1#frag", kit.mcp_url());
    let p = proof_for(&mut c, &kit, json!({"url": url_with_query})).await;
    assert_eq!(p["tokenType"], "DPoP");
    assert_eq!(p["accessToken"], access.as_str());
    let proof = p["proof"].as_str().unwrap();
    let verified = verify_proof(proof, "POST", &kit.mcp_url(), now()).expect("a valid proof");
    assert_eq!(
        header_jwk(proof),
        key.public_jwk().unwrap(),
        "signed by the stored key"
    );
    assert_eq!(verified.jkt, jkt);
    assert_eq!(jwk_thumbprint(&header_jwk(proof)), Some(jkt));
    assert_eq!(
        verified.claims["htu"],
        kit.mcp_url(),
        "htu has no query or fragment"
    );
    assert_eq!(verified.claims["ath"], access_token_hash(&access));
    assert_eq!(
        verified.claims["content_digest"],
        content_digest(BODY.as_bytes())
    );

    // The frontend's request with it passes the MCP endpoint's DPoP checks.
    let r = mcp_post(&kit, "DPoP", &access, Some(proof)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(kit.mcp_dpop_requests(), 1);
    // The same proof again is a replay; a bound token as Bearer is refused.
    assert_eq!(
        mcp_post(&kit, "DPoP", &access, Some(proof)).await.status(),
        401
    );
    assert_eq!(mcp_post(&kit, "Bearer", &access, None).await.status(), 401);
    // Each call makes a new proof.
    let again = proof_for(&mut c, &kit, json!({})).await;
    assert_ne!(again["proof"], p["proof"]);
    let r = mcp_post(&kit, "DPoP", &access, again["proof"].as_str()).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refresh_proves_the_same_key_and_the_new_token_stays_bound() {
    let kit = Kit::start(dpop_kit()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    let jkt = decode_key(before.dpop_key.as_deref().unwrap())
        .unwrap()
        .thumbprint()
        .unwrap();

    let t = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert_eq!(t["result"]["tokenType"], "DPoP", "{t}");
    let access = t["result"]["accessToken"].as_str().unwrap();
    assert_ne!(access, before.access_token, "refreshed");
    assert_eq!(kit.counters().token_refresh, 1);
    let refresh = kit.last_token_request().unwrap();
    assert_eq!(refresh.form["grant_type"], "refresh_token");
    let proof = refresh.dpop_proof.expect("the refresh carried a proof");
    let token_url = format!("{}/token", kit.issuer());
    let verified = verify_proof(&proof, "POST", &token_url, now()).unwrap();
    assert_eq!(verified.jkt, jkt, "the same key as the login");
    assert!(
        verified.claims.get("ath").is_none() && verified.claims.get("content_digest").is_none()
    );
    assert_eq!(kit.dpop_binding(access), Some(jkt));
    let after = stored(home.path(), "kit", &kit).unwrap();
    assert_eq!(
        after.dpop_key, before.dpop_key,
        "the key is kept across refreshes"
    );
}

#[tokio::test]
async fn the_authorization_server_nonce_costs_one_retry_and_is_remembered() {
    let kit = Kit::start(KitConfig {
        dpop_as_nonce: true,
        ..dpop_kit()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = logged_in(&kit, "").await;
    assert_eq!(
        kit.counters().token_code,
        2,
        "one refusal, one retry with the nonce"
    );
    let t = token(&mut c, "kit", None).await;
    assert_eq!(t["result"]["tokenType"], "DPoP");

    // The nonce is remembered: the refresh needs no second try.
    let t = token(&mut c, "kit", Some(FORCE_REFRESH)).await;
    assert_eq!(t["result"]["tokenType"], "DPoP", "{t}");
    assert_eq!(kit.counters().token_refresh, 1);
}

#[tokio::test]
async fn a_resource_server_nonce_reaches_the_daemon_through_challenge() {
    let kit = Kit::start(KitConfig {
        dpop_rs_nonce: true,
        ..dpop_kit()
    })
    .await
    .unwrap();
    let (_home, _server, mut c) = logged_in(&kit, "").await;
    let p = proof_for(&mut c, &kit, json!({})).await;
    let access = p["accessToken"].as_str().unwrap().to_string();
    let refused = mcp_post(&kit, "DPoP", &access, p["proof"].as_str()).await;
    assert_eq!(refused.status(), 401);
    let nonce = refused.headers()["dpop-nonce"]
        .to_str()
        .unwrap()
        .to_string();
    let www = refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.contains("use_dpop_nonce"), "{www}");

    // Without the nonce the daemon cannot answer: a bad param, named.
    let e = c
        .err(
            "mcpServer/oauth/challenge",
            json!({"name": "kit", "status": 401, "wwwAuthenticate": www, "method": "POST", "url": kit.mcp_url()}),
        )
        .await;
    assert_eq!(e["code"], -32602, "{e}");
    assert!(e["message"].as_str().unwrap().contains("dpopNonce"), "{e}");

    let answer = c
        .ok(
            "mcpServer/oauth/challenge",
            json!({"name": "kit", "status": 401, "wwwAuthenticate": www, "dpopNonce": nonce,
                   "method": "POST", "url": kit.mcp_url(), "body": BODY}),
        )
        .await;
    assert_eq!(answer["action"], "dpopProof", "{answer}");
    let r = mcp_post(&kit, "DPoP", &access, answer["proof"].as_str()).await;
    assert_eq!(r.status(), 200);
    // Later proofs carry the remembered nonce without being told.
    let p = proof_for(&mut c, &kit, json!({})).await;
    let r = mcp_post(&kit, "DPoP", &access, p["proof"].as_str()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        kit.counters().token_refresh,
        0,
        "a nonce challenge is no refresh"
    );
}

#[tokio::test]
async fn bad_dpop_proof_params_are_invalid_params_and_change_nothing() {
    let kit = Kit::start(dpop_kit()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let before = stored(home.path(), "kit", &kit).unwrap();
    let url = kit.mcp_url();
    let cases = [
        (json!({"name": "kit", "method": "", "url": url}), "method"),
        (
            json!({"name": "kit", "method": "PO ST", "url": url}),
            "method",
        ),
        (
            json!({"name": "kit", "method": "POST", "url": "https://evil.example/mcp"}),
            "url",
        ),
        (
            json!({"name": "kit", "method": "POST", "url": "/mcp"}),
            "url",
        ),
        (
            json!({"name": "kit", "method": "POST", "url": url, "nonce": ""}),
            "nonce",
        ),
        (json!({"name": "kit", "method": "POST"}), "url"),
        (
            json!({"name": "kit", "method": "POST", "url": url, "extra": 1}),
            "extra",
        ),
        (json!({"name": "kit", "method": 5, "url": url}), "method"),
    ];
    for (params, field) in cases {
        let e = c.err("mcpServer/oauth/dpopProof", params.clone()).await;
        assert_eq!(e["code"], -32602, "{params}: {e}");
        assert!(
            e["message"].as_str().unwrap().contains(field),
            "{params}: {e}"
        );
    }
    let e = c
        .err(
            "mcpServer/oauth/dpopProof",
            json!({"name": "nope", "method": "POST", "url": url}),
        )
        .await;
    assert_eq!(kind(&e), "serverNotFound");
    assert_eq!(stored(home.path(), "kit", &kit).unwrap(), before);
    // Still answering.
    proof_for(&mut c, &kit, json!({})).await;
}

#[tokio::test]
async fn servers_without_dpop_stay_bearer() {
    // The authorization server does not offer DPoP.
    let kit = Kit::start(KitConfig::default()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    let t = token(&mut c, "kit", None).await;
    assert_eq!(t["result"]["tokenType"], "Bearer");
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_none());
    assert!(kit.token_requests().iter().all(|r| r.dpop_proof.is_none()));
    let e = c
        .err(
            "mcpServer/oauth/dpopProof",
            json!({"name": "kit", "method": "POST", "url": kit.mcp_url()}),
        )
        .await;
    assert_eq!(kind(&e), "notDpopBound", "{e}");

    // It does, but the config turns DPoP off.
    let kit = Kit::start(dpop_kit()).await.unwrap();
    let (home, _server, mut c) = logged_in(&kit, "[mcp_servers.kit.oauth]\ndpop = false\n").await;
    let t = token(&mut c, "kit", None).await;
    assert_eq!(t["result"]["tokenType"], "Bearer");
    assert!(stored(home.path(), "kit", &kit).unwrap().dpop_key.is_none());
    assert!(kit.token_requests().iter().all(|r| r.dpop_proof.is_none()));
    let access = t["result"]["accessToken"].as_str().unwrap();
    assert_eq!(mcp_post(&kit, "Bearer", access, None).await.status(), 200);
}

#[tokio::test]
async fn an_unbound_answer_to_a_proof_is_used_as_a_bearer_token() {
    let kit = Kit::start(KitConfig {
        dpop_unbound_tokens: true,
        ..dpop_kit()
    })
    .await
    .unwrap();
    let (home, _server, mut c) = logged_in(&kit, "").await;
    assert!(kit.last_token_request().unwrap().dpop_proof.is_some());
    let t = token(&mut c, "kit", None).await;
    assert_eq!(t["result"]["tokenType"], "Bearer", "{t}");
    let access = t["result"]["accessToken"].as_str().unwrap();
    assert_eq!(kit.dpop_binding(access), None);
    assert_eq!(mcp_post(&kit, "Bearer", access, None).await.status(), 200);
    let creds = stored(home.path(), "kit", &kit).unwrap();
    assert!(!creds.is_dpop_bound());
    let e = c
        .err(
            "mcpServer/oauth/dpopProof",
            json!({"name": "kit", "method": "POST", "url": kit.mcp_url()}),
        )
        .await;
    assert_eq!(kind(&e), "notDpopBound", "{e}");
}

#[tokio::test]
async fn the_key_survives_a_daemon_restart() {
    let kit = Kit::start(dpop_kit()).await.unwrap();
    let (home, server, mut c) = logged_in(&kit, "").await;
    let first = proof_for(&mut c, &kit, json!({})).await;
    let jkt = jwk_thumbprint(&header_jwk(first["proof"].as_str().unwrap())).unwrap();
    drop(c);
    server.shutdown().await;

    let (_server, mut c) = harness::start(home.path());
    c.initialize_dpop().await;
    let p = proof_for(&mut c, &kit, json!({})).await;
    let proof = p["proof"].as_str().unwrap();
    assert_eq!(jwk_thumbprint(&header_jwk(proof)), Some(jkt));
    let r = mcp_post(
        &kit,
        "DPoP",
        p["accessToken"].as_str().unwrap(),
        Some(proof),
    )
    .await;
    assert_eq!(r.status(), 200);
}

//! Helpers that drive the kit by hand, as an OAuth client would.

use std::collections::BTreeMap;

use mcp_app_server_testkit::{Kit, KitConfig, authorize_redirect_location, pkce_challenge};
use serde_json::{Value, json};
use url::Url;

/// Never visited, so nothing needs to listen there.
pub const REDIRECT: &str = "http://127.0.0.1:45678/callback/abc";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const STATE: &str = "state-123";

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only(Vec::new())
        .build()
        .expect("client")
}

pub async fn start(config: KitConfig) -> Kit {
    Kit::start(config).await.expect("kit starts")
}

pub async fn get_json(url: &str) -> (u16, Value) {
    let response = http().get(url).send().await.expect("GET");
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// DCR of a public client; returns its client id.
pub async fn register_public(kit: &Kit, redirect_uri: &str) -> String {
    let response = http()
        .post(format!("{}/register", kit.issuer()))
        .json(&json!({
            "client_name": "kit test",
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.expect("json");
    body["client_id"].as_str().expect("client_id").to_owned()
}

/// An authorization URL with sane defaults; `overrides` replace or add parameters, an
/// empty value removes one.
pub fn authorize_url(
    kit: &Kit,
    client_id: &str,
    redirect_uri: &str,
    overrides: &[(&str, &str)],
) -> String {
    let challenge = pkce_challenge(VERIFIER);
    let mcp_url = kit.mcp_url();
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
        ("state", STATE),
        ("resource", &mcp_url),
        ("scope", "mcp:read offline_access"),
    ];
    for (key, value) in overrides {
        params.retain(|(k, _)| k != key);
        if !value.is_empty() {
            params.push((key, value));
        }
    }
    let mut url = Url::parse(&format!("{}/authorize", kit.issuer())).expect("url");
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

pub fn query_of(url: &str) -> BTreeMap<String, String> {
    Url::parse(url)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

/// Runs the authorization step and returns the code.
pub async fn get_code(kit: &Kit, client_id: &str, redirect_uri: &str) -> String {
    let location = authorize_redirect_location(&authorize_url(kit, client_id, redirect_uri, &[]))
        .await
        .expect("redirect");
    let query = query_of(&location);
    query
        .get("code")
        .cloned()
        .unwrap_or_else(|| panic!("no code in redirect: {query:?}"))
}

/// POSTs a token request; `basic` adds an Authorization header with raw (already
/// encoded) id and secret.
pub async fn token_request(
    kit: &Kit,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = http().post(format!("{}/token", kit.issuer())).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.expect("token request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.expect("token response is JSON"),
    )
}

pub async fn exchange_code(
    kit: &Kit,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
) -> (u16, Value) {
    let mcp_url = kit.mcp_url();
    token_request(
        kit,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("resource", &mcp_url),
        ],
        None,
    )
    .await
}

pub async fn refresh(kit: &Kit, client_id: &str, refresh_token: &str) -> (u16, Value) {
    let mcp_url = kit.mcp_url();
    token_request(
        kit,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", client_id),
            ("resource", &mcp_url),
        ],
        None,
    )
    .await
}

/// DCR + authorization + code exchange; returns the client id and the token response.
pub async fn login(kit: &Kit) -> (String, Value) {
    let client_id = register_public(kit, REDIRECT).await;
    let code = get_code(kit, &client_id, REDIRECT).await;
    let (status, tokens) = exchange_code(kit, &client_id, &code, REDIRECT).await;
    assert_eq!(status, 200, "{tokens}");
    (client_id, tokens)
}

pub fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {value}"))
}

/// One JSON-RPC POST to the MCP endpoint.
pub async fn mcp_post(kit: &Kit, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = http()
        .post(kit.mcp_url())
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("mcp POST")
}

pub async fn mcp_status(kit: &Kit, token: &str) -> u16 {
    mcp_post(
        kit,
        Some(token),
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await
    .status()
    .as_u16()
}

pub fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

//! A reference enterprise identity provider for enterprise-managed authorization: OpenID
//! Connect discovery, `/authorize` (PKCE, `state`, `nonce`, redirecting at once with a code),
//! and `/token` with the authorization code grant (an ID token) and the RFC 8693 token
//! exchange of an ID token it issued for an ID-JAG. ID tokens and ID-JAGs are HS256 JWTs
//! signed with a key shared with the kit's authorization server ([`TrustedIdp`]), which
//! verifies the ID-JAG before it issues a token.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::checks::{Form, s256_challenge};

pub const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
pub const ID_JAG_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// What the kit's authorization server needs to trust the identity provider's ID-JAGs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedIdp {
    pub issuer: String,
    pub key: Vec<u8>,
}

/// Counts of what the identity provider was asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdpCounters {
    pub authorize: u64,
    pub code_tokens: u64,
    pub exchanges: u64,
    pub refused_exchanges: u64,
}

#[derive(Debug)]
struct PendingCode {
    challenge: String,
    nonce: Option<String>,
    redirect_uri: String,
}

#[derive(Debug)]
struct IdpState {
    issuer: String,
    client_id: String,
    /// The client id the ID-JAG names: the client's id at the resource authorization server.
    resource_client_id: String,
    key: Vec<u8>,
    id_token_ttl: i64,
    codes: Mutex<HashMap<String, PendingCode>>,
    authorize: AtomicU64,
    code_tokens: AtomicU64,
    exchanges: AtomicU64,
    refused_exchanges: AtomicU64,
    refuse_exchange: AtomicBool,
    /// The last exchange's form, for assertions.
    last_exchange: Mutex<Option<BTreeMap<String, String>>>,
}

/// A running identity provider on 127.0.0.1; dropping it stops the listener.
#[derive(Debug)]
pub struct Idp {
    state: Arc<IdpState>,
    task: JoinHandle<()>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Idp {
    /// Starts an identity provider for the public client `client_id`, whose ID-JAGs name
    /// `resource_client_id` (its client id at the MCP server's authorization server).
    pub async fn start(client_id: &str, resource_client_id: &str) -> anyhow::Result<Idp> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the identity provider's port")?;
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr()?.port());
        let state = Arc::new(IdpState {
            issuer,
            client_id: client_id.to_string(),
            resource_client_id: resource_client_id.to_string(),
            key: rand::random::<[u8; 32]>().to_vec(),
            id_token_ttl: 3600,
            codes: Mutex::new(HashMap::new()),
            authorize: AtomicU64::new(0),
            code_tokens: AtomicU64::new(0),
            exchanges: AtomicU64::new(0),
            refused_exchanges: AtomicU64::new(0),
            refuse_exchange: AtomicBool::new(false),
            last_exchange: Mutex::new(None),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Idp { state, task })
    }

    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    /// For [`crate::KitConfig::trusted_idp`].
    pub fn trust(&self) -> TrustedIdp {
        TrustedIdp {
            issuer: self.state.issuer.clone(),
            key: self.state.key.clone(),
        }
    }

    pub fn counters(&self) -> IdpCounters {
        IdpCounters {
            authorize: self.state.authorize.load(Ordering::SeqCst),
            code_tokens: self.state.code_tokens.load(Ordering::SeqCst),
            exchanges: self.state.exchanges.load(Ordering::SeqCst),
            refused_exchanges: self.state.refused_exchanges.load(Ordering::SeqCst),
        }
    }

    /// From now on every token exchange is refused with `access_denied` (a policy change).
    pub fn refuse_exchanges(&self, refuse: bool) {
        self.state.refuse_exchange.store(refuse, Ordering::SeqCst);
    }

    pub fn last_exchange(&self) -> Option<BTreeMap<String, String>> {
        self.state
            .last_exchange
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

async fn discovery(State(s): State<Arc<IdpState>>) -> Response {
    axum::Json(json!({
        "issuer": s.issuer,
        "authorization_endpoint": format!("{}/authorize", s.issuer),
        "token_endpoint": format!("{}/token", s.issuer),
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["none"],
        "response_types_supported": ["code"],
    }))
    .into_response()
}

fn bad(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn authorize(
    State(s): State<Arc<IdpState>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    s.authorize.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| q.get(name).cloned().unwrap_or_default();
    if field("client_id") != s.client_id
        || field("response_type") != "code"
        || field("code_challenge_method") != "S256"
        || field("code_challenge").is_empty()
        || !field("scope").split(' ').any(|sc| sc == "openid")
        || !field("redirect_uri").starts_with("http://127.0.0.1:")
    {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "bad authorization request",
        );
    }
    let code = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>());
    s.codes.lock().unwrap_or_else(|e| e.into_inner()).insert(
        code.clone(),
        PendingCode {
            challenge: field("code_challenge"),
            nonce: q.get("nonce").cloned(),
            redirect_uri: field("redirect_uri"),
        },
    );
    let mut target = url::Url::parse(&field("redirect_uri")).expect("checked above");
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &field("state"))
        .append_pair("iss", &s.issuer);
    Redirect::to(target.as_str()).into_response()
}

async fn token(State(s): State<Arc<IdpState>>, body: Bytes) -> Response {
    let form = Form::parse(&body);
    if form.get("client_id") != Some(s.client_id.as_str()) {
        return bad(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    match form.get("grant_type") {
        Some("authorization_code") => code_grant(&s, &form),
        Some(TOKEN_EXCHANGE) => exchange(&s, &form),
        _ => bad(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "not supported",
        ),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn code_grant(s: &IdpState, form: &Form) -> Response {
    let pending = form
        .get("code")
        .and_then(|c| s.codes.lock().unwrap_or_else(|e| e.into_inner()).remove(c));
    let Some(pending) = pending else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "unknown or used code",
        );
    };
    let verifier = form.get("code_verifier").unwrap_or_default();
    if s256_challenge(verifier) != pending.challenge
        || form.get("redirect_uri") != Some(pending.redirect_uri.as_str())
    {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE or redirect_uri mismatch",
        );
    }
    s.code_tokens.fetch_add(1, Ordering::SeqCst);
    let mut claims = json!({
        "iss": s.issuer, "sub": "user-1", "aud": s.client_id,
        "iat": now(), "exp": now() + s.id_token_ttl,
    });
    if let Some(nonce) = pending.nonce {
        claims["nonce"] = json!(nonce);
    }
    let id_token = sign(&s.key, "JWT", &claims);
    axum::Json(json!({
        "access_token": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>()),
        "token_type": "Bearer",
        "id_token": id_token,
        "expires_in": s.id_token_ttl,
        "scope": "openid",
    }))
    .into_response()
}

fn exchange(s: &IdpState, form: &Form) -> Response {
    *s.last_exchange.lock().unwrap_or_else(|e| e.into_inner()) = Some(form.to_map());
    s.exchanges.fetch_add(1, Ordering::SeqCst);
    if s.refuse_exchange.load(Ordering::SeqCst) {
        s.refused_exchanges.fetch_add(1, Ordering::SeqCst);
        return bad(
            StatusCode::BAD_REQUEST,
            "access_denied",
            "policy forbids this server",
        );
    }
    if form.get("requested_token_type") != Some(ID_JAG_TYPE)
        || form.get("subject_token_type") != Some(ID_TOKEN_TYPE)
    {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "wrong token types",
        );
    }
    let (Some(audience), Some(resource)) =
        (form.get_nonempty("audience"), form.get_nonempty("resource"))
    else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "audience and resource needed",
        );
    };
    let subject = form
        .get("subject_token")
        .and_then(|t| verify(&s.key, t))
        .filter(|c| c["iss"] == s.issuer && c["aud"] == s.client_id)
        .filter(|c| c["exp"].as_i64().is_some_and(|e| e > now()));
    let Some(subject) = subject else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "the ID token is not valid",
        );
    };
    let mut claims = json!({
        "iss": s.issuer, "sub": subject["sub"], "aud": audience, "resource": resource,
        "client_id": s.resource_client_id, "iat": now(), "exp": now() + 300,
        "jti": URL_SAFE_NO_PAD.encode(rand::random::<[u8; 12]>()),
    });
    if let Some(scope) = form.get_nonempty("scope") {
        claims["scope"] = json!(scope);
    }
    axum::Json(json!({
        "access_token": sign(&s.key, "oauth-id-jag+jwt", &claims),
        "issued_token_type": ID_JAG_TYPE,
        "token_type": "N_A",
        "expires_in": 300,
    }))
    .into_response()
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner_hash = Sha256::new()
        .chain_update(&inner)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&outer)
        .chain_update(inner_hash)
        .finalize()
        .to_vec()
}

fn sign(key: &[u8], typ: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "HS256", "typ": typ}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(key, input.as_bytes()));
    format!("{input}.{signature}")
}

/// The claims of a JWT this identity provider signed, `None` when the signature or the
/// shape is wrong.
pub(crate) fn verify(key: &[u8], token: &str) -> Option<Value> {
    verify_typed(key, token).map(|(_, claims)| claims)
}

/// The header `typ` and the claims of a JWT signed with `key`.
pub(crate) fn verify_typed(key: &[u8], token: &str) -> Option<(String, Value)> {
    let mut parts = token.split('.');
    let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let expected = hmac_sha256(key, format!("{header}.{payload}").as_bytes());
    if URL_SAFE_NO_PAD.decode(signature).ok()? != expected {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
    if header["alg"] != "HS256" {
        return None;
    }
    let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some((
        header["typ"].as_str().unwrap_or_default().to_string(),
        claims,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let token = sign(b"k", "oauth-id-jag+jwt", &json!({"sub": "u"}));
        assert_eq!(
            verify_typed(b"k", &token),
            Some(("oauth-id-jag+jwt".to_string(), json!({"sub": "u"})))
        );
        assert_eq!(verify(b"other", &token), None);
        let tampered = token.replacen('.', ".x", 1);
        assert_eq!(verify(b"k", &tampered), None);
    }
}

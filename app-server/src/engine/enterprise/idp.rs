//! The enterprise identity provider: its OpenID Connect metadata, the ID token a sign-in
//! yields, and the session kept in the credential store.
//!
//! The session is stored like a server's credentials (same backends, locks and redaction)
//! under the reserved name [`IDP_SESSION_NAME`], which no configured server can have (server
//! names are letters, digits, `-` and `_`), with the issuer as its URL: `access_token` holds
//! the ID token, `refresh_token` the identity provider's refresh token, `expires_at` the ID
//! token's `exp`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use mcp_app_server_protocol::RegistrationKind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::config::grant::ClientAuthConfig;
use crate::credentials::{CredentialKey, StoredClient, StoredCredentials, unix_now};
use crate::engine::error::EnterpriseError;
use crate::oauth::discovery::{AuthServerMetadata, issuers_match};
use crate::oauth::grants::client_credentials::{ClientAuth, resolve};
use crate::oauth::http::{HttpClient, check_secure_url};

/// The store name of the identity provider session.
pub const IDP_SESSION_NAME: &str = "@enterprise-idp";
/// The `token_type` recorded for the stored ID token.
const ID_TOKEN_TYPE: &str = "id_token";

/// The store key of the session with the identity provider `issuer`.
pub fn session_key(issuer: &str) -> CredentialKey {
    CredentialKey::new(IDP_SESSION_NAME, issuer)
}

/// The user's sign-in at the identity provider. Holds secrets: `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct IdpSession {
    pub issuer: String,
    pub id_token: String,
    pub refresh_token: Option<String>,
    /// The ID token's `exp`, when it has one.
    pub expires_at: Option<i64>,
    pub token_endpoint: String,
    pub client_id: String,
    /// How a client secret goes to the identity provider (`client_secret_basic` or
    /// `client_secret_post`, from its metadata); empty when unknown (Basic then).
    pub secret_method: String,
}

impl std::fmt::Debug for IdpSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdpSession")
            .field("issuer", &self.issuer)
            .field("id_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_at", &self.expires_at)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl IdpSession {
    /// Whether the ID token is still good for `margin_secs` more seconds.
    pub fn id_token_valid(&self, now: i64, margin_secs: i64) -> bool {
        self.expires_at
            .is_none_or(|exp| exp.saturating_sub(now) > margin_secs)
    }

    pub fn to_stored(&self) -> StoredCredentials {
        StoredCredentials {
            server_name: IDP_SESSION_NAME.to_string(),
            server_url: self.issuer.clone(),
            account: None,
            selected_at: None,
            access_token: self.id_token.clone(),
            token_type: ID_TOKEN_TYPE.to_string(),
            refresh_token: self.refresh_token.clone(),
            expires_at: self.expires_at,
            scopes: Vec::new(),
            requested_scopes: Vec::new(),
            issuer: self.issuer.clone(),
            token_endpoint: self.token_endpoint.clone(),
            revocation_endpoint: None,
            resource: String::new(),
            client: StoredClient {
                kind: RegistrationKind::Preregistered,
                client_id: self.client_id.clone(),
                client_secret: None,
                token_endpoint_auth_method: self.secret_method.clone(),
            },
            reauthentication_required: false,
            login_reason: None,
            grant: None,
            dpop_key: None,
            certificate_x5t: None,
            updated_at: unix_now(),
            refreshed_through: None,
            shared_with: None,
        }
    }

    pub fn from_stored(stored: StoredCredentials) -> Self {
        Self {
            issuer: stored.issuer,
            id_token: stored.access_token,
            refresh_token: stored.refresh_token,
            expires_at: stored.expires_at,
            token_endpoint: stored.token_endpoint,
            client_id: stored.client.client_id,
            secret_method: stored.client.token_endpoint_auth_method,
        }
    }
}

/// The claims of an ID token the daemon checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub iss: String,
    pub aud: Vec<String>,
    pub exp: Option<i64>,
    pub nonce: Option<String>,
}

/// Reads the claims of a compact JWT. The signature is not checked here: an ID token from
/// the sign-in comes straight from the identity provider's token endpoint over TLS (OpenID
/// Connect Core 3.1.3.7), and the daemon only presents it back to that same provider.
pub fn read_id_token(token: &str) -> Result<IdTokenClaims, EnterpriseError> {
    let bad = |why: &str| EnterpriseError::IdToken(why.to_string());
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("is not a compact JWT"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("has a payload that is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("has a payload that is not JSON"))?;
    let iss = claims["iss"]
        .as_str()
        .ok_or_else(|| bad("has no `iss`"))?
        .to_string();
    let aud = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => return Err(bad("has no `aud`")),
    };
    Ok(IdTokenClaims {
        iss,
        aud,
        exp: claims["exp"].as_i64(),
        nonce: claims["nonce"].as_str().map(str::to_string),
    })
}

/// OpenID Connect Core 3.1.3.7: issued by this provider, for this client, not expired, and
/// carrying the sign-in's `nonce` when one was sent.
pub fn check_id_token(
    claims: &IdTokenClaims,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: i64,
) -> Result<(), EnterpriseError> {
    let bad = |why: String| Err(EnterpriseError::IdToken(why));
    if !issuers_match(issuer, &claims.iss) {
        return bad(format!("was issued by {}, not by {issuer}", claims.iss));
    }
    if !claims.aud.iter().any(|a| a == client_id) {
        return bad(format!("is not meant for the client `{client_id}`"));
    }
    if claims.exp.is_some_and(|exp| exp <= now) {
        return bad("has expired".to_string());
    }
    if let Some(nonce) = nonce
        && claims.nonce.as_deref() != Some(nonce)
    {
        return bad("does not carry this sign-in's nonce".to_string());
    }
    Ok(())
}

/// The identity provider's OpenID Connect discovery document
/// (`<issuer>/.well-known/openid-configuration`), whose `issuer` must be the configured one
/// (simple string comparison) and whose endpoints must be https or loopback.
pub async fn discover_idp(
    http: &HttpClient,
    issuer: &str,
) -> Result<AuthServerMetadata, EnterpriseError> {
    let fail = |reason: String| EnterpriseError::IdpDiscovery {
        issuer: issuer.to_string(),
        reason,
    };
    let url = Url::parse(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
    .map_err(|e| fail(format!("the issuer is not a URL ({e})")))?;
    check_secure_url(&url).map_err(|e| fail(e.to_string()))?;
    let response = http
        .get(&url, &HeaderMap::new())
        .await
        .map_err(|e| fail(format!("{url}: {e}")))?;
    if response.status != StatusCode::OK {
        return Err(fail(format!(
            "{url} answered HTTP {}",
            response.status.as_u16()
        )));
    }
    let value: Value = response
        .json()
        .map_err(|_| fail(format!("{url} did not answer JSON")))?;
    let found = value["issuer"].as_str().unwrap_or("");
    if !issuers_match(issuer, found) {
        return Err(fail(format!(
            "{url} names the issuer {found:?}, not the configured one"
        )));
    }
    let metadata: AuthServerMetadata = serde_json::from_value(value)
        .map_err(|e| fail(format!("{url} is not usable metadata: {e}")))?;
    for (field, endpoint) in [
        ("authorization_endpoint", &metadata.authorization_endpoint),
        ("token_endpoint", &metadata.token_endpoint),
    ] {
        check_secure_url(endpoint)
            .map_err(|_| fail(format!("its {field} {endpoint} is not https")))?;
    }
    Ok(metadata)
}

pub(crate) async fn resolve_auth(
    config: Option<&ClientAuthConfig>,
    secret: Option<&str>,
    what: &str,
) -> Result<Option<ClientAuth>, EnterpriseError> {
    if let Some(secret) = secret {
        return Ok(Some(ClientAuth::Secret(secret.to_string())));
    }
    match config {
        None => Ok(None),
        Some(config) => {
            resolve(config)
                .await
                .map(Some)
                .map_err(|error| EnterpriseError::Credential {
                    what: what.to_string(),
                    error,
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::oauth::test_server::{json as json_answer, serve, status};

    pub(crate) fn jwt(claims: Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn id_token_claims_are_checked() {
        let token = jwt(json!({"iss": "https://idp", "aud": "ide", "exp": 2000, "nonce": "n1"}));
        let claims = read_id_token(&token).unwrap();
        assert_eq!(claims.exp, Some(2000));
        check_id_token(&claims, "https://idp", "ide", Some("n1"), 1000).unwrap();
        for (issuer, client, nonce, now) in [
            ("https://idp/", "ide", Some("n1"), 1000),
            ("https://idp", "other", Some("n1"), 1000),
            ("https://idp", "ide", Some("n2"), 1000),
            ("https://idp", "ide", Some("n1"), 2000),
        ] {
            let e = check_id_token(&claims, issuer, client, nonce, now).unwrap_err();
            assert!(!e.to_string().contains(&token), "{e}");
        }
        assert!(read_id_token("not-a-jwt").is_err());
        assert!(read_id_token("a.%%%.c").is_err());
    }

    #[test]
    fn the_session_round_trips_through_stored_credentials_and_debug_redacts() {
        let session = IdpSession {
            issuer: "https://idp".into(),
            id_token: "ID-TOKEN-SECRET".into(),
            refresh_token: Some("IDP-RT-SECRET".into()),
            expires_at: Some(10),
            token_endpoint: "https://idp/token".into(),
            client_id: "ide".into(),
            secret_method: "client_secret_post".into(),
        };
        let stored = session.to_stored();
        assert_eq!(stored.key(), session_key("https://idp"));
        assert_eq!(IdpSession::from_stored(stored.clone()), session);
        for text in [format!("{session:?}"), format!("{stored:?}")] {
            assert!(!text.contains("SECRET"), "{text}");
        }
        assert!(session.id_token_valid(0, 5));
        assert!(!session.id_token_valid(6, 5));
    }

    #[tokio::test]
    async fn discovery_checks_the_issuer() {
        let server = serve(|req, base| match req.path.as_str() {
            "/.well-known/openid-configuration" => json_answer(
                200,
                json!({"issuer": base.as_str().trim_end_matches('/'),
                       "authorization_endpoint": format!("{base}authorize"),
                       "token_endpoint": format!("{base}token")}),
            ),
            _ => status(404),
        })
        .await;
        let issuer = server
            .url("/")
            .to_string()
            .trim_end_matches('/')
            .to_string();
        let http = HttpClient::for_tests();
        let metadata = discover_idp(&http, &issuer).await.unwrap();
        assert_eq!(metadata.token_endpoint.path(), "/token");
        let e = discover_idp(&http, &format!("{issuer}/"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not the configured one"), "{e}");
    }
}

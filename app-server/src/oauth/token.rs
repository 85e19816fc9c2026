//! The token endpoint (rules 18, 20) and revocation (rule 21, RFC 7009).
//!
//! Code exchange and refresh go through the oauth2 crate over our bounded [`HttpClient`];
//! `resource` (RFC 8707) is sent on every request. Public clients put `client_id` in the form
//! body and never send a Basic header: strict servers burn the one-time code otherwise.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, Client, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope, StandardRevocableToken,
    TokenResponse as _, TokenUrl,
};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use url::Url;

use super::http::{HttpClient, HttpError};
use super::registration::{ClientRegistration, TokenAuthMethod};

mod response;

use response::WireTokenResponse;
pub use response::{MAX_EXPIRES_IN, ResponseError, parse_token_response};

/// A successful token response. Holds secrets: `Debug` redacts them.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    /// As the server spelled it, except that any case of `bearer` is `Bearer`.
    pub token_type: String,
    pub refresh_token: Option<String>,
    /// Lifetime in seconds from the response, when given.
    pub expires_in: Option<u64>,
    /// Granted scopes when the server says (absent means "as requested").
    pub scopes: Option<Vec<String>>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires_in", &self.expires_in)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// Why a token (or revocation) request failed; every variant names the endpoint.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The server's OAuth error answer (`invalid_grant`, `invalid_client`, ...).
    #[error("{endpoint} refused the request (HTTP {status}): {error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        endpoint: String,
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Network trouble, a timeout, 5xx or 429: worth retrying later.
    #[error("{endpoint} is unavailable ({reason}); try again later")]
    Transient { endpoint: String, reason: String },
    /// An answer that cannot be used (not JSON, missing fields, a redirect, too large, ...).
    #[error("unusable answer from {endpoint}: {reason}")]
    Invalid { endpoint: String, reason: String },
}

impl TokenError {
    /// The OAuth `error` code, when the server sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            TokenError::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// `invalid_grant`: the code or refresh token is no good; log in again.
    pub fn is_invalid_grant(&self) -> bool {
        self.oauth_error() == Some("invalid_grant")
    }

    /// `invalid_client` / `unauthorized_client`: the server does not accept this client
    /// (for a CIMD client, fall back to DCR, rule 13).
    pub fn is_client_rejected(&self) -> bool {
        matches!(
            self.oauth_error(),
            Some("invalid_client" | "unauthorized_client")
        )
    }

    pub fn is_transient(&self) -> bool {
        matches!(self, TokenError::Transient { .. })
    }
}

/// The oauth2 client with our lenient success-answer parser ([`response`]).
type TokenClient = Client<
    BasicErrorResponse,
    WireTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn token_client(registration: &ClientRegistration, token_endpoint: &Url) -> TokenClient {
    let client: TokenClient = Client::new(ClientId::new(registration.client_id.clone()))
        .set_token_uri(TokenUrl::from_url(token_endpoint.clone()));
    match (registration.auth_method, registration.secret_to_send()) {
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => client
            .set_client_secret(ClientSecret::new(secret.to_string()))
            .set_auth_type(AuthType::BasicAuth),
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => client
            .set_client_secret(ClientSecret::new(secret.to_string()))
            .set_auth_type(AuthType::RequestBody),
        // Public client (or a secret method without a secret): client_id in the body only.
        _ => client.set_auth_type(AuthType::RequestBody),
    }
}

/// Exchanges an authorization code (rule 18): `grant_type=authorization_code`, `code`,
/// `redirect_uri`, `code_verifier`, client authentication or `client_id`, and `resource`.
pub async fn exchange_code(
    http: &HttpClient,
    token_endpoint: &Url,
    registration: &ClientRegistration,
    code: &str,
    pkce_verifier: &str,
    redirect_uri: &Url,
    resource: &str,
) -> Result<TokenResponse, TokenError> {
    let client = token_client(registration, token_endpoint);
    let adapter = http.oauth2_adapter();
    let result = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
        .set_redirect_uri(Cow::Owned(RedirectUrl::from_url(redirect_uri.clone())))
        .add_extra_param("resource", resource.to_string())
        .request_async(&adapter)
        .await;
    result
        .map(convert)
        .map_err(|e| classify(token_endpoint, adapter.last_status(), e))
}

/// Refreshes (rule 20) with the same `resource`. `scopes` narrows the request; `None` asks
/// for what was granted. When the server sends no new refresh token, the old one is returned
/// in the response so callers keep it.
pub async fn refresh(
    http: &HttpClient,
    token_endpoint: &Url,
    registration: &ClientRegistration,
    refresh_token: &str,
    resource: &str,
    scopes: Option<&[String]>,
) -> Result<TokenResponse, TokenError> {
    let client = token_client(registration, token_endpoint);
    let adapter = http.oauth2_adapter();
    let token = RefreshToken::new(refresh_token.to_string());
    let scopes: Vec<Scope> = scopes
        .unwrap_or_default()
        .iter()
        .map(|s| Scope::new(s.clone()))
        .collect();
    let result = client
        .exchange_refresh_token(&token)
        .add_scopes(scopes)
        .add_extra_param("resource", resource.to_string())
        .request_async(&adapter)
        .await;
    let mut response = result
        .map(convert)
        .map_err(|e| classify(token_endpoint, adapter.last_status(), e))?;
    if response.refresh_token.is_none() {
        response.refresh_token = Some(refresh_token.to_string());
    }
    Ok(response)
}

/// Which token [`revoke`] revokes (RFC 7009 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenTypeHint {
    AccessToken,
    RefreshToken,
}

impl TokenTypeHint {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// RFC 7009 revocation with the same client authentication as the token endpoint. Any 2xx
/// is success (RFC 7009 says 200, also for tokens the server does not know; some servers
/// answer 204).
///
/// A public client sends only `client_id` (RFC 7009 §5). Servers built on the MCP Python SDK
/// (and FastMCP, which uses its handlers) require the `client_secret` field to be present
/// anyway and refuse with `invalid_request` naming `client_secret`; for that refusal the
/// request is sent once more with an empty `client_secret`, which those servers accept for a
/// public client and which authenticates nothing anywhere else.
pub async fn revoke(
    http: &HttpClient,
    revocation_endpoint: &Url,
    registration: &ClientRegistration,
    token: &str,
    hint: Option<TokenTypeHint>,
) -> Result<(), TokenError> {
    let mut form: Vec<(&str, &str)> = vec![("token", token)];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint.as_str()));
    }
    let mut headers = HeaderMap::new();
    let public = match (registration.auth_method, registration.secret_to_send()) {
        (TokenAuthMethod::ClientSecretBasic, Some(secret)) => {
            headers.insert(
                AUTHORIZATION,
                basic_authorization(&registration.client_id, secret),
            );
            false
        }
        (TokenAuthMethod::ClientSecretPost, Some(secret)) => {
            form.push(("client_id", &registration.client_id));
            form.push(("client_secret", secret));
            false
        }
        _ => {
            form.push(("client_id", &registration.client_id));
            true
        }
    };
    match send_revocation(http, revocation_endpoint, &form, &headers).await {
        Err(e) if public && refused_for_missing_secret(&e) => {
            tracing::debug!(
                endpoint = %revocation_endpoint,
                "revocation refused without a client_secret field; retrying with an empty one"
            );
            form.push(("client_secret", ""));
            send_revocation(http, revocation_endpoint, &form, &headers).await
        }
        other => other,
    }
}

/// The refusal of a server that wants a `client_secret` field even from a public client:
/// `invalid_request` whose description names `client_secret` (the MCP Python SDK answers
/// `client_secret: Field required`).
fn refused_for_missing_secret(error: &TokenError) -> bool {
    matches!(
        error,
        TokenError::OAuth { error, description: Some(description), .. }
            if error == "invalid_request" && description.contains("client_secret")
    )
}

/// A token request of any grant that oauth2's client has no builder for (client
/// credentials with `private_key_jwt`, the JWT bearer grant): `form` is the whole body and
/// `headers` carries any client authentication. The answer goes through the same parser and
/// error classification as code exchange and refresh. Redirects are not followed.
pub async fn request_token(
    http: &HttpClient,
    token_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<TokenResponse, TokenError> {
    let endpoint = token_endpoint.to_string();
    let response = http
        .post_form(token_endpoint, form, headers)
        .await
        .map_err(|e| from_http(&endpoint, e))?;
    let status = response.status;
    if status.is_success() {
        return parse_token_response(&response.body).map_err(|e| TokenError::Invalid {
            endpoint,
            reason: format!("HTTP {}: {e}", status.as_u16()),
        });
    }
    if status.is_redirection() {
        return Err(TokenError::Invalid {
            endpoint,
            reason: format!(
                "HTTP {}: token requests do not follow redirects",
                status.as_u16()
            ),
        });
    }
    Err(refusal(endpoint, &response))
}

/// The `Authorization: Basic` header of `client_secret_basic`.
pub fn basic_auth_header(client_id: &str, secret: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, basic_authorization(client_id, secret));
    headers
}

async fn send_revocation(
    http: &HttpClient,
    revocation_endpoint: &Url,
    form: &[(&str, &str)],
    headers: &HeaderMap,
) -> Result<(), TokenError> {
    let endpoint = revocation_endpoint.to_string();
    let response = http
        .post_form(revocation_endpoint, form, headers)
        .await
        .map_err(|e| from_http(&endpoint, e))?;
    let status = response.status;
    if status.is_success() {
        return Ok(());
    }
    Err(refusal(endpoint, &response))
}

/// A non-2xx answer: transient for 5xx and 429, else the OAuth error body when there is one.
fn refusal(endpoint: String, response: &super::http::HttpResponse) -> TokenError {
    let status = response.status;
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return TokenError::Transient {
            endpoint,
            reason: format!("HTTP {}", status.as_u16()),
        };
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match response.json::<ErrorBody>() {
        Ok(body) => TokenError::OAuth {
            endpoint,
            status: status.as_u16(),
            error: body.error,
            description: body.error_description,
        },
        Err(_) => TokenError::Invalid {
            endpoint,
            reason: format!("HTTP {} without an OAuth error body", status.as_u16()),
        },
    }
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 section 2.3.1).
fn basic_authorization(client_id: &str, secret: &str) -> HeaderValue {
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

fn convert(response: WireTokenResponse) -> TokenResponse {
    let token_type = match response.token_type() {
        BasicTokenType::Bearer => "Bearer".to_string(),
        BasicTokenType::Extension(other) if other.eq_ignore_ascii_case("bearer") => {
            "Bearer".to_string()
        }
        other => other.as_ref().to_string(),
    };
    TokenResponse {
        access_token: response.access_token().secret().clone(),
        token_type,
        refresh_token: response.refresh_token().map(|t| t.secret().clone()),
        expires_in: response.expires_in().map(|d| d.as_secs()),
        scopes: response
            .scopes()
            .map(|scopes| scopes.iter().map(|s| s.to_string()).collect()),
    }
}

fn from_http(endpoint: &str, error: HttpError) -> TokenError {
    if error.is_transient() {
        TokenError::Transient {
            endpoint: endpoint.to_string(),
            reason: error.to_string(),
        }
    } else {
        TokenError::Invalid {
            endpoint: endpoint.to_string(),
            reason: error.to_string(),
        }
    }
}

/// Sorts oauth2's error into ours. Response bodies are never quoted: a malformed success
/// response may still hold a token.
fn classify(
    token_endpoint: &Url,
    status: Option<StatusCode>,
    error: RequestTokenError<HttpError, BasicErrorResponse>,
) -> TokenError {
    let endpoint = token_endpoint.to_string();
    let status_text = status.map_or_else(
        || "no status".to_string(),
        |s| format!("HTTP {}", s.as_u16()),
    );
    let transient_status =
        status.is_some_and(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS);
    match error {
        RequestTokenError::Request(e) => from_http(&endpoint, e),
        _ if transient_status => TokenError::Transient {
            endpoint,
            reason: status_text,
        },
        RequestTokenError::ServerResponse(response) => TokenError::OAuth {
            endpoint,
            status: status.map_or(0, |s| s.as_u16()),
            error: response.error().as_ref().to_string(),
            description: response.error_description().cloned(),
        },
        RequestTokenError::Parse(e, _body) => {
            let reason = if status.is_some_and(|s| s.is_redirection()) {
                format!("{status_text}: token requests do not follow redirects")
            } else {
                let path = e.path().to_string();
                let what = match e.inner().classify() {
                    // Our parser's message: it names a field, never a value.
                    serde_json::error::Category::Data => {
                        return TokenError::Invalid {
                            endpoint,
                            reason: format!("{status_text}: {}", data_error_text(e.inner())),
                        };
                    }
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                        "not valid JSON"
                    }
                    serde_json::error::Category::Io => "unreadable body",
                };
                if path == "." || path.is_empty() {
                    format!("{status_text}: {what}")
                } else {
                    format!("{status_text}: {what} at {path}")
                }
            };
            TokenError::Invalid { endpoint, reason }
        }
        RequestTokenError::Other(message) => TokenError::Invalid {
            endpoint,
            reason: format!("{status_text}: {message}"),
        },
    }
}

/// serde_json's text of an error our parser raised, without the position suffix.
fn data_error_text(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::test_server::{Recorded, TestServer, json, serve, status, with_headers};
    use axum::response::Response;
    use mcp_app_server_protocol::RegistrationKind;
    use serde_json::json;

    fn public() -> ClientRegistration {
        ClientRegistration {
            kind: RegistrationKind::Dcr,
            client_id: "public-client".into(),
            client_secret: None,
            auth_method: TokenAuthMethod::None,
        }
    }

    fn confidential(method: TokenAuthMethod) -> ClientRegistration {
        ClientRegistration {
            kind: RegistrationKind::Preregistered,
            client_id: "id:with space".into(),
            client_secret: Some("s3cret&+/".into()),
            auth_method: method,
        }
    }

    fn tokens() -> Response {
        json(
            200,
            json!({
                "access_token": "at-1",
                "token_type": "bearer",
                "refresh_token": "rt-1",
                "expires_in": 3600,
                "scope": "read offline_access",
            }),
        )
    }

    async fn token_server<F>(answer: F) -> TestServer
    where
        F: Fn(&Recorded) -> Response + Send + Sync + 'static,
    {
        serve(move |req, _| match req.path.as_str() {
            "/token" | "/revoke" => answer(req),
            _ => status(404),
        })
        .await
    }

    async fn exchange(
        server: &TestServer,
        reg: &ClientRegistration,
    ) -> Result<TokenResponse, TokenError> {
        exchange_code(
            &HttpClient::for_tests(),
            &server.url("/token"),
            reg,
            "the-code",
            "the-verifier",
            &Url::parse("http://127.0.0.1:8765/callback/abc").unwrap(),
            "https://mcp.example.com/mcp",
        )
        .await
    }

    fn form_of(req: &Recorded) -> std::collections::BTreeMap<String, String> {
        req.form().into_iter().collect()
    }

    #[tokio::test]
    async fn public_client_exchange_sends_client_id_in_body_and_no_authorization() {
        let server = token_server(|_| tokens()).await;
        let response = exchange(&server, &public()).await.unwrap();
        assert_eq!(response.access_token, "at-1");
        assert_eq!(response.token_type, "Bearer");
        assert_eq!(response.refresh_token.as_deref(), Some("rt-1"));
        assert_eq!(response.expires_in, Some(3600));
        assert_eq!(
            response.scopes,
            Some(vec!["read".to_string(), "offline_access".to_string()])
        );
        assert!(!format!("{response:?}").contains("at-1"));

        let request = &server.requests()[0];
        assert!(request.headers.get("authorization").is_none());
        let expected: std::collections::BTreeMap<String, String> = [
            ("grant_type", "authorization_code"),
            ("code", "the-code"),
            ("code_verifier", "the-verifier"),
            ("redirect_uri", "http://127.0.0.1:8765/callback/abc"),
            ("client_id", "public-client"),
            ("resource", "https://mcp.example.com/mcp"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(form_of(request), expected);
    }

    #[tokio::test]
    async fn basic_client_uses_an_encoded_authorization_header() {
        let server = token_server(|_| tokens()).await;
        exchange(&server, &confidential(TokenAuthMethod::ClientSecretBasic))
            .await
            .unwrap();
        let request = &server.requests()[0];
        let header = request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap();
        let decoded = STANDARD
            .decode(header.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(decoded).unwrap(),
            "id%3Awith+space:s3cret%26%2B%2F"
        );
        let form = form_of(request);
        assert!(!form.contains_key("client_secret"));
        assert_eq!(form["resource"], "https://mcp.example.com/mcp");
    }

    #[tokio::test]
    async fn post_client_sends_secret_in_body() {
        let server = token_server(|_| tokens()).await;
        exchange(&server, &confidential(TokenAuthMethod::ClientSecretPost))
            .await
            .unwrap();
        let request = &server.requests()[0];
        assert!(request.headers.get("authorization").is_none());
        let form = form_of(request);
        assert_eq!(form["client_id"], "id:with space");
        assert_eq!(form["client_secret"], "s3cret&+/");
    }

    #[tokio::test]
    async fn secret_is_not_sent_when_the_method_is_none() {
        let server = token_server(|_| tokens()).await;
        let mut reg = confidential(TokenAuthMethod::None);
        reg.client_id = "c".into();
        exchange(&server, &reg).await.unwrap();
        let request = &server.requests()[0];
        assert!(request.headers.get("authorization").is_none());
        assert!(!form_of(request).contains_key("client_secret"));
        assert_eq!(form_of(request)["client_id"], "c");
    }

    #[tokio::test]
    async fn refresh_sends_resource_and_keeps_the_old_refresh_token() {
        let server = token_server(|req| {
            if req.form_value("refresh_token").as_deref() == Some("rotate-me") {
                tokens()
            } else {
                json(200, json!({"access_token": "at-2", "token_type": "Bearer"}))
            }
        })
        .await;
        let http = HttpClient::for_tests();
        let kept = refresh(
            &http,
            &server.url("/token"),
            &public(),
            "rt-0",
            "https://r/mcp",
            None,
        )
        .await
        .unwrap();
        assert_eq!(kept.access_token, "at-2");
        assert_eq!(kept.refresh_token.as_deref(), Some("rt-0"));
        assert_eq!(kept.expires_in, None);
        assert_eq!(kept.scopes, None);
        let request = &server.requests()[0];
        let form = form_of(request);
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "rt-0");
        assert_eq!(form["resource"], "https://r/mcp");
        assert_eq!(form["client_id"], "public-client");
        assert!(!form.contains_key("scope"));

        let scopes = vec!["read".to_string()];
        let rotated = refresh(
            &http,
            &server.url("/token"),
            &public(),
            "rotate-me",
            "https://r/mcp",
            Some(&scopes),
        )
        .await
        .unwrap();
        assert_eq!(rotated.refresh_token.as_deref(), Some("rt-1"));
        assert_eq!(form_of(&server.requests()[1])["scope"], "read");
    }

    #[tokio::test]
    async fn oauth_errors_are_parsed() {
        let server = token_server(|req| match req.form_value("code").as_deref() {
            Some("the-code") => json(
                400,
                json!({"error": "invalid_grant", "error_description": "code expired"}),
            ),
            _ => status(500),
        })
        .await;
        let err = exchange(&server, &public()).await.unwrap_err();
        assert!(err.is_invalid_grant(), "{err:?}");
        let TokenError::OAuth {
            status,
            description,
            endpoint,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*status, 400);
        assert_eq!(description.as_deref(), Some("code expired"));
        assert!(endpoint.ends_with("/token"));
        assert!(
            err.to_string().contains("invalid_grant: code expired"),
            "{err}"
        );

        let server = token_server(|_| json(401, json!({"error": "invalid_client"}))).await;
        let err = exchange(&server, &public()).await.unwrap_err();
        assert!(err.is_client_rejected(), "{err:?}");
        let server = token_server(|_| json(400, json!({"error": "unauthorized_client"}))).await;
        assert!(
            exchange(&server, &public())
                .await
                .unwrap_err()
                .is_client_rejected()
        );
    }

    #[tokio::test]
    async fn server_errors_are_transient() {
        for answer in [
            status(503),
            json(500, json!({"error": "server_error"})),
            json(429, json!({"error": "slow_down"})),
        ] {
            let answer = std::sync::Mutex::new(Some(answer));
            let server = token_server(move |_| answer.lock().unwrap().take().unwrap()).await;
            let err = exchange(&server, &public()).await.unwrap_err();
            assert!(err.is_transient(), "{err:?}");
            assert!(err.to_string().contains("/token"), "{err}");
        }
        // Nothing listening: transient too.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
        drop(listener);
        let err = refresh(&HttpClient::for_tests(), &url, &public(), "rt", "r", None)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }

    #[tokio::test]
    async fn generic_token_requests_sort_answers_like_the_others() {
        let form = [("grant_type", "client_credentials")];
        type Check = fn(&TokenError) -> bool;
        let cases: Vec<(Response, Check)> = vec![
            (status(503), |e| e.is_transient()),
            (json(400, json!({"error": "invalid_grant"})), |e| {
                e.is_invalid_grant()
            }),
            (
                with_headers(302, &[("location", "http://127.0.0.1:1/x")], ""),
                |e| e.to_string().contains("do not follow redirects"),
            ),
            (
                json(200, json!({"access_token": "", "token_type": "Bearer"})),
                |e| matches!(e, TokenError::Invalid { .. }),
            ),
        ];
        for (answer, check) in cases {
            let answer = std::sync::Mutex::new(Some(answer));
            let server = token_server(move |_| answer.lock().unwrap().take().unwrap()).await;
            let url = server.url("/token");
            let err = request_token(&HttpClient::for_tests(), &url, &form, &HeaderMap::new())
                .await
                .unwrap_err();
            assert!(check(&err), "{err:?}");
        }
        let server = token_server(|_| tokens()).await;
        let ok = request_token(
            &HttpClient::for_tests(),
            &server.url("/token"),
            &form,
            &basic_auth_header("a b", "c"),
        )
        .await
        .unwrap();
        assert_eq!(ok.access_token, "at-1");
        assert_eq!(ok.token_type, "Bearer");
        assert_eq!(
            server.requests()[0].headers["authorization"],
            format!("Basic {}", STANDARD.encode("a+b:c"))
        );
    }

    #[tokio::test]
    async fn unusable_answers_are_invalid_and_not_quoted() {
        let cases = [
            with_headers(
                200,
                &[("content-type", "application/json")],
                "{\"access_token\": \"leaked-token\"",
            ),
            with_headers(
                200,
                &[("content-type", "text/html")],
                "<html>leaked-token</html>",
            ),
            json(200, json!({"access_token": "leaked-token"})),
            with_headers(302, &[("location", "/elsewhere")], ""),
            with_headers(
                400,
                &[("content-type", "text/html")],
                "<html>leaked-token</html>",
            ),
        ];
        for answer in cases {
            let answer = std::sync::Mutex::new(Some(answer));
            let server = token_server(move |_| answer.lock().unwrap().take().unwrap()).await;
            let err = exchange(&server, &public()).await.unwrap_err();
            assert!(matches!(err, TokenError::Invalid { .. }), "{err:?}");
            assert!(!err.to_string().contains("leaked-token"), "{err}");
            assert_eq!(server.count("/elsewhere"), 0);
        }
    }

    #[tokio::test]
    async fn odd_expires_in_values_do_not_break_the_exchange() {
        for (expires_in, want) in [
            (json!("3600"), Some(3600)),
            (json!(1e30), Some(MAX_EXPIRES_IN)),
            (json!(u64::MAX), Some(MAX_EXPIRES_IN)),
            (json!(-1), None),
            (json!(0), None),
            (json!(12.75), Some(12)),
        ] {
            let body =
                json!({"access_token": "at", "token_type": "Bearer", "expires_in": expires_in});
            let server = token_server(move |_| json(200, body.clone())).await;
            let response = exchange(&server, &public())
                .await
                .unwrap_or_else(|e| panic!("{expires_in}: {e}"));
            assert_eq!(response.expires_in, want, "{expires_in}");
        }
        // A field of the wrong type is named, its value is not quoted.
        let server = token_server(|_| {
            json(
                200,
                json!({"access_token": ["leaked-token"], "token_type": "Bearer"}),
            )
        })
        .await;
        let err = exchange(&server, &public()).await.unwrap_err();
        assert!(
            err.to_string().contains("`access_token` is not a string"),
            "{err}"
        );
        assert!(!err.to_string().contains("leaked-token"), "{err}");
    }

    #[tokio::test]
    async fn insecure_token_endpoint_is_refused() {
        let err = exchange_code(
            &HttpClient::for_tests(),
            &Url::parse("http://as.example.com/token").unwrap(),
            &public(),
            "c",
            "v",
            &Url::parse("http://127.0.0.1:1/callback/x").unwrap(),
            "r",
        )
        .await
        .unwrap_err();
        assert!(matches!(err, TokenError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("https"), "{err}");
    }

    #[tokio::test]
    async fn revoke_sends_token_hint_and_client_auth() {
        let server = token_server(|req| match req.form_value("token").as_deref() {
            Some("rt") => status(200),
            Some("no-content") => status(204),
            Some("busy") => status(503),
            _ => json(400, json!({"error": "unsupported_token_type"})),
        })
        .await;
        let http = HttpClient::for_tests();
        let url = server.url("/revoke");
        revoke(
            &http,
            &url,
            &public(),
            "rt",
            Some(TokenTypeHint::RefreshToken),
        )
        .await
        .unwrap();
        let form = form_of(&server.requests()[0]);
        assert_eq!(form["token_type_hint"], "refresh_token");
        assert_eq!(form["client_id"], "public-client");
        assert!(server.requests()[0].headers.get("authorization").is_none());

        revoke(
            &http,
            &url,
            &confidential(TokenAuthMethod::ClientSecretBasic),
            "rt",
            None,
        )
        .await
        .unwrap();
        let second = &server.requests()[1];
        assert!(second.headers.get("authorization").is_some());
        assert!(!form_of(second).contains_key("token_type_hint"));

        // Any 2xx is success.
        revoke(&http, &url, &public(), "no-content", None)
            .await
            .unwrap();

        let err = revoke(&http, &url, &public(), "busy", None)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        let err = revoke(
            &http,
            &url,
            &public(),
            "at",
            Some(TokenTypeHint::AccessToken),
        )
        .await
        .unwrap_err();
        assert_eq!(err.oauth_error(), Some("unsupported_token_type"));
    }

    #[tokio::test]
    async fn public_revocation_refused_for_a_missing_client_secret_is_retried_once() {
        // The MCP Python SDK's answer when the form has no `client_secret` key.
        let server = token_server(|req| {
            if form_of(req).contains_key("client_secret") {
                status(200)
            } else {
                json(
                    400,
                    json!({"error": "invalid_request",
                           "error_description": "client_secret: Field required"}),
                )
            }
        })
        .await;
        let http = HttpClient::for_tests();
        let url = server.url("/revoke");
        revoke(
            &http,
            &url,
            &public(),
            "rt",
            Some(TokenTypeHint::RefreshToken),
        )
        .await
        .unwrap();
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert!(!form_of(&requests[0]).contains_key("client_secret"));
        let retry = form_of(&requests[1]);
        assert_eq!(retry["client_secret"], "");
        assert_eq!(retry["client_id"], "public-client");
        assert_eq!(retry["token"], "rt");
        assert!(requests[1].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn other_revocation_refusals_are_not_retried() {
        let server = token_server(|req| match form_of(req).get("token").map(String::as_str) {
            // Names client_secret, but a confidential client already sent its secret.
            Some("confidential") => json(
                400,
                json!({"error": "invalid_request", "error_description": "client_secret: wrong"}),
            ),
            // invalid_request about something else.
            _ => json(
                400,
                json!({"error": "invalid_request", "error_description": "token: Field required"}),
            ),
        })
        .await;
        let http = HttpClient::for_tests();
        let url = server.url("/revoke");
        let err = revoke(&http, &url, &public(), "public", None)
            .await
            .unwrap_err();
        assert_eq!(err.oauth_error(), Some("invalid_request"));
        assert_eq!(server.requests().len(), 1);
        let err = revoke(
            &http,
            &url,
            &confidential(TokenAuthMethod::ClientSecretPost),
            "confidential",
            None,
        )
        .await
        .unwrap_err();
        assert_eq!(err.oauth_error(), Some("invalid_request"));
        assert_eq!(server.requests().len(), 2);
        // Refused again after the retry: that second refusal is the error, no third request.
        let stubborn = token_server(|_| {
            json(
                400,
                json!({"error": "invalid_request", "error_description": "client_secret: Field required"}),
            )
        })
        .await;
        let err = revoke(&http, &stubborn.url("/revoke"), &public(), "t", None)
            .await
            .unwrap_err();
        assert_eq!(err.oauth_error(), Some("invalid_request"));
        assert_eq!(stubborn.requests().len(), 2);
    }

    #[test]
    fn token_futures_are_send() {
        fn assert_send<T: Send>(_: T) {}
        let http = HttpClient::for_tests();
        let url = Url::parse("https://as.example/token").unwrap();
        let reg = public();
        assert_send(exchange_code(&http, &url, &reg, "c", "v", &url, "r"));
        assert_send(refresh(&http, &url, &reg, "rt", "r", None));
        assert_send(revoke(&http, &url, &reg, "t", None));
    }
}

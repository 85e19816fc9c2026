//! Dynamic Client Registration (RFC 7591, rule 12): register a public native client for one
//! redirect URI.

use mcp_app_server_protocol::RegistrationKind;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use url::Url;

use super::client::{ClientRegistration, TokenAuthMethod};
use super::error::RegistrationError;
use super::preregistered::choose_auth_method;
use crate::oauth::http::HttpClient;

/// The RFC 7591 registration request body (rule 12).
pub fn registration_request(
    redirect_uri: &Url,
    client_name: &str,
    scopes: Option<&[String]>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "client_name": client_name,
        "redirect_uris": [redirect_uri.as_str()],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
        "application_type": "native",
    });
    if let (Some(scopes), Some(map)) = (scopes.filter(|s| !s.is_empty()), body.as_object_mut()) {
        map.insert("scope".into(), scopes.join(" ").into());
    }
    body
}

/// SEP-837, pure: the registration request to send once more after a refusal, or `None`
/// when nothing this client may change would help. Only `invalid_client_metadata` and
/// `invalid_redirect_uri` are answered; the field the `error_description` names decides:
/// - `application_type`: sent without it (servers that do not know the field, or insist on
///   their default; `native` stays right for a loopback redirect, so no other value is
///   tried);
/// - `grant_types` / `refresh_token`: `["authorization_code"]` only (no refresh token is
///   assumed anyway, SEP-2207);
/// - `scope`, or an `invalid_client_metadata` naming none of these: sent without `scope`,
///   which is optional (RFC 7591 §2) and which some servers (oidc-provider) accept only
///   from their own `scopes_supported` while still granting the resource's scopes at
///   authorization.
///
/// The redirect URI is never changed (rule 16: servers compare it exactly).
pub fn adjusted_request(
    body: &serde_json::Value,
    error: Option<&str>,
    description: Option<&str>,
) -> Option<serde_json::Value> {
    if !matches!(
        error,
        Some("invalid_client_metadata" | "invalid_redirect_uri")
    ) {
        return None;
    }
    let description = description.unwrap_or_default().to_ascii_lowercase();
    let names_application_type = description.contains("application_type");
    let names_grant_types =
        description.contains("grant_type") || description.contains("refresh_token");
    let names_scope = description.contains("scope");
    let mut adjusted = body.clone();
    let map = adjusted.as_object_mut()?;
    if names_application_type {
        map.remove("application_type");
    }
    if names_grant_types {
        map.insert(
            "grant_types".into(),
            serde_json::json!(["authorization_code"]),
        );
    }
    let names_nothing_known = !names_application_type && !names_grant_types;
    if names_scope || (names_nothing_known && error == Some("invalid_client_metadata")) {
        map.remove("scope");
    }
    (adjusted != *body).then_some(adjusted)
}

#[derive(Deserialize)]
struct RegistrationResponse {
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    token_endpoint_auth_method: Option<String>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// Registers at `registration_endpoint` (no redirects followed). `advertised_auth_methods` is
/// the server's `token_endpoint_auth_methods_supported`, used when the server hands out a
/// secret without saying how to use it.
pub async fn register(
    http: &HttpClient,
    registration_endpoint: &Url,
    redirect_uri: &Url,
    client_name: &str,
    scopes: Option<&[String]>,
    advertised_auth_methods: Option<&[String]>,
) -> Result<ClientRegistration, RegistrationError> {
    let body = registration_request(redirect_uri, client_name, scopes);
    let mut response = http
        .post_json(registration_endpoint, &body, &HeaderMap::new())
        .await?;
    let url = registration_endpoint.to_string();
    let mut parsed = None;
    if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
        parsed = response.json::<ErrorResponse>().ok();
        // SEP-837: a refusal is retried once, with the metadata adjusted as the error asks,
        // when some adjustment can help; the second answer is final.
        let adjusted = parsed.as_ref().and_then(|p| {
            adjusted_request(&body, p.error.as_deref(), p.error_description.as_deref())
        });
        if let Some(adjusted) = adjusted {
            tracing::debug!(
                endpoint = %registration_endpoint,
                "client registration refused; registering once more with adjusted metadata"
            );
            response = http
                .post_json(registration_endpoint, &adjusted, &HeaderMap::new())
                .await?;
            parsed = None;
        }
    }
    if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
        let parsed = parsed.or_else(|| response.json::<ErrorResponse>().ok());
        return Err(RegistrationError::Rejected {
            url,
            status: response.status.as_u16(),
            error: parsed.as_ref().and_then(|p| p.error.clone()),
            description: parsed.and_then(|p| p.error_description),
        });
    }
    parse_registration_response(&url, &response.body, advertised_auth_methods)
}

/// Reads a successful registration response into a [`ClientRegistration`].
pub fn parse_registration_response(
    url: &str,
    body: &[u8],
    advertised_auth_methods: Option<&[String]>,
) -> Result<ClientRegistration, RegistrationError> {
    let parsed: RegistrationResponse =
        serde_json::from_slice(body).map_err(|e| RegistrationError::InvalidResponse {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
    if parsed.client_id.is_empty() {
        return Err(RegistrationError::InvalidResponse {
            url: url.to_string(),
            reason: "empty client_id".to_string(),
        });
    }
    let secret = parsed.client_secret.filter(|s| !s.is_empty());
    let auth_method = match parsed.token_endpoint_auth_method.as_deref() {
        Some(name) => match TokenAuthMethod::from_name(name) {
            Some(TokenAuthMethod::None) => TokenAuthMethod::None,
            Some(method) if secret.is_some() => method,
            // A secret method without a secret: all we can do is act as a public client.
            Some(_) => TokenAuthMethod::None,
            None => {
                return Err(RegistrationError::UnsupportedAuthMethods {
                    advertised: name.to_string(),
                });
            }
        },
        None => choose_auth_method(secret.is_some(), advertised_auth_methods)?,
    };
    Ok(ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: parsed.client_id,
        client_secret: secret,
        auth_method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn request_body_has_rule_12_fields() {
        let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
        assert_eq!(
            registration_request(&redirect, "My IDE", Some(&v(&["a", "b"]))),
            serde_json::json!({
                "client_name": "My IDE",
                "redirect_uris": ["http://127.0.0.1:1/callback/x"],
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
                "token_endpoint_auth_method": "none",
                "application_type": "native",
                "scope": "a b",
            })
        );
        assert!(
            registration_request(&redirect, "x", None)
                .get("scope")
                .is_none()
        );
    }

    #[test]
    fn adjusted_request_table() {
        let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
        let with_scope = registration_request(&redirect, "x", Some(&v(&["a"])));
        let without_scope = registration_request(&redirect, "x", None);
        let strip = |body: &serde_json::Value, field: &str| {
            let mut b = body.clone();
            b.as_object_mut().unwrap().remove(field);
            b
        };
        let code_only = |body: &serde_json::Value| {
            let mut b = body.clone();
            b["grant_types"] = serde_json::json!(["authorization_code"]);
            b
        };
        type Case<'a> = (
            &'a serde_json::Value,
            Option<&'a str>,
            Option<&'a str>,
            Option<serde_json::Value>,
        );
        let cases: Vec<Case> = vec![
            // The field the description names is adjusted.
            (
                &without_scope,
                Some("invalid_client_metadata"),
                Some("unknown field application_type"),
                Some(strip(&without_scope, "application_type")),
            ),
            (
                &without_scope,
                Some("invalid_redirect_uri"),
                Some("redirect_uris not allowed for this application_type"),
                Some(strip(&without_scope, "application_type")),
            ),
            (
                &without_scope,
                Some("invalid_client_metadata"),
                Some("grant_types: refresh_token is not allowed"),
                Some(code_only(&without_scope)),
            ),
            (
                &with_scope,
                Some("invalid_client_metadata"),
                Some("scope must only contain supported values"),
                Some(strip(&with_scope, "scope")),
            ),
            // Naming nothing known: the optional scope goes.
            (
                &with_scope,
                Some("invalid_client_metadata"),
                None,
                Some(strip(&with_scope, "scope")),
            ),
            // Nothing to adjust, or not a metadata refusal: no retry.
            (&without_scope, Some("invalid_client_metadata"), None, None),
            (
                &without_scope,
                Some("invalid_redirect_uri"),
                Some("loopback only"),
                None,
            ),
            (&with_scope, Some("access_denied"), Some("scope"), None),
            (&with_scope, None, None, None),
        ];
        for (body, error, description, expected) in cases {
            assert_eq!(
                adjusted_request(body, error, description),
                expected,
                "{error:?} {description:?}"
            );
        }
    }

    #[test]
    fn response_table() {
        use TokenAuthMethod as M;
        type Expected = Option<(Option<&'static str>, TokenAuthMethod)>;
        let cases: Vec<(&str, Option<Vec<String>>, Expected)> = vec![
            (r#"{"client_id":"c"}"#, None, Some((None, M::None))),
            (
                r#"{"client_id":"c","token_endpoint_auth_method":"none"}"#,
                None,
                Some((None, M::None)),
            ),
            (
                r#"{"client_id":"c","client_secret":"s"}"#,
                None,
                Some((Some("s"), M::ClientSecretBasic)),
            ),
            (
                r#"{"client_id":"c","client_secret":"s"}"#,
                Some(v(&["none"])),
                Some((Some("s"), M::None)),
            ),
            (
                r#"{"client_id":"c","client_secret":"s","token_endpoint_auth_method":"client_secret_post"}"#,
                Some(v(&["none"])),
                Some((Some("s"), M::ClientSecretPost)),
            ),
            (
                r#"{"client_id":"c","token_endpoint_auth_method":"client_secret_basic"}"#,
                None,
                Some((None, M::None)),
            ),
            (
                r#"{"client_id":"c","token_endpoint_auth_method":"private_key_jwt"}"#,
                None,
                None,
            ),
            (r#"{"client_id":""}"#, None, None),
            (r#"{"nope":1}"#, None, None),
            ("<html>", None, None),
        ];
        for (body, advertised, expected) in cases {
            let got = parse_registration_response(
                "https://as/register",
                body.as_bytes(),
                advertised.as_deref(),
            );
            match expected {
                Some((secret, method)) => {
                    let reg = got.unwrap_or_else(|e| panic!("{body}: {e}"));
                    assert_eq!(reg.kind, RegistrationKind::Dcr);
                    assert_eq!(reg.client_id, "c");
                    assert_eq!(reg.client_secret.as_deref(), secret, "{body}");
                    assert_eq!(reg.auth_method, method, "{body}");
                }
                None => assert!(got.is_err(), "{body}"),
            }
        }
    }
}

#[cfg(test)]
mod http_tests {
    use super::*;
    use crate::oauth::test_server::{json, serve, with_headers};
    use serde_json::json;

    #[tokio::test]
    async fn registers_with_rule_12_body() {
        let server = serve(|req, _| {
            if req.path == "/register" && req.method == "POST" {
                json(201, json!({"client_id": "new-client", "client_name": "x"}))
            } else {
                json(404, json!({}))
            }
        })
        .await;
        let redirect = Url::parse("http://127.0.0.1:8765/callback/abc").unwrap();
        let scopes = vec!["read".to_string()];
        let reg = register(
            &HttpClient::for_tests(),
            &server.url("/register"),
            &redirect,
            "My IDE",
            Some(&scopes),
            Some(&["none".to_string()]),
        )
        .await
        .unwrap();
        assert_eq!(reg.client_id, "new-client");
        assert_eq!(reg.kind, RegistrationKind::Dcr);
        assert_eq!(reg.auth_method, TokenAuthMethod::None);
        let request = &server.requests()[0];
        assert_eq!(
            request.headers.get("content-type").unwrap(),
            "application/json"
        );
        assert_eq!(
            request.json(),
            registration_request(&redirect, "My IDE", Some(&scopes))
        );
    }

    #[tokio::test]
    async fn scope_refused_as_client_metadata_registers_again_without_scope() {
        let server = serve(|req, _| {
            if req.json().get("scope").is_some() {
                json(
                    400,
                    json!({"error": "invalid_client_metadata",
                           "error_description": "scope must only contain supported values"}),
                )
            } else {
                json(201, json!({"client_id": "no-scope-client"}))
            }
        })
        .await;
        let redirect = Url::parse("http://127.0.0.1:8765/callback/abc").unwrap();
        let scopes = vec!["mcp:read".to_string()];
        let http = HttpClient::for_tests();
        let reg = register(
            &http,
            &server.url("/register"),
            &redirect,
            "My IDE",
            Some(&scopes),
            None,
        )
        .await
        .unwrap();
        assert_eq!(reg.client_id, "no-scope-client");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].json()["scope"], "mcp:read");
        assert_eq!(
            requests[1].json(),
            registration_request(&redirect, "My IDE", None)
        );
    }

    #[tokio::test]
    async fn refused_application_type_registers_once_more_without_it() {
        let server = serve(|req, _| {
            if req.json().get("application_type").is_some() {
                json(
                    400,
                    json!({"error": "invalid_client_metadata",
                           "error_description": "application_type is not supported"}),
                )
            } else {
                json(201, json!({"client_id": "plain-client"}))
            }
        })
        .await;
        let redirect = Url::parse("http://127.0.0.1:8765/callback/abc").unwrap();
        let reg = register(
            &HttpClient::for_tests(),
            &server.url("/register"),
            &redirect,
            "My IDE",
            None,
            None,
        )
        .await
        .unwrap();
        assert_eq!(reg.client_id, "plain-client");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].json()["application_type"], "native");
        assert_eq!(
            requests[0].json()["grant_types"],
            json!(["authorization_code", "refresh_token"])
        );
        let retry = requests[1].json();
        assert!(retry.get("application_type").is_none(), "{retry}");
        assert_eq!(retry["redirect_uris"], json!([redirect.as_str()]));
    }

    #[tokio::test]
    async fn metadata_refusal_without_scope_is_not_retried() {
        let server = serve(|_, _| json(400, json!({"error": "invalid_client_metadata"}))).await;
        let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
        let http = HttpClient::for_tests();
        let err = register(&http, &server.url("/register"), &redirect, "x", None, None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("invalid_client_metadata"), "{err}");
        assert_eq!(server.count("/register"), 1);
        // With a scope: one retry without it, then the second refusal is surfaced.
        let scopes = vec!["a".to_string()];
        let err = register(
            &http,
            &server.url("/register"),
            &redirect,
            "x",
            Some(&scopes),
            None,
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("invalid_client_metadata"), "{err}");
        assert_eq!(server.count("/register"), 3);
    }

    #[tokio::test]
    async fn rejection_is_surfaced() {
        let server = serve(|req, _| match req.path.as_str() {
            "/register" => json(
                400,
                json!({"error": "invalid_redirect_uri", "error_description": "loopback only"}),
            ),
            _ => with_headers(307, &[("location", "/register")], ""),
        })
        .await;
        let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
        let http = HttpClient::for_tests();
        let err = register(&http, &server.url("/register"), &redirect, "x", None, None)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("invalid_redirect_uri: loopback only"),
            "{text}"
        );
        assert!(text.contains("/register"), "{text}");
        assert!(text.contains("400"), "{text}");
        assert!(!err.is_transient());

        // A redirect is not followed: the registration request is not re-sent.
        let err = register(&http, &server.url("/moved"), &redirect, "x", None, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RegistrationError::Rejected { status: 307, .. }),
            "{err:?}"
        );
        assert_eq!(server.count("/register"), 1);
    }
}

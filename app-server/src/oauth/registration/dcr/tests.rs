//! The registration request and the answers it gets, as tables; registering against a
//! loopback server: [`http`].

mod http;

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
        (
            r#"{"client_id":"c","token_endpoint_auth_method":"self_signed_tls_client_auth"}"#,
            None,
            Some((None, M::SelfSignedTlsClientAuth)),
        ),
        (
            r#"{"client_id":"c","token_endpoint_auth_method":"tls_client_auth"}"#,
            Some(v(&["none"])),
            Some((None, M::TlsClientAuth)),
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

#[test]
fn client_secret_expiry_is_read_and_zero_means_never() {
    let cases = [
        (
            r#"{"client_id":"c","client_secret":"s","client_secret_expires_at":1900000000}"#,
            Some(1_900_000_000),
        ),
        (
            r#"{"client_id":"c","client_secret":"s","client_secret_expires_at":0}"#,
            None,
        ),
        (r#"{"client_id":"c","client_secret":"s"}"#, None),
        (
            r#"{"client_id":"c","client_secret_expires_at":"soon"}"#,
            None,
        ),
        (r#"{"client_id":"c","client_secret_expires_at":-5}"#, None),
        ("<html>", None),
    ];
    for (body, expected) in cases {
        assert_eq!(secret_expires_at(body.as_bytes()), expected, "{body}");
    }
}

#[test]
fn a_refused_certificate_registration_is_retried_as_a_public_client() {
    let body = serde_json::json!({
        "client_name": "n",
        "redirect_uris": ["http://127.0.0.1:1/cb"],
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": {"keys": [{"kty": "EC"}]},
        "tls_client_certificate_bound_access_tokens": true,
        "scope": "a b",
    });
    let public = |b: &serde_json::Value| {
        b["token_endpoint_auth_method"] == "none"
            && b.get("jwks").is_none()
            && b.get("tls_client_auth_subject_dn").is_none()
            && b.get("tls_client_certificate_bound_access_tokens")
                .is_none()
    };
    for description in [
        Some("token_endpoint_auth_method self_signed_tls_client_auth is not allowed"),
        Some("jwks must contain x5c"),
        Some("unsupported client certificate"),
        None,
    ] {
        let retried = adjusted_request(&body, Some("invalid_client_metadata"), description)
            .unwrap_or_else(|| panic!("{description:?}"));
        assert!(public(&retried), "{description:?}: {retried}");
        // Nothing else changes.
        assert_eq!(retried["scope"], "a b");
        assert_eq!(retried["redirect_uris"], body["redirect_uris"]);
    }
    // A refusal about another member is answered as before, the certificate kept.
    let retried = adjusted_request(
        &body,
        Some("invalid_client_metadata"),
        Some("scope not allowed"),
    )
    .unwrap();
    assert!(!public(&retried));
    assert!(retried.get("scope").is_none());
    // A public request is never touched for a certificate word.
    let mut plain = body.clone();
    plain["token_endpoint_auth_method"] = "none".into();
    plain.as_object_mut().unwrap().remove("jwks");
    let retried = adjusted_request(
        &plain,
        Some("invalid_client_metadata"),
        Some("certificate problem"),
    );
    assert!(retried.is_none_or(|r| r["token_endpoint_auth_method"] == "none"));
}

use mcp_app_server_testkit::TestCa;

use super::*;
use crate::config::client_certificate::certificate_facts_of_pem;

fn facts() -> CertificateFacts {
    let ca = TestCa::new("registration CA").unwrap();
    let cert = ca.client("device-42").unwrap();
    certificate_facts_of_pem(cert.chain_pem.as_bytes()).unwrap()
}

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn body_of(auth: &RegistrationAuth) -> Value {
    let mut body = serde_json::json!({"token_endpoint_auth_method": "none"});
    auth.apply(&mut body);
    body
}

#[test]
fn dcr_prefers_the_self_signed_method_and_carries_the_certificate() {
    let facts = facts();
    let both = v(&["none", "tls_client_auth", "self_signed_tls_client_auth"]);
    let auth = registration_auth(Some(&facts), Some(&both), true, None).unwrap();
    assert_eq!(auth.method, TokenAuthMethod::SelfSignedTlsClientAuth);
    let body = body_of(&auth);
    assert_eq!(
        body["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    assert_eq!(body["tls_client_certificate_bound_access_tokens"], true);
    let key = &body["jwks"]["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["x5c"].as_array().unwrap().len(), 1);
    assert!(body.get("tls_client_auth_subject_dn").is_none());

    let only_pki = v(&["none", "tls_client_auth"]);
    let auth = registration_auth(Some(&facts), Some(&only_pki), false, None).unwrap();
    assert_eq!(auth.method, TokenAuthMethod::TlsClientAuth);
    let body = body_of(&auth);
    assert_eq!(body["tls_client_auth_subject_dn"], "CN=device-42");
    assert!(body.get("jwks").is_none());
    assert!(
        body.get("tls_client_certificate_bound_access_tokens")
            .is_none()
    );
}

#[test]
fn dcr_stays_public_without_a_certificate_or_a_listed_method() {
    let facts = facts();
    let none = v(&["none", "client_secret_basic"]);
    for (certificate, advertised) in [
        (None, Some(v(&["self_signed_tls_client_auth"]))),
        (Some(&facts), Some(none.clone())),
        (Some(&facts), None),
    ] {
        let auth = registration_auth(certificate, advertised.as_deref(), false, None).unwrap();
        assert_eq!(auth, RegistrationAuth::public(), "{advertised:?}");
    }
    // A certificate and a server that binds: the tokens are asked bound, the client public.
    let auth = registration_auth(Some(&facts), Some(&none), true, None).unwrap();
    assert_eq!(auth.method, TokenAuthMethod::None);
    assert_eq!(
        body_of(&auth)["tls_client_certificate_bound_access_tokens"],
        true
    );
}

#[test]
fn a_configured_method_wins_and_says_what_it_lacks() {
    let facts = facts();
    let listed = v(&["self_signed_tls_client_auth"]);
    let forced = registration_auth(
        Some(&facts),
        Some(&listed),
        false,
        Some(TokenAuthMethod::None),
    )
    .unwrap();
    assert_eq!(forced.method, TokenAuthMethod::None);
    let forced = registration_auth(
        Some(&facts),
        None,
        false,
        Some(TokenAuthMethod::TlsClientAuth),
    )
    .unwrap();
    assert_eq!(
        body_of(&forced)["tls_client_auth_subject_dn"],
        "CN=device-42"
    );
    let e = registration_auth(None, None, false, Some(TokenAuthMethod::TlsClientAuth)).unwrap_err();
    assert!(
        matches!(e, RegistrationError::CertificateMissing { .. }),
        "{e}"
    );
    assert!(e.to_string().contains("client_certificate"), "{e}");
}

#[test]
fn preregistered_methods() {
    use TokenAuthMethod as M;
    let both = v(&["tls_client_auth", "self_signed_tls_client_auth", "none"]);
    let self_signed = v(&["self_signed_tls_client_auth"]);
    type Case<'a> = (bool, bool, Option<&'a [String]>, Option<M>, Option<M>);
    let cases: [Case; 10] = [
        (false, true, Some(&both), None, Some(M::TlsClientAuth)),
        (
            false,
            true,
            Some(&self_signed),
            None,
            Some(M::SelfSignedTlsClientAuth),
        ),
        (false, true, None, None, Some(M::None)),
        (false, false, Some(&both), None, Some(M::None)),
        (true, true, Some(&both), None, Some(M::TlsClientAuth)),
        (true, false, Some(&both), None, Some(M::None)),
        (true, true, None, None, Some(M::ClientSecretBasic)),
        (
            false,
            true,
            None,
            Some(M::SelfSignedTlsClientAuth),
            Some(M::SelfSignedTlsClientAuth),
        ),
        (false, false, None, Some(M::TlsClientAuth), None),
        (false, true, None, Some(M::ClientSecretPost), None),
    ];
    for (secret, certificate, advertised, configured, want) in cases {
        let got = preregistered_method(secret, certificate, advertised, configured).ok();
        assert_eq!(
            got, want,
            "{secret} {certificate} {advertised:?} {configured:?}"
        );
    }
}

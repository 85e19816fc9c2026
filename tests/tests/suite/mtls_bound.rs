//! RFC 8705 endpoint aliases, certificate-bound tokens and what the metadata says of them.

use mcp_app_server_testkit::{
    DeviceBehaviour, Kit, KitConfig, KitMtls, KitTls, PreregisteredClient, TestCa,
};
use serde_json::{Value, json};

use super::common::{REDIRECT, start};
use super::mtls::{config, exchange, https, post_form, register};

async fn metadata(http: &reqwest::Client, kit: &Kit, document: &str) -> Value {
    let url = format!("{}/.well-known/{document}", kit.as_origin());
    http.get(url).send().await.unwrap().json().await.unwrap()
}

async fn mcp_ping(http: &reqwest::Client, kit: &Kit, token: &str) -> reqwest::Response {
    http.post(kit.mcp_url())
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .await
        .expect("MCP POST")
}

#[tokio::test]
async fn metadata_lists_the_aliases_methods_and_binding() {
    let ca = TestCa::new("mTLS kit CA").unwrap();
    let mtls = KitMtls {
        tls_client_auth: true,
        self_signed_tls_client_auth: true,
        aliases: true,
        bound_tokens: true,
    };
    let kit = start(KitConfig {
        device: Some(DeviceBehaviour::default()),
        ..config(&ca, None, mtls)
    })
    .await;
    let origin = kit.mtls_origin().expect("an alias listener");
    assert!(origin.starts_with("https://127.0.0.1:"), "{origin}");
    assert_ne!(origin, kit.as_origin());
    let plain = https(&ca, None);
    for document in ["oauth-authorization-server", "openid-configuration"] {
        let doc = metadata(&plain, &kit, document).await;
        assert_eq!(
            doc["mtls_endpoint_aliases"],
            json!({
                "token_endpoint": format!("{origin}/token"),
                "revocation_endpoint": format!("{origin}/revoke"),
                "registration_endpoint": format!("{origin}/register"),
                "device_authorization_endpoint": format!("{origin}/device_authorization"),
            })
        );
        assert_eq!(doc["tls_client_certificate_bound_access_tokens"], true);
        assert_eq!(doc["token_endpoint"], format!("{}/token", kit.issuer()));
        for list in [
            "token_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_methods_supported",
        ] {
            let methods = doc[list].as_array().unwrap();
            assert!(methods.contains(&json!("tls_client_auth")), "{list}");
            assert!(
                methods.contains(&json!("self_signed_tls_client_auth")),
                "{list}"
            );
        }
    }
    // The alias listener serves the authorization server's endpoints, never the browser's.
    assert!(kit.mtls_alias_requests().is_empty());

    let plain_kit = start(KitConfig {
        tls: Some(KitTls::from_ca(&ca).unwrap()),
        ..KitConfig::default()
    })
    .await;
    assert_eq!(plain_kit.mtls_origin(), None);
    let doc = metadata(&plain, &plain_kit, "oauth-authorization-server").await;
    assert!(doc.get("mtls_endpoint_aliases").is_none());
    assert!(
        doc.get("tls_client_certificate_bound_access_tokens")
            .is_none()
    );
    let methods = doc["token_endpoint_auth_methods_supported"]
        .as_array()
        .unwrap();
    assert!(!methods.contains(&json!("tls_client_auth")));

    let refused = Kit::start(KitConfig {
        mtls: Some(KitMtls::default()),
        ..KitConfig::default()
    })
    .await;
    assert!(refused.is_err(), "mtls without tls must be refused");
}

#[tokio::test]
async fn the_alias_listener_requires_a_certificate_and_judges_it_at_the_endpoint() {
    let ca = TestCa::new("mTLS kit CA").unwrap();
    let cert = TestCa::self_signed_client("robot").unwrap();
    let mtls = KitMtls {
        self_signed_tls_client_auth: true,
        aliases: true,
        bound_tokens: true,
        ..KitMtls::default()
    };
    let kit = start(KitConfig {
        preregistered: vec![PreregisteredClient::self_signed_tls_client_auth(
            "robot",
            cert.sha256,
            &[],
        )],
        ..config(&ca, None, mtls)
    })
    .await;
    let alias_token = format!("{}/token", kit.mtls_origin().unwrap());
    let mcp_url = kit.mcp_url();
    let grant = [
        ("grant_type", "client_credentials"),
        ("client_id", "robot"),
        ("resource", mcp_url.as_str()),
    ];

    let without = https(&ca, None)
        .post(&alias_token)
        .form(&grant)
        .send()
        .await;
    assert!(
        without.is_err(),
        "the handshake must fail without a certificate"
    );
    assert!(kit.mtls_alias_requests().is_empty());
    assert!(kit.token_requests().is_empty());

    let stranger = TestCa::self_signed_client("robot").unwrap();
    let (status, body) = post_form(&https(&ca, Some(&stranger)), &alias_token, &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let with_cert = https(&ca, Some(&cert));
    let (status, body) = post_form(&with_cert, &alias_token, &grant).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(kit.mtls_alias_requests(), ["POST /token", "POST /token"]);
    let last = kit.last_token_request().unwrap();
    assert!(last.at_alias);
    assert_eq!(last.client_certificate_sha256, Some(cert.sha256));
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(kit.certificate_binding(access), Some(cert.sha256));

    // The authorization server's own listener never asks for a certificate with aliases.
    let issuer_token = format!("{}/token", kit.issuer());
    let (status, body) = post_form(&with_cert, &issuer_token, &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let last = kit.last_token_request().unwrap();
    assert!(!last.at_alias);
    assert_eq!(last.client_certificate_sha256, None);
    assert_eq!(kit.counters().mtls_client_auth_failures, 2);
    assert_eq!(kit.mtls_alias_requests().len(), 2);
}

#[tokio::test]
async fn a_bound_token_works_only_with_its_certificate() {
    let ca = TestCa::new("mTLS kit CA").unwrap();
    let mtls = KitMtls {
        bound_tokens: true,
        ..KitMtls::default()
    };
    let kit = start(config(&ca, None, mtls)).await;
    let cert = TestCa::self_signed_client("laptop").unwrap();
    let other = TestCa::self_signed_client("laptop").unwrap();
    let (plain, with_cert, with_other) = (
        https(&ca, None),
        https(&ca, Some(&cert)),
        https(&ca, Some(&other)),
    );
    let (status, registered) = register(
        &plain,
        &kit,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(status, 201, "{registered}");
    let client_id = registered["client_id"].as_str().unwrap().to_owned();

    let (status, tokens) = exchange(&with_cert, &kit, &client_id).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(kit.certificate_binding(access), Some(cert.sha256));
    assert_eq!(kit.certificate_binding(refresh), Some(cert.sha256));

    for (http, refusals) in [(&plain, 1), (&with_other, 2)] {
        let response = mcp_ping(http, &kit, access).await;
        assert_eq!(response.status().as_u16(), 401);
        let challenge = response.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Bearer error=\"invalid_token\", error_description=\""));
        assert_eq!(kit.counters().bound_token_refusals, refusals);
    }
    assert_eq!(
        mcp_ping(&with_cert, &kit, access).await.status().as_u16(),
        200
    );

    let token = format!("{}/token", kit.issuer());
    let mcp_url = kit.mcp_url();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh),
        ("client_id", client_id.as_str()),
        ("resource", mcp_url.as_str()),
    ];
    for http in [&plain, &with_other] {
        let (status, body) = post_form(http, &token, &form).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    let (status, renewed) = post_form(&with_cert, &token, &form).await;
    assert_eq!(status, 200, "{renewed}");
    let renewed_access = renewed["access_token"].as_str().unwrap();
    let renewed_refresh = renewed["refresh_token"].as_str().unwrap();
    assert_eq!(kit.certificate_binding(renewed_access), Some(cert.sha256));
    assert_eq!(kit.certificate_binding(renewed_refresh), Some(cert.sha256));
    assert_eq!(kit.counters().invalid_grant, 2);

    // A token request without a certificate gets unbound tokens, usable without one.
    let (status, tokens) = exchange(&plain, &kit, &client_id).await;
    assert_eq!(status, 200, "{tokens}");
    let unbound = tokens["access_token"].as_str().unwrap();
    assert_eq!(kit.certificate_binding(unbound), None);
    assert_eq!(mcp_ping(&plain, &kit, unbound).await.status().as_u16(), 200);
    assert_eq!(kit.counters().bound_token_refusals, 2);
    assert_eq!(kit.counters().mtls_client_auth_failures, 0);
}

//! RFC 8705 mutual-TLS client authentication: `self_signed_tls_client_auth` and
//! `tls_client_auth` at the token and revocation endpoints, and their registration.

use mcp_app_server_testkit::{
    IssuedCert, Kit, KitConfig, KitMtls, KitTls, PreregisteredClient, TestCa,
};
use serde_json::{Value, json};

use super::common::{REDIRECT, VERIFIER, authorize_url, query_of, start};

/// An HTTPS client trusting `ca`, presenting `cert` when a server asks for one.
pub(super) fn https(ca: &TestCa, cert: Option<&IssuedCert>) -> reqwest::Client {
    let root = reqwest::Certificate::from_pem(ca.cert_pem().as_bytes()).expect("CA PEM");
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only([root]);
    if let Some(cert) = cert {
        let pem = format!("{}{}", cert.key_pem, cert.chain_pem);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).expect("identity"));
    }
    builder.build().expect("client")
}

/// A TLS kit with `mtls`, the client certificates of `client_ca` required at the MCP server.
pub(super) fn config(ca: &TestCa, client_ca: Option<&TestCa>, mtls: KitMtls) -> KitConfig {
    KitConfig {
        tls: Some(KitTls {
            client_ca_pem: client_ca.map(TestCa::cert_pem),
            ..KitTls::from_ca(ca).expect("kit TLS")
        }),
        mtls: Some(mtls),
        client_credentials: true,
        ..KitConfig::default()
    }
}

pub(super) async fn post_form(
    http: &reqwest::Client,
    url: &str,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let response = http.post(url).form(form).send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(super) async fn register(http: &reqwest::Client, kit: &Kit, body: Value) -> (u16, Value) {
    let response = http
        .post(format!("{}/register", kit.issuer()))
        .json(&body)
        .send()
        .await
        .expect("register");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

/// The base64 (standard) DER of a certificate, as `x5c` carries it.
fn x5c_of(cert: &IssuedCert) -> String {
    cert.chain_pem
        .lines()
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect()
}

/// A code for `client_id`, from the authorization step (no client certificate there).
pub(super) async fn code_for(kit: &Kit, client_id: &str) -> String {
    let url = authorize_url(kit, client_id, REDIRECT, &[]);
    let location = mcp_app_server_testkit::authorize_redirect_location(&url)
        .await
        .expect("redirect");
    query_of(&location)["code"].clone()
}

pub(super) async fn exchange(http: &reqwest::Client, kit: &Kit, client_id: &str) -> (u16, Value) {
    let code = code_for(kit, client_id).await;
    let mcp_url = kit.mcp_url();
    post_form(
        http,
        &format!("{}/token", kit.issuer()),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", client_id),
            ("resource", &mcp_url),
        ],
    )
    .await
}

#[tokio::test]
async fn self_signed_client_is_known_by_its_registered_certificate() {
    let ca = TestCa::new("mTLS kit CA").unwrap();
    let mtls = KitMtls {
        self_signed_tls_client_auth: true,
        ..KitMtls::default()
    };
    let kit = start(config(&ca, None, mtls)).await;
    let cert = TestCa::self_signed_client("robot").unwrap();
    let other = TestCa::self_signed_client("robot").unwrap();
    let plain = https(&ca, None);

    let (status, body) = register(
        &plain,
        &kit,
        json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [{"kty": "EC", "x5c": [x5c_of(&cert)]}]},
            "tls_client_certificate_bound_access_tokens": true,
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["token_endpoint_auth_method"],
        "self_signed_tls_client_auth"
    );
    assert_eq!(body["jwks"]["keys"][0]["x5c"][0], x5c_of(&cert).as_str());
    assert_eq!(body["tls_client_certificate_bound_access_tokens"], true);
    assert!(body.get("client_secret").is_none(), "{body}");
    let client_id = body["client_id"].as_str().unwrap().to_owned();

    let (status, body) = exchange(&https(&ca, Some(&other)), &kit, &client_id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("registered")
    );
    let (status, body) = exchange(&plain, &kit, &client_id).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(body["error_description"].as_str().unwrap().contains("none"));
    assert_eq!(kit.counters().mtls_client_auth_failures, 2);

    let with_cert = https(&ca, Some(&cert));
    let (status, tokens) = exchange(&with_cert, &kit, &client_id).await;
    assert_eq!(status, 200, "{tokens}");
    let presented: Vec<_> = kit
        .token_requests()
        .iter()
        .map(|r| r.client_certificate_sha256)
        .collect();
    assert_eq!(presented, [Some(other.sha256), None, Some(cert.sha256)]);
    assert!(kit.token_requests().iter().all(|r| !r.at_alias));
    // No binding unless the kit binds tokens.
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(kit.certificate_binding(access), None);

    let revoke = format!("{}/revoke", kit.issuer());
    let form = [("token", access), ("client_id", client_id.as_str())];
    let (status, body) = post_form(&plain, &revoke, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(kit.counters().mtls_client_auth_failures, 3);
    assert_eq!(post_form(&with_cert, &revoke, &form).await.0, 200);
    assert_eq!(kit.revoked_tokens(), [access]);
}

#[tokio::test]
async fn registration_wants_the_certificate_metadata_of_an_offered_method() {
    let ca = TestCa::new("mTLS kit CA").unwrap();
    let mtls = KitMtls {
        self_signed_tls_client_auth: true,
        ..KitMtls::default()
    };
    let kit = start(config(&ca, None, mtls)).await;
    let plain = https(&ca, None);
    let cases = [
        (
            json!({"token_endpoint_auth_method": "self_signed_tls_client_auth"}),
            "jwks",
        ),
        (
            json!({"token_endpoint_auth_method": "self_signed_tls_client_auth",
                   "jwks": {"keys": [{"x5c": ["bm90IGEgY2VydA=="]}]}}),
            "x5c",
        ),
        // Not offered by this kit.
        (
            json!({"token_endpoint_auth_method": "tls_client_auth",
                   "tls_client_auth_subject_dn": "CN=alice"}),
            "tls_client_auth",
        ),
    ];
    for (mut body, named) in cases {
        body["redirect_uris"] = json!([REDIRECT]);
        let (status, answer) = register(&plain, &kit, body).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"], "invalid_client_metadata");
        let description = answer["error_description"].as_str().unwrap();
        assert!(description.contains(named), "{description}");
    }
}

#[tokio::test]
async fn tls_client_auth_needs_the_client_ca_and_the_registered_subject() {
    let ca = TestCa::new("mTLS kit CA").unwrap();
    let clients = TestCa::new("mTLS client CA").unwrap();
    let stranger = TestCa::new("Another client CA").unwrap();
    let mtls = KitMtls {
        tls_client_auth: true,
        ..KitMtls::default()
    };
    let kit = start(KitConfig {
        preregistered: vec![PreregisteredClient::tls_client_auth(
            "alice-app",
            " cn = alice",
            &[],
        )],
        ..config(&ca, Some(&clients), mtls)
    })
    .await;
    let token = format!("{}/token", kit.issuer());
    let mcp_url = kit.mcp_url();
    let grant = [
        ("grant_type", "client_credentials"),
        ("client_id", "alice-app"),
        ("resource", mcp_url.as_str()),
    ];
    let alice = clients.client("alice").unwrap();
    let (status, body) = post_form(&https(&ca, Some(&alice)), &token, &grant).await;
    assert_eq!(status, 200, "{body}");

    let bob = clients.client("bob").unwrap();
    let (status, body) = post_form(&https(&ca, Some(&bob)), &token, &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("CN=bob")
    );

    let forged = stranger.client("alice").unwrap();
    let (status, body) = post_form(&https(&ca, Some(&forged)), &token, &grant).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("client CA")
    );
    assert_eq!(kit.counters().mtls_client_auth_failures, 2);

    // A secret besides the certificate is a second method, not a certificate failure.
    let mut with_secret = grant.to_vec();
    with_secret.push(("client_secret", "s3cret"));
    let (status, _) = post_form(&https(&ca, Some(&alice)), &token, &with_secret).await;
    assert_eq!(status, 401);
    let response = https(&ca, Some(&alice))
        .post(&token)
        .basic_auth("alice-app", Some("s3cret"))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(kit.counters().mtls_client_auth_failures, 2);

    let plain = https(&ca, None);
    let (status, body) = register(
        &plain,
        &kit,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "tls_client_auth"}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("tls_client_auth_subject_dn")
    );
    let (status, body) = register(
        &plain,
        &kit,
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "tls_client_auth",
               "tls_client_auth_subject_dn": "CN=alice"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["tls_client_auth_subject_dn"], "CN=alice");
    let (status, body) = exchange(
        &https(&ca, Some(&alice)),
        &kit,
        body["client_id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

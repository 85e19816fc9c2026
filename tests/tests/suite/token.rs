//! Token endpoint, registration and revocation.

use mcp_app_server_testkit::{KitConfig, PreregisteredClient};
use serde_json::{Value, json};

use super::common::{
    REDIRECT, VERIFIER, exchange_code, get_code, http, login, mcp_status, refresh, register_public,
    start, str_of, token_request,
};

#[tokio::test]
async fn pkce_mismatch_is_invalid_grant_and_burns_the_code() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, REDIRECT).await;
    let code = get_code(&kit, &client_id, REDIRECT).await;
    let mcp_url = kit.mcp_url();
    let wrong_verifier = "x".repeat(43);
    let (status, body) = token_request(
        &kit,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &wrong_verifier),
            ("client_id", &client_id),
            ("resource", &mcp_url),
        ],
        None,
    )
    .await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let (status, body) = exchange_code(&kit, &client_id, &code, REDIRECT).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    assert_eq!(kit.counters().invalid_grant, 2);
    assert_eq!(kit.counters().token_code, 2);
}

#[tokio::test]
async fn public_client_sending_basic_is_refused_and_the_code_burned() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, REDIRECT).await;
    let code = get_code(&kit, &client_id, REDIRECT).await;
    let mcp_url = kit.mcp_url();
    let (status, body) = token_request(
        &kit,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("resource", &mcp_url),
        ],
        Some((&client_id, "")),
    )
    .await;
    assert_eq!((status, str_of(&body, "error")), (401, "invalid_client"));
    let record = kit.last_token_request().expect("recorded");
    assert!(record.authorization_header);
    assert_eq!(record.basic_client_id.as_deref(), Some(client_id.as_str()));
    let (status, body) = exchange_code(&kit, &client_id, &code, REDIRECT).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
}

#[tokio::test]
async fn code_is_single_use_and_a_replay_revokes_its_tokens() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, REDIRECT).await;
    let code = get_code(&kit, &client_id, REDIRECT).await;
    let (status, tokens) = exchange_code(&kit, &client_id, &code, REDIRECT).await;
    assert_eq!(status, 200);
    assert_eq!(str_of(&tokens, "token_type"), "Bearer");
    assert_eq!(tokens["expires_in"], json!(3600));
    assert_eq!(str_of(&tokens, "scope"), "mcp:read offline_access");
    assert!(tokens["refresh_token"].is_string());
    let record = kit.last_token_request().expect("recorded");
    assert!(!record.authorization_header);
    assert_eq!(record.form.get("resource"), Some(&kit.mcp_url()));
    assert_eq!(mcp_status(&kit, str_of(&tokens, "access_token")).await, 200);

    let (status, body) = exchange_code(&kit, &client_id, &code, REDIRECT).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    assert_eq!(mcp_status(&kit, str_of(&tokens, "access_token")).await, 401);
    let (status, _) = refresh(&kit, &client_id, str_of(&tokens, "refresh_token")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn redirect_uri_and_resource_must_match_the_authorization_request() {
    let kit = start(KitConfig::default()).await;
    let client_id = register_public(&kit, "http://127.0.0.1/callback/abc").await;
    let mcp_url = kit.mcp_url();
    let other_resource = format!("{}/other", kit.mcp_url());
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        // Port differs from the one used at /authorize: exact match required here.
        (
            "http://127.0.0.1:45679/callback/abc",
            Some(&mcp_url),
            "invalid_grant",
        ),
        (REDIRECT, None, "invalid_target"),
        (REDIRECT, Some(&other_resource), "invalid_target"),
    ];
    for (redirect, resource, error) in cases {
        let code = get_code(&kit, &client_id, REDIRECT).await;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
            ("client_id", client_id.as_str()),
        ];
        if let Some(resource) = resource {
            form.push(("resource", resource));
        }
        let (status, body) = token_request(&kit, &form, None).await;
        assert_eq!(
            (status, str_of(&body, "error")),
            (400, error),
            "{redirect} {resource:?}"
        );
    }
}

#[tokio::test]
async fn confidential_clients_authenticate_with_their_registered_method() {
    let kit = start(KitConfig {
        preregistered: vec![
            PreregisteredClient::confidential(
                "basic id:1",
                "s3cret&+%",
                "client_secret_basic",
                &[REDIRECT],
            ),
            PreregisteredClient::confidential(
                "post-client",
                "p0st",
                "client_secret_post",
                &[REDIRECT],
            ),
        ],
        ..KitConfig::default()
    })
    .await;
    let mcp_url = kit.mcp_url();
    let form = |code: &str| {
        vec![
            ("grant_type".to_owned(), "authorization_code".to_owned()),
            ("code".to_owned(), code.to_owned()),
            ("redirect_uri".to_owned(), REDIRECT.to_owned()),
            ("code_verifier".to_owned(), VERIFIER.to_owned()),
            ("resource".to_owned(), mcp_url.clone()),
        ]
    };
    let send = async |fields: Vec<(String, String)>, basic: Option<(&str, &str)>| {
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        token_request(&kit, &pairs, basic).await
    };

    // RFC 6749 2.3.1: id and secret are form-urlencoded before going into the header.
    let code = get_code(&kit, "basic id:1", REDIRECT).await;
    let (status, body) = send(form(&code), Some(("basic+id%3A1", "s3cret%26%2B%25"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        kit.last_token_request()
            .and_then(|r| r.basic_client_id)
            .as_deref(),
        Some("basic id:1")
    );

    let code = get_code(&kit, "basic id:1", REDIRECT).await;
    let mut in_body = form(&code);
    in_body.push(("client_id".into(), "basic id:1".into()));
    in_body.push(("client_secret".into(), "s3cret&+%".into()));
    let (status, body) = send(in_body, None).await;
    assert_eq!((status, str_of(&body, "error")), (401, "invalid_client"));

    let code = get_code(&kit, "post-client", REDIRECT).await;
    let mut post = form(&code);
    post.push(("client_id".into(), "post-client".into()));
    post.push(("client_secret".into(), "p0st".into()));
    assert_eq!(send(post, None).await.0, 200);

    let code = get_code(&kit, "post-client", REDIRECT).await;
    let (status, body) = send(form(&code), Some(("post-client", "p0st"))).await;
    assert_eq!((status, str_of(&body, "error")), (401, "invalid_client"));

    let code = get_code(&kit, "post-client", REDIRECT).await;
    let mut wrong = form(&code);
    wrong.push(("client_id".into(), "post-client".into()));
    wrong.push(("client_secret".into(), "nope".into()));
    assert_eq!(send(wrong, None).await.0, 401);
}

#[tokio::test]
async fn dynamic_registration_validates_and_echoes_metadata() {
    let kit = start(KitConfig::default()).await;
    let register = async |body: Value| {
        let response = http()
            .post(format!("{}/register", kit.issuer()))
            .json(&body)
            .send()
            .await
            .expect("register");
        let status = response.status().as_u16();
        (status, response.json::<Value>().await.expect("json"))
    };
    let (status, public) = register(json!({
        "client_name": "ide", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"], "application_type": "native",
    }))
    .await;
    assert_eq!(status, 201);
    assert!(public["client_id"].is_string() && public["client_id_issued_at"].is_u64());
    assert!(public.get("client_secret").is_none());
    assert_eq!(public["client_name"], json!("ide"));
    assert_eq!(public["redirect_uris"], json!([REDIRECT]));
    assert_eq!(
        public["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    assert_eq!(public["application_type"], json!("native"));

    // RFC 7591: an omitted method is client_secret_basic, which gets a secret.
    let (status, confidential) = register(json!({"redirect_uris": [REDIRECT]})).await;
    assert_eq!(status, 201);
    assert_eq!(
        confidential["token_endpoint_auth_method"],
        json!("client_secret_basic")
    );
    assert!(confidential["client_secret"].is_string());

    let (status, body) = register(json!({"client_name": "no redirects"})).await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (400, "invalid_redirect_uri")
    );
    let (status, body) = register(
        json!({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}),
    )
    .await;
    assert_eq!(
        (status, str_of(&body, "error")),
        (400, "invalid_client_metadata")
    );
    assert_eq!(kit.registered_clients().len(), 4);
    assert_eq!(kit.registered_clients()[0]["client_name"], json!("ide"));
}

#[tokio::test]
async fn rotated_refresh_token_replay_revokes_the_family() {
    let kit = start(KitConfig::default()).await;
    let (client_id, tokens) = login(&kit).await;
    let first = str_of(&tokens, "refresh_token").to_owned();
    let (status, renewed) = refresh(&kit, &client_id, &first).await;
    assert_eq!(status, 200, "{renewed}");
    let second = str_of(&renewed, "refresh_token").to_owned();
    assert_ne!(first, second);
    assert_eq!(
        mcp_status(&kit, str_of(&renewed, "access_token")).await,
        200
    );

    let (status, body) = refresh(&kit, &client_id, &first).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    let (status, body) = refresh(&kit, &client_id, &second).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    assert_eq!(
        mcp_status(&kit, str_of(&renewed, "access_token")).await,
        401
    );
    let counters = kit.counters();
    assert_eq!((counters.token_refresh, counters.invalid_grant), (3, 2));
}

#[tokio::test]
async fn refresh_without_rotation_needs_resource_and_cannot_widen_scope() {
    let kit = start(KitConfig {
        rotate_refresh_tokens: false,
        ..KitConfig::default()
    })
    .await;
    let (client_id, tokens) = login(&kit).await;
    let rt = str_of(&tokens, "refresh_token").to_owned();
    for _ in 0..2 {
        let (status, renewed) = refresh(&kit, &client_id, &rt).await;
        assert_eq!(status, 200);
        assert!(
            renewed.get("refresh_token").is_none(),
            "the client keeps its refresh token"
        );
    }
    let mcp_url = kit.mcp_url();
    let base = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", client_id.as_str()),
    ];
    let (status, body) = token_request(&kit, &base, None).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_target"));
    let mut narrower = base.to_vec();
    narrower.extend([("resource", mcp_url.as_str()), ("scope", "mcp:read")]);
    let (status, body) = token_request(&kit, &narrower, None).await;
    assert_eq!((status, str_of(&body, "scope")), (200, "mcp:read"));
    let mut wider = base.to_vec();
    wider.extend([
        ("resource", mcp_url.as_str()),
        ("scope", "mcp:read mcp:write"),
    ]);
    let (status, body) = token_request(&kit, &wider, None).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_scope"));
}

#[tokio::test]
async fn revocation_and_server_side_logout() {
    let kit = start(KitConfig::default()).await;
    let (client_id, tokens) = login(&kit).await;
    let rt = str_of(&tokens, "refresh_token");
    let at = str_of(&tokens, "access_token");
    let revoke = async |token: &str| {
        http()
            .post(format!("{}/revoke", kit.issuer()))
            .form(&[
                ("token", token),
                ("token_type_hint", "refresh_token"),
                ("client_id", &client_id),
            ])
            .send()
            .await
            .expect("revoke")
            .status()
            .as_u16()
    };
    assert_eq!(revoke("never-issued").await, 200);
    assert!(kit.revoked_tokens().is_empty());
    assert_eq!(revoke(rt).await, 200);
    assert_eq!(kit.revoked_tokens(), vec![rt.to_owned()]);
    assert_eq!(refresh(&kit, &client_id, rt).await.0, 400);
    assert_eq!(
        mcp_status(&kit, at).await,
        401,
        "revoking a refresh token revokes its access tokens"
    );
    assert_eq!(kit.counters().revoke, 2);

    let (client_id, tokens) = login(&kit).await;
    assert_eq!(mcp_status(&kit, str_of(&tokens, "access_token")).await, 200);
    kit.invalidate_all_tokens();
    let (status, body) = refresh(&kit, &client_id, str_of(&tokens, "refresh_token")).await;
    assert_eq!((status, str_of(&body, "error")), (400, "invalid_grant"));
    assert_eq!(mcp_status(&kit, str_of(&tokens, "access_token")).await, 401);
}

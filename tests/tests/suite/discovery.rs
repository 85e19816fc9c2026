//! PRM, challenges and authorization server metadata locations.

use mcp_app_server_testkit::{KitConfig, PrmMode};
use serde_json::json;

use super::common::{get_json, http, mcp_post, start, www_authenticate};

#[tokio::test]
async fn default_challenge_points_at_path_form_prm() {
    let kit = start(KitConfig::default()).await;
    let response = mcp_post(
        &kit,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(
        www_authenticate(&response),
        format!("Bearer resource_metadata=\"{}\"", kit.prm_url())
    );
    assert_ne!(
        kit.as_origin(),
        kit.rs_origin(),
        "AS and RS listen on different ports"
    );

    let (status, prm) = get_json(&kit.prm_url()).await;
    assert_eq!(status, 200);
    assert_eq!(
        prm,
        json!({
            "resource": kit.mcp_url(),
            "authorization_servers": [kit.issuer()],
            "scopes_supported": ["mcp:read", "mcp:write", "offline_access"],
            "bearer_methods_supported": ["header"],
            "resource_name": "mcp-app-server test kit",
        })
    );
    assert_eq!(get_json(&kit.prm_root_url()).await.0, 404);
    let counters = kit.counters();
    assert_eq!(
        (counters.mcp, counters.prm_path, counters.prm_root),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn issuer_with_path_serves_every_metadata_location() {
    let kit = start(KitConfig {
        issuer_path: Some("/tenant1".into()),
        ..KitConfig::default()
    })
    .await;
    let issuer = kit.issuer();
    let origin = kit.as_origin();
    assert_eq!(issuer, format!("{origin}/tenant1"));
    for url in [
        format!("{origin}/.well-known/oauth-authorization-server/tenant1"),
        format!("{origin}/.well-known/openid-configuration/tenant1"),
        format!("{origin}/tenant1/.well-known/openid-configuration"),
    ] {
        let (status, doc) = get_json(&url).await;
        assert_eq!(status, 200, "{url}");
        assert_eq!(doc["issuer"], json!(issuer));
        assert_eq!(
            doc["authorization_endpoint"],
            json!(format!("{issuer}/authorize"))
        );
        assert_eq!(doc["token_endpoint"], json!(format!("{issuer}/token")));
        assert_eq!(
            doc["registration_endpoint"],
            json!(format!("{issuer}/register"))
        );
        assert_eq!(
            doc["revocation_endpoint"],
            json!(format!("{issuer}/revoke"))
        );
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(
            doc["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(
            doc["token_endpoint_auth_methods_supported"],
            json!(["none", "client_secret_basic", "client_secret_post"])
        );
        assert!(doc.get("client_id_metadata_document_supported").is_none());
    }
    // The issuer has a path, so the path-less locations are not this issuer's.
    assert_eq!(
        get_json(&format!("{origin}/.well-known/oauth-authorization-server"))
            .await
            .0,
        404
    );
    assert_eq!(
        get_json(&format!("{origin}/.well-known/openid-configuration"))
            .await
            .0,
        404
    );
    let counters = kit.counters();
    assert_eq!(
        (counters.as_metadata_oauth, counters.as_metadata_openid),
        (1, 2)
    );
}

#[tokio::test]
async fn metadata_switches_change_the_documents() {
    let kit = start(KitConfig {
        s256_advertised: false,
        cimd: true,
        cimd_flag_only_in_openid: true,
        wrong_issuer: true,
        dcr: false,
        revocation: false,
        publish_oauth_metadata: true,
        ..KitConfig::default()
    })
    .await;
    let origin = kit.as_origin();
    let (_, oauth) = get_json(&format!("{origin}/.well-known/oauth-authorization-server")).await;
    let (_, openid) = get_json(&format!("{origin}/.well-known/openid-configuration")).await;
    assert!(oauth.get("code_challenge_methods_supported").is_none());
    assert!(oauth.get("client_id_metadata_document_supported").is_none());
    assert_eq!(openid["client_id_metadata_document_supported"], json!(true));
    assert!(oauth.get("registration_endpoint").is_none());
    assert!(oauth.get("revocation_endpoint").is_none());
    assert_ne!(oauth["issuer"], json!(kit.issuer()));
    assert_ne!(openid["issuer"], json!(kit.issuer()));
    let register = http()
        .post(format!("{}/register", kit.issuer()))
        .json(&json!({"redirect_uris": ["http://127.0.0.1/cb"]}))
        .send()
        .await
        .expect("register");
    assert_eq!(register.status().as_u16(), 404);

    let hidden = start(KitConfig {
        publish_oauth_metadata: false,
        publish_openid_metadata: false,
        ..KitConfig::default()
    })
    .await;
    let origin = hidden.as_origin();
    assert_eq!(
        get_json(&format!("{origin}/.well-known/oauth-authorization-server"))
            .await
            .0,
        404
    );
    assert_eq!(
        get_json(&format!("{origin}/.well-known/openid-configuration"))
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn prm_modes_move_the_metadata_and_the_challenge() {
    let path_only = start(KitConfig {
        prm: PrmMode::PathOnly,
        challenge_scope: Some("mcp:read mcp:write".into()),
        prm_resource_override: Some("https://evil.example/mcp".into()),
        ..KitConfig::default()
    })
    .await;
    let response = mcp_post(
        &path_only,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(
        www_authenticate(&response),
        "Bearer scope=\"mcp:read mcp:write\""
    );
    let (status, prm) = get_json(&path_only.prm_url()).await;
    assert_eq!(status, 200);
    assert_eq!(prm["resource"], json!("https://evil.example/mcp"));
    assert_eq!(get_json(&path_only.prm_root_url()).await.0, 404);

    let root_only = start(KitConfig {
        prm: PrmMode::RootOnly,
        ..KitConfig::default()
    })
    .await;
    let response = mcp_post(
        &root_only,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(www_authenticate(&response), "Bearer");
    assert_eq!(get_json(&root_only.prm_url()).await.0, 404);
    let (status, prm) = get_json(&root_only.prm_root_url()).await;
    assert_eq!(status, 200);
    assert_eq!(prm["resource"], json!(root_only.mcp_url()));

    let legacy = start(KitConfig {
        prm: PrmMode::None,
        ..KitConfig::default()
    })
    .await;
    assert_eq!(legacy.as_origin(), legacy.rs_origin());
    assert_eq!(legacy.issuer(), legacy.rs_origin());
    let response = mcp_post(
        &legacy,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}),
    )
    .await;
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(www_authenticate(&response), "Bearer");
    assert_eq!(get_json(&legacy.prm_url()).await.0, 404);
    assert_eq!(get_json(&legacy.prm_root_url()).await.0, 404);
    let (status, doc) = get_json(&format!(
        "{}/.well-known/oauth-authorization-server",
        legacy.rs_origin()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        doc["authorization_endpoint"],
        json!(format!("{}/authorize", legacy.rs_origin()))
    );
}

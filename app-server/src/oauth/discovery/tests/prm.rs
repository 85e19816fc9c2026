//! Protected resource metadata: the path form, the root, a `resource_metadata` hint, the
//! `resource` sent verbatim, and a PRM for another resource refused.

use super::*;

#[tokio::test]
async fn discovers_through_path_prm_without_asking_the_root() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = auth.base.as_str().trim_end_matches('/').to_string();
    let mcp = mcp_server(Some("Bearer scope=\"read\"".into()), move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
    })
    .await;
    let cache = DiscoveryCache::new();
    let found = run(&mcp, &cache).await.unwrap();
    assert!(!found.legacy);
    assert_eq!(found.resource, mcp.url("/mcp").as_str());
    assert_eq!(found.issuer, auth.base.as_str().trim_end_matches('/'));
    assert_eq!(found.metadata.token_endpoint, auth.url("/token"));
    assert_eq!(found.challenge.unwrap().scope.as_deref(), Some("read"));
    assert_eq!(
        found.protected_resource.unwrap().scopes_supported,
        Some(vec!["read".to_string()])
    );
    assert_eq!(mcp.count("/.well-known/oauth-protected-resource"), 0);
    assert_eq!(mcp.count("/.well-known/oauth-protected-resource/mcp"), 1);
    // The probe is a 2026-07-28 server/discover accepting JSON and event streams, with
    // the request metadata headers equal to its `_meta`; the 401 ends probing.
    let requests = mcp.requests();
    let probe = requests.iter().find(|r| r.path == "/mcp").unwrap();
    assert_eq!(probe.method, "POST");
    assert_eq!(probe.json()["method"], "server/discover");
    assert_eq!(
        probe.headers.get("accept").unwrap(),
        "application/json, text/event-stream"
    );
    assert_eq!(
        probe.headers.get("mcp-protocol-version").unwrap(),
        "2026-07-28"
    );
    assert_eq!(probe.headers.get("mcp-method").unwrap(), "server/discover");
    let meta = &probe.json()["params"]["_meta"];
    assert_eq!(
        meta["io.modelcontextprotocol/protocolVersion"],
        "2026-07-28"
    );
    assert!(meta["io.modelcontextprotocol/clientCapabilities"].is_object());
    assert!(probe.headers.get("authorization").is_none());
    assert_eq!(mcp.count("/mcp"), 1);
}

#[tokio::test]
async fn root_prm_is_asked_when_the_path_form_is_missing() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = issuer_of(&auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource").then(|| {
            // A pathless resource identifier, as a root PRM usually publishes it.
            let resource = base.as_str().trim_end_matches('/');
            json(
                200,
                json!({"resource": resource, "authorization_servers": [issuer]}),
            )
        })
    })
    .await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    let prm_paths: Vec<String> = mcp
        .paths()
        .into_iter()
        .filter(|p| p.starts_with("/.well-known/oauth-protected-resource"))
        .collect();
    assert_eq!(
        prm_paths,
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/.well-known/oauth-protected-resource"
        ]
    );
    assert_eq!(found.issuer, issuer_of(&auth.base));
    // Rule 15 (2026-07-28): the PRM's `resource` exactly as published, not the server
    // URL and not re-serialised with a `/` appended.
    assert_eq!(found.resource, issuer_of(&mcp.base));
}

#[tokio::test]
async fn the_prm_resource_is_sent_verbatim_and_the_override_wins() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = issuer_of(&auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp").then(|| {
            json(
                200,
                json!({"resource": format!("{base}"), "authorization_servers": [issuer]}),
            )
        })
    })
    .await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    // Published with its `/`: kept, although the canonical server URL would be `/mcp`.
    assert_eq!(found.resource, mcp.base.as_str());
    let overridden = discover(
        &HttpClient::for_tests(),
        &mcp.url("/mcp"),
        &HeaderMap::new(),
        Some("https://configured.example/mcp"),
        Overrides::NONE,
        &DiscoveryCache::new(),
    )
    .await
    .unwrap();
    assert_eq!(overridden.resource, "https://configured.example/mcp");
}

#[tokio::test]
async fn a_resource_metadata_hint_elsewhere_is_followed() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = issuer_of(&auth.base);
    let mcp = serve(move |req, base| match req.path.as_str() {
        "/mcp" => with_headers(
            401,
            &[(
                "www-authenticate",
                &format!(
                    "Basic realm=\"x\", Bearer resource_metadata=\"{}custom/prm.json\"",
                    base
                ),
            )],
            "",
        ),
        "/custom/prm.json" => json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)),
        _ => status(404),
    })
    .await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    assert_eq!(
        found.protected_resource_url,
        Some(mcp.url("/custom/prm.json"))
    );
    // The first well-known location was asked with the probe (it missed); the hint came
    // next; the root location never. (The origin's authorization server metadata, asked
    // speculatively at most once each, went unused: the PRM names another issuer.)
    let speculative = |p: &String| {
        p == "/.well-known/oauth-authorization-server" || p == "/.well-known/openid-configuration"
    };
    let all = mcp.paths();
    assert!(
        all.iter().filter(|p| speculative(p)).count() <= 2,
        "{all:?}"
    );
    let mut paths: Vec<String> = all.into_iter().filter(|p| !speculative(p)).collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/.well-known/oauth-protected-resource/mcp",
            "/custom/prm.json",
            "/mcp"
        ]
    );
}

#[tokio::test]
async fn missing_hinted_prm_is_an_error() {
    let mcp = serve(|req, base| match req.path.as_str() {
        "/mcp" => with_headers(
            401,
            &[(
                "www-authenticate",
                &format!("Bearer resource_metadata=\"{base}gone\""),
            )],
            "",
        ),
        _ => status(404),
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::ProtectedResourceNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/gone"), "{err}");
}

#[tokio::test]
async fn prm_for_another_resource_is_refused() {
    let mcp = mcp_server(None, |req, _| {
        (req.path == "/.well-known/oauth-protected-resource/mcp").then(|| {
            json(
                200,
                json!({
                    "resource": "https://evil.example/mcp",
                    "authorization_servers": ["https://evil.example"],
                }),
            )
        })
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::ResourceMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("evil.example"), "{err}");

    let mcp = mcp_server(None, |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp").then(|| {
            json(
                200,
                json!({"resource": base.join("/mcp").unwrap(), "authorization_servers": []}),
            )
        })
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::NoAuthorizationServers { .. }),
        "{err:?}"
    );
}

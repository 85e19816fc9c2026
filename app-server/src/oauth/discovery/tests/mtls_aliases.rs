//! `mtls_endpoint_aliases` (RFC 8705 §5, rule 42): a server that presents a client
//! certificate uses them; one that does not keeps the regular endpoints; a configured
//! endpoint wins over both; an alias is held to the same rules as any endpoint.

use super::*;
use crate::config::EscapeHatches;

/// An authorization server whose metadata has `aliases` (a JSON value) and says it binds
/// tokens, and an MCP server naming it.
async fn server_with_aliases(aliases: serde_json::Value) -> (TestServer, TestServer) {
    server_with(move |doc, base| {
        doc["mtls_endpoint_aliases"] = aliases.clone();
        doc["tls_client_certificate_bound_access_tokens"] = json!(true);
        doc["revocation_endpoint"] = json!(base.join("/revoke").unwrap().to_string());
    })
    .await
}

/// An authorization server whose metadata is [`as_doc`] as `edit` changes it, and an MCP
/// server naming it.
async fn server_with<F>(edit: F) -> (TestServer, TestServer)
where
    F: Fn(&mut serde_json::Value, &Url) + Send + Sync + 'static,
{
    let auth = serve(move |req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            edit(&mut doc, base);
            json(200, doc)
        }
        _ => status(404),
    })
    .await;
    let issuer = issuer_of(&auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
    })
    .await;
    (auth, mcp)
}

async fn run(
    mcp: &TestServer,
    hatches: &EscapeHatches,
    mutual_tls: bool,
    cache: &DiscoveryCache,
) -> Result<Discovery, DiscoveryError> {
    discover(
        &HttpClient::for_tests(),
        &mcp.url("/mcp"),
        &HeaderMap::new(),
        None,
        Overrides::new("corp", hatches).with_mutual_tls(mutual_tls),
        cache,
    )
    .await
}

#[tokio::test]
async fn a_client_with_a_certificate_uses_the_aliases_and_one_without_does_not() {
    let (_auth, mcp) = server_with_aliases(json!({
        "token_endpoint": "https://mtls.as.example/token",
        "revocation_endpoint": "https://mtls.as.example/revoke",
        "registration_endpoint": "https://mtls.as.example/register",
        "introspection_endpoint": "https://mtls.as.example/introspect",
        "userinfo_endpoint": 42,
    }))
    .await;
    // One cache for both: a discovery with the aliases must never serve one without.
    let cache = DiscoveryCache::new();
    let hatches = EscapeHatches::default();
    let with = run(&mcp, &hatches, true, &cache).await.unwrap();
    let m = &with.metadata;
    assert_eq!(m.token_endpoint.as_str(), "https://mtls.as.example/token");
    assert_eq!(
        m.revocation_endpoint.as_ref().unwrap().as_str(),
        "https://mtls.as.example/revoke"
    );
    assert_eq!(
        m.registration_endpoint.as_ref().unwrap().as_str(),
        "https://mtls.as.example/register"
    );
    assert!(m.tls_client_certificate_bound_access_tokens);
    // The browser's endpoint has no alias.
    assert!(m.authorization_endpoint.path().ends_with("/authorize"));

    let without = run(&mcp, &hatches, false, &cache).await.unwrap();
    assert!(
        !without.cached,
        "a discovery with aliases served one without"
    );
    let m = &without.metadata;
    assert!(m.token_endpoint.path().ends_with("/token"));
    assert_ne!(m.token_endpoint.host_str(), Some("mtls.as.example"));
    assert!(
        m.revocation_endpoint
            .as_ref()
            .unwrap()
            .path()
            .ends_with("/revoke")
    );

    // A configured endpoint wins over the alias.
    let hatches = EscapeHatches {
        token_endpoint: Some(Url::parse("https://configured.example/token").unwrap()),
        ..Default::default()
    };
    let configured = run(&mcp, &hatches, true, &cache).await.unwrap();
    assert_eq!(
        configured.metadata.token_endpoint.as_str(),
        "https://configured.example/token"
    );
    assert_eq!(
        configured
            .metadata
            .revocation_endpoint
            .as_ref()
            .unwrap()
            .as_str(),
        "https://mtls.as.example/revoke"
    );
}

#[tokio::test]
async fn aliases_that_are_no_object_or_no_urls_leave_the_endpoints_alone() {
    for aliases in [
        json!("https://mtls.as.example/token"),
        json!(["https://mtls.as.example/token"]),
        json!(null),
        json!({"token_endpoint": "not a url", "revocation_endpoint": {"x": 1}}),
        json!({"token_endpoint": format!("https://mtls.as.example/{}", "a".repeat(4096))}),
    ] {
        let (_auth, mcp) = server_with_aliases(aliases.clone()).await;
        let found = run(
            &mcp,
            &EscapeHatches::default(),
            true,
            &DiscoveryCache::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{aliases}: {e}"));
        assert!(
            found.metadata.token_endpoint.path().ends_with("/token")
                && found.metadata.token_endpoint.host_str() != Some("mtls.as.example"),
            "{aliases}"
        );
    }
}

#[tokio::test]
async fn an_alias_over_plain_http_is_refused_like_any_endpoint() {
    let (_auth, mcp) = server_with_aliases(json!({
        "token_endpoint": "http://mtls.as.example/token",
    }))
    .await;
    let err = run(
        &mcp,
        &EscapeHatches::default(),
        true,
        &DiscoveryCache::new(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            &err,
            DiscoveryError::InsecureEndpoint {
                field: "token_endpoint",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_binding_flag_that_is_no_boolean_is_false_not_a_refusal() {
    for (flag, binds) in [
        (json!(true), true),
        (json!("true"), false),
        (json!(1), false),
        (json!({"x": [1, 2]}), false),
        (json!(null), false),
    ] {
        let (_auth, mcp) = server_with(move |doc, _| {
            doc["tls_client_certificate_bound_access_tokens"] = flag.clone();
        })
        .await;
        let found = run(
            &mcp,
            &EscapeHatches::default(),
            true,
            &DiscoveryCache::new(),
        )
        .await
        .unwrap();
        assert_eq!(
            found.metadata.tls_client_certificate_bound_access_tokens,
            binds
        );
    }
}

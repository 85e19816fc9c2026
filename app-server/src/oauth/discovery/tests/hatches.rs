//! Escape hatches (rules 60-64): each relaxes one check, for the server it is configured
//! for, and records itself in the result.

use super::*;
use crate::config::EscapeHatches;

/// An MCP server whose PRM names `as_issuer`.
async fn mcp_naming(as_issuer: String) -> TestServer {
    mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &as_issuer)))
    })
    .await
}

async fn run_with(
    server: &TestServer,
    hatches: &EscapeHatches,
) -> Result<Discovery, DiscoveryError> {
    discover(
        &HttpClient::for_tests(),
        &server.url("/mcp"),
        &HeaderMap::new(),
        None,
        Overrides::new("atl", hatches),
        &DiscoveryCache::new(),
    )
    .await
}

#[tokio::test]
async fn a_configured_issuer_accepts_exactly_that_mismatch() {
    // The document at the issuer's well-known location names `<origin>/tenant`.
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            doc["issuer"] = json!(format!("{}/tenant", issuer_of(base)));
            json(200, doc)
        }
        _ => status(404),
    })
    .await;
    let tenant = format!("{}/tenant", issuer_of(&auth.base));
    let mcp = mcp_naming(issuer_of(&auth.base)).await;

    let err = run_with(&mcp, &EscapeHatches::default()).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "set `issuer = \"{tenant}\"` under [mcp_servers.atl.oauth]"
        )),
        "{text}"
    );

    let other = EscapeHatches {
        issuer: Some(format!("{tenant}/")),
        ..Default::default()
    };
    let err = run_with(&mcp, &other).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::IssuerMismatch { .. }),
        "{err:?}"
    );

    let hatches = EscapeHatches {
        issuer: Some(tenant.clone()),
        ..Default::default()
    };
    let found = run_with(&mcp, &hatches).await.unwrap();
    assert_eq!(found.issuer, tenant);
    assert_eq!(found.metadata.issuer, tenant);
    assert_eq!(found.escape_hatches, ["issuer"]);
}

#[tokio::test]
async fn documents_of_the_issuer_asked_for_win_over_the_configured_one() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            doc["issuer"] = json!("https://elsewhere.example");
            json(200, doc)
        }
        "/.well-known/openid-configuration" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let mcp = mcp_naming(issuer_of(&auth.base)).await;
    let hatches = EscapeHatches {
        issuer: Some("https://elsewhere.example".into()),
        ..Default::default()
    };
    let found = run_with(&mcp, &hatches).await.unwrap();
    assert_eq!(found.issuer, issuer_of(&auth.base));
    assert!(
        found.escape_hatches.is_empty(),
        "{:?}",
        found.escape_hatches
    );
}

#[tokio::test]
async fn a_configured_document_replaces_the_well_known_ones() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/custom/meta.json" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let mcp = mcp_naming(issuer_of(&auth.base)).await;
    let err = run_with(&mcp, &EscapeHatches::default()).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::NoMetadata { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("`authorization_server_metadata_url`")
    );

    let hatches = EscapeHatches {
        authorization_server_metadata_url: Some(auth.url("/custom/meta.json")),
        ..Default::default()
    };
    let asked_before = auth.requests().len();
    let found = run_with(&mcp, &hatches).await.unwrap();
    assert_eq!(found.escape_hatches, ["authorization_server_metadata_url"]);
    let asked: Vec<String> = auth.requests()[asked_before..]
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(asked, ["/custom/meta.json"]);
}

#[tokio::test]
async fn configured_endpoints_complete_and_replace_the_documents() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            doc.as_object_mut().unwrap().remove("token_endpoint");
            json(200, doc)
        }
        _ => status(404),
    })
    .await;
    let mcp = mcp_naming(issuer_of(&auth.base)).await;
    let err = run_with(&mcp, &EscapeHatches::default()).await.unwrap_err();
    let DiscoveryError::MissingEndpoint { field, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*field, "token_endpoint");

    let hatches = EscapeHatches {
        token_endpoint: Some(auth.url("/oauth/token")),
        registration_endpoint: Some(auth.url("/oauth/register")),
        ..Default::default()
    };
    let found = run_with(&mcp, &hatches).await.unwrap();
    assert_eq!(found.metadata.token_endpoint, auth.url("/oauth/token"));
    assert_eq!(
        found.metadata.registration_endpoint,
        Some(auth.url("/oauth/register"))
    );
    assert_eq!(
        found.escape_hatches,
        ["token_endpoint", "registration_endpoint"]
    );
}

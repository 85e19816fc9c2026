//! Authorization server metadata: the issuer check, the locations in order and merged,
//! PKCE S256, and the legacy fallbacks.

use super::*;

#[tokio::test]
async fn an_issuer_that_matches_only_after_normalisation_is_refused() {
    // Rule 26: the PRM names `http://127.0.0.1:P/` and the document says
    // `http://127.0.0.1:P`: a different string, so the metadata is not used.
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let for_prm = auth.base.to_string();
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &for_prm)))
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    let DiscoveryError::IssuerMismatch {
        expected, found, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected, auth.base.as_str());
    assert_eq!(found, &issuer_of(&auth.base));

    // Upper-case host in the document against a lower-case issuer: refused as well.
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            doc["issuer"] = json!(issuer_of(base).replace("http://", "HTTP://"));
            json(200, doc)
        }
        _ => status(404),
    })
    .await;
    let for_prm = issuer_of(&auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &for_prm)))
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::IssuerMismatch { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn metadata_order_merge_and_no_root_for_path_issuers() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server/t1" => {
            let mut doc = as_doc(base, "/t1");
            doc.as_object_mut().unwrap().remove("registration_endpoint");
            json(200, doc)
        }
        "/.well-known/openid-configuration/t1" => {
            let mut doc = as_doc(base, "/t1");
            doc["token_endpoint"] = json!(base.join("/t1/oidc-token").unwrap());
            doc["client_id_metadata_document_supported"] = json!(true);
            json(200, doc)
        }
        "/t1/.well-known/openid-configuration" => status(500),
        _ => status(404),
    })
    .await;
    let issuer = format!("{}t1", auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
    })
    .await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    // The RFC 8414 document comes first in order, so its token endpoint wins...
    assert_eq!(found.metadata.token_endpoint, auth.url("/t1/token"));
    // ...and the OpenID document completes it.
    assert!(found.metadata.client_id_metadata_document_supported);
    assert_eq!(
        found.metadata.registration_endpoint,
        Some(auth.url("/t1/register"))
    );
    assert_eq!(auth.count("/.well-known/oauth-authorization-server"), 0);
    assert_eq!(auth.count("/.well-known/openid-configuration"), 0);
}

#[tokio::test]
async fn issuer_mismatch_is_refused() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            doc["issuer"] = json!("https://impostor.example");
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
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    let DiscoveryError::IssuerMismatch {
        expected, found, ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected, &issuer_of(&auth.base));
    assert_eq!(found, "https://impostor.example");
    assert!(err.to_string().contains("impostor"), "{err}");
}

#[tokio::test]
async fn missing_s256_is_refused() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut doc = as_doc(base, "");
            doc.as_object_mut()
                .unwrap()
                .remove("code_challenge_methods_supported");
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
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::PkceUnsupported { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn no_metadata_for_the_named_issuer_is_an_error() {
    let auth = serve(|_, _| status(404)).await;
    let issuer = issuer_of(&auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(matches!(err, DiscoveryError::NoMetadata { .. }), "{err:?}");
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}

#[tokio::test]
async fn legacy_server_uses_its_origin_metadata() {
    let mcp = mcp_server(None, |req, base| {
        (req.path == "/.well-known/oauth-authorization-server").then(|| {
            let mut doc = as_doc(base, "");
            doc["authorization_endpoint"] = json!(base.join("/oauth/authorize").unwrap());
            json(200, doc)
        })
    })
    .await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    assert!(found.legacy);
    assert!(!found.default_endpoints);
    assert!(found.protected_resource.is_none());
    assert_eq!(found.issuer, mcp.base.as_str().trim_end_matches('/'));
    assert_eq!(
        found.metadata.authorization_endpoint,
        mcp.url("/oauth/authorize")
    );
}

#[tokio::test]
async fn legacy_server_without_metadata_gets_default_endpoints() {
    let mcp = mcp_server(None, |_, _| None).await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    assert!(found.legacy && found.default_endpoints);
    assert_eq!(found.metadata.authorization_endpoint, mcp.url("/authorize"));
    assert_eq!(found.metadata.token_endpoint, mcp.url("/token"));
    assert_eq!(
        found.metadata.registration_endpoint,
        Some(mcp.url("/register"))
    );
}

//! The unauthenticated probe: open servers, endless streams, refusals other than 401, the
//! `initialize` fallback, configured headers, and the probe running with the first PRM request.

use super::*;

#[tokio::test]
async fn open_server_needs_no_login() {
    let mcp = serve(|_, _| with_headers(200, &[("content-type", "text/event-stream")], "")).await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::NotProtected { status: 200, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_endless_event_stream_does_not_stall_the_probe() {
    let mcp = serve(|_, _| {
        let endless = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
        with_headers(
            200,
            &[("content-type", "text/event-stream")],
            axum::body::Body::from_stream(endless),
        )
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(err, DiscoveryError::NotProtected { status: 200, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn unexpected_probe_status_without_prm_is_an_error() {
    let mcp = serve(|_, _| status(404)).await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::UnexpectedProbeStatus { status: 404, .. }
        ),
        "{err:?}"
    );
}

/// A server that refuses the unauthenticated probe with `status` (no challenge) and
/// publishes its PRM at the root well-known location.
async fn refusing_server(probe_status: u16) -> (TestServer, TestServer) {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = auth.base.as_str().trim_end_matches('/').to_string();
    let mcp = serve(move |req, base| match req.path.as_str() {
        "/mcp" => status(probe_status),
        "/.well-known/oauth-protected-resource" => {
            json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer))
        }
        _ => status(404),
    })
    .await;
    (auth, mcp)
}

#[tokio::test]
async fn a_probe_refused_with_400_405_406_goes_on_to_the_well_known_metadata() {
    for code in [400, 405, 406] {
        let (auth, mcp) = refusing_server(code).await;
        let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
        assert_eq!(found.issuer, auth.base.as_str().trim_end_matches('/'));
        assert!(found.challenge.is_none());
        // Both probe shapes were tried: server/discover, then initialize.
        let methods: Vec<String> = mcp
            .requests()
            .iter()
            .filter(|r| r.path == "/mcp")
            .map(|r| r.json()["method"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(methods, ["server/discover", "initialize"], "HTTP {code}");
        assert_eq!(mcp.count("/.well-known/oauth-protected-resource"), 1);
    }
}

#[tokio::test]
async fn a_server_that_judges_the_version_first_is_probed_with_initialize() {
    // A legacy server that refuses the unknown protocol version header before looking
    // at the token, and challenges an initialize.
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = auth.base.as_str().trim_end_matches('/').to_string();
    let mcp = serve(move |req, base| match req.path.as_str() {
        "/mcp" if req.headers.get("mcp-protocol-version").is_some() => json(
            400,
            json!({"jsonrpc": "2.0", "id": null,
                   "error": {"code": -32000, "message": "Unsupported protocol version"}}),
        ),
        "/mcp" => with_headers(401, &[("www-authenticate", "Bearer scope=\"read\"")], ""),
        "/.well-known/oauth-protected-resource/mcp" => {
            json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer))
        }
        _ => status(404),
    })
    .await;
    let found = run(&mcp, &DiscoveryCache::new()).await.unwrap();
    assert_eq!(found.challenge.unwrap().scope.as_deref(), Some("read"));
    assert_eq!(mcp.count("/mcp"), 2);
}

#[tokio::test]
async fn a_modern_error_to_the_probe_is_not_followed_by_initialize() {
    let mcp = serve(|req, _| match req.path.as_str() {
        "/mcp" => json(
            400,
            json!({"jsonrpc": "2.0", "id": 0, "error": {"code": -32022,
                   "message": "Unsupported protocol version",
                   "data": {"supported": ["2027-01-01"], "requested": "2026-07-28"}}}),
        ),
        _ => status(404),
    })
    .await;
    let err = run(&mcp, &DiscoveryCache::new()).await.unwrap_err();
    assert!(
        matches!(
            err,
            DiscoveryError::UnexpectedProbeStatus { status: 400, .. }
        ),
        "{err:?}"
    );
    assert_eq!(mcp.count("/mcp"), 1);
}

#[tokio::test]
async fn extra_headers_go_to_the_mcp_origin_only() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = issuer_of(&auth.base);
    let mcp = mcp_server(None, move |req, base| {
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer)))
    })
    .await;
    let headers = header_map([("X-Tenant", "acme")]).unwrap();
    discover(
        &HttpClient::for_tests(),
        &mcp.url("/mcp"),
        &headers,
        Some("https://override.example/mcp"),
        Overrides::NONE,
        &DiscoveryCache::new(),
    )
    .await
    .map(|d| assert_eq!(d.resource, "https://override.example/mcp"))
    .unwrap();
    // The probe and the PRM carry them; the origin's authorization server metadata,
    // asked speculatively, does not (no metadata request does).
    let (metadata, own): (Vec<_>, Vec<_>) = mcp
        .requests()
        .into_iter()
        .partition(|r| r.path.starts_with("/.well-known/o") && !r.path.contains("protected"));
    assert_eq!(own.len(), 2);
    assert!(own.iter().all(|r| r.headers.get("x-tenant").is_some()));
    assert!(metadata.len() <= 2);
    assert!(metadata.iter().all(|r| r.headers.get("x-tenant").is_none()));
    assert!(
        auth.requests()
            .iter()
            .all(|r| r.headers.get("x-tenant").is_none())
    );
}

#[tokio::test]
async fn the_cache_answers_without_requests_honours_no_store_and_invalidation() {
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => {
            let mut response = json(200, as_doc(base, ""));
            response
                .headers_mut()
                .insert("cache-control", "max-age=600".parse().unwrap());
            response
        }
        "/t0/.well-known/openid-configuration" => {
            let mut response = json(200, as_doc(base, "/t0"));
            response
                .headers_mut()
                .insert("cache-control", "no-store".parse().unwrap());
            response
        }
        _ => status(404),
    })
    .await;
    for (issuer, cached) in [
        (issuer_of(&auth.base), true),
        (format!("{}t0", auth.base), false),
    ] {
        let issuer_for_prm = issuer.clone();
        let mcp = mcp_server(None, move |req, base| {
            (req.path == "/.well-known/oauth-protected-resource/mcp")
                .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer_for_prm)))
        })
        .await;
        let requests = || auth.requests().len() + mcp.requests().len();
        let cache = DiscoveryCache::new();
        let before = requests();
        let first = run(&mcp, &cache).await.unwrap();
        let per_discovery = requests() - before;
        assert!(per_discovery >= 4, "{issuer}: {per_discovery}");
        let second = run(&mcp, &cache).await.unwrap();
        assert!(!first.cached);
        assert_eq!(second.cached, cached);
        assert_eq!(
            first,
            Discovery {
                cached: false,
                ..second
            }
        );
        let expected = if cached {
            per_discovery
        } else {
            2 * per_discovery
        };
        assert_eq!(requests() - before, expected, "{issuer}");
        cache.invalidate_issuer(&issuer).await;
        run(&mcp, &cache).await.unwrap();
        assert_eq!(requests() - before, expected + per_discovery, "{issuer}");
    }
}

#[tokio::test]
async fn the_probe_and_the_first_prm_location_run_concurrently() {
    // Each request is held until both have arrived: sequential requests would never finish.
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let auth = serve(|req, base| match req.path.as_str() {
        "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
        _ => status(404),
    })
    .await;
    let issuer = issuer_of(&auth.base);
    let held = barrier.clone();
    let mcp = crate::oauth::test_server::serve_async(move |req, base| {
        let held = held.clone();
        let issuer = issuer.clone();
        async move {
            match req.path.as_str() {
                "/mcp" => {
                    held.wait().await;
                    status(401)
                }
                "/.well-known/oauth-protected-resource/mcp" => {
                    held.wait().await;
                    json(200, prm_doc(&base.join("/mcp").unwrap(), &issuer))
                }
                _ => status(404),
            }
        }
    })
    .await;
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        run(&mcp, &DiscoveryCache::new()),
    )
    .await
    .expect("the probe and the PRM request were sent together")
    .unwrap();
    assert_eq!(found.issuer, issuer_of(&auth.base));
}

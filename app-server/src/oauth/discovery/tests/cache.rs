//! Discovery answered from the cache, `no-store`, invalidation, and a refusal that
//! revalidates the cached PRM.

use super::*;

/// After a refusal the cached entry is used only while the server's PRM still names the
/// same authorization servers: a server that moved to another one (SEP-2352) is
/// discovered again, one that did not costs one PRM request.
#[tokio::test]
async fn a_refusal_revalidates_the_cached_prm_and_sees_a_moved_authorization_server() {
    let as_server = || {
        serve(|req, base| match req.path.as_str() {
            "/.well-known/oauth-authorization-server" => json(200, as_doc(base, "")),
            _ => status(404),
        })
    };
    let (old_as, new_as) = (as_server().await, as_server().await);
    let (old_issuer, new_issuer) = (issuer_of(&old_as.base), issuer_of(&new_as.base));
    let moved = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = moved.clone();
    let (a, b) = (old_issuer.clone(), new_issuer.clone());
    let mcp = mcp_server(None, move |req, base| {
        let issuer = if flag.load(std::sync::atomic::Ordering::SeqCst) {
            &b
        } else {
            &a
        };
        (req.path == "/.well-known/oauth-protected-resource/mcp")
            .then(|| json(200, prm_doc(&base.join("/mcp").unwrap(), issuer)))
    })
    .await;
    let http = HttpClient::for_tests();
    let url = mcp.url("/mcp");
    let cache = DiscoveryCache::new();
    assert_eq!(run(&mcp, &cache).await.unwrap().issuer, old_issuer);
    let prm_path = "/.well-known/oauth-protected-resource/mcp";
    let refused = |cache| {
        let (http, url) = (&http, &url);
        async move {
            let p = probe::probe(http, url, &HeaderMap::new()).await.unwrap();
            discover_after_probe(
                http,
                url,
                &HeaderMap::new(),
                None,
                Overrides::NONE,
                cache,
                p,
            )
            .await
        }
    };

    // Unchanged: the cached entry, after one PRM request.
    let found = refused(&cache).await.unwrap();
    assert!(found.cached);
    assert_eq!(found.issuer, old_issuer);
    assert_eq!(mcp.count(prm_path), 2);
    assert_eq!(old_as.count("/.well-known/oauth-authorization-server"), 1);

    // Moved: discovered again, and the new result replaces the cached one.
    moved.store(true, std::sync::atomic::Ordering::SeqCst);
    let found = refused(&cache).await.unwrap();
    assert!(!found.cached);
    assert_eq!(found.issuer, new_issuer);
    assert_eq!(
        mcp.count(prm_path),
        3,
        "the revalidating answer is not asked twice"
    );
    assert_eq!(run(&mcp, &cache).await.unwrap().issuer, new_issuer);
}

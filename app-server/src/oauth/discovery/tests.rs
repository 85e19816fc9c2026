//! Discovery against loopback test servers.

use super::*;
use crate::oauth::http::header_map;
use crate::oauth::test_server::{Recorded, TestServer, json, serve, status, with_headers};
use axum::response::Response;
use serde_json::json;
use std::sync::Arc;

fn as_doc(base: &Url, issuer_path: &str) -> serde_json::Value {
    let issuer = format!("{}{}", base.as_str().trim_end_matches('/'), issuer_path);
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/register"),
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none"],
        "scopes_supported": ["read", "offline_access"],
    })
}

/// An MCP server at `/mcp` answering 401 with `challenge`; `prm` answers the PRM paths.
async fn mcp_server<F>(challenge: Option<String>, prm: F) -> TestServer
where
    F: Fn(&Recorded, &Url) -> Option<Response> + Send + Sync + 'static,
{
    serve(move |req, base| {
        if req.path == "/mcp" {
            return match &challenge {
                Some(c) => with_headers(401, &[("www-authenticate", c.as_str())], ""),
                None => status(401),
            };
        }
        prm(req, base).unwrap_or_else(|| status(404))
    })
    .await
}

/// The issuer `as_doc(base, "")` publishes: the origin without a trailing `/`.
fn issuer_of(base: &Url) -> String {
    base.as_str().trim_end_matches('/').to_string()
}

fn prm_doc(resource: &Url, as_issuer: &str) -> serde_json::Value {
    json!({
        "resource": resource.as_str(),
        "authorization_servers": [as_issuer],
        "scopes_supported": ["read"],
    })
}

async fn run(server: &TestServer, cache: &DiscoveryCache) -> Result<Discovery, DiscoveryError> {
    discover(
        &HttpClient::for_tests(),
        &server.url("/mcp"),
        &HeaderMap::new(),
        None,
        cache,
    )
    .await
}

#[test]
fn protected_resource_candidate_table() {
    let cases: [(&str, Option<&str>, &[&str]); 6] = [
        (
            "https://mcp.example.com/mcp",
            None,
            &[
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ],
        ),
        (
            "https://mcp.example.com/a/mcp/",
            None,
            &[
                "https://mcp.example.com/.well-known/oauth-protected-resource/a/mcp",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ],
        ),
        (
            "https://mcp.example.com/",
            None,
            &["https://mcp.example.com/.well-known/oauth-protected-resource"],
        ),
        (
            "https://mcp.example.com/mcp?tenant=one#x",
            None,
            &[
                "https://mcp.example.com/.well-known/oauth-protected-resource/mcp?tenant=one",
                "https://mcp.example.com/.well-known/oauth-protected-resource",
            ],
        ),
        (
            "https://mcp.example.com/mcp",
            Some("https://meta.example.com/prm.json"),
            &["https://meta.example.com/prm.json"],
        ),
        (
            "https://mcp.example.com/mcp",
            Some("/custom/metadata.json"),
            &["https://mcp.example.com/custom/metadata.json"],
        ),
    ];
    for (server, hint, expected) in cases {
        let challenge = hint.map(|h| BearerChallenge {
            resource_metadata: Some(h.to_string()),
            ..Default::default()
        });
        let got: Vec<String> =
            protected_resource_candidates(&Url::parse(server).unwrap(), challenge.as_ref())
                .unwrap()
                .iter()
                .map(Url::to_string)
                .collect();
        assert_eq!(got, expected, "{server}");
    }
}

#[test]
fn auth_server_metadata_candidate_table() {
    let cases: [(&str, &[&str]); 4] = [
        (
            "https://a.example/t1",
            &[
                "https://a.example/.well-known/oauth-authorization-server/t1",
                "https://a.example/.well-known/openid-configuration/t1",
                "https://a.example/t1/.well-known/openid-configuration",
            ],
        ),
        (
            "https://a.example/t1/",
            &[
                "https://a.example/.well-known/oauth-authorization-server/t1",
                "https://a.example/.well-known/openid-configuration/t1",
                "https://a.example/t1/.well-known/openid-configuration",
            ],
        ),
        (
            "https://a.example",
            &[
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration",
            ],
        ),
        (
            "https://a.example/",
            &[
                "https://a.example/.well-known/oauth-authorization-server",
                "https://a.example/.well-known/openid-configuration",
            ],
        ),
    ];
    for (issuer, expected) in cases {
        let got: Vec<String> = auth_server_metadata_candidates(&Url::parse(issuer).unwrap())
            .iter()
            .map(|(u, _)| u.to_string())
            .collect();
        assert_eq!(got, expected, "{issuer}");
    }
}

#[test]
fn issuer_comparison_is_simple_string_comparison() {
    let same = [
        ("https://a.example", "https://a.example"),
        ("https://a.example/t1", "https://a.example/t1"),
        ("https://a.example/", "https://a.example/"),
    ];
    for (expected, found) in same {
        assert!(issuers_match(expected, found), "{expected} vs {found}");
    }
    // Rule 26: none of RFC 3986's normalisations apply.
    let different = [
        ("https://a.example", "https://a.example/"),
        ("https://a.example/", "https://a.example"),
        ("https://a.example/t1", "https://a.example/t1/"),
        ("https://a.example", "HTTPS://a.example"),
        ("https://a.example", "https://A.example"),
        ("https://a.example", "https://a.example:443"),
        ("https://a.example/t~1", "https://a.example/t%7E1"),
        ("https://a.example/t1", "https://a.example/t2"),
        ("https://a.example", "https://b.example"),
        ("https://a.example", ""),
    ];
    for (expected, found) in different {
        assert!(!issuers_match(expected, found), "{expected} vs {found}");
    }
}

#[test]
fn merge_fills_registration_fields() {
    let origin = Url::parse("https://as.example").unwrap();
    let mut oauth = AuthServerMetadata::legacy_defaults(&origin);
    oauth.registration_endpoint = None;
    oauth.code_challenge_methods_supported = Some(vec!["S256".into()]);
    oauth.token_endpoint_auth_methods_supported = Some(vec!["client_secret_basic".into()]);
    let mut openid = AuthServerMetadata::legacy_defaults(&origin);
    openid.token_endpoint = Url::parse("https://as.example/other-token").unwrap();
    openid.client_id_metadata_document_supported = true;
    openid.token_endpoint_auth_methods_supported =
        Some(vec!["none".into(), "client_secret_basic".into()]);
    let merged = merge_metadata(oauth, [openid]);
    assert_eq!(merged.token_endpoint.as_str(), "https://as.example/token");
    assert_eq!(
        merged.registration_endpoint.unwrap().as_str(),
        "https://as.example/register"
    );
    assert!(merged.client_id_metadata_document_supported);
    assert_eq!(
        merged.token_endpoint_auth_methods_supported.unwrap(),
        vec!["client_secret_basic".to_string(), "none".to_string()]
    );
    assert_eq!(
        merged.code_challenge_methods_supported.unwrap(),
        vec!["S256"]
    );
}

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
    let probe = &mcp.requests()[0];
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
    assert_eq!(
        mcp.paths()[1..],
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
        &DiscoveryCache::new(),
    )
    .await
    .unwrap();
    assert_eq!(overridden.resource, "https://configured.example/mcp");
}

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
    // next; the root location never.
    let mut paths = mcp.paths();
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
        &DiscoveryCache::new(),
    )
    .await
    .map(|d| assert_eq!(d.resource, "https://override.example/mcp"))
    .unwrap();
    assert!(
        mcp.requests()
            .iter()
            .all(|r| r.headers.get("x-tenant").is_some())
    );
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
            discover_after_probe(http, url, &HeaderMap::new(), None, cache, p).await
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

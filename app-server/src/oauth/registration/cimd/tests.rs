//! Client ID Metadata Document URLs, the document and its request, and when a server takes
//! one.

use super::*;

const ID: &str = "XuuuHAzzHOni";

fn redirect() -> Url {
    Url::parse("http://127.0.0.1:8765/callback/XuuuHAzzHOni").unwrap()
}

#[test]
fn client_metadata_url_shape() {
    let expected = "https://ide.example.com/mcp/oauth/XuuuHAzzHOni/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni";
    for base in [
        "https://ide.example.com/mcp/oauth",
        "https://ide.example.com/mcp/oauth/",
    ] {
        let base = validate_base(base).unwrap();
        assert_eq!(
            client_metadata_url(&base, ID, &redirect()).as_str(),
            expected
        );
    }
    let root = validate_base("https://ide.example.com").unwrap();
    let url = client_metadata_url(&root, ID, &redirect());
    assert_eq!(url.path(), "/XuuuHAzzHOni/client.json");
    assert!(validate_client_id_url(url.as_str()).is_ok());
}

#[test]
fn validate_base_table() {
    let ok = [
        "https://ide.example.com/mcp/oauth",
        "https://ide.example.com",
        "http://127.0.0.1:9000/meta",
        "http://localhost:9000",
        "http://[::1]:9000/x",
        "http://127.0.0.2:9000/x",
        "HTTPS://IDE.EXAMPLE.COM/Mcp",
    ];
    for base in ok {
        assert!(validate_base(base).is_ok(), "{base}");
    }
    type Check = fn(&CimdUrlError) -> bool;
    let bad: [(&str, Check); 14] = [
        ("http://localhost.evil.example/x", |e| {
            matches!(e, CimdUrlError::Insecure { .. })
        }),
        ("http://127.0.0.1.nip.io/x", |e| {
            matches!(e, CimdUrlError::Insecure { .. })
        }),
        ("https://ide.example.com/x?", |e| {
            matches!(e, CimdUrlError::Query { .. })
        }),
        ("ftp://ide.example.com/x", |e| {
            matches!(e, CimdUrlError::Insecure { .. })
        }),
        ("http://ide.example.com/x", |e| {
            matches!(e, CimdUrlError::Insecure { .. })
        }),
        ("https://user:pw@ide.example.com/x", |e| {
            matches!(e, CimdUrlError::UserInfo { .. })
        }),
        ("https://user@ide.example.com/x", |e| {
            matches!(e, CimdUrlError::UserInfo { .. })
        }),
        ("https://ide.example.com/x?a=b", |e| {
            matches!(e, CimdUrlError::Query { .. })
        }),
        ("https://ide.example.com/x#f", |e| {
            matches!(e, CimdUrlError::Fragment { .. })
        }),
        ("https://ide.example.com/a/../b", |e| {
            matches!(e, CimdUrlError::DotSegment { .. })
        }),
        ("https://ide.example.com/a/./b", |e| {
            matches!(e, CimdUrlError::DotSegment { .. })
        }),
        ("https://ide.example.com/a/%2e%2E/b", |e| {
            matches!(e, CimdUrlError::DotSegment { .. })
        }),
        ("https://ide.example.com/a/.%2e", |e| {
            matches!(e, CimdUrlError::DotSegment { .. })
        }),
        ("not a url", |e| matches!(e, CimdUrlError::NotAUrl { .. })),
    ];
    for (base, check) in bad {
        let err = validate_base(base).unwrap_err();
        assert!(check(&err), "{base}: {err:?}");
    }
    // Scheme and host are normalised, so the daemon and the host agree on the spelling.
    let upper = validate_base("HTTPS://IDE.EXAMPLE.COM/Mcp/").unwrap();
    assert_eq!(
        client_metadata_url(&upper, ID, &redirect()).as_str(),
        "https://ide.example.com/Mcp/XuuuHAzzHOni/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni"
    );
}

#[test]
fn fixed_client_id_url() {
    assert!(validate_client_id_url("https://conformance-test.local/client-metadata.json").is_ok());
    assert!(validate_client_id_url("https://c.example/client.json?v=1").is_ok());
    assert!(matches!(
        validate_client_id_url("https://c.example/"),
        Err(CimdUrlError::RootPath { .. })
    ));
    assert!(matches!(
        validate_client_id_url("https://c.example"),
        Err(CimdUrlError::RootPath { .. })
    ));
}

#[test]
fn document_request_round_trips_the_url() {
    let base = validate_base("https://ide.example.com/mcp/oauth").unwrap();
    let url = client_metadata_url(&base, ID, &redirect());
    let path_and_query = format!("{}?{}", url.path(), url.query().unwrap());
    let request = check_document_request(base.path(), &path_and_query).unwrap();
    assert_eq!(request.callback_id, ID);
    assert_eq!(request.redirect_uri, redirect().as_str());
    assert_eq!(
        client_metadata_url(
            &base,
            request.callback_id,
            &Url::parse(&request.redirect_uri).unwrap()
        ),
        url
    );

    // Under a configured callback prefix, and on the root path.
    let prefixed = Url::parse("http://localhost:9/oauth/callback/XuuuHAzzHOni").unwrap();
    let url = client_metadata_url(&base, ID, &prefixed);
    let pq = format!("{}?{}", url.path(), url.query().unwrap());
    assert_eq!(
        check_document_request("/mcp/oauth/", &pq)
            .unwrap()
            .redirect_uri,
        prefixed.as_str()
    );
    let root = validate_base("https://ide.example.com").unwrap();
    let url = client_metadata_url(&root, ID, &redirect());
    let pq = format!("{}?{}", url.path(), url.query().unwrap());
    assert!(check_document_request(root.path(), &pq).is_ok());
}

#[test]
fn document_request_refusals() {
    let enc = |s: &str| encode_component(s);
    let good_q = format!("redirect_uri={}", enc(redirect().as_str()));
    let p = "/mcp/oauth";
    let cases: Vec<(String, CimdRequestError)> = vec![
        (
            format!("/other/{ID}/client.json?{good_q}"),
            CimdRequestError::NotFound,
        ),
        (
            format!("/mcp/oauth/{ID}/other.json?{good_q}"),
            CimdRequestError::NotFound,
        ),
        (
            format!("/mcp/oauth/{ID}/client.json/x?{good_q}"),
            CimdRequestError::NotFound,
        ),
        (
            format!("/mcp/oauthx/{ID}/client.json?{good_q}"),
            CimdRequestError::NotFound,
        ),
        (
            format!("/mcp/oauth/bad$id/client.json?{good_q}"),
            CimdRequestError::NotFound,
        ),
        (
            format!("/mcp/oauth/../oauth/{ID}/client.json?{good_q}"),
            CimdRequestError::DotSegment,
        ),
        (
            format!("/mcp/oauth/%2E/{ID}/client.json?{good_q}"),
            CimdRequestError::DotSegment,
        ),
        (
            format!("/mcp/oauth/{ID}/client.json"),
            CimdRequestError::MissingRedirectUri,
        ),
        (
            format!("/mcp/oauth/{ID}/client.json?"),
            CimdRequestError::MissingRedirectUri,
        ),
        (
            format!("/mcp/oauth/{ID}/client.json?{good_q}&x=1"),
            CimdRequestError::UnexpectedParameter("x".into()),
        ),
        (
            format!("/mcp/oauth/{ID}/client.json?{good_q}&{good_q}"),
            CimdRequestError::UnexpectedParameter("redirect_uri".into()),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("https://evil.example/callback/XuuuHAzzHOni")
            ),
            CimdRequestError::BadRedirectUri("must be http on a loopback host".into()),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://evil.example/callback/XuuuHAzzHOni")
            ),
            CimdRequestError::BadRedirectUri("must be http on a loopback host".into()),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://127.0.0.1:1/callback/OTHERidOTHER")
            ),
            CimdRequestError::BadRedirectUri(
                "must end in /callback/<the callback id of this document>".into(),
            ),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://127.0.0.1:1/elsewhere/XuuuHAzzHOni")
            ),
            CimdRequestError::BadRedirectUri(
                "must end in /callback/<the callback id of this document>".into(),
            ),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://127.0.0.1:1/callback/XuuuHAzzHOni?x=1")
            ),
            CimdRequestError::BadRedirectUri("must not contain a query or fragment".into()),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://u@127.0.0.1:1/callback/XuuuHAzzHOni")
            ),
            CimdRequestError::BadRedirectUri("must not contain a user name or password".into()),
        ),
        (
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://127.0.0.1:1/x/%2e%2e/callback/XuuuHAzzHOni")
            ),
            CimdRequestError::BadRedirectUri("must not contain . or .. segments".into()),
        ),
        (
            // Not the canonical spelling: ':' and '/' left unencoded.
            format!("/mcp/oauth/{ID}/client.json?redirect_uri=http://127.0.0.1:8765/callback/{ID}"),
            CimdRequestError::NonCanonical,
        ),
        (
            // A host the URL parser would rewrite.
            format!(
                "/mcp/oauth/{ID}/client.json?redirect_uri={}",
                enc("http://LOCALHOST:1/callback/XuuuHAzzHOni")
            ),
            CimdRequestError::NonCanonical,
        ),
    ];
    for (request, expected) in cases {
        assert_eq!(
            check_document_request(p, &request),
            Err(expected),
            "{request}"
        );
    }
}

#[test]
fn document_has_rule_11_fields() {
    let base = validate_base("https://ide.example.com/m").unwrap();
    let client_id = client_metadata_url(&base, ID, &redirect());
    let doc = client_metadata_document(&client_id, "My IDE", &redirect(), None, None);
    assert_eq!(
        doc,
        serde_json::json!({
            "client_id": client_id.as_str(),
            "client_name": "My IDE",
            "redirect_uris": ["http://127.0.0.1:8765/callback/XuuuHAzzHOni"],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "application_type": "native",
        })
    );
    let client_uri = Url::parse("https://ide.example.com/").unwrap();
    let with_uri = client_metadata_document(&client_id, "x", &redirect(), Some(&client_uri), None);
    assert_eq!(with_uri["client_uri"], "https://ide.example.com/");
    assert!(with_uri.get("client_secret").is_none());
}

#[test]
fn cimd_preconditions() {
    let mut metadata =
        AuthServerMetadata::legacy_defaults(&Url::parse("https://as.example").unwrap());
    assert_eq!(
        cimd_supported(&metadata, &redirect()),
        Err(CimdUnsupported::NotAdvertised)
    );
    metadata.client_id_metadata_document_supported = true;
    assert_eq!(
        cimd_supported(&metadata, &redirect()),
        Err(CimdUnsupported::NoPublicClients)
    );
    metadata.token_endpoint_auth_methods_supported = Some(vec!["none".into()]);
    assert_eq!(cimd_supported(&metadata, &redirect()), Ok(()));
    let remote = Url::parse("https://ide.example.com/callback/x").unwrap();
    assert_eq!(
        cimd_supported(&metadata, &remote),
        Err(CimdUnsupported::RedirectNotLoopback)
    );
}

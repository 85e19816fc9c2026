//! The well-known URL tables, the issuer comparison and the merge of two metadata documents.

use super::*;

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

/// Two documents of 130,000 distinct scopes each: the merge keeps the bound of every list
/// (the primary document's entries first, in order), in linear time.
#[test]
fn merge_of_huge_documents_stays_bounded() {
    use crate::oauth::bounds::MAX_LIST_ENTRIES;
    let origin = Url::parse("https://as.example").unwrap();
    let names =
        |prefix: &str| -> Vec<String> { (0..130_000).map(|i| format!("{prefix}{i}")).collect() };
    // As parsed from a server, each list is already cut: the merge adds the other's
    // entries up to the bound only.
    let doc = |prefix: &str| {
        serde_json::json!({
            "issuer": "https://as.example",
            "authorization_endpoint": "https://as.example/authorize",
            "token_endpoint": "https://as.example/token",
            "scopes_supported": names(prefix),
            "grant_types_supported": names(prefix),
        })
    };
    let oauth: AuthServerMetadata = serde_json::from_value(doc("o")).unwrap();
    let openid: AuthServerMetadata = serde_json::from_value(doc("i")).unwrap();
    assert_eq!(
        oauth.scopes_supported.as_ref().unwrap().len(),
        MAX_LIST_ENTRIES
    );
    let merged = merge_metadata(oauth, [openid]);
    for list in [merged.scopes_supported, merged.grant_types_supported] {
        let list = list.unwrap();
        assert_eq!(list.len(), MAX_LIST_ENTRIES);
        assert!(list.iter().all(|s| s.starts_with('o')));
        assert_eq!(list[..3], ["o0", "o1", "o2"]);
    }
    // A short primary list is completed from the other document, without duplicates.
    let mut oauth = AuthServerMetadata::legacy_defaults(&origin);
    oauth.scopes_supported = Some(vec!["a".into(), "b".into()]);
    let mut openid = AuthServerMetadata::legacy_defaults(&origin);
    openid.scopes_supported = Some(vec!["b".into(), "c".into(), "a".into()]);
    let merged = merge_metadata(oauth, [openid]);
    assert_eq!(merged.scopes_supported.unwrap(), ["a", "b", "c"]);
}

#[test]
fn the_device_authorization_endpoint_is_read_merged_and_must_be_secure() {
    let origin = Url::parse("https://as.example").unwrap();
    let oauth = AuthServerMetadata::legacy_defaults(&origin);
    let mut openid: AuthServerMetadata = serde_json::from_value(serde_json::json!({
        "issuer": "https://as.example",
        "authorization_endpoint": "https://as.example/authorize",
        "token_endpoint": "https://as.example/token",
        "device_authorization_endpoint": "https://as.example/device",
        "code_challenge_methods_supported": ["S256"],
    }))
    .unwrap();
    assert!(validate_metadata(&openid).is_ok());
    let merged = merge_metadata(oauth, [openid.clone()]);
    assert_eq!(
        merged.device_authorization_endpoint.unwrap().as_str(),
        "https://as.example/device"
    );
    openid.device_authorization_endpoint = Some(Url::parse("http://as.example/device").unwrap());
    assert!(matches!(
        validate_metadata(&openid),
        Err(DiscoveryError::InsecureEndpoint {
            field: "device_authorization_endpoint",
            ..
        })
    ));
}

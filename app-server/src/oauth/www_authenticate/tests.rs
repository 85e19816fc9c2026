//! `WWW-Authenticate` parsing: the challenge table, and the Bearer (or DPoP) challenge picked
//! from several headers.

use super::*;

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ch(scheme: &str, pairs: &[(&str, &str)]) -> Challenge {
    Challenge {
        scheme: scheme.to_string(),
        params: params(pairs),
        token68: None,
    }
}

#[test]
fn parses_challenge_table() {
    let cases: Vec<(&str, Vec<Challenge>)> = vec![
        ("Bearer", vec![ch("bearer", &[])]),
        ("bearer", vec![ch("bearer", &[])]),
        (
            r#"Bearer realm="example""#,
            vec![ch("bearer", &[("realm", "example")])],
        ),
        (
            r#"Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
            vec![ch(
                "bearer",
                &[(
                    "resource_metadata",
                    "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                )],
            )],
        ),
        (
            r#"BEARER Resource_Metadata="https://x/prm", SCOPE="a b""#,
            vec![ch(
                "bearer",
                &[("resource_metadata", "https://x/prm"), ("scope", "a b")],
            )],
        ),
        (
            r#"Bearer error=invalid_token, error_description="The token, it expired""#,
            vec![ch(
                "bearer",
                &[
                    ("error", "invalid_token"),
                    ("error_description", "The token, it expired"),
                ],
            )],
        ),
        (
            r#"Bearer realm="a \"quoted\" \\ value""#,
            vec![ch("bearer", &[("realm", r#"a "quoted" \ value"#)])],
        ),
        (
            r#"Basic realm="simple", Bearer scope="read write""#,
            vec![
                ch("basic", &[("realm", "simple")]),
                ch("bearer", &[("scope", "read write")]),
            ],
        ),
        (
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
            vec![
                ch(
                    "newauth",
                    &[
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", r#"Login to "apps""#),
                    ],
                ),
                ch("basic", &[("realm", "simple")]),
            ],
        ),
        (
            "Negotiate abc+/def==, Bearer",
            vec![
                Challenge {
                    scheme: "negotiate".into(),
                    params: BTreeMap::new(),
                    token68: Some("abc+/def==".into()),
                },
                ch("bearer", &[]),
            ],
        ),
        (
            "Bearer realm = \"spaced\" ,  scope\t=\tx",
            vec![ch("bearer", &[("realm", "spaced"), ("scope", "x")])],
        ),
        (
            "Bearer resource_metadata=https://x/.well-known/oauth-protected-resource",
            vec![ch(
                "bearer",
                &[(
                    "resource_metadata",
                    "https://x/.well-known/oauth-protected-resource",
                )],
            )],
        ),
        (
            r#"Bearer scope="first", scope="second""#,
            vec![ch("bearer", &[("scope", "first")])],
        ),
        (
            r#"Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://r/prm""#,
            vec![ch(
                "bearer",
                &[
                    ("error", "insufficient_scope"),
                    ("scope", "files:read files:write"),
                    ("resource_metadata", "https://r/prm"),
                ],
            )],
        ),
        ("", vec![]),
        (" , ,", vec![]),
        (
            r#"Bearer realm="unterminated"#,
            vec![ch("bearer", &[("realm", "unterminated")])],
        ),
        (
            r#"Bearer realm="ünïcode""#,
            vec![ch("bearer", &[("realm", "ünïcode")])],
        ),
        (
            r#"DPoP algs="ES256 PS256", Bearer realm="r""#,
            vec![
                ch("dpop", &[("algs", "ES256 PS256")]),
                ch("bearer", &[("realm", "r")]),
            ],
        ),
        ("Basic, Bearer", vec![ch("basic", &[]), ch("bearer", &[])]),
    ];
    for (input, expected) in cases {
        assert_eq!(parse_www_authenticate(input), expected, "input: {input}");
    }
}

#[test]
fn bearer_challenge_from_several_headers() {
    let values = [
        r#"Basic realm="x""#,
        r#"Bearer resource_metadata="https://r/prm", scope="a b", error="invalid_token""#,
    ];
    let challenge = bearer_challenge_from_values(values).expect("bearer found");
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some("https://r/prm")
    );
    assert_eq!(challenge.scopes(), vec!["a".to_string(), "b".to_string()]);
    assert_eq!(challenge.error.as_deref(), Some("invalid_token"));
    assert_eq!(challenge.error_description, None);
}

#[test]
fn bearer_challenge_from_header_map() {
    let mut headers = HeaderMap::new();
    headers.append(WWW_AUTHENTICATE, "Basic realm=\"x\"".parse().unwrap());
    headers.append(
        WWW_AUTHENTICATE,
        "bearer error=\"insufficient_scope\", scope=\"write\""
            .parse()
            .unwrap(),
    );
    let challenge = bearer_challenge(&headers).expect("bearer found");
    assert_eq!(challenge.error.as_deref(), Some("insufficient_scope"));
    assert_eq!(challenge.scope.as_deref(), Some("write"));
}

#[test]
fn a_dpop_challenge_is_read_when_there_is_no_bearer_one() {
    let dpop = r#"DPoP algs="ES256", error="use_dpop_nonce", resource_metadata="https://r/prm""#;
    let challenge = bearer_challenge_from_values([dpop]).expect("dpop found");
    assert_eq!(challenge.error.as_deref(), Some("use_dpop_nonce"));
    assert_eq!(
        challenge.resource_metadata.as_deref(),
        Some("https://r/prm")
    );
    // Only DPoP offered: the resource takes bound tokens only.
    assert!(challenge.dpop_only);
    // A Bearer challenge wins, in whichever header it comes.
    let both = bearer_challenge_from_values([dpop, r#"Bearer scope="s""#]).unwrap();
    assert_eq!(both.scope.as_deref(), Some("s"));
    assert_eq!(both.error, None);
    assert!(!both.dpop_only);
}

#[test]
fn no_bearer_challenge() {
    assert_eq!(bearer_challenge_from_values([r#"Basic realm="x""#]), None);
    assert_eq!(bearer_challenge(&HeaderMap::new()), None);
}

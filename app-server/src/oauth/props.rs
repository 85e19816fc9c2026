//! Property tests over the parsers of untrusted input (issue 9 part 5): the
//! `WWW-Authenticate` parser, and the protected resource metadata, authorization server
//! metadata and token response parsers, each through the code path a server's answer takes.
//! Arbitrary input never panics and ends in a value or a typed error.

use std::sync::{Arc, Mutex};

use mcp_app_server_protocol::RegistrationKind;
use proptest::prelude::*;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, WWW_AUTHENTICATE};

use super::discovery::{DiscoveryCache, DiscoveryError, Overrides, Probe, discover_after_probe};
use super::http::HttpClient;
use super::registration::{ClientRegistration, TokenAuthMethod};
use super::test_server::{TestServer, serve, with_headers};
use super::token::{self, TokenError};
use super::www_authenticate::{bearer_challenge, parse_www_authenticate};

const CASES: u32 = 256;

/// Pieces of challenge syntax, so generated headers reach the parser's deeper states
/// (quoted strings, escapes, token68, lists) far more often than random text does.
fn challenge_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("Bearer".to_string()),
        Just("Basic".to_string()),
        Just("realm".to_string()),
        Just("resource_metadata".to_string()),
        Just("scope".to_string()),
        Just("=".to_string()),
        Just(",".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("==".to_string()),
        "[a-zA-Z0-9_.~+/:-]{0,8}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

/// JSON-ish documents: arbitrary bytes, or objects with the fields the parsers read,
/// holding values of every JSON type.
/// `strings` are values worth trying (URLs of the test server, say).
fn document(
    fields: &'static [&'static str],
    strings: Vec<String>,
) -> impl Strategy<Value = Vec<u8>> {
    let leaf = prop_oneof![
        1 => Just(serde_json::Value::Null),
        1 => any::<bool>().prop_map(serde_json::Value::from),
        1 => any::<i64>().prop_map(serde_json::Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::json!(f)),
        1 => Just(serde_json::json!("S256")),
        1 => ".{0,12}".prop_map(serde_json::Value::from),
        3 => prop::sample::select(strings).prop_map(serde_json::Value::from),
    ];
    let value = leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..4).prop_map(serde_json::Value::from)
    });
    let object = prop::collection::vec((prop::sample::select(fields), value), 0..fields.len() + 2)
        .prop_map(|pairs| {
            let map: serde_json::Map<String, serde_json::Value> =
                pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            serde_json::to_vec(&map).expect("a JSON map serializes")
        });
    prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..256),
        3 => object,
    ]
}

const METADATA_FIELDS: &[&str] = &[
    "resource",
    "authorization_servers",
    "scopes_supported",
    "issuer",
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "revocation_endpoint",
    "code_challenge_methods_supported",
    "token_endpoint_auth_methods_supported",
    "client_id_metadata_document_supported",
    "authorization_response_iss_parameter_supported",
];

const TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "token_type",
    "expires_in",
    "refresh_token",
    "scope",
    "error",
    "error_description",
    "error_uri",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

/// The bodies (and status) a test server answers with: `prm` at the protected resource
/// metadata locations, `other` everywhere else.
#[derive(Default)]
struct Answer {
    status: u16,
    prm: Vec<u8>,
    other: Vec<u8>,
}

fn answering_server(rt: &tokio::runtime::Runtime) -> (TestServer, Arc<Mutex<Answer>>) {
    let answer = Arc::new(Mutex::new(Answer::default()));
    let shared = answer.clone();
    let server = rt.block_on(serve(move |request, _| {
        let a = shared.lock().unwrap();
        let body = if request
            .path
            .starts_with("/.well-known/oauth-protected-resource")
        {
            a.prm.clone()
        } else {
            a.other.clone()
        };
        with_headers(a.status, &[("content-type", "application/json")], body)
    }));
    (server, answer)
}

/// URLs of `server` the generated documents may name.
fn server_strings(server: &TestServer) -> Vec<String> {
    let origin = server.base.as_str().trim_end_matches('/').to_string();
    let mut strings: Vec<String> = ["/mcp", "/authorize", "/token", "/register", "/revoke"]
        .iter()
        .map(|p| server.url(p).to_string())
        .collect();
    strings.push(origin);
    strings.push("https://as.example/x".into());
    strings
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn www_authenticate_never_panics_on_any_text(text in challenge_text()) {
        let challenges = parse_www_authenticate(&text);
        for c in &challenges {
            prop_assert_eq!(c.scheme.to_ascii_lowercase(), c.scheme.clone());
            prop_assert!(c.params.keys().all(|k| k.to_ascii_lowercase() == *k));
        }
    }

    #[test]
    fn www_authenticate_never_panics_on_any_header_bytes(
        values in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..128), 0..4)
    ) {
        let mut headers = HeaderMap::new();
        for v in values {
            if let Ok(value) = HeaderValue::from_bytes(&v) {
                headers.append(WWW_AUTHENTICATE, value);
            }
        }
        let _ = bearer_challenge(&headers);
    }

    /// A well-formed challenge among junk challenges is read back exactly.
    #[test]
    fn a_well_formed_bearer_challenge_is_read_back(
        before in prop::sample::select(vec!["", "Basic realm=\"a, b\", ", "Negotiate abc==, "]),
        path in "[a-z0-9/._-]{0,20}",
        scope in "[a-z:]{1,8}( [a-z:]{1,8}){0,3}",
    ) {
        let url = format!("https://mcp.example/.well-known/{path}");
        let text = format!("{before}Bearer resource_metadata=\"{url}\", scope=\"{scope}\"");
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_str(&text).unwrap());
        let c = bearer_challenge(&headers).expect("a Bearer challenge");
        prop_assert_eq!(c.resource_metadata.as_deref(), Some(url.as_str()));
        prop_assert_eq!(c.scope.as_deref(), Some(scope.as_str()));
    }
}

/// Protected resource metadata and authorization server metadata, as discovery reads them
/// from a server: every answer ends in a discovery result or a typed error.
#[test]
fn metadata_documents_never_panic_discovery() {
    let rt = runtime();
    let (server, answer) = answering_server(&rt);
    let http = HttpClient::for_tests();
    let mcp = server.url("/mcp");
    let origin = server.base.as_str().trim_end_matches('/').to_string();
    let valid_prm = serde_json::to_vec(&serde_json::json!({
        "resource": mcp.as_str(),
        "authorization_servers": [origin],
    }))
    .unwrap();
    let strings = server_strings(&server);
    // Half the cases get a usable PRM, so the authorization server metadata parser is
    // reached too.
    let strategy = (
        prop_oneof![Just(valid_prm), document(METADATA_FIELDS, strings.clone())],
        document(METADATA_FIELDS, strings),
    );
    let reached_metadata = std::cell::Cell::new(0usize);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES));
    runner
        .run(&strategy, |(prm, other)| {
            *answer.lock().unwrap() = Answer {
                status: 200,
                prm,
                other,
            };
            let result = rt.block_on(discover_after_probe(
                &http,
                &mcp,
                &HeaderMap::new(),
                None,
                Overrides::NONE,
                &DiscoveryCache::new(),
                Probe {
                    status: StatusCode::UNAUTHORIZED,
                    challenge: None,
                },
            ));
            match result {
                Ok(found) => {
                    reached_metadata.set(reached_metadata.get() + 1);
                    prop_assert!(found.metadata.supports_s256() || found.default_endpoints);
                }
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    let not_protected = matches!(e, DiscoveryError::NotProtected { .. });
                    prop_assert!(!not_protected, "a 401 probe is protected: {}", e);
                    if matches!(
                        e,
                        DiscoveryError::InvalidMetadata { .. }
                            | DiscoveryError::IssuerMismatch { .. }
                            | DiscoveryError::PkceUnsupported { .. }
                            | DiscoveryError::InsecureEndpoint { .. }
                    ) {
                        reached_metadata.set(reached_metadata.get() + 1);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    assert!(
        reached_metadata.get() > CASES as usize / 8,
        "only {} cases reached the metadata parser",
        reached_metadata.get()
    );
}

/// Token responses, as a refresh reads them, under every status a server may send.
#[test]
fn token_responses_never_panic_a_refresh() {
    let rt = runtime();
    let (server, answer) = answering_server(&rt);
    let http = HttpClient::for_tests();
    let endpoint = server.url("/token");
    let registration = ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: "c".into(),
        client_secret: None,
        auth_method: TokenAuthMethod::None,
    };
    let strategy = (
        prop::sample::select(vec![200u16, 201, 400, 401, 429, 500, 503]),
        document(
            TOKEN_FIELDS,
            vec!["Bearer".into(), "bearer".into(), "3600".into(), "-1".into()],
        ),
    );
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(CASES));
    runner
        .run(&strategy, |(status, body)| {
            *answer.lock().unwrap() = Answer {
                status,
                prm: Vec::new(),
                other: body,
            };
            let result = rt.block_on(token::refresh(
                &http,
                &endpoint,
                &registration,
                "rt",
                "https://mcp.example/mcp",
                None,
                None,
            ));
            match result {
                Ok(tokens) => {
                    prop_assert!((200..300).contains(&status));
                    prop_assert!(tokens.refresh_token.is_some());
                }
                Err(TokenError::Transient { .. }) => {}
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            Ok(())
        })
        .unwrap();
}

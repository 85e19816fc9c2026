//! Property test of the token fast path: whatever envelope arrives, what it reads is what
//! the general reading makes of the same bytes, and it reads every token request of the
//! shape frontends send.

use mcp_app_server_protocol::{ClientRequest, RequestId};
use proptest::prelude::*;

use super::read;
use crate::rpc::envelope::{Parsed, parse_envelope};

/// What the general reading makes of `bytes`: a token request's id and params, or not one.
fn general(bytes: &[u8]) -> Option<(RequestId, mcp_app_server_protocol::OauthTokenParams)> {
    let value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !value.is_object() {
        return None;
    }
    match parse_envelope(value) {
        Parsed::Request { id, method, params } => match ClientRequest::parse(&method, params) {
            Ok(ClientRequest::OauthToken(p)) => Some((id, p)),
            _ => None,
        },
        _ => None,
    }
}

/// One member of an envelope, as JSON text, from a menu of right and wrong values.
fn member(name: &'static str, values: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::sample::select(values).prop_map(move |v| format!("\"{name}\":{v}"))
}

fn envelope() -> impl Strategy<Value = String> {
    let members = prop::collection::vec(
        prop_oneof![
            member(
                "jsonrpc",
                &["\"2.0\"", "\"1.0\"", "null", "2", "\"2\\u002e0\""]
            ),
            member(
                "id",
                &[
                    "1",
                    "-3",
                    "\"a\"",
                    "\"a\\\"b\"",
                    "null",
                    "1.5",
                    "1e3",
                    "18446744073709551615",
                    "[]",
                    "{}"
                ],
            ),
            member(
                "method",
                &[
                    "\"mcpServer/oauth/token\"",
                    "\"mcpServer\\/oauth\\/token\"",
                    "\"mcpServer/oauth/logout\"",
                    "\"mcpServerStatus/list\"",
                    "null",
                    "7",
                ],
            ),
            member(
                "params",
                &[
                    "{\"name\":\"s\"}",
                    "{\"name\":\"s\",\"minValiditySecs\":30}",
                    "{\"minValiditySecs\":null,\"name\":\"\\u0073\"}",
                    "{\"name\":\"s\",\"minValiditySecs\":-1}",
                    "{\"name\":\"s\",\"minValiditySecs\":4294967296}",
                    "{\"name\":\"s\",\"other\":1}",
                    "{\"name\":\"s\",\"name\":\"t\"}",
                    "{\"name\":null}",
                    "{}",
                    "[\"s\"]",
                    "null",
                    "\"s\"",
                ],
            ),
            member("result", &["{}", "null"]),
            member("extra", &["[1,{\"a\":2}]", "\"x\""]),
        ],
        0..7,
    );
    (members, prop::sample::select(&["", " ", "\n", " x"][..]))
        .prop_map(|(members, tail)| format!("{{{}}}{tail}", members.join(",")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn the_fast_path_reads_only_what_the_general_reading_reads(text in envelope()) {
        if let Some(fast) = read(text.as_bytes()) {
            prop_assert_eq!(Some(fast), general(text.as_bytes()), "{}", text);
        }
    }

    #[test]
    fn token_requests_as_frontends_send_them_take_the_fast_path(
        id in prop_oneof![any::<i64>().prop_map(RequestId::Number), "[a-z0-9-]{0,12}".prop_map(RequestId::String)],
        name in "[a-zA-Z0-9_.-]{1,20}",
        min in prop::option::of(any::<u32>()),
        with_version in any::<bool>(),
    ) {
        let mut request = serde_json::json!({
            "id": id,
            "method": "mcpServer/oauth/token",
            "params": {"name": name},
        });
        if let Some(min) = min {
            request["params"]["minValiditySecs"] = min.into();
        }
        if with_version {
            request["jsonrpc"] = "2.0".into();
        }
        let bytes = serde_json::to_vec(&request).unwrap();
        let fast = read(&bytes);
        prop_assert!(fast.is_some(), "{}", request);
        prop_assert_eq!(fast, general(&bytes));
    }
}

//! The lenient parser of success answers: `expires_in` and `scope` in any shape, required
//! fields, errors that quote nothing, and properties over any JSON and any bytes.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn with_expires_in(value: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "access_token": "at-SECRET", "token_type": "bearer", "expires_in": value,
    }))
    .unwrap()
}

#[test]
fn expires_in_in_any_shape() {
    for (value, want) in [
        (json!(3600), Some(3600)),
        (json!("3600"), Some(3600)),
        (json!(" 3600 "), Some(3600)),
        (json!(3600.9), Some(3600)),
        (json!("3600.5"), Some(3600)),
        (json!(1e30), Some(MAX_EXPIRES_IN)),
        (json!(u64::MAX), Some(MAX_EXPIRES_IN)),
        (json!("1e400"), Some(MAX_EXPIRES_IN)),
        (json!(i64::MIN), None),
        (json!(-5), None),
        (json!(0), None),
        (json!(0.5), None),
        (json!("soon"), None),
        (json!(null), None),
        (json!(true), None),
        (json!([3600]), None),
        (json!({"s": 3600}), None),
    ] {
        let parsed = parse_token_response(&with_expires_in(value.clone()))
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(parsed.expires_in, want, "{value}");
        assert_eq!(parsed.access_token, "at-SECRET");
    }
}

#[test]
fn debug_of_the_wire_answer_redacts_tokens() {
    let wire: WireTokenResponse = serde_json::from_value(json!({
        "access_token": "at-SECRET", "token_type": "Bearer", "refresh_token": "rt-SECRET",
    }))
    .unwrap();
    let text = format!("{wire:?}");
    assert!(!text.contains("SECRET"), "{text}");
}

#[test]
fn scope_as_string_or_array() {
    let parse = |scope: Value| {
        parse_token_response(
            &serde_json::to_vec(
                &json!({"access_token": "a", "token_type": "Bearer", "scope": scope}),
            )
            .unwrap(),
        )
        .unwrap()
        .scopes
    };
    let both = Some(vec!["read".to_string(), "write".to_string()]);
    assert_eq!(parse(json!("read  write")), both);
    assert_eq!(parse(json!(["read", "write"])), both);
    assert_eq!(parse(json!(["read", 7])), None);
    assert_eq!(parse(json!(7)), None);
}

#[test]
fn required_fields_and_errors_that_quote_nothing() {
    for (body, want) in [
        (json!([1]), ResponseError::NotAnObject),
        (
            json!({"token_type": "Bearer"}),
            ResponseError::Missing("access_token"),
        ),
        (
            json!({"access_token": "at-SECRET", "token_type": 1}),
            ResponseError::NotAString("token_type"),
        ),
        (
            json!({"access_token": 5, "token_type": "Bearer"}),
            ResponseError::NotAString("access_token"),
        ),
        (
            json!({"access_token": "", "token_type": "Bearer"}),
            ResponseError::EmptyAccessToken,
        ),
        (
            json!({"access_token": "at-SECRET", "token_type": "Bearer", "refresh_token": ["rt-SECRET"]}),
            ResponseError::NotAString("refresh_token"),
        ),
    ] {
        let err = parse_token_response(&serde_json::to_vec(&body).unwrap()).unwrap_err();
        assert_eq!(err, want, "{body}");
        assert!(!err.to_string().contains("SECRET"), "{err}");
    }
    assert_eq!(
        parse_token_response(b"{\"access_token\":").unwrap_err(),
        ResponseError::NotAnObject
    );
}

/// A lifetime of any number of digits is a very long lifetime, clamped: the parse does
/// not fail on a number no numeric type holds, as a tree of the whole answer would.
#[test]
fn expires_in_of_a_million_digits_is_clamped_not_an_error() {
    for text in [
        "9".repeat(900_000),
        format!("\"{}\"", "9".repeat(900_000)),
        format!("1{}.5", "0".repeat(400)),
        "1e400".to_string(),
        "1E+999999".to_string(),
    ] {
        let body =
            format!(r#"{{"access_token": "at", "token_type": "Bearer", "expires_in": {text}}}"#);
        let parsed = parse_token_response(body.as_bytes()).unwrap();
        assert_eq!(parsed.expires_in, Some(MAX_EXPIRES_IN), "{}", &text[..8]);
        let wire: WireTokenResponse = serde_json::from_slice(body.as_bytes()).unwrap();
        assert_eq!(convert(wire).expires_in, Some(MAX_EXPIRES_IN));
    }
    for text in [format!("-{}", "9".repeat(900_000)), "-1e400".to_string()] {
        let body = format!(r#"{{"access_token": "at", "expires_in": {text}}}"#);
        assert_eq!(
            parse_token_response(body.as_bytes()).unwrap().expires_in,
            None
        );
    }
}

/// RFC 6749 requires `token_type`, but servers that only issue Bearer tokens often leave
/// it out: an answer without it (or with null or "") is a Bearer token.
#[test]
fn a_missing_token_type_means_bearer() {
    for body in [
        json!({"access_token": "at"}),
        json!({"access_token": "at", "token_type": null}),
        json!({"access_token": "at", "token_type": ""}),
    ] {
        let parsed = parse_token_response(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(parsed.token_type, "Bearer", "{body}");
    }
    let wire: WireTokenResponse = serde_json::from_slice(br#"{"access_token": "at"}"#).unwrap();
    assert_eq!(convert(wire).token_type, "Bearer");
}

/// A token answer granting hundreds of thousands of scopes keeps the first 1,024, in
/// either shape, and never builds the rest.
#[test]
fn granted_scopes_are_bounded() {
    let names: Vec<String> = (0..200_000).map(|i| format!("s{i}")).collect();
    for scope in [json!(names.join(" ")), json!(names)] {
        let body = serde_json::to_vec(&json!({"access_token": "at", "scope": scope})).unwrap();
        let scopes = parse_token_response(&body).unwrap().scopes.unwrap();
        assert_eq!(scopes.len(), crate::oauth::bounds::MAX_LIST_ENTRIES);
        assert_eq!(scopes[..], names[..scopes.len()]);
        let wire: WireTokenResponse = serde_json::from_slice(&body).unwrap();
        assert_eq!(convert(wire).scopes.unwrap().len(), scopes.len());
    }
    // Members the daemon does not read may be anything, at any size.
    let body = format!(
        r#"{{"access_token": "at", "extra": [{}], "n": {}}}"#,
        vec!["[1,{\"a\":2}]"; 50_000].join(","),
        "7".repeat(100_000)
    );
    assert_eq!(
        parse_token_response(body.as_bytes()).unwrap().access_token,
        "at"
    );
}

/// JSON-ish text: fragments of token answers glued together, so the parser sees near
/// misses as well as noise.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just("\"access_token\"".to_string()),
        Just("\"token_type\"".to_string()),
        Just("\"expires_in\"".to_string()),
        Just("\"refresh_token\"".to_string()),
        Just("\"scope\"".to_string()),
        Just("\"Bearer\"".to_string()),
        Just("null".to_string()),
        Just("-1e309".to_string()),
        Just("18446744073709551616".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        "\"[^\"\\\\]{0,8}\"",
    ];
    prop_oneof![
        proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..256),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        any::<i64>().prop_map(|n| Value::from(n.to_string())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(".{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_end_in_a_value_or_a_typed_error(bytes in jsonish()) {
        match parse_token_response(&bytes) {
            Ok(r) => {
                prop_assert!(!r.access_token.is_empty());
                prop_assert!(r.expires_in.is_none_or(|s| (1..=MAX_EXPIRES_IN).contains(&s)));
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn expires_in_of_any_json_type_keeps_the_login(value in any_json()) {
        let parsed = parse_token_response(&with_expires_in(value)).unwrap();
        prop_assert_eq!(parsed.access_token, "at-SECRET");
        prop_assert!(parsed.expires_in.is_none_or(|s| (1..=MAX_EXPIRES_IN).contains(&s)));
    }
}

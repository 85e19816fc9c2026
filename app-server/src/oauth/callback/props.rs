//! Arbitrary requests and pasted texts against the callback checks: they never panic, always
//! end in one of the typed answers, and only a response carrying the login's state once can
//! end the login.

use proptest::prelude::*;

use super::*;

const PATH: &str = "/callback/XuuuHAzzHOni";
const STATE: &str = "st-4f9Q_zz";

fn expected(iss_required: bool) -> ExpectedCallback {
    ExpectedCallback {
        callback_path: PATH.to_owned(),
        state: STATE.to_owned(),
        issuer: Some("https://as.example.com".to_owned()),
        iss_required,
    }
}

/// Query parameters near the interesting ones, and noise.
fn param() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(format!("state={STATE}")),
        Just("state=st-4f9Q_zZ".to_owned()),
        Just("state=".to_owned()),
        Just("code=c0de".to_owned()),
        Just("code=".to_owned()),
        Just("error=access_denied".to_owned()),
        Just("error_description=%3Cb%3Eno%3C%2Fb%3E".to_owned()),
        Just("iss=https%3A%2F%2Fas.example.com".to_owned()),
        Just("iss=https%3A%2F%2Fevil.example".to_owned()),
        "[a-z_]{1,8}=[ -~]{0,8}",
        any::<String>(),
    ]
}

fn target() -> impl Strategy<Value = String> {
    let path = prop_oneof![
        Just(PATH.to_owned()),
        Just(format!("{PATH}/")),
        Just("/callback".to_owned()),
        any::<String>(),
    ];
    let fragment = prop_oneof![
        Just(String::new()),
        any::<String>().prop_map(|f| format!("#{f}"))
    ];
    (path, prop::collection::vec(param(), 0..6), fragment)
        .prop_map(|(path, params, fragment)| format!("{path}?{}{fragment}", params.join("&")))
}

/// Whether a query names the login's state exactly once (the only way to end the login).
fn proves_state(query: &str) -> bool {
    let states: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "state")
        .map(|(_, value)| value.into_owned())
        .collect();
    states.len() == 1 && states[0] == STATE
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_request_gets_a_typed_answer_and_only_the_state_ends_the_login(
        method in prop_oneof![Just("GET".to_owned()), "[A-Z]{0,7}"],
        target in prop_oneof![target(), any::<String>()],
        iss_required in any::<bool>(),
    ) {
        let parsed = parse_callback(&method, &target, &expected(iss_required));
        let (path, query) = split_target(&target);
        match parsed {
            ParsedCallback::NotOurs => {
                prop_assert!(method != "GET" || path != PATH);
            }
            ParsedCallback::Discarded(_) => {
                prop_assert!(method == "GET" && path == PATH);
                prop_assert!(!proves_state(query));
            }
            ParsedCallback::Outcome(outcome) => {
                prop_assert!(method == "GET" && path == PATH);
                prop_assert!(proves_state(query), "{target:?} ended the login");
                if let CallbackOutcome::Error(error) = &outcome {
                    let message = error.to_string();
                    prop_assert!(!message.contains(STATE), "{message}");
                    prop_assert!(!message.contains("c0de"), "{message}");
                }
            }
        }
    }

    #[test]
    fn any_pasted_text_is_taken_or_refused_with_a_reason(
        text in prop_oneof![
            target().prop_map(|t| format!("http://127.0.0.1:8765{t}")),
            target(),
            any::<String>(),
        ],
    ) {
        match parse_pasted_callback(&text, &expected(false)) {
            // The generated texts carry the state only literally, never percent-encoded.
            Ok(outcome) => {
                prop_assert!(text.contains(STATE), "{text:?} ended the login with {outcome:?}");
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(!message.is_empty());
                prop_assert!(!message.contains(STATE), "{message}");
            }
        }
    }
}

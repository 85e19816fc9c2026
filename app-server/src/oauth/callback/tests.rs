use super::*;

const PATH: &str = "/callback/XuuuHAzzHOni";
const STATE: &str = "st-4f9Q_zz";
const ISSUER: &str = "https://as.example.com";

fn expected() -> ExpectedCallback {
    ExpectedCallback {
        callback_path: PATH.to_owned(),
        state: STATE.to_owned(),
        issuer: Some(ISSUER.to_owned()),
        iss_required: false,
    }
}

fn code(code: &str) -> ParsedCallback {
    ParsedCallback::Outcome(CallbackOutcome::Code {
        code: code.to_owned(),
    })
}

fn error(error: CallbackError) -> ParsedCallback {
    ParsedCallback::Outcome(CallbackOutcome::Error(error))
}

fn discarded(reason: DiscardReason) -> ParsedCallback {
    ParsedCallback::Discarded(reason)
}

fn oauth(error_code: &str, description: Option<&str>, uri: Option<&str>) -> ParsedCallback {
    error(CallbackError::OAuth {
        error: error_code.to_owned(),
        description: description.map(str::to_owned),
        uri: uri.map(str::to_owned),
    })
}

#[test]
fn parse_table() {
    let base = expected();
    let required = ExpectedCallback {
        iss_required: true,
        ..expected()
    };
    let no_issuer = ExpectedCallback {
        issuer: None,
        ..expected()
    };
    let root_issuer = ExpectedCallback {
        issuer: Some("https://as.example.com/".to_owned()),
        ..expected()
    };
    let tilde_issuer = ExpectedCallback {
        issuer: Some("https://as.example.com/t~1".to_owned()),
        ..expected()
    };
    let with_path_issuer = ExpectedCallback {
        issuer: Some("https://as.example.com/tenant".to_owned()),
        ..expected()
    };
    let s = STATE;
    let cases: Vec<(&str, &str, String, &ExpectedCallback, ParsedCallback)> = vec![
        // success and decoding
        (
            "success",
            "GET",
            format!("{PATH}?code=abc&state={s}"),
            &base,
            code("abc"),
        ),
        (
            "params in any order, extras ignored",
            "GET",
            format!("{PATH}?scope=a+b&state={s}&session_state=x&code=abc"),
            &base,
            code("abc"),
        ),
        (
            "percent-encoded code",
            "GET",
            format!("{PATH}?code=a%2Fb%2Bc%3D%3D&state={s}"),
            &base,
            code("a/b+c=="),
        ),
        (
            "plus is a space in a query",
            "GET",
            format!("{PATH}?code=a+b&state={s}"),
            &base,
            code("a b"),
        ),
        (
            "percent-encoded state still matches",
            "GET",
            format!("{PATH}?code=abc&state=st%2D4f9Q%5Fzz"),
            &base,
            code("abc"),
        ),
        (
            "fragment ignored",
            "GET",
            format!("{PATH}?code=abc&state={s}#frag"),
            &base,
            code("abc"),
        ),
        // state
        (
            "wrong state is discarded",
            "GET",
            format!("{PATH}?code=abc&state=other"),
            &base,
            discarded(DiscardReason::StateMismatch),
        ),
        (
            "state with a different length",
            "GET",
            format!("{PATH}?code=abc&state={s}x"),
            &base,
            discarded(DiscardReason::StateMismatch),
        ),
        (
            "missing state is discarded",
            "GET",
            format!("{PATH}?code=abc"),
            &base,
            discarded(DiscardReason::MissingState),
        ),
        (
            "bare GET (reload) is discarded",
            "GET",
            PATH.to_owned(),
            &base,
            discarded(DiscardReason::MissingState),
        ),
        (
            "empty state is missing",
            "GET",
            format!("{PATH}?code=abc&state="),
            &base,
            discarded(DiscardReason::MissingState),
        ),
        (
            "error without state is not trusted",
            "GET",
            format!("{PATH}?error=access_denied"),
            &base,
            discarded(DiscardReason::MissingState),
        ),
        (
            "error with wrong state",
            "GET",
            format!("{PATH}?error=access_denied&state=nope"),
            &base,
            discarded(DiscardReason::StateMismatch),
        ),
        // error=
        (
            "error with description",
            "GET",
            format!("{PATH}?error=access_denied&error_description=User%20denied+access&state={s}"),
            &base,
            oauth("access_denied", Some("User denied access"), None),
        ),
        (
            "error with uri",
            "GET",
            format!(
                "{PATH}?state={s}&error=invalid_scope&error_uri=https%3A%2F%2Fas.example.com%2Fdocs%3Fa%3D1"
            ),
            &base,
            oauth(
                "invalid_scope",
                None,
                Some("https://as.example.com/docs?a=1"),
            ),
        ),
        (
            "error wins over code",
            "GET",
            format!("{PATH}?code=abc&error=server_error&state={s}"),
            &base,
            oauth("server_error", None, None),
        ),
        (
            "control characters in description cleaned",
            "GET",
            format!("{PATH}?error=x&error_description=a%0Ab%1Bc&state={s}"),
            &base,
            oauth("x", Some("a b c"), None),
        ),
        (
            "state but no code or error",
            "GET",
            format!("{PATH}?state={s}"),
            &base,
            error(CallbackError::MissingCode),
        ),
        (
            "empty code is missing",
            "GET",
            format!("{PATH}?code=&state={s}"),
            &base,
            error(CallbackError::MissingCode),
        ),
        // iss (RFC 9207)
        (
            "matching iss",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com"),
            &base,
            code("abc"),
        ),
        (
            "other iss",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fevil.example"),
            &base,
            error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "https://evil.example".to_owned(),
            }),
        ),
        (
            "iss checked before error",
            "GET",
            format!("{PATH}?error=access_denied&state={s}&iss=https%3A%2F%2Fevil.example"),
            &base,
            error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "https://evil.example".to_owned(),
            }),
        ),
        (
            "absent iss accepted when not advertised",
            "GET",
            format!("{PATH}?code=abc&state={s}"),
            &base,
            code("abc"),
        ),
        (
            "absent iss refused when advertised",
            "GET",
            format!("{PATH}?code=abc&state={s}"),
            &required,
            error(CallbackError::MissingIssuer),
        ),
        (
            "present iss accepted when advertised",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com"),
            &required,
            code("abc"),
        ),
        (
            "iss without an expected issuer is not compared",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fwhatever.example"),
            &no_issuer,
            code("abc"),
        ),
        (
            "root issuer: trailing slash is a different issuer",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com"),
            &root_issuer,
            error(CallbackError::IssuerMismatch {
                expected: "https://as.example.com/".to_owned(),
                got: "https://as.example.com".to_owned(),
            }),
        ),
        (
            "iss with a trailing slash the issuer lacks",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com%2F"),
            &required,
            error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "https://as.example.com/".to_owned(),
            }),
        ),
        (
            "iss differing only in case is a mismatch",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=HTTPS%3A%2F%2FAS.example.com"),
            &base,
            error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "HTTPS://AS.example.com".to_owned(),
            }),
        ),
        (
            "iss with the default port spelled out is a mismatch",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com%3A443"),
            &base,
            error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "https://as.example.com:443".to_owned(),
            }),
        ),
        (
            "iss percent-encoded differently is a mismatch",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com%2Ft%257E1"),
            &tilde_issuer,
            error(CallbackError::IssuerMismatch {
                expected: "https://as.example.com/t~1".to_owned(),
                got: "https://as.example.com/t%7E1".to_owned(),
            }),
        ),
        (
            "error response with a mismatched iss: the error is not acted on",
            "GET",
            format!(
                "{PATH}?error=invalid_client&error_description=click%20here&error_uri=https%3A%2F%2Fevil.example%2Fhelp&state={s}&iss=https%3A%2F%2Fevil.example"
            ),
            &base,
            error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "https://evil.example".to_owned(),
            }),
        ),
        (
            "error response without iss when advertised: rejected, not shown",
            "GET",
            format!("{PATH}?error=invalid_client&error_description=click%20here&state={s}"),
            &required,
            error(CallbackError::MissingIssuer),
        ),
        (
            "issuer path trailing slash is significant",
            "GET",
            format!("{PATH}?code=abc&state={s}&iss=https%3A%2F%2Fas.example.com%2Ftenant%2F"),
            &with_path_issuer,
            error(CallbackError::IssuerMismatch {
                expected: "https://as.example.com/tenant".to_owned(),
                got: "https://as.example.com/tenant/".to_owned(),
            }),
        ),
        // duplicates (RFC 6749 §3.1)
        (
            "duplicate code",
            "GET",
            format!("{PATH}?code=a&code=b&state={s}"),
            &base,
            error(CallbackError::DuplicateParameter {
                name: "code".to_owned(),
            }),
        ),
        (
            "duplicate state, one of them right",
            "GET",
            format!("{PATH}?code=a&state=evil&state={s}"),
            &base,
            discarded(DiscardReason::RepeatedState),
        ),
        (
            "duplicate state, the right one first",
            "GET",
            format!("{PATH}?code=a&state={s}&state=evil"),
            &base,
            discarded(DiscardReason::RepeatedState),
        ),
        (
            "a duplicate before a wrong state does not end the login",
            "GET",
            format!("{PATH}?code=a&code=b&state=evil"),
            &base,
            discarded(DiscardReason::StateMismatch),
        ),
        (
            "duplicate iss",
            "GET",
            format!("{PATH}?code=a&state={s}&iss=https%3A%2F%2Fas.example.com&iss=x"),
            &base,
            error(CallbackError::DuplicateParameter {
                name: "iss".to_owned(),
            }),
        ),
        (
            "duplicate unrelated parameter is fine",
            "GET",
            format!("{PATH}?code=a&state={s}&scope=x&scope=y"),
            &base,
            code("a"),
        ),
        // not ours: 404 and the flow goes on
        (
            "HEAD",
            "HEAD",
            format!("{PATH}?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "POST",
            "POST",
            format!("{PATH}?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "lowercase method is not GET",
            "get",
            format!("{PATH}?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "favicon",
            "GET",
            "/favicon.ico".to_owned(),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "root",
            "GET",
            "/".to_owned(),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "another login's id",
            "GET",
            format!("/callback/AAAAAAAAAAAA?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "trailing slash",
            "GET",
            format!("{PATH}/?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "prefix only",
            "GET",
            format!("/callback?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
        (
            "longer path",
            "GET",
            format!("{PATH}/x?code=abc&state={s}"),
            &base,
            ParsedCallback::NotOurs,
        ),
    ];
    for (name, method, target, expected, want) in cases {
        assert_eq!(parse_callback(method, &target, expected), want, "{name}");
    }
}

#[test]
fn parse_with_prefixed_callback_path() {
    let expected = ExpectedCallback {
        callback_path: "/ide/oauth/callback/XuuuHAzzHOni".to_owned(),
        ..expected()
    };
    assert_eq!(
        parse_callback(
            "GET",
            &format!("/ide/oauth/callback/XuuuHAzzHOni?code=c1&state={STATE}"),
            &expected
        ),
        code("c1")
    );
    assert_eq!(
        parse_callback("GET", &format!("{PATH}?code=c1&state={STATE}"), &expected),
        ParsedCallback::NotOurs
    );
}

#[test]
fn long_server_text_is_cut() {
    let long = "é".repeat(2_000);
    let parsed = parse_callback(
        "GET",
        &format!("{PATH}?error=x&error_description={long}&state={STATE}"),
        &expected(),
    );
    let ParsedCallback::Outcome(CallbackOutcome::Error(CallbackError::OAuth {
        description: Some(description),
        ..
    })) = parsed
    else {
        panic!("expected an OAuth error, got {parsed:?}");
    };
    assert_eq!(description.chars().count(), MAX_SERVER_TEXT_CHARS + 1);
    assert!(description.ends_with('…'));
}

fn paste(text: &str) -> Result<CallbackOutcome, PasteError> {
    parse_pasted_callback(text, &expected())
}

#[test]
fn paste_table() {
    let s = STATE;
    let ok = |c: &str| Ok(CallbackOutcome::Code { code: c.to_owned() });
    let wrong_path = |got: &str| {
        Err(PasteError::WrongPath {
            expected_path: PATH.to_owned(),
            got_path: got.to_owned(),
        })
    };
    let cases: Vec<(&str, String, Result<CallbackOutcome, PasteError>)> = vec![
        (
            "loopback URL",
            format!("http://127.0.0.1:8765{PATH}?code=abc&state={s}"),
            ok("abc"),
        ),
        (
            "another host, scheme and port (forwarded)",
            format!("https://dev.example.com:9443{PATH}?code=abc&state={s}"),
            ok("abc"),
        ),
        (
            "forwarder path prefix",
            format!("https://proxy.example.com/u/42{PATH}?code=abc&state={s}"),
            ok("abc"),
        ),
        (
            "no scheme",
            format!("127.0.0.1:8765{PATH}?code=abc&state={s}"),
            ok("abc"),
        ),
        ("path only", format!("{PATH}?code=abc&state={s}"), ok("abc")),
        (
            "whitespace and quotes around",
            format!("  \"http://localhost:1{PATH}?code=abc&state={s}\"\n"),
            ok("abc"),
        ),
        (
            "angle brackets around",
            format!("<http://localhost:1{PATH}?code=abc&state={s}>"),
            ok("abc"),
        ),
        (
            "percent-encoded code",
            format!("http://127.0.0.1:1{PATH}?code=x%2By&state={s}"),
            ok("x+y"),
        ),
        (
            "wrong state is discarded, the login waits",
            format!("http://127.0.0.1:1{PATH}?code=abc&state=old"),
            Err(PasteError::Discarded {
                reason: DiscardReason::StateMismatch,
            }),
        ),
        (
            "missing state is discarded, the login waits",
            format!("http://127.0.0.1:1{PATH}?code=abc"),
            Err(PasteError::Discarded {
                reason: DiscardReason::MissingState,
            }),
        ),
        (
            "error redirect ends the login",
            format!("http://127.0.0.1:1{PATH}?error=access_denied&state={s}"),
            Ok(CallbackOutcome::Error(CallbackError::OAuth {
                error: "access_denied".to_owned(),
                description: None,
                uri: None,
            })),
        ),
        (
            "iss mismatch",
            format!("http://127.0.0.1:1{PATH}?code=abc&state={s}&iss=https://evil.example"),
            Ok(CallbackOutcome::Error(CallbackError::IssuerMismatch {
                expected: ISSUER.to_owned(),
                got: "https://evil.example".to_owned(),
            })),
        ),
        (
            "authorization URL pasted by mistake",
            format!(
                "https://as.example.com/authorize?response_type=code&state={s}&redirect_uri=http%3A%2F%2F127.0.0.1%3A1{PATH}"
            ),
            wrong_path("/authorize"),
        ),
        (
            "another server's callback",
            format!("http://127.0.0.1:1/callback/AAAAAAAAAAAA?code=abc&state={s}"),
            wrong_path("/callback/AAAAAAAAAAAA"),
        ),
        (
            "callback id glued to a longer segment",
            format!("http://127.0.0.1:1/xcallback/XuuuHAzzHOni?code=abc&state={s}"),
            wrong_path("/xcallback/XuuuHAzzHOni"),
        ),
        (
            "no response in it",
            format!("http://127.0.0.1:1{PATH}"),
            Err(PasteError::NoResponse {
                expected_path: PATH.to_owned(),
            }),
        ),
        (
            "only unrelated parameters",
            format!("http://127.0.0.1:1{PATH}?scope=x"),
            Err(PasteError::NoResponse {
                expected_path: PATH.to_owned(),
            }),
        ),
        (
            "empty",
            "   ".to_owned(),
            Err(PasteError::Empty {
                expected_path: PATH.to_owned(),
            }),
        ),
        (
            "not a URL",
            "hello there, the code is".to_owned(),
            Err(PasteError::NotAUrl {
                expected_path: PATH.to_owned(),
            }),
        ),
        (
            "other scheme",
            format!("ftp://127.0.0.1{PATH}?code=abc&state={s}"),
            Err(PasteError::NotAUrl {
                expected_path: PATH.to_owned(),
            }),
        ),
    ];
    for (name, text, want) in cases {
        assert_eq!(paste(&text), want, "{name}");
    }
}

#[test]
fn errors_and_debug_never_show_code_or_state() {
    let secret_code = "CODE-7Hq2-secret";
    let outcomes = [
        paste(&format!(
            "http://127.0.0.1:1{PATH}?code={secret_code}&state=guess-{STATE}"
        )),
        paste(&format!(
            "http://127.0.0.1:1/authorize?code={secret_code}&state={STATE}"
        )),
        paste(&format!(
            "http://127.0.0.1:1{PATH}?code={secret_code}&state={STATE}"
        )),
    ];
    for outcome in outcomes {
        let shown = match &outcome {
            Ok(CallbackOutcome::Error(error)) => format!("{error} {error:?}"),
            Ok(outcome) => format!("{outcome:?}"),
            Err(error) => format!("{error} {error:?}"),
        };
        assert!(!shown.contains(secret_code), "{shown}");
        assert!(!shown.contains(STATE), "{shown}");
    }
    let debug = format!("{:?}", expected());
    assert!(debug.contains(PATH) && !debug.contains(STATE), "{debug}");
}

#[test]
fn error_messages_say_what_to_do() {
    let message = CallbackError::OAuth {
        error: "access_denied".to_owned(),
        description: Some("no".to_owned()),
        uri: Some("https://as.example/e".to_owned()),
    }
    .to_string();
    assert_eq!(
        message,
        "the authorization server refused the login: access_denied (no); see https://as.example/e; \
         access was declined: start the login again and approve it"
    );
    assert!(
        CallbackError::MissingCode
            .to_string()
            .ends_with("start the login again")
    );
    let discarded = PasteError::Discarded {
        reason: DiscardReason::StateMismatch,
    }
    .to_string();
    assert!(discarded.contains("still waiting"), "{discarded}");
    assert!(discarded.contains("paste the address"), "{discarded}");
    assert_eq!(DiscardReason::MissingState.kind(), "missingState");
}

#[test]
fn callback_path_and_redirect_uri() {
    let id = "XuuuHAzzHOni";
    assert_eq!(callback_path(None, id), "/callback/XuuuHAzzHOni");
    assert_eq!(
        redirect_uri(None, 8765, id),
        "http://127.0.0.1:8765/callback/XuuuHAzzHOni"
    );

    let configured = Url::parse("http://127.0.0.1:8765/callback").unwrap();
    assert_eq!(
        callback_path(Some(&configured), id),
        "/callback/XuuuHAzzHOni"
    );
    assert_eq!(
        redirect_uri(Some(&configured), 40000, id),
        "http://127.0.0.1:8765/callback/XuuuHAzzHOni"
    );

    let forwarded = Url::parse("https://fwd.example.com/ide/oauth/cb/?x=1#f").unwrap();
    assert_eq!(
        callback_path(Some(&forwarded), id),
        "/ide/oauth/cb/XuuuHAzzHOni"
    );
    assert_eq!(
        redirect_uri(Some(&forwarded), 1, id),
        "https://fwd.example.com/ide/oauth/cb/XuuuHAzzHOni"
    );

    let root = Url::parse("http://localhost:9000").unwrap();
    assert_eq!(callback_path(Some(&root), id), "/XuuuHAzzHOni");
    assert_eq!(
        redirect_uri(Some(&root), 1, id),
        "http://localhost:9000/XuuuHAzzHOni"
    );

    // The redirect URI's own path is what the listener must serve.
    let uri = Url::parse(&redirect_uri(Some(&forwarded), 1, id)).unwrap();
    assert_eq!(uri.path(), callback_path(Some(&forwarded), id));
}

//! Choosing how to register: priority in each mode, the missing preconditions named.

use mcp_app_server_protocol::RegistrationKind;

use super::*;

const ID: &str = "XuuuHAzzHOni";

fn redirect() -> Url {
    Url::parse("http://127.0.0.1:8765/callback/XuuuHAzzHOni").unwrap()
}

fn metadata(cimd: bool, none: bool, registration: bool) -> AuthServerMetadata {
    let mut m = AuthServerMetadata::legacy_defaults(&Url::parse("https://as.example").unwrap());
    m.client_id_metadata_document_supported = cimd;
    m.token_endpoint_auth_methods_supported = Some(if none {
        vec!["none".into(), "client_secret_basic".into()]
    } else {
        vec!["client_secret_basic".into()]
    });
    if !registration {
        m.registration_endpoint = None;
    }
    m
}

fn base() -> CimdSource {
    CimdSource::Base(Url::parse("https://ide.example.com/meta").unwrap())
}

fn choose(
    mode: ClientRegistrationMode,
    prereg: Option<(&str, Option<&str>)>,
    source: Option<&CimdSource>,
    m: &AuthServerMetadata,
    refused: bool,
) -> Result<RegistrationChoice, RegistrationError> {
    choose_registration(mode, prereg, source, m, ID, &redirect(), refused)
}

#[test]
fn auto_priority() {
    use ClientRegistrationMode::Auto;
    let all = metadata(true, true, true);
    let b = base();
    // Preregistered first.
    let choice = choose(Auto, Some(("pre", Some("s"))), Some(&b), &all, false).unwrap();
    let RegistrationChoice::Ready(reg) = choice else {
        panic!("{choice:?}")
    };
    assert_eq!(reg.kind, RegistrationKind::Preregistered);
    assert_eq!(reg.auth_method, TokenAuthMethod::ClientSecretBasic);
    // Then CIMD.
    let choice = choose(Auto, None, Some(&b), &all, false).unwrap();
    let RegistrationChoice::Ready(reg) = choice else {
        panic!("{choice:?}")
    };
    assert_eq!(reg.kind, RegistrationKind::Cimd);
    assert_eq!(
        reg.client_id,
        "https://ide.example.com/meta/XuuuHAzzHOni/client.json?redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback%2FXuuuHAzzHOni"
    );
    assert_eq!(reg.auth_method, TokenAuthMethod::None);
    // A fixed URL is used as is.
    let fixed = CimdSource::Fixed(Url::parse("https://c.example/client.json").unwrap());
    let RegistrationChoice::Ready(reg) = choose(Auto, None, Some(&fixed), &all, false).unwrap()
    else {
        panic!()
    };
    assert_eq!(reg.client_id, "https://c.example/client.json");
    // Then DCR: no base, refused issuer, or a missing precondition.
    let dcr = RegistrationChoice::Dcr {
        registration_endpoint: Url::parse("https://as.example/register").unwrap(),
    };
    assert_eq!(choose(Auto, None, None, &all, false).unwrap(), dcr);
    assert_eq!(choose(Auto, None, Some(&b), &all, true).unwrap(), dcr);
    assert_eq!(
        choose(Auto, None, Some(&b), &metadata(false, true, true), false).unwrap(),
        dcr
    );
    assert_eq!(
        choose(Auto, None, Some(&b), &metadata(true, false, true), false).unwrap(),
        dcr
    );
    // Nothing possible: the error says why CIMD was not used.
    let err = choose(Auto, None, Some(&b), &metadata(false, true, false), false).unwrap_err();
    assert!(
        matches!(err, RegistrationError::NoRegistrationPossible { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("client_id_metadata_document_supported"),
        "{err}"
    );
}

#[test]
fn cimd_mode_names_the_missing_precondition() {
    use ClientRegistrationMode::Cimd;
    let b = base();
    let cases: Vec<(Option<&CimdSource>, AuthServerMetadata, bool, &str)> = vec![
        (
            None,
            metadata(true, true, true),
            false,
            "no client metadata URL",
        ),
        (
            Some(&b),
            metadata(false, true, true),
            false,
            "client_id_metadata_document_supported",
        ),
        (Some(&b), metadata(true, false, true), false, "\"none\""),
        (Some(&b), metadata(true, true, true), true, "refused"),
    ];
    for (source, m, refused, needle) in cases {
        let err = choose(Cimd, Some(("pre", None)), source, &m, refused).unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let ok = choose(
        Cimd,
        Some(("pre", None)),
        Some(&b),
        &metadata(true, true, true),
        false,
    );
    assert!(matches!(
        ok,
        Ok(RegistrationChoice::Ready(ClientRegistration {
            kind: RegistrationKind::Cimd,
            ..
        }))
    ));
}

#[test]
fn dcr_mode_never_uses_cimd() {
    use ClientRegistrationMode::Dcr;
    let b = base();
    let choice = choose(
        Dcr,
        Some(("pre", None)),
        Some(&b),
        &metadata(true, true, true),
        false,
    );
    assert!(
        matches!(choice, Ok(RegistrationChoice::Dcr { .. })),
        "{choice:?}"
    );
    let err = choose(Dcr, None, Some(&b), &metadata(true, true, false), false).unwrap_err();
    assert!(matches!(
        err,
        RegistrationError::NoRegistrationEndpoint { .. }
    ));
}

#[test]
fn debug_redacts_secret() {
    let reg = ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: "id".into(),
        client_secret: Some("hunter2".into()),
        auth_method: TokenAuthMethod::ClientSecretPost,
    };
    let text = format!("{reg:?}");
    assert!(!text.contains("hunter2"));
    assert!(text.contains("redacted"));
}

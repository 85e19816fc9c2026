use super::*;
use crate::credentials::CredentialKey;
use crate::engine::state::challenges::{ChallengeState, MAX_SCOPE_SETS_PER_SERVER, MAX_SERVERS};
use crate::engine::types::*;

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn key() -> CredentialKey {
    CredentialKey::new("a", "https://a.example/mcp")
}

#[test]
fn refusals_are_read_from_status_and_header() {
    let r = read_challenge(
        401,
        r#"Bearer error="invalid_token", resource_metadata="https://a.example/prm""#,
    )
    .unwrap();
    assert!(matches!(&r, Refusal::Unauthorized(c) if c.error.as_deref() == Some("invalid_token")));
    // Any 401 with a Bearer challenge counts, with or without an error code.
    assert!(matches!(
        read_challenge(401, "Bearer"),
        Ok(Refusal::Unauthorized(_))
    ));
    assert!(matches!(
        read_challenge(401, r#"Basic realm="x", bearer realm="y""#),
        Ok(Refusal::Unauthorized(_))
    ));
    let r = read_challenge(403, r#"Bearer error="insufficient_scope", scope="a b""#).unwrap();
    assert_eq!(r.challenge().scopes(), v(&["a", "b"]));
    assert!(matches!(r, Refusal::InsufficientScope(_)));
}

#[test]
fn bad_input_names_the_field() {
    for status in [200, 400, 404, 500, 0] {
        let e = read_challenge(status, "Bearer").unwrap_err();
        assert_eq!(e, ChallengeInputError::Status(status));
        assert_eq!(e.field(), "status");
    }
    for header in ["", "   ", r#"Basic realm="x""#, "\"unterminated", ",,,"] {
        let e = read_challenge(401, header).unwrap_err();
        assert!(
            matches!(e, ChallengeInputError::NoBearer(_)),
            "{header:?}: {e}"
        );
        assert_eq!(e.field(), "wwwAuthenticate");
    }
    let e = read_challenge(403, r#"Bearer error="invalid_token""#).unwrap_err();
    assert!(e.to_string().contains("invalid_token"), "{e}");
    assert!(matches!(
        read_challenge(403, "Bearer scope=\"a\""),
        Err(ChallengeInputError::NotInsufficientScope(_))
    ));
}

#[test]
fn resource_metadata_resolves_against_the_server_url() {
    let server = Url::parse("https://a.example/mcp").unwrap();
    let challenge = |rm: &str| BearerChallenge {
        resource_metadata: Some(rm.to_string()),
        ..BearerChallenge::default()
    };
    assert_eq!(
        resource_metadata_url(
            &server,
            &challenge("/.well-known/oauth-protected-resource/mcp")
        )
        .unwrap()
        .unwrap()
        .as_str(),
        "https://a.example/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        resource_metadata_url(&server, &BearerChallenge::default()).unwrap(),
        None
    );
    for bad in ["http://[::1", "file:///etc/passwd", "javascript:alert(1)"] {
        assert!(
            matches!(
                resource_metadata_url(&server, &challenge(bad)),
                Err(ChallengeInputError::BadResourceMetadata { .. })
            ),
            "{bad}"
        );
    }
}

#[test]
fn discovery_runs_again_only_for_another_document() {
    let a = Url::parse("https://a.example/.well-known/oauth-protected-resource/mcp").unwrap();
    let b = Url::parse("https://b.example/.well-known/oauth-protected-resource").unwrap();
    // No hint: nothing to compare.
    assert!(!resource_metadata_moved(None, None));
    assert!(!resource_metadata_moved(Some(&Some(a.clone())), None));
    // The same document: no discovery.
    assert!(!resource_metadata_moved(Some(&Some(a.clone())), Some(&a)));
    // Another one, one where none was found, or nothing known: discovery.
    assert!(resource_metadata_moved(Some(&Some(a.clone())), Some(&b)));
    assert!(resource_metadata_moved(Some(&None), Some(&a)));
    assert!(resource_metadata_moved(None, Some(&a)));
}

#[test]
fn step_up_asks_for_the_union() {
    let challenge = BearerChallenge {
        scope: Some("mcp:write mcp:read".into()),
        error: Some("insufficient_scope".into()),
        ..BearerChallenge::default()
    };
    assert_eq!(
        step_up_scopes(&v(&["mcp:read", "offline_access"]), &challenge),
        v(&["mcp:read", "offline_access", "mcp:write"])
    );
    assert_eq!(
        step_up_scopes(&[], &challenge),
        v(&["mcp:write", "mcp:read"])
    );
    assert_eq!(
        step_up_scopes(&v(&["x"]), &BearerChallenge::default()),
        v(&["x"])
    );
}

#[test]
fn step_ups_are_capped_per_scope_set() {
    let state = ChallengeState::default();
    let set = v(&["b", "a"]);
    for _ in 0..MAX_STEP_UPS {
        assert_eq!(state.begin_step_up(&key(), &set), Ok(()));
    }
    // The same set in another order is the same set.
    assert_eq!(
        state.begin_step_up(&key(), &v(&["a", "b"])),
        Err(MAX_STEP_UPS)
    );
    // Another set, or another server, has its own count.
    assert_eq!(state.begin_step_up(&key(), &v(&["a", "b", "c"])), Ok(()));
    let other = CredentialKey::new("a", "https://other.example/mcp");
    assert_eq!(state.begin_step_up(&other, &set), Ok(()));
    // A login that did not start is not counted.
    state.undo_step_up(&key(), &set);
    assert_eq!(state.begin_step_up(&key(), &set), Ok(()));
    assert_eq!(state.begin_step_up(&key(), &set), Err(MAX_STEP_UPS));
    // A login the user asked for starts over.
    state.forget_step_ups(&key());
    assert_eq!(state.begin_step_up(&key(), &set), Ok(()));
}

#[test]
fn the_state_stays_bounded() {
    let state = ChallengeState::default();
    for i in 0..(MAX_SCOPE_SETS_PER_SERVER + 10) {
        state
            .begin_step_up(&key(), &v(&[&format!("s{i}")]))
            .unwrap();
    }
    let servers = state.lock();
    assert_eq!(
        servers[&key().storage_key()].step_ups.len(),
        MAX_SCOPE_SETS_PER_SERVER
    );
    drop(servers);
    for i in 0..(MAX_SERVERS + 5) {
        let k = CredentialKey::new(format!("s{i}"), "https://a.example/mcp");
        state.discovered(&k, None);
    }
    assert!(state.lock().len() <= MAX_SERVERS);
}

#[test]
fn debug_shows_no_state_and_no_token() {
    let started = LoginStarted {
        authorization_url: Url::parse(
            "https://as.example/authorize?state=state-secret&code_challenge=cc-secret",
        )
        .unwrap(),
        redirect_uri: "http://127.0.0.1:1/callback/x".into(),
    };
    let text = format!(
        "{:?}",
        ChallengeOutcome::Login {
            started,
            scopes: v(&["a"])
        }
    );
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("callback/x"), "{text}");
}

#[test]
fn the_discovered_document_is_remembered() {
    let state = ChallengeState::default();
    assert_eq!(state.known_prm(&key()), None);
    state.discovered(&key(), None);
    assert_eq!(state.known_prm(&key()), Some(None));
    let a = Url::parse("https://a.example/prm").unwrap();
    state.discovered(&key(), Some(&a));
    assert_eq!(state.known_prm(&key()), Some(Some(a)));
}

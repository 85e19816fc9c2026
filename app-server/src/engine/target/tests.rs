//! Targets' lookup keys, and the redaction of every type that holds a secret.

use mcp_app_server_protocol::RegistrationKind;

use super::*;
use crate::credentials::{StoredClient, StoredCredentials, StoredRegistration};
use crate::oauth::callback::{CallbackOutcome, ExpectedCallback};
use crate::oauth::{ClientRegistration, Pkce, TokenAuthMethod, TokenResponse};

const SECRET: &str = "SECRET-d41d8cd9";

fn assert_redacted(value: &dyn std::fmt::Debug) {
    for text in [format!("{value:?}"), format!("{value:#?}")] {
        assert!(!text.contains(SECRET), "{text}");
    }
}

fn secret(what: &str) -> String {
    format!("{what}-{SECRET}")
}

#[test]
fn debug_output_holds_no_secret() {
    let target = ServerTarget {
        account: Some("someone@example.com".into()),
        name: "s".into(),
        url: Url::parse("https://mcp.example.com/mcp").unwrap(),
        resource_override: None,
        http_headers: BTreeMap::from([("X-Api-Key".to_string(), secret("header"))]),
        configured_scopes: None,
        client_id: Some("client".into()),
        client_secret: Some(secret("client")),
        client_secret_keyring: None,
        callback_port: None,
        callback_url: None,
        client_metadata_url: None,
        client_metadata_url_base: None,
        net_opt_ins: Default::default(),
        refresh_scope: Default::default(),
        token_endpoint_auth_method: None,
        enterprise: None,
        client_issuer: None,
        grant: GrantConfig::ClientCredentials {
            client_id: "client".into(),
            auth: crate::config::grant::ClientAuthConfig::Secret(
                crate::config::grant::InlineSecret(secret("inline")),
            ),
        },
        network: crate::config::network::ServerNetwork {
            proxy: crate::config::network::ProxySetting::parse(&format!(
                "http://user:{}@proxy.corp:3128",
                secret("proxy")
            ))
            .unwrap(),
            ..Default::default()
        },
        dpop: Some(true),
        escape_hatches: Default::default(),
        client_key_to_frontends: false,
        share_login: true,
        lookup: Default::default(),
    };
    assert_redacted(&target);
    assert!(format!("{target:?}").contains("X-Api-Key"));

    let registration = ClientRegistration {
        kind: RegistrationKind::Preregistered,
        client_id: "client".into(),
        client_secret: Some(secret("client")),
        auth_method: TokenAuthMethod::ClientSecretBasic,
    };
    assert_redacted(&registration);

    let client = StoredClient {
        kind: RegistrationKind::Dcr,
        client_id: "client".into(),
        client_secret: Some(secret("client")),
        token_endpoint_auth_method: "client_secret_post".into(),
    };
    assert_redacted(&client);
    let creds = StoredCredentials {
        server_name: "s".into(),
        server_url: "https://mcp.example.com/mcp".into(),
        account: None,
        selected_at: None,
        access_token: secret("at"),
        token_type: "Bearer".into(),
        refresh_token: Some(secret("rt")),
        expires_at: None,
        scopes: vec![],
        requested_scopes: Vec::new(),
        issuer: "https://as.example.com".into(),
        token_endpoint: "https://as.example.com/token".into(),
        revocation_endpoint: None,
        resource: "https://mcp.example.com/mcp".into(),
        client,
        reauthentication_required: false,
        login_reason: None,
        grant: None,
        dpop_key: None,
        certificate_x5t: None,
        updated_at: 0,
        refreshed_through: None,
        shared_with: None,
    };
    assert_redacted(&creds);
    assert_redacted(&StoredRegistration {
        issuer: "https://as.example.com".into(),
        redirect_uri: "http://127.0.0.1:1/callback/x".into(),
        client_id: "client".into(),
        client_secret: Some(secret("client")),
        token_endpoint_auth_method: "client_secret_basic".into(),
        registered_at: 0,
        client_secret_expires_at: None,
        certificate_x5t: None,
    });
    assert_redacted(&TokenResponse {
        access_token: secret("at"),
        token_type: "Bearer".into(),
        refresh_token: Some(secret("rt")),
        expires_in: Some(60),
        scopes: None,
    });
    assert_redacted(&Pkce::from_verifier(secret("verifier")));
    assert_redacted(&ExpectedCallback {
        callback_path: "/callback/x".into(),
        state: secret("state"),
        issuer: None,
        iss_required: false,
    });
    assert_redacted(&CallbackOutcome::Code {
        code: secret("code"),
    });
}

fn target(name: &str, url: &str) -> ServerTarget {
    let text = format!("[mcp_servers.{name}]\nurl = \"{url}\"\n");
    let config =
        crate::config::parse(&text, std::path::Path::new("config.toml")).expect("a valid config");
    let http = config.servers[name].http().expect("an HTTP server");
    ServerTarget::from_config(name, http, &config, None)
}

#[test]
fn the_lookup_key_is_made_once_and_follows_the_target() {
    let mut t = target("a", "https://a.example/mcp");
    let first = t.lookup_key();
    assert_eq!(first.key(), &t.key());
    assert_eq!(first.storage_key(), t.key().storage_key());
    assert!(Arc::ptr_eq(&first, &t.lookup_key()), "worked out once");
    // A clone shares it, and compares equal to a target that has none yet.
    assert!(Arc::ptr_eq(&first, &t.clone().lookup_key()));
    assert_eq!(t, target("a", "https://a.example/mcp"));

    // Renamed or moved after it was made: the key of the target as it is now.
    t.name = "b".into();
    assert_eq!(
        t.lookup_key().key(),
        &CredentialKey::new("b", "https://a.example/mcp")
    );
    t.url = Url::parse("https://elsewhere.example/mcp").unwrap();
    let moved = t.lookup_key();
    assert_eq!(moved.key(), &t.key());
    assert_eq!(moved.storage_key(), t.key().storage_key());
}

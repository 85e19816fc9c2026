//! Loading config.toml: a full example, and the errors that name the key and line.

use super::*;

fn p(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("config.toml"))
}

fn err(text: &str) -> String {
    p(text).unwrap_err().to_string()
}

#[test]
fn full_example_parses() {
    let c = p(r#"
mcp_oauth_credentials_store = "file"
mcp_oauth_callback_port = 8765
mcp_oauth_callback_url = "http://127.0.0.1:8765/callback"
client_metadata_url_base = "https://ide.example.com/mcp/oauth"

[mcp_servers.linear]
url = "https://mcp.linear.app/mcp"
scopes = ["read"]
oauth_resource = "https://mcp.linear.app/mcp"
http_headers = { "X-Tenant" = "acme" }
startup_timeout_sec = 10
[mcp_servers.linear.oauth]
client_id = "preregistered-id"
callback_port = 8766
client_metadata_url = "https://ide.example.com/client.json"

[mcp_servers.local]
command = "npx"
args = ["-y", "x"]
"#)
    .unwrap();
    assert_eq!(c.credentials_store, CredentialsStoreMode::File);
    assert_eq!(c.callback_port, Some(8765));
    assert_eq!(
        c.callback_url.unwrap().as_str(),
        "http://127.0.0.1:8765/callback"
    );
    let linear = c.servers["linear"].http().unwrap();
    assert_eq!(linear.url.as_str(), "https://mcp.linear.app/mcp");
    assert_eq!(linear.scopes, Some(vec!["read".to_string()]));
    assert_eq!(linear.http_headers["X-Tenant"], "acme");
    assert_eq!(linear.oauth.client_id.as_deref(), Some("preregistered-id"));
    assert_eq!(linear.oauth.callback_port, Some(8766));
    assert_eq!(
        c.servers["local"].transport,
        ServerTransport::Stdio {
            command: "npx".into()
        }
    );
}

#[test]
fn empty_config_is_fine() {
    assert_eq!(p("").unwrap(), Config::default());
}

#[test]
fn unknown_top_level_key_names_key_and_line() {
    let e = err("\n\nmcp_oauth_callback_prot = 1\n");
    assert!(e.contains("config.toml:3:"), "{e}");
    assert!(e.contains("mcp_oauth_callback_prot"), "{e}");
}

#[test]
fn unknown_server_key_names_the_server() {
    let e = err("[mcp_servers.a]\nurl = \"https://x\"\nurll = 1\n");
    assert!(e.contains("urll"), "{e}");
    assert!(e.contains("mcp_servers.a"), "{e}");
    assert!(e.contains(":3:"), "{e}");
}

#[test]
fn prewarm_key_is_checked_at_load() {
    let load = |text: &str| parse(text, Path::new("config.toml"));
    assert!(!load("").unwrap().prewarm_disabled);
    assert!(!load("mcp_oauth_prewarm = true\n").unwrap().prewarm_disabled);
    assert!(
        load("mcp_oauth_prewarm = false\n")
            .unwrap()
            .prewarm_disabled
    );
    let e = load("mcp_oauth_prewarm = \"no\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("mcp_oauth_prewarm") && e.contains(":1:"), "{e}");
}

#[test]
fn preregister_key_is_checked_at_load() {
    let load = |text: &str| parse(text, Path::new("config.toml"));
    assert!(!load("").unwrap().preregister_disabled);
    assert!(
        load("mcp_oauth_preregister = false\n")
            .unwrap()
            .preregister_disabled
    );
    let e = load("mcp_oauth_preregister = 0\n").unwrap_err().to_string();
    assert!(
        e.contains("mcp_oauth_preregister") && e.contains(":1:"),
        "{e}"
    );
}

#[test]
fn bad_values_are_reported_with_key_and_line() {
    let e = err("mcp_oauth_callback_port = 70000\n");
    assert!(
        e.contains("mcp_oauth_callback_port") && e.contains(":1:"),
        "{e}"
    );
    let e = err("mcp_oauth_credentials_store = \"vault\"\n");
    assert!(
        e.contains("mcp_oauth_credentials_store") && e.contains("vault"),
        "{e}"
    );
    let e = err("[mcp_servers.a]\n\nurl = \"not a url\"\n");
    assert!(e.contains("mcp_servers.a.url") && e.contains(":3:"), "{e}");
    let e = err("[mcp_servers.a]\nurl = \"ftp://x/\"\n");
    assert!(e.contains("http or https"), "{e}");
    let e = err("[mcp_servers.a]\nurl = \"https://x/\"\n[mcp_servers.a.oauth]\nclient_id = 5\n");
    assert!(
        e.contains("mcp_servers.a.oauth.client_id") && e.contains(":4:"),
        "{e}"
    );
    let e = err("[mcp_servers.a]\nurl = \"https://x/\"\n[mcp_servers.a.oauth]\n\ndpop = \"no\"\n");
    assert!(
        e.contains("mcp_servers.a.oauth.dpop") && e.contains(":5:"),
        "{e}"
    );
    let ok =
        p("[mcp_servers.a]\nurl = \"https://x/\"\n[mcp_servers.a.oauth]\ndpop = false\n").unwrap();
    let a = ok.servers["a"].http().unwrap();
    assert_eq!(a.oauth.dpop, Some(false));
    let e = err("[mcp_servers.a]\nurl = \"https://x/\"\nscopes = [\"a b\"]\n");
    assert!(e.contains("scopes"), "{e}");
    let e = err("mcp_oauth_callback_url = \"http://x/cb?a=1\"\n");
    assert!(e.contains("query"), "{e}");
}

#[test]
fn server_needs_exactly_one_of_url_and_command() {
    assert!(err("[mcp_servers.a]\nscopes = []\n").contains("needs `url`"));
    assert!(err("[mcp_servers.a]\nurl = \"https://x\"\ncommand = \"y\"\n").contains("both"));
}

#[test]
fn server_names_are_restricted() {
    assert!(err("[mcp_servers.\"a b\"]\nurl = \"https://x\"\n").contains("server names"));
}

#[test]
fn syntax_errors_have_a_line() {
    let e = err("a = \n");
    assert!(e.contains(":1:"), "{e}");
}

#[test]
fn missing_file_is_empty_config() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        load(&dir.path().join("config.toml")).unwrap(),
        Config::default()
    );
}

#[test]
fn refresh_scope_and_keyring_secret_are_checked_at_load() {
    let server = "[mcp_servers.a]\nurl = \"https://x/\"\n[mcp_servers.a.oauth]\n";
    for (value, mode) in [
        ("requested", RefreshScope::Requested),
        ("granted", RefreshScope::Granted),
        ("none", RefreshScope::None),
    ] {
        let c = p(&format!("{server}refresh_scope = \"{value}\"\n")).unwrap();
        assert_eq!(
            c.servers["a"].http().unwrap().oauth.refresh_scope,
            Some(mode)
        );
    }
    let e = err(&format!("{server}refresh_scope = \"all\"\n"));
    assert!(e.contains("refresh_scope") && e.contains(":4:"), "{e}");

    let c = p(&format!(
        "{server}client_id = \"c\"\nclient_secret_keyring = \"corp\"\n"
    ))
    .unwrap();
    let oauth = &c.servers["a"].http().unwrap().oauth;
    assert_eq!(oauth.client_secret_keyring.as_deref(), Some("corp"));
    for (body, says) in [
        ("client_secret_keyring = \"corp\"\n", "set `client_id` too"),
        (
            "client_id = \"c\"\nclient_secret_keyring = \"corp\"\nclient_secret_env_var = \"S\"\n",
            "only one of",
        ),
        (
            "client_id = \"c\"\nclient_secret_keyring = \"\"\n",
            "1 to 128",
        ),
        (
            "client_id = \"c\"\ngrant = \"client_credentials\"\nclient_secret_keyring = \"corp\"\nprivate_key_env_var = \"K\"\n",
            "for the browser login",
        ),
    ] {
        let e = err(&format!("{server}{body}"));
        assert!(
            e.contains("mcp_servers.a.oauth.client_secret_keyring") && e.contains(says),
            "{body}: {e}"
        );
    }
}

#[test]
fn tls_keys_read_their_files_and_name_the_key_when_they_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let cert = file(
        "ca.pem",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    let key = file(
        "key.pem",
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n",
    );
    // A client certificate is read when config.toml loads: one that does not parse is
    // refused there, naming the key.
    let e = err(&format!(
        "[mcp_servers.a]\nurl = \"https://a.example/mcp\"\n\
         client_certificate = \"{cert}\"\nclient_key = \"{key}\"\n"
    ));
    assert!(
        e.contains("mcp_servers.a.client_certificate") && e.contains("X.509"),
        "{e}"
    );
    let issued = mcp_app_server_testkit::TestCa::new("config CA")
        .unwrap()
        .client("me")
        .unwrap();
    let client = file("me.pem", &issued.chain_pem);
    let c = p(&format!(
        "ca_certificates = \"{cert}\"\n[mcp_servers.a]\nurl = \"https://a.example/mcp\"\n\
         client_certificate = \"{client}\"\nclient_key = \"{key}\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.network.ca_certificates.as_ref().unwrap().path(),
        Path::new(&cert)
    );
    let a = c.servers["a"].http().unwrap();
    let network = a.network.over(&c.network);
    assert!(network.client_identity.is_some());
    assert!(
        network.ca_certificates.is_some(),
        "the global bundle applies"
    );
    assert!(
        !format!("{c:?}").contains("c2VjcmV0"),
        "the key never shows"
    );

    let e = err(
        "[mcp_servers.a]\nurl = \"https://a.example/mcp\"\nca_certificates = \"/nonexistent/ca.pem\"\n",
    );
    assert!(
        e.contains("config.toml:3:") && e.contains("mcp_servers.a.ca_certificates"),
        "{e}"
    );
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    let e = err(&format!("ca_certificates = \"{key}\"\n"));
    assert!(
        e.contains("`ca_certificates`") && e.contains("BEGIN CERTIFICATE"),
        "{e}"
    );
    let e = err(&format!(
        "[mcp_servers.a]\nurl = \"https://a.example/mcp\"\nclient_certificate = \"{cert}\"\n"
    ));
    assert!(e.contains("client_key") && e.contains("go together"), "{e}");
    let e = err(&format!(
        "[mcp_servers.a]\nurl = \"https://a.example/mcp\"\nclient_certificate = \"{client}\"\nclient_key = \"{cert}\"\n"
    ));
    assert!(
        e.contains("mcp_servers.a.client_key") && e.contains("PRIVATE KEY"),
        "{e}"
    );
}

#[test]
fn token_endpoint_auth_method_takes_only_the_methods_this_client_implements() {
    let server = "[mcp_servers.a]\nurl = \"https://a.example/mcp\"\n[mcp_servers.a.oauth]\n";
    for method in TOKEN_ENDPOINT_AUTH_METHODS {
        let c = p(&format!(
            "{server}token_endpoint_auth_method = \"{method}\"\n"
        ))
        .unwrap();
        let a = c.servers["a"].http().unwrap();
        assert_eq!(a.oauth.token_endpoint_auth_method.as_deref(), Some(method));
    }
    for method in ["private_key_jwt", "TLS_CLIENT_AUTH", ""] {
        let e = err(&format!(
            "{server}token_endpoint_auth_method = \"{method}\"\n"
        ));
        assert!(
            e.contains("mcp_servers.a.oauth.token_endpoint_auth_method")
                && e.contains("self_signed_tls_client_auth"),
            "{method}: {e}"
        );
    }
}

//! Loading the escape hatches: every key, and the errors that name the key and the line.

use std::path::Path;

use crate::config::{Config, ConfigError, parse};

fn p(text: &str) -> Result<Config, ConfigError> {
    parse(text, Path::new("config.toml"))
}

fn server(oauth: &str) -> String {
    format!(
        "[mcp_servers.atl]\nurl = \"https://mcp.example.com/mcp\"\n[mcp_servers.atl.oauth]\n{oauth}"
    )
}

#[test]
fn every_key_parses_and_is_listed_in_order() {
    let c = p(&server(
        r#"authorization_server_metadata_url = "https://auth.example.com/custom/metadata.json?tenant=a"
issuer = "https://auth.example.com/tenant"
authorization_endpoint = "https://login.example.net/authorize"
token_endpoint = "https://auth.example.com/oauth/token"
registration_endpoint = "https://auth.example.com/oauth/register"
revocation_endpoint = "http://127.0.0.1:9000/revoke"
"#,
    ))
    .unwrap();
    let hatches = &c.servers["atl"].http().unwrap().escape_hatches;
    assert_eq!(
        hatches
            .authorization_server_metadata_url
            .as_ref()
            .unwrap()
            .as_str(),
        "https://auth.example.com/custom/metadata.json?tenant=a"
    );
    assert_eq!(
        hatches.issuer.as_deref(),
        Some("https://auth.example.com/tenant")
    );
    assert_eq!(
        hatches.authorization_endpoint.as_ref().unwrap().host_str(),
        Some("login.example.net")
    );
    assert_eq!(
        hatches.keys(),
        [
            "authorization_server_metadata_url",
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "revocation_endpoint"
        ]
    );
    assert!(!hatches.is_empty());
}

#[test]
fn none_is_the_default_and_strict() {
    let c = p(&server("client_id = \"x\"\n")).unwrap();
    let hatches = &c.servers["atl"].http().unwrap().escape_hatches;
    assert!(hatches.is_empty());
    assert!(hatches.keys().is_empty());
    let c = p("[mcp_servers.atl]\nurl = \"https://mcp.example.com/mcp\"\n").unwrap();
    assert!(c.servers["atl"].http().unwrap().escape_hatches.is_empty());
}

#[test]
fn the_issuer_is_kept_exactly_as_written() {
    // `url` would print `https://auth.example.com/`; the comparison is of the text.
    let c = p(&server("issuer = \"https://auth.example.com\"\n")).unwrap();
    let hatches = &c.servers["atl"].http().unwrap().escape_hatches;
    assert_eq!(hatches.issuer.as_deref(), Some("https://auth.example.com"));
    assert_eq!(hatches.keys(), ["issuer"]);
}

#[test]
fn bad_values_name_the_key_and_the_line() {
    let cases = [
        (
            "token_endpoint = \"http://auth.example.com/token\"",
            "token_endpoint",
            "https",
        ),
        (
            "authorization_endpoint = \"/authorize\"",
            "authorization_endpoint",
            "absolute URL",
        ),
        (
            "registration_endpoint = \"ftp://auth.example.com/r\"",
            "registration_endpoint",
            "https",
        ),
        (
            "revocation_endpoint = \"https://auth.example.com/r#x\"",
            "revocation_endpoint",
            "fragment",
        ),
        (
            "authorization_server_metadata_url = \"http://10.0.0.1/meta\"",
            "authorization_server_metadata_url",
            "https",
        ),
        (
            "issuer = \"https://auth.example.com/?t=1\"",
            "issuer",
            "query",
        ),
        ("issuer = \"auth.example.com\"", "issuer", "absolute URL"),
        ("token_endpoint = 7", "token_endpoint", "string"),
    ];
    for (line, key, why) in cases {
        let e = p(&server(&format!("{line}\n"))).unwrap_err().to_string();
        assert!(
            e.contains(&format!("`mcp_servers.atl.oauth.{key}`")),
            "{line}: {e}"
        );
        assert!(e.contains(why), "{line}: {e}");
        assert!(e.starts_with("config.toml:"), "{line}: {e}");
        assert!(e.contains(":3:") || e.contains(":4:"), "{line}: {e}");
    }
}

#[test]
fn loopback_http_is_allowed_as_elsewhere() {
    for host in [
        "127.0.0.1:8080",
        "[::1]:8080",
        "localhost:8080",
        "127.0.0.2",
    ] {
        let c = p(&server(&format!(
            "token_endpoint = \"http://{host}/token\"\n"
        )));
        assert!(c.is_ok(), "{host}: {c:?}");
    }
}

#[test]
fn an_unknown_key_beside_them_is_still_an_error() {
    let e = p(&server("token_endpiont = \"https://a.example/token\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("token_endpiont"), "{e}");
}

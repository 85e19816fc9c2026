//! The grants of `[mcp_servers.NAME.oauth]` as config.toml loads them: each grant with its
//! credential, key files parsed at load, and the errors that name the key and line.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::*;
use crate::config::{ConfigError, ServerTransport, parse};

fn oauth_of(text: &str) -> Result<OauthClientConfig, ConfigError> {
    let config = parse(text, std::path::Path::new("config.toml"))?;
    match &config.servers["s"].transport {
        ServerTransport::Http(h) => Ok(h.oauth.clone()),
        ServerTransport::Stdio { .. } => unreachable!(),
    }
}

fn err(text: &str) -> String {
    oauth_of(text).unwrap_err().to_string()
}

const HEAD: &str =
    "[mcp_servers.s]\nurl = \"https://mcp.example.com/mcp\"\n\n[mcp_servers.s.oauth]\n";

fn key_file(dir: &tempfile::TempDir, text: &str) -> String {
    let path = dir.path().join("key.pem");
    std::fs::write(&path, text).unwrap();
    path.display().to_string().replace('\\', "/")
}

#[test]
fn client_credentials_with_a_secret() {
    let oauth = oauth_of(&format!(
            "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\nclient_secret_env_var = \"M2M_SECRET\"\n"
        ))
        .unwrap();
    assert_eq!(
        oauth.grant_config().unwrap(),
        GrantConfig::ClientCredentials {
            client_id: "m2m".into(),
            auth: ClientAuthConfig::SecretEnvVar("M2M_SECRET".into()),
        }
    );
}

#[test]
fn client_credentials_with_a_key_file_that_parses() {
    let dir = tempfile::tempdir().unwrap();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        STANDARD.encode(pkcs8.as_ref())
    );
    let path = key_file(&dir, &pem);
    let oauth = oauth_of(&format!(
            "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\nprivate_key_file = \"{path}\"\nprivate_key_kid = \"k1\"\n"
        ))
        .unwrap();
    match oauth.grant_config().unwrap() {
        GrantConfig::ClientCredentials {
            auth: ClientAuthConfig::PrivateKey { alg, kid, .. },
            ..
        } => {
            assert_eq!(alg, JwsAlg::Es256);
            assert_eq!(kid.as_deref(), Some("k1"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_key_that_does_not_parse_is_a_load_error_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = key_file(&dir, "not a key\n");
    let e = err(&format!(
        "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\nprivate_key_file = \"{path}\"\n"
    ));
    assert!(e.contains("mcp_servers.s.oauth.private_key_file"), "{e}");
    assert!(e.contains("does not parse"), "{e}");
    assert!(e.contains("config.toml:4:"), "{e}");
    assert!(!e.contains("not a key"), "{e}");
    let e = err(&format!(
        "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\nprivate_key_file = \"{}/absent.pem\"\n",
        dir.path().display().to_string().replace('\\', "/")
    ));
    assert!(
        e.contains("private_key_file") && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn a_grant_without_its_credential_or_client_id_is_refused() {
    let e = err(&format!(
        "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\n"
    ));
    assert!(
        e.contains("mcp_servers.s.oauth.grant") && e.contains("needs a credential"),
        "{e}"
    );
    let e = err(&format!(
        "{HEAD}grant = \"client_credentials\"\nclient_secret_env_var = \"X\"\n"
    ));
    assert!(e.contains("mcp_servers.s.oauth.client_id"), "{e}");
    let e = err(&format!("{HEAD}grant = \"jwt_bearer\"\n"));
    assert!(e.contains("assertion_file"), "{e}");
    let e = err(&format!(
        "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\nclient_secret_env_var = \"X\"\nprivate_key_env_var = \"Y\"\n"
    ));
    assert!(e.contains("only one of"), "{e}");
    let e = err(&format!(
        "{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\nprivate_key_env_var = \"Y\"\nprivate_key_alg = \"HS256\"\n"
    ));
    assert!(e.contains("private_key_alg") && e.contains("HS256"), "{e}");
}

#[test]
fn an_unknown_grant_is_refused_by_name() {
    let e = err(&format!("{HEAD}grant = \"password\"\n"));
    assert!(
        e.contains("mcp_servers.s.oauth.grant") && e.contains("`password`"),
        "{e}"
    );
}

#[test]
fn jwt_bearer_from_a_file_and_default_grant() {
    let oauth = oauth_of(&format!(
        "{HEAD}grant = \"jwt_bearer\"\nassertion_file = \"/var/run/secrets/token\"\n"
    ))
    .unwrap();
    assert_eq!(
        oauth.grant_config().unwrap(),
        GrantConfig::JwtBearer {
            client_id: None,
            assertion: AssertionSource::File("/var/run/secrets/token".into()),
        }
    );
    let oauth = oauth_of(&format!("{HEAD}client_id = \"x\"\n")).unwrap();
    assert_eq!(
        oauth.grant_config().unwrap(),
        GrantConfig::AuthorizationCode
    );
    let e = err(&format!("{HEAD}assertion_env_var = \"T\"\n"));
    assert!(
        e.contains("assertion_file") && e.contains("another grant"),
        "{e}"
    );
}

#[test]
fn client_credentials_by_certificate_takes_no_other_credential() {
    let cc = format!("{HEAD}grant = \"client_credentials\"\nclient_id = \"m2m\"\n");
    for (method, self_signed) in [
        ("tls_client_auth", false),
        ("self_signed_tls_client_auth", true),
    ] {
        let oauth = OauthClientConfig {
            grant: Some("client_credentials".into()),
            client_id: Some("m2m".into()),
            token_endpoint_auth_method: Some(method.into()),
            ..Default::default()
        };
        assert_eq!(
            oauth.grant_config().unwrap(),
            GrantConfig::ClientCredentials {
                client_id: "m2m".into(),
                auth: ClientAuthConfig::Certificate { self_signed },
            }
        );
        // With a secret too: one credential only.
        let e = err(&format!(
            "{cc}token_endpoint_auth_method = \"{method}\"\nclient_secret_env_var = \"S\"\n"
        ));
        assert!(e.contains("only one of"), "{e}");
    }
    // A method that is no certificate method is no credential.
    let e = err(&format!("{cc}token_endpoint_auth_method = \"none\"\n"));
    assert!(
        e.contains("needs a credential") && e.contains("tls_client_auth"),
        "{e}"
    );
}

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mcp_app_server_testkit::TestCa;

use super::*;

fn first_der(pem: &str) -> Vec<u8> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .next()
        .unwrap()
        .unwrap()
        .contents
}

#[test]
fn facts_of_a_client_certificate() {
    let ca = TestCa::new("facts CA").unwrap();
    let cert = ca.client("alice.example").unwrap();
    let facts = certificate_facts_of_pem(cert.chain_pem.as_bytes()).unwrap();
    // The first block is the leaf, not its authority.
    assert_eq!(facts.x5t_s256, URL_SAFE_NO_PAD.encode(cert.sha256));
    assert_eq!(facts.subject_dn.as_deref(), Some("CN=alice.example"));
    let jwk = facts.public_jwk.unwrap().to_json();
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    for member in ["x", "y"] {
        let bytes = URL_SAFE_NO_PAD
            .decode(jwk[member].as_str().unwrap())
            .unwrap();
        assert_eq!(bytes.len(), 32, "{member}");
    }
    let x5c = STANDARD.decode(jwk["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(x5c, first_der(&cert.chain_pem));
    assert!(jwk.get("d").is_none(), "a public JWK has no private member");
}

#[test]
fn a_file_without_a_readable_certificate_is_refused() {
    for pem in [
        "",
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    ] {
        assert!(certificate_facts_of_pem(pem.as_bytes()).is_err(), "{pem}");
    }
}

#[test]
fn rfc4514_escapes() {
    assert_eq!(escape("plain name"), "plain name");
    assert_eq!(
        escape("a,b+c;d<e>f\"g\\h"),
        "a\\,b\\+c\\;d\\<e\\>f\\\"g\\\\h"
    );
    assert_eq!(escape(" lead"), "\\ lead");
    assert_eq!(escape("#hash"), "\\#hash");
    assert_eq!(escape("trail "), "trail\\ ");
    assert_eq!(escape("mid#dle"), "mid#dle");
    assert_eq!(escape("nul\0"), "nul\\00");
}

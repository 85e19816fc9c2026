//! What the configured client certificate says about itself (RFC 8705): the thumbprint
//! tokens bound to it carry (`x5t#S256`), its subject for `tls_client_auth`, and its public
//! key as a JWK for the `jwks` of `self_signed_tls_client_auth`. Read once, when
//! config.toml loads; a certificate cannot hold a secret, so all of it may be shown.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::X509Name;

/// The facts of the first certificate of a `client_certificate` file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CertificateFacts {
    /// base64url (no padding) of the SHA-256 of the certificate's DER: RFC 8705 §3.1's
    /// `x5t#S256`, what a bound token's `cnf` names.
    pub x5t_s256: String,
    /// The subject as an RFC 4514 string (`CN=alice,O=Example`), or `None` when one of its
    /// values is not a string this client can write.
    pub subject_dn: Option<String>,
    /// The public key as a JWK with the certificate in `x5c`, or `None` for a key type
    /// that has no JWK form here (DSA, GOST).
    pub public_jwk: Option<PublicJwk>,
}

/// A public key in JWK form (RFC 7517/7518), with its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublicJwk {
    /// `kty` and the key's members, in order.
    members: Vec<(&'static str, String)>,
    /// The certificate's DER, base64 (standard, RFC 7517 §4.7).
    x5c: String,
}

impl PublicJwk {
    /// The JWK as JSON, with the certificate in `x5c` (what an authorization server
    /// compares the presented certificate with, RFC 8705 §2.2.2).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (name, value) in &self.members {
            map.insert((*name).to_string(), value.clone().into());
        }
        map.insert("x5c".into(), serde_json::json!([self.x5c]));
        map.into()
    }
}

/// The facts of the first `CERTIFICATE` block of a PEM file.
pub fn certificate_facts_of_pem(pem: &[u8]) -> Result<CertificateFacts, String> {
    let first = x509_parser::pem::Pem::iter_from_buffer(pem)
        .filter_map(Result::ok)
        .find(|block| block.label == "CERTIFICATE")
        .ok_or("holds no readable PEM `CERTIFICATE` block")?;
    certificate_facts(&first.contents)
}

/// The facts of one certificate, given as DER.
pub fn certificate_facts(der: &[u8]) -> Result<CertificateFacts, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("the first certificate does not parse as X.509 ({e})"))?;
    let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(der));
    Ok(CertificateFacts {
        x5t_s256,
        subject_dn: rfc4514(cert.subject()),
        public_jwk: public_jwk(&cert, der),
    })
}

/// The short names RFC 4514 §3 lists (and `UID`), by OID.
const SHORT_NAMES: [(&str, &str); 9] = [
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// RFC 4514 §2: the RDNs last first, joined by `,`; the attributes of one RDN by `+`.
fn rfc4514(name: &X509Name<'_>) -> Option<String> {
    let mut rdns = Vec::new();
    for rdn in name.iter_rdn() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let value = attribute.as_str().ok()?;
            let name = SHORT_NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or(oid.clone(), |(_, n)| (*n).to_string());
            attributes.push(format!("{name}={}", escape(value)));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Some(rdns.join(","))
}

/// RFC 4514 §2.4: a backslash before the characters that would end or change the value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
            || (i == 0 && matches!(c, ' ' | '#'))
            || (i == last && c == ' ');
        if c == '\0' {
            out.push_str("\\00");
            continue;
        }
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The named curves of RFC 7518 §6.2.1.1, by OID.
const CURVES: [(&str, &str, usize); 3] = [
    ("1.2.840.10045.3.1.7", "P-256", 32),
    ("1.3.132.0.34", "P-384", 48),
    ("1.3.132.0.35", "P-521", 66),
];

fn public_jwk(cert: &X509Certificate<'_>, der: &[u8]) -> Option<PublicJwk> {
    let spki = cert.public_key();
    let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    let unsigned = |bytes: &'_ [u8]| -> Vec<u8> {
        let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
        bytes[start..].to_vec()
    };
    let members = match spki.parsed().ok()? {
        PublicKey::RSA(rsa) => vec![
            ("kty", "RSA".to_string()),
            ("n", b64(&unsigned(rsa.modulus))),
            ("e", b64(&unsigned(rsa.exponent))),
        ],
        PublicKey::EC(point) => {
            let curve_oid = spki
                .algorithm
                .parameters
                .as_ref()?
                .as_oid()
                .ok()?
                .to_id_string();
            let (_, crv, size) = CURVES.iter().find(|(oid, _, _)| *oid == curve_oid)?;
            let data = point.data();
            // Uncompressed points only (SEC1 2.3.3: 0x04, X, Y).
            if data.len() != 1 + 2 * size || data[0] != 4 {
                return None;
            }
            vec![
                ("kty", "EC".to_string()),
                ("crv", (*crv).to_string()),
                ("x", b64(&data[1..=*size])),
                ("y", b64(&data[1 + size..])),
            ]
        }
        PublicKey::Unknown(raw) if spki.algorithm.algorithm.to_id_string() == "1.3.101.112" => {
            vec![
                ("kty", "OKP".to_string()),
                ("crv", "Ed25519".to_string()),
                ("x", b64(raw)),
            ]
        }
        _ => return None,
    };
    Some(PublicJwk {
        members,
        x5c: STANDARD.encode(der),
    })
}

#[cfg(test)]
mod tests;

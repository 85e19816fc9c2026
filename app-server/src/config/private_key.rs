//! The private keys a configuration names: the JWS algorithms the daemon signs with and the
//! PEM a `private_key_jwt` key comes in. config.toml is checked with these when it loads, so
//! a key that does not parse is a load error; `oauth::jose` signs with the same key pairs.
//! Uses the crypto library rustls already links.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The JWS algorithms the daemon signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwsAlg {
    Es256,
    Rs256,
}

impl JwsAlg {
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::Es256 => "ES256",
            JwsAlg::Rs256 => "RS256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(JwsAlg::Es256),
            "RS256" => Some(JwsAlg::Rs256),
            _ => None,
        }
    }
}

/// Why a private key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PrivateKeyError {
    #[error(
        "the private key is not PEM: expected a `-----BEGIN PRIVATE KEY-----` (PKCS#8), `EC PRIVATE KEY` or `RSA PRIVATE KEY` block"
    )]
    NotPem,
    #[error(
        "the PEM block `{0}` holds no private key the daemon can use; give a PKCS#8 `PRIVATE KEY`"
    )]
    UnsupportedPemLabel(String),
    #[error("the PEM body is not base64")]
    BadBase64,
    #[error("the key is not a valid {alg} private key ({reason})")]
    KeyRejected { alg: &'static str, reason: String },
}

/// A parsed private key pair, one per [`JwsAlg`].
pub enum PrivateKey {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

impl PrivateKey {
    /// A P-256 key from PKCS#8 or SEC1 DER.
    pub fn es256_from_der(der: &[u8]) -> Result<Self, PrivateKeyError> {
        EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map(PrivateKey::Ec)
            .map_err(|e| PrivateKeyError::KeyRejected {
                alg: "ES256",
                reason: e.to_string(),
            })
    }

    /// A configured key: PEM (PKCS#8, SEC1 for EC, PKCS#1 for RSA) for the given algorithm.
    pub fn from_pem(pem: &str, alg: JwsAlg) -> Result<Self, PrivateKeyError> {
        let (label, der) = pem_decode(pem)?;
        match (alg, label.as_str()) {
            (JwsAlg::Es256, "PRIVATE KEY" | "EC PRIVATE KEY") => Self::es256_from_der(&der),
            (JwsAlg::Rs256, "PRIVATE KEY") => rsa(RsaKeyPair::from_pkcs8(&der)),
            (JwsAlg::Rs256, "RSA PRIVATE KEY") => rsa(RsaKeyPair::from_der(&der)),
            (_, other) => Err(PrivateKeyError::UnsupportedPemLabel(other.to_string())),
        }
    }

    pub fn alg(&self) -> JwsAlg {
        match self {
            PrivateKey::Ec(_) => JwsAlg::Es256,
            PrivateKey::Rsa(_) => JwsAlg::Rs256,
        }
    }
}

fn rsa(
    key: Result<RsaKeyPair, aws_lc_rs::error::KeyRejected>,
) -> Result<PrivateKey, PrivateKeyError> {
    key.map(PrivateKey::Rsa)
        .map_err(|e| PrivateKeyError::KeyRejected {
            alg: "RS256",
            reason: e.to_string(),
        })
}

/// The first PEM block: its label and its decoded body.
fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), PrivateKeyError> {
    let mut lines = pem
        .lines()
        .map(str::trim)
        .skip_while(|l| !l.starts_with("-----BEGIN "));
    let label = lines
        .next()
        .and_then(|l| l.strip_prefix("-----BEGIN "))
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(PrivateKeyError::NotPem)?
        .to_string();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        // Encapsulated headers (`Proc-Type: ...`) mean an encrypted legacy key.
        if line.contains(':') {
            return Err(PrivateKeyError::UnsupportedPemLabel(format!(
                "{label} (encrypted)"
            )));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(PrivateKeyError::NotPem);
    }
    let der = STANDARD
        .decode(body)
        .map_err(|_| PrivateKeyError::BadBase64)?;
    Ok((label, der))
}

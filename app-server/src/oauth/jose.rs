//! The JSON Web Signatures the daemon makes: DPoP proofs (RFC 9449) and client assertions
//! (RFC 7523). Signing only; verifying is the servers' job. Keys come from PEM (configured
//! `private_key_jwt` keys, read by [`crate::config::private_key`]) or are generated (DPoP,
//! ES256). Uses the crypto library rustls
//! already links, so no second implementation of the primitives enters the build.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::private_key::PrivateKey;
pub use crate::config::private_key::{JwsAlg, PrivateKeyError};

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    /// A key that is not PEM, not a key, or not one for its algorithm.
    #[error(transparent)]
    Key(#[from] PrivateKeyError),
    #[error("the algorithm {0} is not supported; use ES256 or RS256")]
    UnsupportedAlg(String),
    #[error("generating a key failed")]
    Generate,
    #[error("signing failed")]
    Sign,
}

/// A private signing key. Its `Debug` shows the algorithm and the public thumbprint only.
pub struct SigningKey {
    inner: PrivateKey,
    kid: Option<String>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg())
            .field("kid", &self.kid)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl SigningKey {
    /// A fresh P-256 key for DPoP, and its PKCS#8 encoding to keep in the credential store.
    pub fn generate_es256() -> Result<(Self, Vec<u8>), JoseError> {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| JoseError::Generate)?;
        let der = doc.as_ref().to_vec();
        Ok((Self::es256_from_der(&der)?, der))
    }

    /// A P-256 key from PKCS#8 or SEC1 DER.
    pub fn es256_from_der(der: &[u8]) -> Result<Self, JoseError> {
        Ok(Self {
            inner: PrivateKey::es256_from_der(der)?,
            kid: None,
        })
    }

    /// A configured key: PEM (PKCS#8, SEC1 for EC, PKCS#1 for RSA) for the given algorithm.
    pub fn from_pem(pem: &str, alg: JwsAlg) -> Result<Self, JoseError> {
        Ok(Self {
            inner: PrivateKey::from_pem(pem, alg)?,
            kid: None,
        })
    }

    pub fn with_kid(mut self, kid: Option<String>) -> Self {
        self.kid = kid;
        self
    }

    pub fn alg(&self) -> JwsAlg {
        self.inner.alg()
    }

    /// The public key as a JWK (EC keys only: DPoP keys are generated as P-256).
    pub fn public_jwk(&self) -> Option<Value> {
        let PrivateKey::Ec(key) = &self.inner else {
            return None;
        };
        // Uncompressed point: 0x04 || x || y.
        let point = key.public_key().as_ref();
        let (x, y) = point.get(1..)?.split_at(32);
        Some(json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(x),
            "y": URL_SAFE_NO_PAD.encode(y),
        }))
    }

    /// RFC 7638 thumbprint of the public JWK (the `jkt` a DPoP-bound token is bound to).
    pub fn thumbprint(&self) -> Option<String> {
        let jwk = self.public_jwk()?;
        // Required members only, lexicographic order, no white space.
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["x"].as_str()?,
            jwk["y"].as_str()?
        );
        Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
    }

    /// A compact JWS over `claims` with `header` (`alg`, and `kid` when the key has one, are
    /// set here).
    pub fn sign(
        &self,
        mut header: Map<String, Value>,
        claims: &Value,
    ) -> Result<String, JoseError> {
        header.insert("alg".into(), Value::from(self.alg().as_str()));
        if let Some(kid) = &self.kid {
            header
                .entry("kid")
                .or_insert_with(|| Value::from(kid.clone()));
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(Value::Object(header).to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let rng = SystemRandom::new();
        let signature = match &self.inner {
            PrivateKey::Ec(key) => key
                .sign(&rng, signing_input.as_bytes())
                .map_err(|_| JoseError::Sign)?
                .as_ref()
                .to_vec(),
            PrivateKey::Rsa(key) => {
                let mut sig = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, signing_input.as_bytes(), &mut sig)
                    .map_err(|_| JoseError::Sign)?;
                sig
            }
        };
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// `base64url(SHA-256(value))`: the `ath` of a DPoP proof.
pub fn sha256_b64url(value: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(value))
}

/// A random `jti`: 128 bits, base64url.
pub fn new_jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn parts(jws: &str) -> (Value, Value, Vec<u8>, String) {
        let mut it = jws.split('.');
        let (h, c, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        assert!(it.next().is_none());
        let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        let claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap();
        (
            header,
            claims,
            URL_SAFE_NO_PAD.decode(s).unwrap(),
            format!("{h}.{c}"),
        )
    }

    #[test]
    fn es256_signatures_verify_with_the_published_jwk() {
        let (key, der) = SigningKey::generate_es256().unwrap();
        let jws = key.sign(Map::new(), &json!({"a": 1})).unwrap();
        let (header, claims, sig, input) = parts(&jws);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(claims, json!({"a": 1}));
        assert_eq!(sig.len(), 64, "JWS ES256 signatures are r || s");
        let jwk = key.public_jwk().unwrap();
        let mut point = vec![4u8];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
            .verify(input.as_bytes(), &sig)
            .expect("signature verifies");
        // The stored encoding gives back the same key.
        let again = SigningKey::es256_from_der(&der).unwrap();
        assert_eq!(again.thumbprint(), key.thumbprint());
    }

    #[test]
    fn thumbprint_matches_rfc_7638_for_an_ec_key() {
        // The canonical form hashes the required members in order; check against a hash
        // computed independently of `thumbprint`.
        let (key, _) = SigningKey::generate_es256().unwrap();
        let jwk = key.public_jwk().unwrap();
        let expected = sha256_b64url(
            serde_json::to_string(&json!({
                "crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"],
            }))
            .unwrap()
            .as_bytes(),
        );
        assert_eq!(key.thumbprint().unwrap(), expected);
    }

    #[test]
    fn pem_keys_load_and_bad_ones_say_why() {
        let (_, der) = SigningKey::generate_es256().unwrap();
        let body = STANDARD.encode(&der);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n");
        let key = SigningKey::from_pem(&pem, JwsAlg::Es256)
            .unwrap()
            .with_kid(Some("k1".into()));
        let (header, ..) = parts(&key.sign(Map::new(), &json!({})).unwrap());
        assert_eq!(header["kid"], "k1");

        assert!(matches!(
            SigningKey::from_pem("not pem", JwsAlg::Es256),
            Err(JoseError::Key(PrivateKeyError::NotPem))
        ));
        let unterminated = format!("-----BEGIN PRIVATE KEY-----\n{body}\n");
        assert!(matches!(
            SigningKey::from_pem(&unterminated, JwsAlg::Es256),
            Err(JoseError::Key(PrivateKeyError::NotPem))
        ));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        assert!(matches!(
            SigningKey::from_pem(cert, JwsAlg::Es256),
            Err(JoseError::Key(PrivateKeyError::UnsupportedPemLabel(_)))
        ));
        let garbage = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----";
        assert!(matches!(
            SigningKey::from_pem(garbage, JwsAlg::Es256),
            Err(JoseError::Key(PrivateKeyError::BadBase64))
        ));
        let not_a_key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        assert!(matches!(
            SigningKey::from_pem(not_a_key, JwsAlg::Es256),
            Err(JoseError::Key(PrivateKeyError::KeyRejected { .. }))
        ));
        // An EC key offered as RS256 is refused, not misused.
        assert!(SigningKey::from_pem(&pem, JwsAlg::Rs256).is_err());
    }

    #[test]
    fn debug_never_shows_the_private_key() {
        let (key, der) = SigningKey::generate_es256().unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&STANDARD.encode(&der)));
        assert!(!shown.contains(&URL_SAFE_NO_PAD.encode(&der)));
    }
}

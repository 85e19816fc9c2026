//! ES256 JSON Web Tokens for the grants that need no browser: keys for tests (a client's
//! `private_key_jwt` key, a workload identity issuer's key), signing workload tokens, and
//! the verification the authorization server does of what a client presents. Written here
//! independently of the daemon's JOSE code, so a mistake there is not mirrored.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail, ensure};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair,
    UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

/// A P-256 key pair for a test.
pub struct Es256Key {
    pair: EcdsaKeyPair,
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for Es256Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Es256Key(..)")
    }
}

impl Es256Key {
    pub fn generate() -> Self {
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("generating a P-256 key");
        let pkcs8 = doc.as_ref().to_vec();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .expect("a generated key parses");
        Self { pair, pkcs8 }
    }

    /// The private key as a PKCS#8 PEM, as a user would configure it.
    pub fn private_pem(&self) -> String {
        let body = STANDARD.encode(&self.pkcs8);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// The public key, an uncompressed P-256 point (what the kit verifies with).
    pub fn public_point(&self) -> Vec<u8> {
        self.pair.public_key().as_ref().to_vec()
    }

    /// A compact ES256 JWS over `claims`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .expect("signing");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    /// A workload identity token as a platform issues it: `iss`, `sub`, `aud`, valid for
    /// `lifetime_secs` from now (negative: already expired).
    pub fn workload_token(&self, iss: &str, sub: &str, aud: &str, lifetime_secs: i64) -> String {
        let now = unix_now();
        self.sign(&json!({
            "iss": iss,
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + lifetime_secs,
            "jti": crate::checks::random_token(),
        }))
    }
}

pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The claims of `jws` once its ES256 signature checks out with `public_point`.
pub(crate) fn verify_es256(jws: &str, public_point: &[u8]) -> anyhow::Result<Value> {
    let mut parts = jws.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("not a compact JWS (three parts)");
    };
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(header)
            .context("header is not base64url")?,
    )
    .context("header is not JSON")?;
    ensure!(
        header["alg"] == "ES256",
        "alg is {} , not ES256",
        header["alg"]
    );
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .context("signature is not base64url")?;
    let signed = &jws[..header_len(jws)];
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public_point)
        .verify(signed.as_bytes(), &signature)
        .map_err(|_| anyhow::anyhow!("the signature does not verify"))?;
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(payload)
            .context("payload is not base64url")?,
    )
    .context("payload is not JSON")
}

/// Length of `header.payload`, the signing input.
fn header_len(jws: &str) -> usize {
    jws.rfind('.').unwrap_or(jws.len())
}

/// `aud` (a string or a list) names `expected`.
pub(crate) fn audience_is(claims: &Value, expected: &[&str]) -> bool {
    match &claims["aud"] {
        Value::String(a) => expected.contains(&a.as_str()),
        Value::Array(list) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| expected.contains(&a))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_with_the_signing_key() {
        let key = Es256Key::generate();
        let other = Es256Key::generate();
        let jws = key.workload_token("https://idp", "w", "https://as", 60);
        let claims = verify_es256(&jws, &key.public_point()).unwrap();
        assert_eq!(claims["sub"], "w");
        assert!(audience_is(&claims, &["https://as"]));
        assert!(verify_es256(&jws, &other.public_point()).is_err());
        let mut tampered = jws.clone();
        tampered.insert(jws.find('.').unwrap() + 2, 'A');
        assert!(verify_es256(&tampered, &key.public_point()).is_err());
        assert!(
            key.private_pem()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
    }
}

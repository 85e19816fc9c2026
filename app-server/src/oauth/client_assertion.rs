//! RFC 7523 client assertions (`private_key_jwt` client authentication): a short-lived JWT
//! signed with the client's configured key, sent in place of a client secret.

use serde_json::{Map, json};

use super::jose::{JoseError, SigningKey, new_jti};

/// The `client_assertion_type` that goes with the assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid: long enough for clock skew, short enough to be useless
/// when replayed later.
pub const ASSERTION_LIFETIME_SECS: i64 = 60;

/// `iss` and `sub` are the client id; `aud` the authorization server's issuer (the value
/// servers of the MCP client-credentials extension check).
pub fn client_assertion(
    key: &SigningKey,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("typ".into(), "JWT".into());
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_SECS,
        "jti": new_jti(),
    });
    key.sign(header, &claims)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::Value;

    use super::*;

    #[test]
    fn assertion_names_the_client_and_the_issuer_and_expires_soon() {
        let (key, _) = SigningKey::generate_es256().unwrap();
        let jws = client_assertion(&key, "client-1", "https://as.example.com", 1_000).unwrap();
        let payload = jws.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], "client-1");
        assert_eq!(claims["sub"], "client-1");
        assert_eq!(claims["aud"], "https://as.example.com");
        assert_eq!(claims["iat"], 1_000);
        assert_eq!(claims["exp"], 1_060);
        let again = client_assertion(&key, "client-1", "https://as.example.com", 1_000).unwrap();
        assert_ne!(jws, again, "a fresh jti each time");
    }
}

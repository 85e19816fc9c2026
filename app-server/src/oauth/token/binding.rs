//! Certificate-bound access tokens (RFC 8705 §3): whether a token answer is bound to the
//! client certificate presented at the token endpoint. An authorization server says it
//! binds tokens in its metadata (`tls_client_certificate_bound_access_tokens`); a JWT
//! access token also says so itself, in `cnf["x5t#S256"]`. Access tokens are otherwise
//! opaque to the client: only that one claim is read, and only to tell the frontend.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// A JWT payload larger than this is not looked into (a bound token's is well under 2 KiB).
const MAX_PAYLOAD_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
struct Payload {
    cnf: Option<Confirmation>,
}

#[derive(Deserialize)]
struct Confirmation {
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

/// The `cnf["x5t#S256"]` of an access token that is a JWT (three base64url parts), if it
/// names one. Anything else (an opaque token, an encrypted one, garbage) is `None`.
pub fn jwt_certificate_thumbprint(access_token: &str) -> Option<String> {
    let mut parts = access_token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > MAX_PAYLOAD_BYTES * 4 / 3 + 4 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let payload: Payload = serde_json::from_slice(&bytes).ok()?;
    payload
        .cnf?
        .x5t_s256
        .filter(|t| !t.is_empty() && t.len() <= 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.c2ln",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn reads_the_thumbprint_of_a_bound_jwt_and_nothing_else() {
        assert_eq!(
            jwt_certificate_thumbprint(&jwt(r#"{"sub":"a","cnf":{"x5t#S256":"abc_-"}}"#)),
            Some("abc_-".to_string())
        );
        for unbound in [
            jwt(r#"{"sub":"a"}"#),
            jwt(r#"{"cnf":{"jkt":"dpop-key"}}"#),
            jwt(r#"{"cnf":{"x5t#S256":""}}"#),
            jwt(r#"{"cnf":"x"}"#),
            jwt("not json"),
            "opaque-token".to_string(),
            "a.b".to_string(),
            "a.b.c.d.e".to_string(),
            "a.!!!.c".to_string(),
            jwt(&format!(
                r#"{{"cnf":{{"x5t#S256":"{}"}}}}"#,
                "x".repeat(200)
            )),
        ] {
            assert_eq!(jwt_certificate_thumbprint(&unbound), None, "{unbound}");
        }
        let huge = jwt(&format!(
            r#"{{"pad":"{}","cnf":{{"x5t#S256":"t"}}}}"#,
            "x".repeat(MAX_PAYLOAD_BYTES)
        ));
        assert_eq!(jwt_certificate_thumbprint(&huge), None);
    }
}

//! DPoP proofs (RFC 9449, and the MCP profile of it): a fresh JWT per HTTP request, signed
//! with the key the tokens are bound to. Pure: the caller supplies the key, the request and
//! any nonce a server asked for.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::jose::{JoseError, SigningKey, new_jti, sha256_b64url};

/// What one proof is for.
#[derive(Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method, as sent (`POST`).
    pub method: &'a str,
    pub url: &'a Url,
    /// The access token the request carries (`ath`); none at the token endpoint.
    pub access_token: Option<&'a str>,
    /// The last `DPoP-Nonce` the server sent.
    pub nonce: Option<&'a str>,
    /// The request body: MCP servers bind the proof to it (`content_digest`). Never for the
    /// token endpoint.
    pub body: Option<&'a [u8]>,
}

/// A signed proof for the `DPoP` header.
pub fn proof(key: &SigningKey, request: ProofRequest<'_>, now: i64) -> Result<String, JoseError> {
    let jwk = key
        .public_jwk()
        .ok_or_else(|| JoseError::UnsupportedAlg(key.alg().as_str().to_string()))?;
    let mut header = Map::new();
    header.insert("typ".into(), Value::from("dpop+jwt"));
    header.insert("jwk".into(), jwk);
    let mut claims = json!({
        "jti": new_jti(),
        "htm": request.method.to_ascii_uppercase(),
        "htu": htu(request.url),
        "iat": now,
    });
    if let Some(token) = request.access_token {
        claims["ath"] = Value::from(sha256_b64url(token.as_bytes()));
    }
    if let Some(nonce) = request.nonce {
        claims["nonce"] = Value::from(nonce);
    }
    if let Some(body) = request.body {
        claims["content_digest"] = Value::from(content_digest(body));
    }
    key.sign(header, &claims)
}

/// RFC 9449 4.2: the target URI without query and fragment.
pub fn htu(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.to_string()
}

/// RFC 9530 structured-field form of the body's SHA-256: `sha-256=:<base64>:`.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn decode(jws: &str) -> (Value, Value) {
        let mut it = jws.split('.');
        let h = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        let c = URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap();
        (
            serde_json::from_slice(&h).unwrap(),
            serde_json::from_slice(&c).unwrap(),
        )
    }

    #[test]
    fn a_resource_proof_carries_every_claim_the_mcp_profile_asks_for() {
        let (key, _) = SigningKey::generate_es256().unwrap();
        let url = Url::parse("https://mcp.example.com/mcp?x=1#frag").unwrap();
        let body = br#"{"jsonrpc":"2.0","method":"tools/list","id":1}"#;
        let jws = proof(
            &key,
            ProofRequest {
                method: "post",
                url: &url,
                access_token: Some("at-123"),
                nonce: Some("n-1"),
                body: Some(body),
            },
            1_700_000_000,
        )
        .unwrap();
        let (header, claims) = decode(&jws);
        assert_eq!(header["typ"], "dpop+jwt");
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"]["kty"], "EC");
        assert!(header["jwk"].get("d").is_none(), "never the private part");
        assert_eq!(claims["htm"], "POST");
        assert_eq!(claims["htu"], "https://mcp.example.com/mcp");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["ath"], sha256_b64url(b"at-123"));
        assert_eq!(claims["content_digest"], content_digest(body));
        assert!(claims["jti"].as_str().unwrap().len() >= 22);
    }

    #[test]
    fn a_token_endpoint_proof_has_no_ath_nonce_or_digest_unless_given() {
        let (key, _) = SigningKey::generate_es256().unwrap();
        let url = Url::parse("https://as.example.com/token").unwrap();
        let request = ProofRequest {
            method: "POST",
            url: &url,
            access_token: None,
            nonce: None,
            body: None,
        };
        let (_, a) = decode(&proof(&key, request, 1).unwrap());
        let (_, b) = decode(&proof(&key, request, 1).unwrap());
        for claim in ["ath", "nonce", "content_digest"] {
            assert!(a.get(claim).is_none(), "{claim}");
        }
        assert_ne!(a["jti"], b["jti"], "a fresh jti per proof");
    }

    #[test]
    fn content_digest_matches_the_rfc_9530_example_form() {
        // SHA-256 of the empty body, standard base64 with padding, between colons.
        assert_eq!(
            content_digest(b""),
            "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
        );
    }
}

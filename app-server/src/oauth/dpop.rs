//! DPoP proofs (RFC 9449, and the MCP profile of it): a fresh JWT per HTTP request, signed
//! with the key the tokens are bound to. [`proof`] is pure: the caller supplies the key, the
//! request and any nonce a server asked for. [`TokenDpop`] is what a token request needs:
//! the key and the authorization server's latest nonce ([`NonceCache`], in memory only).

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use super::jose::{JoseError, SigningKey, new_jti, sha256_b64url};

/// The response header that carries a server's nonce (RFC 9449 8, 9).
pub const NONCE_HEADER: &str = "DPoP-Nonce";
/// The OAuth error (token endpoint) and challenge error (resource server) that ask for a
/// proof with the nonce just sent.
pub const USE_DPOP_NONCE: &str = "use_dpop_nonce";
/// Servers whose nonce is kept; beyond that the oldest is forgotten (a forgotten nonce costs
/// one more round trip, nothing else).
const MAX_NONCES: usize = 256;
/// Nonces are short opaque strings; anything longer is not kept.
const MAX_NONCE_LEN: usize = 512;

/// Nonces by slot, each with the write counter value of its last update (for eviction).
type Nonces = HashMap<String, (u64, String)>;

/// The latest nonce each server sent, by a key the caller chooses (the server name).
#[derive(Default)]
pub struct NonceCache {
    inner: Mutex<(u64, Nonces)>,
}

impl NonceCache {
    pub fn get(&self, slot: &str) -> Option<String> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.1.get(slot).map(|(_, n)| n.clone())
    }

    pub fn set(&self, slot: &str, nonce: &str) {
        if nonce.is_empty() || nonce.len() > MAX_NONCE_LEN {
            return;
        }
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (counter, map) = &mut *guard;
        *counter += 1;
        let stamp = *counter;
        if !map.contains_key(slot) && map.len() >= MAX_NONCES {
            let oldest = map
                .iter()
                .min_by_key(|(_, (t, _))| *t)
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                map.remove(&oldest);
            }
        }
        map.insert(slot.to_string(), (stamp, nonce.to_string()));
    }
}

/// What a token request needs to carry a proof: the key the tokens are (to be) bound to and
/// where the authorization server's nonce is kept.
#[derive(Clone, Copy)]
pub struct TokenDpop<'a> {
    pub key: &'a SigningKey,
    pub nonces: &'a NonceCache,
    pub slot: &'a str,
}

impl std::fmt::Debug for TokenDpop<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenDpop")
            .field("slot", &self.slot)
            .finish()
    }
}

/// Why a stored DPoP key cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoredKeyError {
    #[error("the stored DPoP key is not base64url")]
    Encoding,
    #[error("the stored DPoP key is not usable: {0}")]
    Key(#[from] JoseError),
}

/// A fresh ES256 key and the form it is stored in ([`decode_key`] reads it back).
pub fn generate_key() -> Result<(SigningKey, String), JoseError> {
    let (key, der) = SigningKey::generate_es256()?;
    Ok((key, URL_SAFE_NO_PAD.encode(der)))
}

/// The key stored by `generate_key`.
pub fn decode_key(stored: &str) -> Result<SigningKey, StoredKeyError> {
    let der = URL_SAFE_NO_PAD
        .decode(stored)
        .map_err(|_| StoredKeyError::Encoding)?;
    Ok(SigningKey::es256_from_der(&der)?)
}

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

    #[test]
    fn the_nonce_cache_is_bounded_and_keeps_the_latest() {
        let cache = NonceCache::default();
        cache.set("a", "n-1");
        cache.set("a", "n-2");
        assert_eq!(cache.get("a").as_deref(), Some("n-2"));
        cache.set("a", "");
        cache.set("a", &"x".repeat(MAX_NONCE_LEN + 1));
        assert_eq!(
            cache.get("a").as_deref(),
            Some("n-2"),
            "unusable nonces are not kept"
        );
        for i in 0..MAX_NONCES + 10 {
            cache.set(&format!("s{i}"), "n");
        }
        let kept = cache.inner.lock().unwrap().1.len();
        assert_eq!(kept, MAX_NONCES);
        assert_eq!(cache.get("a"), None, "the oldest went first");
        assert!(cache.get(&format!("s{}", MAX_NONCES + 9)).is_some());
    }

    #[test]
    fn a_stored_key_reads_back_as_the_same_key() {
        let (key, stored) = generate_key().unwrap();
        let back = decode_key(&stored).unwrap();
        assert_eq!(back.thumbprint(), key.thumbprint());
        assert!(matches!(
            decode_key("not base64url!"),
            Err(StoredKeyError::Encoding)
        ));
        assert!(matches!(decode_key("AAAA"), Err(StoredKeyError::Key(_))));
        assert!(!format!("{key:?}").contains(&stored));
    }
}

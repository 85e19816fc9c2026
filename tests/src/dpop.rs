//! DPoP (RFC 9449) as the kit's servers check it: proof syntax and signature (ES256 only),
//! `htm`/`htu`, an `iat` window, `jti` replay, server nonces, the key thumbprint a token is
//! bound to (`cnf.jkt`), and at the MCP endpoint `ath` and the MCP profile's
//! `content_digest`.

use std::collections::{HashMap, HashSet, VecDeque};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Proofs older or newer than this many seconds are refused.
pub(crate) const IAT_WINDOW_SECS: i64 = 300;
/// The nonce the authorization server asks for in nonce mode.
pub(crate) const AS_NONCE: &str = "kit-as-nonce-1";
/// The nonce the MCP server asks for in nonce mode.
pub(crate) const RS_NONCE: &str = "kit-rs-nonce-1";
/// `jti`s remembered for replay detection.
const MAX_JTIS: usize = 4096;

/// A proof that passed the checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedProof {
    /// RFC 7638 thumbprint of the proof's key.
    pub jkt: String,
    pub claims: Value,
}

/// What the servers remember: seen `jti`s and which token is bound to which key.
#[derive(Debug, Default)]
pub(crate) struct DpopState {
    jtis: HashSet<String>,
    order: VecDeque<String>,
    /// Access and refresh tokens bound to a key, by token.
    pub bound: HashMap<String, String>,
}

impl DpopState {
    /// Records `jti`; false when it was seen before (a replay).
    pub fn fresh_jti(&mut self, jti: &str) -> bool {
        if self.jtis.contains(jti) {
            return false;
        }
        if self.order.len() >= MAX_JTIS
            && let Some(old) = self.order.pop_front()
        {
            self.jtis.remove(&old);
        }
        self.jtis.insert(jti.to_owned());
        self.order.push_back(jti.to_owned());
        true
    }
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// RFC 7638 thumbprint of a P-256 JWK.
pub fn jwk_thumbprint(jwk: &Value) -> Option<String> {
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str()?,
        jwk["y"].as_str()?
    );
    Some(URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())))
}

/// `htu` compared without query and fragment.
fn strip(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or("").to_owned()
}

/// Checks a proof for a request with `htm` to `htu` at `now` (unix seconds): the syntax of
/// RFC 9449 4.2, an ES256 signature by the embedded public key, `htm`, `htu`, `iat` within
/// [`IAT_WINDOW_SECS`]. `jti` replay and nonces are the caller's part.
pub fn verify_proof(
    proof: &str,
    htm: &str,
    htu: &str,
    now: i64,
) -> Result<VerifiedProof, &'static str> {
    let mut parts = proof.split('.');
    let (Some(h), Some(c), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the DPoP proof is not a compact JWS");
    };
    let header = decode_json(h).ok_or("the DPoP proof header is not base64url JSON")?;
    let claims = decode_json(c).ok_or("the DPoP proof claims are not base64url JSON")?;
    if header["typ"] != "dpop+jwt" {
        return Err("typ must be dpop+jwt");
    }
    if header["alg"] != "ES256" {
        return Err("alg must be ES256");
    }
    let jwk = &header["jwk"];
    if jwk.get("d").is_some() {
        return Err("the jwk holds a private key");
    }
    if jwk["kty"] != "EC" || jwk["crv"] != "P-256" {
        return Err("the jwk is not a P-256 key");
    }
    let x = jwk["x"]
        .as_str()
        .and_then(|x| URL_SAFE_NO_PAD.decode(x).ok());
    let y = jwk["y"]
        .as_str()
        .and_then(|y| URL_SAFE_NO_PAD.decode(y).ok());
    let (Some(x), Some(y)) = (x, y) else {
        return Err("the jwk coordinates are not base64url");
    };
    let mut point = vec![4u8];
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "the DPoP proof signature is not base64url")?;
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
        .verify(format!("{h}.{c}").as_bytes(), &signature)
        .map_err(|_| "the DPoP proof signature does not verify")?;
    if claims["jti"].as_str().is_none_or(|j| j.is_empty()) {
        return Err("the DPoP proof has no jti");
    }
    if claims["htm"] != htm {
        return Err("htm does not match the request method");
    }
    let Some(claimed) = claims["htu"].as_str() else {
        return Err("the DPoP proof has no htu");
    };
    if claimed.contains(['?', '#']) || claimed != strip(htu) {
        return Err("htu does not match the request URI");
    }
    match claims["iat"].as_i64() {
        Some(iat) if (now - iat).abs() <= IAT_WINDOW_SECS => {}
        _ => return Err("iat is outside the acceptable window"),
    }
    let jkt = jwk_thumbprint(jwk).ok_or("the jwk has no coordinates")?;
    Ok(VerifiedProof { jkt, claims })
}

/// `ath`: base64url SHA-256 of the access token.
pub fn access_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

/// The MCP profile's `content_digest` of a body.
pub fn content_digest(body: &[u8]) -> String {
    format!("sha-256=:{}:", STANDARD.encode(Sha256::digest(body)))
}

/// The single `DPoP` header of a request: `Err` when there are several.
pub(crate) fn proof_header(headers: &axum::http::HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut all = headers.get_all("dpop").iter();
    let first = all.next();
    if all.next().is_some() {
        return Err("more than one DPoP header");
    }
    match first {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| "the DPoP header is not text"),
    }
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

//! DPoP proofs for the requests a frontend makes to an MCP server (RFC 9449 7, and the MCP
//! profile's `content_digest`): the key stays in the daemon, the frontend gets a proof per
//! request with the current access token. The resource server's nonces (RFC 9449 9) are kept
//! per server in memory, so a nonce passed once (by `mcpServer/oauth/challenge`) goes into
//! every later proof.

use std::sync::Arc;

use url::Url;

use super::error::LoginError;
use super::service::OAuthService;
use super::target::ServerTarget;
use super::vending::DEFAULT_MIN_VALIDITY_SECS;
use crate::credentials::unix_now;
use crate::oauth::dpop::{self, ProofRequest};

/// One request to the MCP server a proof is for.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRequest<'a> {
    pub method: &'a str,
    pub url: &'a Url,
    /// The nonce the resource server sent; default: the one kept for the server.
    pub nonce: Option<&'a str>,
    /// The exact request body, for `content_digest`.
    pub body: Option<&'a [u8]>,
}

/// A proof and the access token it goes with. Holds secrets: `Debug` redacts them.
#[derive(Clone)]
pub struct ResourceProof {
    pub proof: String,
    pub access_token: String,
}

impl std::fmt::Debug for ResourceProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceProof")
            .field("proof", &"<redacted>")
            .field("access_token", &"<redacted>")
            .finish()
    }
}

/// Why a resource request cannot get a proof; a bad param, named.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofInputError {
    #[error("`method` must be an HTTP method such as POST; got {0:?}")]
    Method(String),
    #[error(
        "`url` must be an absolute http(s) URL on the MCP server's origin ({server}); got {url:?}"
    )]
    Url { url: String, server: String },
    #[error("`nonce` must be a non-empty printable string of at most 512 characters")]
    Nonce,
}

/// Checks a frontend's request description. Pure.
pub fn check_request(
    server_url: &Url,
    method: &str,
    url: &str,
    nonce: Option<&str>,
) -> Result<(String, Url), ProofInputError> {
    let method_ok =
        !method.is_empty() && method.len() <= 32 && method.bytes().all(|b| b.is_ascii_alphabetic());
    if !method_ok {
        return Err(ProofInputError::Method(method.chars().take(40).collect()));
    }
    let bad_url = || ProofInputError::Url {
        url: url.chars().take(200).collect(),
        server: server_url.origin().ascii_serialization(),
    };
    let parsed = Url::parse(url).map_err(|_| bad_url())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.origin() != server_url.origin() {
        return Err(bad_url());
    }
    if let Some(nonce) = nonce
        && (nonce.is_empty() || nonce.len() > 512 || !nonce.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ProofInputError::Nonce);
    }
    Ok((method.to_ascii_uppercase(), parsed))
}

/// Why a frontend's request got no proof: its description was bad (a bad param, named), or
/// no usable DPoP-bound token could be had.
#[derive(Debug, thiserror::Error)]
pub enum ProofError {
    #[error(transparent)]
    Input(#[from] ProofInputError),
    #[error(transparent)]
    Failed(Arc<LoginError>),
}

impl OAuthService {
    /// `mcpServer/oauth/dpopProof`: checks the frontend's description of its request before
    /// anything is looked up, counts the server as in use, then makes the proof.
    pub async fn proof_for(
        self: &Arc<Self>,
        target: &Arc<ServerTarget>,
        method: &str,
        url: &str,
        nonce: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<ResourceProof, ProofError> {
        let (method, url) = check_request(&target.url, method, url, nonce)?;
        self.token_used(target);
        self.dpop_proof(
            target,
            ResourceRequest {
                method: &method,
                url: &url,
                nonce,
                body,
            },
        )
        .await
        .map_err(ProofError::Failed)
    }

    /// A proof for one request to `target`'s MCP server, with the access token it goes with
    /// (refreshed first when it expires soon). Only for DPoP-bound tokens.
    pub async fn dpop_proof(
        self: &Arc<Self>,
        target: &ServerTarget,
        request: ResourceRequest<'_>,
    ) -> Result<ResourceProof, Arc<LoginError>> {
        let creds = self.token(target, DEFAULT_MIN_VALIDITY_SECS).await?;
        if !creds.is_dpop_bound() {
            return Err(Arc::new(LoginError::NotDpopBound(target.name.clone())));
        }
        let stored = creds.dpop_key.as_deref().unwrap_or_default();
        let key = dpop::decode_key(stored).map_err(|e| {
            Arc::new(LoginError::Dpop(format!(
                "{e}; log in to `{}` again",
                target.name
            )))
        })?;
        if let Some(nonce) = request.nonce {
            self.rs_dpop_nonces.set(&target.name, nonce);
        }
        let nonce = request
            .nonce
            .map(str::to_string)
            .or_else(|| self.rs_dpop_nonces.get(&target.name));
        let proof = dpop::proof(
            &key,
            ProofRequest {
                method: request.method,
                url: request.url,
                access_token: Some(&creds.access_token),
                nonce: nonce.as_deref(),
                body: request.body,
            },
            unix_now(),
        )
        .map_err(|e| Arc::new(LoginError::Dpop(e.to_string())))?;
        Ok(ResourceProof {
            proof,
            access_token: creds.access_token.clone(),
        })
    }

    /// Keeps the nonce the MCP server of `target` sent (a `use_dpop_nonce` challenge).
    pub fn remember_resource_nonce(&self, target: &ServerTarget, nonce: &str) {
        self.rs_dpop_nonces.set(&target.name, nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks_name_the_bad_param() {
        let server = Url::parse("https://mcp.example.com/mcp").unwrap();
        let ok = check_request(
            &server,
            "post",
            "https://mcp.example.com/mcp?x=1",
            Some("n-1"),
        );
        let (method, url) = ok.unwrap();
        assert_eq!(method, "POST");
        assert_eq!(url.as_str(), "https://mcp.example.com/mcp?x=1");
        for bad in ["", "PO ST", "GET\r\n", "P0ST"] {
            assert!(
                matches!(
                    check_request(&server, bad, "https://mcp.example.com/mcp", None),
                    Err(ProofInputError::Method(_))
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "/mcp",
            "not a url",
            "https://evil.example.com/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "ftp://mcp.example.com/mcp",
        ] {
            let e = check_request(&server, "POST", bad, None).unwrap_err();
            assert!(matches!(e, ProofInputError::Url { .. }), "{bad:?}");
            assert!(e.to_string().contains("`url`"), "{e}");
        }
        for bad in ["", "a b", "n\n", &"x".repeat(513)] {
            assert_eq!(
                check_request(&server, "POST", "https://mcp.example.com/mcp", Some(bad)),
                Err(ProofInputError::Nonce),
                "{bad:?}"
            );
        }
    }
}

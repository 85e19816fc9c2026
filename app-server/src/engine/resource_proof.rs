//! DPoP proofs for the requests a frontend makes to an MCP server (RFC 9449 7, and the MCP
//! profile's `content_digest`): the key stays in the daemon, the frontend gets a proof per
//! request with the current access token. The resource server's nonces (RFC 9449 9) are kept
//! per server in memory, so a nonce passed once (by `mcpServer/oauth/challenge`) goes into
//! every later proof.

use std::sync::Arc;

use crate::credentials::unix_now;
use crate::engine::error::ProofError;
use crate::engine::requests::check_request;
use crate::engine::service::OAuthService;
use crate::engine::target::ServerTarget;
use crate::engine::types::{DEFAULT_MIN_VALIDITY_SECS, ResourceProof, ResourceRequest};
use crate::oauth::dpop::{self, ProofRequest};

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
    }

    /// A proof for one request to `target`'s MCP server, with the access token it goes with
    /// (refreshed first when it expires soon). Only for DPoP-bound tokens.
    pub async fn dpop_proof(
        self: &Arc<Self>,
        target: &ServerTarget,
        request: ResourceRequest<'_>,
    ) -> Result<ResourceProof, ProofError> {
        let creds = self
            .token(target, DEFAULT_MIN_VALIDITY_SECS)
            .await
            .map_err(ProofError::Token)?;
        if !creds.is_dpop_bound() {
            return Err(ProofError::NotDpopBound(target.name.clone()));
        }
        let stored = creds.dpop_key.as_deref().unwrap_or_default();
        let key = dpop::decode_key(stored)
            .map_err(|e| ProofError::Dpop(format!("{e}; log in to `{}` again", target.name)))?;
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
        .map_err(|e| ProofError::Dpop(e.to_string()))?;
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

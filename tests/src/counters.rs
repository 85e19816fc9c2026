//! Request counts per endpoint, so tests can assert what a client asked for (and what it
//! did not: a second refresh, a root PRM probe after the path form answered).

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of how many requests each endpoint received (faulted and refused ones included).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// `/.well-known/oauth-protected-resource/mcp`
    pub prm_path: u64,
    /// `/.well-known/oauth-protected-resource`
    pub prm_root: u64,
    /// `/.well-known/oauth-authorization-server[/path]`
    pub as_metadata_oauth: u64,
    /// `/.well-known/openid-configuration[/path]` and `/path/.well-known/openid-configuration`
    pub as_metadata_openid: u64,
    pub register: u64,
    pub authorize: u64,
    /// Token requests with `grant_type=authorization_code`.
    pub token_code: u64,
    /// Token requests with `grant_type=refresh_token`.
    pub token_refresh: u64,
    /// Token requests with `grant_type=client_credentials`.
    pub token_client_credentials: u64,
    /// Token requests with the JWT bearer grant type (RFC 7523).
    pub token_jwt_bearer: u64,
    /// Device-code token requests (RFC 8628 polls).
    pub token_device: u64,
    /// Device authorization requests (RFC 8628 3.1).
    pub device_authorization: u64,
    /// Token requests with any other or no grant type.
    pub token_other: u64,
    pub revoke: u64,
    /// Requests to `/mcp`, with or without a token.
    pub mcp: u64,
    /// Client ID Metadata Document fetches made by the AS.
    pub cimd_fetch: u64,
    /// Token responses with `error=invalid_grant`.
    pub invalid_grant: u64,
    /// Requests to the decoy authorization server's endpoints (`decoy_as_on_mcp_origin`).
    pub decoy: u64,
    /// MCP requests refused because their certificate-bound token (RFC 8705 3) came on a
    /// connection without its certificate.
    pub bound_token_refusals: u64,
    /// Token, revocation and device authorization requests of `tls_client_auth` or
    /// `self_signed_tls_client_auth` clients refused for a missing or wrong certificate.
    pub mtls_client_auth_failures: u64,
}

#[derive(Debug, Default)]
pub(crate) struct AtomicCounters {
    pub prm_path: AtomicU64,
    pub prm_root: AtomicU64,
    pub as_metadata_oauth: AtomicU64,
    pub as_metadata_openid: AtomicU64,
    pub register: AtomicU64,
    pub authorize: AtomicU64,
    pub token_code: AtomicU64,
    pub token_refresh: AtomicU64,
    pub token_client_credentials: AtomicU64,
    pub token_jwt_bearer: AtomicU64,
    pub token_device: AtomicU64,
    pub device_authorization: AtomicU64,
    pub token_other: AtomicU64,
    pub revoke: AtomicU64,
    pub mcp: AtomicU64,
    pub cimd_fetch: AtomicU64,
    pub invalid_grant: AtomicU64,
    pub decoy: AtomicU64,
    pub bound_token_refusals: AtomicU64,
    pub mtls_client_auth_failures: AtomicU64,
}

pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl AtomicCounters {
    pub fn snapshot(&self) -> Counters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counters {
            prm_path: get(&self.prm_path),
            prm_root: get(&self.prm_root),
            as_metadata_oauth: get(&self.as_metadata_oauth),
            as_metadata_openid: get(&self.as_metadata_openid),
            register: get(&self.register),
            authorize: get(&self.authorize),
            token_code: get(&self.token_code),
            token_refresh: get(&self.token_refresh),
            token_client_credentials: get(&self.token_client_credentials),
            token_jwt_bearer: get(&self.token_jwt_bearer),
            token_device: get(&self.token_device),
            device_authorization: get(&self.device_authorization),
            token_other: get(&self.token_other),
            revoke: get(&self.revoke),
            mcp: get(&self.mcp),
            cimd_fetch: get(&self.cimd_fetch),
            invalid_grant: get(&self.invalid_grant),
            decoy: get(&self.decoy),
            bound_token_refusals: get(&self.bound_token_refusals),
            mtls_client_auth_failures: get(&self.mtls_client_auth_failures),
        }
    }
}

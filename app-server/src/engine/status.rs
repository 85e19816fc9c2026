//! A server's credential state, for listings.

use mcp_app_server_protocol::{McpAuthStatus, RegistrationKind};

use crate::credentials::{StoredCredentials, unix_now};

/// A server's credential state, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusInfo {
    pub status: McpAuthStatus,
    pub expires_at: Option<i64>,
    pub scopes: Option<Vec<String>>,
    pub registration: Option<RegistrationKind>,
    pub issuer: Option<String>,
}

impl StatusInfo {
    pub fn from_credentials(creds: Option<&StoredCredentials>) -> Self {
        let Some(c) = creds else {
            return StatusInfo {
                status: McpAuthStatus::NotLoggedIn,
                expires_at: None,
                scopes: None,
                registration: None,
                issuer: None,
            };
        };
        let expired = c.expires_at.is_some_and(|t| t <= unix_now());
        let status = if c.reauthentication_required {
            McpAuthStatus::ReauthenticationRequired
        } else if expired && !c.renewable() {
            McpAuthStatus::Expired
        } else {
            McpAuthStatus::LoggedIn
        };
        StatusInfo {
            status,
            expires_at: c.expires_at,
            scopes: Some(c.scopes.clone()),
            registration: Some(c.client.kind),
            issuer: Some(c.issuer.clone()),
        }
    }
}

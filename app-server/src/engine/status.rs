//! A server's credential state, for listings.

use mcp_app_server_protocol::{
    McpAccountStatus, McpAuthStatus, McpAuthStatusReason, RegistrationKind,
};

use crate::credentials::{StoredCredentials, chosen_last, unix_now};

/// A server's credential state, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusInfo {
    pub status: McpAuthStatus,
    /// Why a login is needed; see [`reason_for`].
    pub reason: Option<McpAuthStatusReason>,
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
                reason: Some(McpAuthStatusReason::NeverLoggedIn),
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
            reason: reason_for(status, c.login_reason),
            expires_at: c.expires_at,
            scopes: Some(c.scopes.clone()),
            registration: Some(c.client.kind),
            issuer: Some(c.issuer.clone()),
        }
    }
}

/// One server's accounts as a status listing shows them (rule 80).
#[derive(Debug, Clone, PartialEq)]
pub struct ServerAccounts {
    /// The state of the account described: the one named, else the one used last.
    pub info: StatusInfo,
    /// That account's label (`None`: a login that named none, or nothing stored).
    pub account: Option<String>,
    /// Every stored account by label; `None` when there is none.
    pub accounts: Option<Vec<McpAccountStatus>>,
}

impl ServerAccounts {
    /// From every stored entry of one server (any order); `named`: the account to
    /// describe instead of the one used last (rule 81).
    pub fn of(entries: &[StoredCredentials], named: Option<&str>) -> ServerAccounts {
        let current = chosen_last(entries);
        let (shown, account) = match named {
            Some(label) => (
                entries.iter().find(|c| c.account.as_deref() == Some(label)),
                Some(label.to_string()),
            ),
            None => (current, current.and_then(|c| c.account.clone())),
        };
        let accounts = (!entries.is_empty()).then(|| {
            let mut list: Vec<McpAccountStatus> = entries
                .iter()
                .map(|c| {
                    let info = StatusInfo::from_credentials(Some(c));
                    McpAccountStatus {
                        account: c.account.clone(),
                        auth_status: info.status,
                        reason: info.reason,
                        expires_at: info.expires_at,
                        scopes: info.scopes,
                        current: current.is_some_and(|cur| std::ptr::eq(cur, c)),
                    }
                })
                .collect();
            list.sort_by(|a, b| a.account.cmp(&b.account));
            list
        });
        ServerAccounts {
            info: StatusInfo::from_credentials(shown),
            account,
            accounts,
        }
    }
}

/// The reason announced with `status` for stored credentials that carry `stored` (the
/// cause recorded when they were flagged, or a step-up asked for). Every status that needs
/// a login has one: a flag set by a daemon that recorded no cause was a refused refresh.
/// `loggedIn` carries only `moreScopesNeeded` (the tokens serve, a step-up login is asked
/// for); any other stored cause is stale there and not shown.
pub fn reason_for(
    status: McpAuthStatus,
    stored: Option<McpAuthStatusReason>,
) -> Option<McpAuthStatusReason> {
    match status {
        McpAuthStatus::Unsupported => None,
        McpAuthStatus::NotLoggedIn => Some(McpAuthStatusReason::NeverLoggedIn),
        McpAuthStatus::Expired => Some(McpAuthStatusReason::TokenExpired),
        McpAuthStatus::ReauthenticationRequired => {
            Some(stored.unwrap_or(McpAuthStatusReason::RefreshRefused))
        }
        McpAuthStatus::LoggedIn => stored.filter(|r| *r == McpAuthStatusReason::MoreScopesNeeded),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::fixtures::credentials;
    use McpAuthStatusReason as R;

    #[test]
    fn every_status_that_needs_a_login_has_a_reason() {
        let none = StatusInfo::from_credentials(None);
        assert_eq!(
            (none.status, none.reason),
            (McpAuthStatus::NotLoggedIn, Some(R::NeverLoggedIn))
        );
        let mut c = credentials("a", "https://a.example/mcp");
        assert_eq!(StatusInfo::from_credentials(Some(&c)).reason, None);
        c.refresh_token = None;
        c.expires_at = Some(1);
        let expired = StatusInfo::from_credentials(Some(&c));
        assert_eq!(
            (expired.status, expired.reason),
            (McpAuthStatus::Expired, Some(R::TokenExpired))
        );
        // A flag written without a cause (by an older daemon) was a refused refresh.
        c.reauthentication_required = true;
        assert_eq!(
            StatusInfo::from_credentials(Some(&c)).reason,
            Some(R::RefreshRefused)
        );
        c.login_reason = Some(R::TokenRevoked);
        let flagged = StatusInfo::from_credentials(Some(&c));
        assert_eq!(
            (flagged.status, flagged.reason),
            (
                McpAuthStatus::ReauthenticationRequired,
                Some(R::TokenRevoked)
            )
        );
    }

    #[test]
    fn logged_in_shows_only_a_step_up_asked_for() {
        let mut c = credentials("a", "https://a.example/mcp");
        c.login_reason = Some(R::MoreScopesNeeded);
        let info = StatusInfo::from_credentials(Some(&c));
        assert_eq!(
            (info.status, info.reason),
            (McpAuthStatus::LoggedIn, Some(R::MoreScopesNeeded))
        );
        c.login_reason = Some(R::RefreshRefused);
        assert_eq!(StatusInfo::from_credentials(Some(&c)).reason, None);
        assert_eq!(
            reason_for(McpAuthStatus::Unsupported, Some(R::TokenRevoked)),
            None
        );
    }
}

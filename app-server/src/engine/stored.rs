//! Rules about stored credentials that every flow shares: whether a token is usable or
//! fresh enough, whether it can be renewed without the user, and how a token endpoint's
//! answer updates what is stored. A leaf: pure functions.

use crate::oauth::token::binding::jwt_certificate_thumbprint;
use std::borrow::Borrow;

use mcp_app_server_protocol::McpAuthStatusReason;
use url::Url;

use crate::config::RefreshScope;
use crate::credentials::{StoredClient, StoredCredentials, StoredSet, unix_now};
use crate::engine::error::VendError;
use crate::engine::target::ServerTarget;
use crate::engine::types::REFRESH_NOW;
use crate::oauth::discovery::AuthServerMetadata;
use crate::oauth::dpop::decode_key;
use crate::oauth::jose::SigningKey;
use crate::oauth::registration::{ClientRegistration, TokenAuthMethod};
use crate::oauth::token::{TokenError, TokenResponse};

/// The ways a server's stored tokens are renewed without the user (see `renewal.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Renewal {
    /// An enterprise-managed server: a new token exchange at the identity provider, never a
    /// refresh.
    EnterpriseExchange,
    /// A configured grant that needs no browser runs again, and only it: never a refresh
    /// token or another grant.
    ConfiguredGrant,
    /// The refresh token is presented.
    RefreshToken,
    /// The refresh token of the server the tokens were obtained through is presented with
    /// this server's `resource` (rule 86).
    ThroughOwner,
}

/// How `creds` of `target` are renewed without the user, if they can be: the one place
/// that decides.
pub(crate) fn renewal_for(target: &ServerTarget, creds: &StoredCredentials) -> Option<Renewal> {
    if target.enterprise.is_some() {
        Some(Renewal::EnterpriseExchange)
    } else if target.grant.is_machine() {
        Some(Renewal::ConfiguredGrant)
    } else if creds.refresh_token.is_some() {
        Some(Renewal::RefreshToken)
    } else if creds.refreshed_through.is_some() {
        Some(Renewal::ThroughOwner)
    } else {
        None
    }
}

/// New tokens can be had without the user.
pub(crate) fn can_renew(target: &ServerTarget, creds: &StoredCredentials) -> bool {
    renewal_for(target, creds).is_some()
}

/// Credentials that may be handed out or refreshed (owned, or shared with the store).
pub(crate) fn usable<C: Borrow<StoredCredentials>>(
    creds: Option<C>,
    name: &str,
) -> Result<C, VendError> {
    let creds = creds.ok_or_else(|| VendError::NotLoggedIn(name.to_string()))?;
    if creds.borrow().reauthentication_required {
        let cause = creds
            .borrow()
            .login_reason
            .unwrap_or(McpAuthStatusReason::RefreshRefused);
        return Err(VendError::ReauthenticationRequired {
            name: name.to_string(),
            reason: describe_reason(cause).into(),
        });
    }
    Ok(creds)
}

/// Why a new login is needed, for people: what the error of a later token request says.
pub(crate) fn describe_reason(reason: McpAuthStatusReason) -> &'static str {
    match reason {
        McpAuthStatusReason::NeverLoggedIn => "no credentials are stored; log in",
        McpAuthStatusReason::TokenExpired => {
            "the access token expired and the server issued no refresh token; log in again"
        }
        McpAuthStatusReason::RefreshRefused => {
            "the authorization server refused an earlier refresh; log in again"
        }
        McpAuthStatusReason::AuthorizationServerChanged => {
            "the server now trusts another authorization server than the one that issued the tokens; log in again"
        }
        McpAuthStatusReason::RegistrationDropped => {
            "the authorization server no longer knows the registered client; log in again to register anew"
        }
        McpAuthStatusReason::MoreScopesNeeded => {
            "the server asked for more scopes than the token has; log in again for them"
        }
        McpAuthStatusReason::TokenRevoked => {
            "the server refused a token that had not expired (it was revoked) and no new one could be had; log in again"
        }
        McpAuthStatusReason::GrantCredentialMissing => {
            "the configured grant's credential (client secret or identity token) is missing and the token expired; provide it and log in again"
        }
    }
}

/// Why an OAuth error answer refused a renewal: `invalid_client` says the authorization
/// server no longer knows the client (the registration was dropped); anything else is a
/// refused refresh.
pub(crate) fn refusal_cause(error: &TokenError) -> McpAuthStatusReason {
    match error.oauth_error() {
        Some("invalid_client") => McpAuthStatusReason::RegistrationDropped,
        _ => McpAuthStatusReason::RefreshRefused,
    }
}

/// Without a refresh token the access token serves until it expires: handed out while it
/// is valid (its `expires_at` tells the caller how long), a new login after that.
pub(crate) fn unrefreshable(
    creds: StoredCredentials,
    name: &str,
) -> Result<StoredCredentials, VendError> {
    check_unexpired(&creds, name)?;
    Ok(creds)
}

/// [`unrefreshable`] without taking the credentials.
pub(crate) fn check_unexpired(creds: &StoredCredentials, name: &str) -> Result<(), VendError> {
    if creds.expires_at.is_some_and(|t| t <= unix_now()) {
        return Err(VendError::ReauthenticationRequired {
            name: name.to_string(),
            reason: "the access token expired and the server issued no refresh token".into(),
        });
    }
    Ok(())
}

/// The record of a login to `target` before its tokens are applied: the authorization
/// server, its token endpoint and revocation endpoint and the resource exactly as discovery
/// found them, the scopes asked for, the client the tokens are issued to.
pub(crate) fn record_for(
    target: &ServerTarget,
    metadata: &AuthServerMetadata,
    resource: &str,
    scopes: Vec<String>,
    client: StoredClient,
) -> StoredCredentials {
    StoredCredentials {
        server_name: target.name.clone(),
        server_url: target.url.to_string(),
        account: target.account.clone(),
        // A login chooses its account (rule 81).
        selected_at: Some(crate::clock::unix_millis()),
        access_token: String::new(),
        token_type: String::new(),
        refresh_token: None,
        expires_at: None,
        requested_scopes: scopes.clone(),
        scopes,
        issuer: metadata.issuer.clone(),
        token_endpoint: metadata.token_endpoint.to_string(),
        revocation_endpoint: metadata.revocation_endpoint.as_ref().map(Url::to_string),
        resource: resource.to_string(),
        client,
        reauthentication_required: false,
        login_reason: None,
        grant: None,
        dpop_key: None,
        // Bound when a certificate is presented to a server that binds tokens to it
        // (RFC 8705 §3); a JWT access token saying so binds them too (`apply_tokens`).
        certificate_x5t: target
            .certificate()
            .filter(|_| metadata.tls_client_certificate_bound_access_tokens)
            .map(|c| c.x5t_s256.clone()),
        updated_at: unix_now(),
        refreshed_through: None,
        shared_with: None,
    }
}

/// The token endpoint the stored tokens came from: renewals go there and nowhere else
/// (tokens only ever go to the issuer that issued them).
pub(crate) fn stored_token_endpoint(
    creds: &StoredCredentials,
    name: &str,
) -> Result<Url, VendError> {
    Url::parse(&creds.token_endpoint).map_err(|e| VendError::RefreshFailed {
        name: name.to_string(),
        error: TokenError::Invalid {
            endpoint: creds.token_endpoint.clone(),
            reason: format!("the stored token endpoint is not a URL ({e})"),
        },
    })
}

/// The key DPoP-bound tokens are bound to: renewals prove possession of the same key. A key
/// that cannot be read means a new login.
pub(crate) fn stored_dpop_key(
    creds: &StoredCredentials,
    name: &str,
) -> Result<Option<SigningKey>, VendError> {
    creds
        .dpop_key
        .as_deref()
        .map(decode_key)
        .transpose()
        .map_err(|e| VendError::ReauthenticationRequired {
            name: name.to_string(),
            reason: format!("{e}; log in again"),
        })
}

pub(crate) fn fresh_enough(creds: &StoredCredentials, min_validity_secs: u32) -> bool {
    if min_validity_secs == REFRESH_NOW {
        return false;
    }
    match creds.expires_at {
        None => true,
        // Saturating: a hand-edited `expiresAt` may be anything.
        Some(t) => t.saturating_sub(unix_now()) > i64::from(min_validity_secs),
    }
}

/// The credentials a login that went through the user obtained (browser or device): the
/// record for `target` with the client it used, and the tokens.
pub(crate) fn credentials_from(
    target: &ServerTarget,
    discovery: &crate::oauth::discovery::Discovery,
    registration: &ClientRegistration,
    tokens: TokenResponse,
    requested_scopes: Vec<String>,
) -> StoredCredentials {
    let client = StoredClient {
        kind: registration.kind,
        client_id: registration.client_id.clone(),
        client_secret: registration.client_secret.clone(),
        token_endpoint_auth_method: registration.auth_method.as_str().to_string(),
    };
    let mut creds = record_for(
        target,
        &discovery.metadata,
        &discovery.resource,
        requested_scopes,
        client,
    );
    apply_tokens(&mut creds, tokens);
    creds
}

pub(crate) fn apply_tokens(creds: &mut StoredCredentials, tokens: TokenResponse) {
    if let Some(x5t) = jwt_certificate_thumbprint(&tokens.access_token) {
        creds.certificate_x5t = Some(x5t);
    }
    creds.access_token = tokens.access_token;
    creds.token_type = tokens.token_type;
    if let Some(rt) = tokens.refresh_token {
        creds.refresh_token = Some(rt);
    }
    // The parser clamps `expires_in`; saturating keeps any value from overflowing.
    creds.expires_at = tokens
        .expires_in
        .map(|s| unix_now().saturating_add(i64::try_from(s).unwrap_or(i64::MAX)));
    if let Some(scopes) = tokens.scopes {
        creds.scopes = scopes;
    }
    creds.reauthentication_required = false;
    // A renewal keeps a step-up asked for (it grants no new scopes); a login starts from a
    // fresh record (`record_for`), which has no cause.
    creds.login_reason = creds
        .login_reason
        .filter(|r| *r == McpAuthStatusReason::MoreScopesNeeded);
    creds.updated_at = unix_now();
}

/// Rule 70: the `scope` a refresh of `creds` sends under `mode`, and the scopes to ask for
/// once more when the server refuses that as `invalid_scope` (`None`: no second try).
/// Entries saved before the requested scopes were kept have none: `requested` then sends
/// the granted ones, and there is nothing to try again with.
pub(crate) fn refresh_scopes(
    mode: RefreshScope,
    creds: &StoredCredentials,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let non_empty = |scopes: &Vec<String>| (!scopes.is_empty()).then(|| scopes.clone());
    match mode {
        RefreshScope::None => (None, None),
        RefreshScope::Requested => (
            non_empty(&creds.requested_scopes).or_else(|| non_empty(&creds.scopes)),
            None,
        ),
        RefreshScope::Granted => {
            fn same(a: &[String], b: &[String]) -> bool {
                let set =
                    |l: &[String]| l.iter().cloned().collect::<std::collections::HashSet<_>>();
                set(a) == set(b)
            }
            let retry = non_empty(&creds.requested_scopes)
                .filter(|requested| !same(requested, &creds.scopes));
            (non_empty(&creds.scopes), retry)
        }
    }
}

pub(crate) fn registration_from_client(client: &StoredClient) -> ClientRegistration {
    ClientRegistration {
        kind: client.kind,
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        auth_method: TokenAuthMethod::from_name(&client.token_endpoint_auth_method)
            .unwrap_or(TokenAuthMethod::None),
    }
}

/// Rule 82: a login adds an account when it names one the server has no entry for while
/// the server has another account stored.
pub(crate) fn adds_account(stored: &StoredSet, target: &ServerTarget) -> bool {
    target.account.is_some()
        && stored.lookup(&target.lookup_key()).is_none()
        && stored
            .accounts_of(&target.name, target.url.as_str())
            .next()
            .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::fixtures::credentials;
    use crate::engine::StatusInfo;
    use crate::engine::types::MAX_MIN_VALIDITY_SECS;
    use crate::oauth::token::TokenResponse;
    use mcp_app_server_protocol::{McpAuthStatus, RegistrationKind};

    fn tokens(refresh_token: Option<&str>, expires_in: Option<u64>) -> TokenResponse {
        TokenResponse {
            access_token: "at-new".into(),
            token_type: "Bearer".into(),
            refresh_token: refresh_token.map(str::to_string),
            expires_in,
            scopes: None,
        }
    }

    #[test]
    fn refresh_scopes_per_mode() {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut creds = credentials("a", "https://a.example/mcp");
        let asked = ["api://c0ffee/access_as_user", "offline_access"];
        let granted = ["api://c0ffee/access_as_user", "api://c0ffee/.default"];
        creds.requested_scopes = owned(&asked);
        creds.scopes = owned(&granted);
        let some = |l: &[&str]| Some(owned(l));
        // Granted first, what the login asked for once more after `invalid_scope`.
        assert_eq!(
            refresh_scopes(RefreshScope::Granted, &creds),
            (some(&granted), some(&asked))
        );
        assert_eq!(
            refresh_scopes(RefreshScope::Requested, &creds),
            (some(&asked), None)
        );
        assert_eq!(refresh_scopes(RefreshScope::None, &creds), (None, None));
        // The same set in another order: nothing else to try.
        creds.scopes = owned(&["offline_access", "api://c0ffee/access_as_user"]);
        assert_eq!(refresh_scopes(RefreshScope::Granted, &creds).1, None);
        // An entry saved before the requested scopes were kept.
        creds.requested_scopes.clear();
        assert_eq!(
            refresh_scopes(RefreshScope::Granted, &creds),
            (Some(creds.scopes.clone()), None)
        );
        assert_eq!(
            refresh_scopes(RefreshScope::Requested, &creds),
            (Some(creds.scopes.clone()), None)
        );
        // Nothing granted or asked for: no `scope` at all.
        creds.scopes.clear();
        assert_eq!(refresh_scopes(RefreshScope::Granted, &creds), (None, None));
    }

    #[test]
    fn applied_tokens_keep_what_the_response_leaves_out() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.reauthentication_required = true;
        apply_tokens(&mut creds, tokens(None, Some(600)));
        assert_eq!(creds.access_token, "at-new");
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-secret-a"));
        assert_eq!(creds.scopes, ["read", "offline_access"]);
        assert!(!creds.reauthentication_required);
        let expires_at = creds.expires_at.unwrap();
        assert!((unix_now() + 590..=unix_now() + 600).contains(&expires_at));

        apply_tokens(&mut creds, tokens(Some("rt-rotated"), None));
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-rotated"));
        assert_eq!(creds.expires_at, None);
    }

    #[test]
    fn huge_lifetimes_and_expiries_do_not_overflow() {
        let mut creds = credentials("a", "https://a.example/mcp");
        apply_tokens(&mut creds, tokens(None, Some(u64::MAX)));
        assert_eq!(creds.expires_at, Some(i64::MAX));
        assert!(fresh_enough(&creds, MAX_MIN_VALIDITY_SECS));
        creds.expires_at = Some(i64::MIN);
        assert!(!fresh_enough(&creds, 0));
    }

    #[test]
    fn freshness_is_measured_against_the_asked_validity() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.expires_at = Some(unix_now() + 120);
        assert!(fresh_enough(&creds, 60));
        assert!(!fresh_enough(&creds, 120));
        creds.expires_at = None;
        assert!(fresh_enough(&creds, MAX_MIN_VALIDITY_SECS));
        // A forced refresh ignores the expiry, or its absence.
        assert!(!fresh_enough(&creds, REFRESH_NOW));
        creds.expires_at = Some(unix_now() + 3600);
        assert!(!fresh_enough(&creds, REFRESH_NOW));
    }

    #[test]
    fn credentials_without_refresh_token_serve_until_they_expire() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.refresh_token = None;
        creds.expires_at = Some(unix_now() + 5);
        assert!(unrefreshable(creds.clone(), "a").is_ok());
        creds.expires_at = Some(unix_now() - 1);
        assert!(matches!(
            unrefreshable(creds, "a"),
            Err(VendError::ReauthenticationRequired { .. })
        ));
    }

    #[test]
    fn status_follows_the_stored_credentials() {
        assert_eq!(
            StatusInfo::from_credentials(None).status,
            McpAuthStatus::NotLoggedIn
        );
        let mut creds = credentials("a", "https://a.example/mcp");
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::LoggedIn);
        assert_eq!(info.registration, Some(RegistrationKind::Dcr));
        assert_eq!(info.issuer.as_deref(), Some("https://auth.example.com"));
        assert_eq!(info.expires_at, Some(1_900_000_000));

        // Expired with a refresh token: the next token request refreshes, still logged in.
        creds.expires_at = Some(unix_now() - 1);
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::LoggedIn);
        creds.refresh_token = None;
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::Expired);
        creds.reauthentication_required = true;
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::ReauthenticationRequired);
    }
}

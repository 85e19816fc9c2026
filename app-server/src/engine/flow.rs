//! Values the flows hand each other: what discovery found for a login, the warning for a
//! token that could not be bound to a key, and whether `auto` picks the device login.

use std::sync::Arc;

use crate::engine::error::LoginError;
use crate::oauth::callback::{CallbackError, LoginEnding};
use crate::oauth::discovery::Discovery;
use crate::oauth::http::HttpClient;

/// What discovery found for a login, with the scopes to ask for.
pub(crate) struct Discovered {
    /// Held to the server's network policy (rule 35).
    pub http: HttpClient,
    /// Shared with the discovery cache.
    pub discovery: Arc<Discovery>,
    /// The discovery cache answered (see [`Discovery::cached`]).
    pub cached: bool,
    pub scopes: Option<Vec<String>>,
}

/// Whether a login binds its tokens to a new DPoP key (rule 49): only where the
/// authorization server accepts ES256 proofs, never where the configuration says
/// `dpop = false`, and otherwise when the configuration asks for it (`dpop = true`), the
/// protected resource requires it (RFC 9728 `dpop_bound_access_tokens_required`, or a
/// challenge with the DPoP scheme only), or whoever starts the login can send proofs. A
/// token no frontend sharing the store could use is never made by default.
pub(crate) fn binds_dpop(
    configured: Option<bool>,
    login_can_prove: bool,
    discovery: &Discovery,
) -> bool {
    if !discovery.metadata.supports_dpop_es256() {
        return false;
    }
    match configured {
        Some(configured) => configured,
        None => login_can_prove || discovery.requires_dpop(),
    }
}

/// RFC 9449 5: a server that offers DPoP may still answer a request with a proof with a
/// Bearer token. It is kept and used as a Bearer token (the key stays for later token
/// requests); the user is told, since a stolen copy of it is usable.
pub(crate) fn warn_if_unbound(name: &str, token_type: &str) {
    if !token_type.eq_ignore_ascii_case("DPoP") {
        tracing::warn!(server = %name, token_type = %token_type, "the authorization server offers DPoP but issued an unbound token; it is used as a Bearer token");
    }
}

/// Whether `auto` picks the device login (rule 76): the authorization server publishes a
/// device authorization endpoint, and no browser on this machine can reach the daemon's
/// loopback listener, which the daemon takes to be so in an SSH session (`SSH_CONNECTION`,
/// `SSH_CLIENT` or `SSH_TTY` set) without a display to open a browser on (`DISPLAY` and
/// `WAYLAND_DISPLAY` unset). Pure: `env` reads a variable.
pub(crate) fn auto_picks_device(
    env: impl Fn(&str) -> Option<String>,
    has_device_endpoint: bool,
) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    let ssh = ["SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"]
        .into_iter()
        .any(set);
    let display = ["DISPLAY", "WAYLAND_DISPLAY"].into_iter().any(set);
    has_device_endpoint && ssh && !display
}

/// Whether this daemon's environment has no browser that reaches its loopback listener
/// (see [`auto_picks_device`]).
pub(crate) fn no_local_browser() -> bool {
    auto_picks_device(|name| std::env::var(name).ok(), true)
}

/// Rule 64: a login that relies on escape hatches of the server's configuration says so,
/// once, whether discovery ran or the cache answered. Names, URLs of no secret and keys
/// only.
pub(crate) fn warn_escape_hatches(name: &str, discovery: &Discovery) {
    if !discovery.escape_hatches.is_empty() {
        tracing::warn!(
            server = %name,
            issuer = %discovery.metadata.issuer,
            escape_hatches = ?discovery.escape_hatches,
            "logging in with escape hatches for an authorization server that does not publish its metadata as the specs say"
        );
    }
}

/// How the browser's page describes the end of a login.
pub(crate) fn login_ending(result: &Result<(), LoginError>) -> LoginEnding {
    match result {
        Ok(()) => LoginEnding::LoggedIn,
        Err(LoginError::Authorization(CallbackError::OAuth { error, .. }))
            if error == "access_denied" =>
        {
            LoginEnding::Denied
        }
        Err(LoginError::Cancelled) => LoginEnding::Cancelled,
        Err(LoginError::TimedOut(_)) => LoginEnding::Expired,
        Err(LoginError::Superseded) => LoginEnding::Superseded,
        Err(LoginError::ShuttingDown) => LoginEnding::Stopped,
        Err(error) => LoginEnding::Failed(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::oauth::discovery::{AuthServerMetadata, ProtectedResourceMetadata};
    use crate::oauth::www_authenticate::BearerChallenge;

    fn discovery(es256: bool, prm_requires: Option<bool>, dpop_only: bool) -> Discovery {
        let mut metadata =
            AuthServerMetadata::legacy_defaults(&Url::parse("https://as.example").unwrap());
        if es256 {
            metadata.dpop_signing_alg_values_supported = Some(vec!["ES256".into()]);
        }
        Discovery {
            resource: "https://mcp.example/mcp".into(),
            protected_resource_url: None,
            protected_resource: Some(ProtectedResourceMetadata {
                resource: "https://mcp.example/mcp".into(),
                authorization_servers: vec!["https://as.example".into()],
                scopes_supported: None,
                resource_name: None,
                bearer_methods_supported: None,
                dpop_bound_access_tokens_required: prm_requires,
            }),
            challenge: Some(BearerChallenge {
                dpop_only,
                ..BearerChallenge::default()
            }),
            issuer: "https://as.example".into(),
            metadata,
            legacy: false,
            default_endpoints: false,
            escape_hatches: Vec::new(),
            cached: false,
        }
    }

    #[test]
    fn tokens_are_bound_only_when_someone_can_use_them_or_must() {
        let plain = discovery(true, None, false);
        // Config unset: the login's starter decides, unless the resource requires DPoP.
        assert!(!binds_dpop(None, false, &plain));
        assert!(binds_dpop(None, true, &plain));
        assert!(binds_dpop(None, false, &discovery(true, Some(true), false)));
        assert!(!binds_dpop(
            None,
            false,
            &discovery(true, Some(false), false)
        ));
        assert!(binds_dpop(None, false, &discovery(true, None, true)));
        // The config wins both ways.
        assert!(binds_dpop(Some(true), false, &plain));
        assert!(!binds_dpop(
            Some(false),
            true,
            &discovery(true, Some(true), true)
        ));
        // Never without ES256 at the authorization server.
        assert!(!binds_dpop(
            Some(true),
            true,
            &discovery(false, Some(true), true)
        ));
    }
}

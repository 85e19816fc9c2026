//! Stable application error kinds, sent as `error.data.kind`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

macro_rules! error_kinds {
    ($( $(#[doc = $doc:literal])* $variant:ident = $wire:literal => $code:literal, )*) => {
        /// Machine-readable error kinds of application errors (`error.data.kind`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema, TS)]
        #[serde(rename_all = "camelCase")]
        pub enum ErrorKind {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl ErrorKind {
            /// Every kind, in table order.
            pub const ALL: &'static [ErrorKind] = &[$(ErrorKind::$variant),*];

            /// The JSON-RPC error code used for this kind.
            pub fn code(self) -> i64 {
                match self { $(ErrorKind::$variant => $code,)* }
            }

            /// The wire name (`data.kind`).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorKind::$variant => $wire,)* }
            }

            /// The doc text of the kind.
            pub fn description(self) -> &'static str {
                match self { $(ErrorKind::$variant => concat!($($doc, "\n",)* "").trim_ascii(),)* }
            }
        }
    };
}

error_kinds! {
    /// The connection has not sent `initialize` yet.
    NotInitialized = "notInitialized" => -32002,
    /// `initialize` was sent twice on one connection.
    AlreadyInitialized = "alreadyInitialized" => -32003,
    /// The message exceeded the size limit.
    MessageTooLarge = "messageTooLarge" => -32004,
    /// No `[mcp_servers.NAME]` table has this name.
    ServerNotFound = "serverNotFound" => -32010,
    /// The server is not reached over HTTP (stdio), so OAuth does not apply.
    NotOAuthServer = "notOAuthServer" => -32011,
    /// config.toml could not be read or is invalid.
    ConfigInvalid = "configInvalid" => -32012,
    /// Finding the authorization server failed.
    DiscoveryFailed = "discoveryFailed" => -32020,
    /// Registering the client failed.
    RegistrationFailed = "registrationFailed" => -32021,
    /// The authorization step failed (the server answered with an error, or the callback
    /// was invalid).
    AuthorizationFailed = "authorizationFailed" => -32022,
    /// The token endpoint refused or failed the token request: exchanging the authorization
    /// code, or a configured client credentials or JWT bearer grant (the message says what
    /// the authorization server answered).
    TokenExchangeFailed = "tokenExchangeFailed" => -32023,
    /// The login was cancelled.
    LoginCancelled = "loginCancelled" => -32024,
    /// The browser did not come back in time.
    LoginTimedOut = "loginTimedOut" => -32025,
    /// A newer login for the same server replaced this one.
    LoginSuperseded = "loginSuperseded" => -32026,
    /// No login is pending for the server.
    NoPendingLogin = "noPendingLogin" => -32027,
    /// The callback listener could not be started (e.g. the fixed port is taken).
    CallbackListenerFailed = "callbackListenerFailed" => -32028,
    /// The credential a configured grant needs could not be read: an unset environment
    /// variable, an unreadable or empty file, a key that does not sign. The message names
    /// the `[mcp_servers.NAME.oauth]` key to fix; then log in again.
    GrantCredentialUnavailable = "grantCredentialUnavailable" => -32029,
    /// There are no stored credentials for the server.
    NotLoggedIn = "notLoggedIn" => -32030,
    /// The stored credentials were refused: log in again.
    ReauthenticationRequired = "reauthenticationRequired" => -32031,
    /// Refreshing failed for a reason that may pass (network, 5xx): retry later.
    RefreshFailedRetryable = "refreshFailedRetryable" => -32032,
    /// A step-up for this server and scope set was started 3 times already and the server
    /// still asks for it: the account may lack the permission, or the authorization server
    /// does not grant those scopes. A new `mcpServer/oauth/login` resets the count.
    StepUpLimitReached = "stepUpLimitReached" => -32033,
    /// `mcpServer/oauth/dpopProof` for a server whose token is not DPoP-bound: send it with
    /// the Bearer scheme and no proof.
    NotDpopBound = "notDpopBound" => -32034,
    /// The server's token is DPoP-bound and this connection did not declare
    /// `capabilities.dpop` at `initialize`, so it could not use the token. Frontends that
    /// can send proofs declare the capability and use `mcpServer/oauth/dpopProof` (named in
    /// `data.useMethod`); others log in again, which gets them a Bearer token unless the
    /// server or its configuration requires DPoP.
    DpopRequired = "dpopRequired" => -32035,
    /// The server's token is bound to its client certificate (RFC 8705) and this connection
    /// did not declare `capabilities.clientCertificate` at `initialize`, so it could not use
    /// the token. Frontends that present the certificate config.toml names for the server
    /// declare the capability; the answer then names the files in `certificateBinding`.
    CertificateRequired = "certificateRequired" => -32036,
    /// Reading or writing the credential store failed.
    CredentialStoreFailed = "credentialStoreFailed" => -32040,
    /// The credential store stayed locked by another operation (another daemon refreshing
    /// or saving the same credentials) longer than the wait bound: retry.
    CredentialStoreBusy = "credentialStoreBusy" => -32041,
    /// The daemon is shutting down.
    ShuttingDown = "shuttingDown" => -32050,
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_codes_are_in_the_application_range() {
        for kind in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert!((-32099..=-32000).contains(&kind.code()), "{kind}");
            assert!(!kind.description().is_empty());
        }
    }
}

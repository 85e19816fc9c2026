//! The one place where failures become JSON-RPC error objects.

use mcp_app_server_protocol::{ErrorCode, ErrorKind, JsonRpcError};
use serde_json::json;

/// An application error: a stable kind plus a message a person can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub(super) struct AppError {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
    /// The request method to use instead (`data.useMethod`), when there is one.
    pub(super) use_method: Option<&'static str>,
}

impl AppError {
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            use_method: None,
        }
    }

    /// Names the request method to use instead.
    pub(super) fn using(self, method: &'static str) -> Self {
        Self {
            use_method: Some(method),
            ..self
        }
    }
}

impl From<AppError> for JsonRpcError {
    fn from(e: AppError) -> Self {
        let data = match e.use_method {
            Some(method) => json!({ "kind": e.kind.as_str(), "useMethod": method }),
            None => json!({ "kind": e.kind.as_str() }),
        };
        JsonRpcError {
            code: e.kind.code(),
            message: e.message,
            data: Some(data),
        }
    }
}

/// Failures of a single request.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RequestError {
    InvalidRequest(String),
    MethodNotFound(String),
    InvalidParams(String),
    Internal(String),
    App(AppError),
}

impl From<AppError> for RequestError {
    fn from(e: AppError) -> Self {
        RequestError::App(e)
    }
}

impl From<RequestError> for JsonRpcError {
    fn from(e: RequestError) -> Self {
        let plain = |code: ErrorCode, message: String| JsonRpcError {
            code: code.code(),
            message,
            data: None,
        };
        match e {
            RequestError::InvalidRequest(m) => plain(ErrorCode::InvalidRequest, m),
            RequestError::MethodNotFound(m) => {
                plain(ErrorCode::MethodNotFound, format!("method not found: {m}"))
            }
            RequestError::InvalidParams(m) => plain(ErrorCode::InvalidParams, m),
            RequestError::Internal(m) => plain(ErrorCode::InternalError, m),
            RequestError::App(app) => app.into(),
        }
    }
}

impl From<&crate::engine::LoginError> for AppError {
    fn from(e: &crate::engine::LoginError) -> Self {
        use crate::engine::LoginError as L;
        let kind = match e {
            L::Discovery(_) => ErrorKind::DiscoveryFailed,
            L::Registration(_) => ErrorKind::RegistrationFailed,
            L::InvalidClientMetadataUrlBase(_) => ErrorKind::RegistrationFailed,
            L::InvalidClientMetadataConfig(_) => ErrorKind::ConfigInvalid,
            L::CallbackListener(_) => ErrorKind::CallbackListenerFailed,
            L::Authorization(_) => ErrorKind::AuthorizationFailed,
            L::TokenExchange(_) => ErrorKind::TokenExchangeFailed,
            L::Store(e) => store_kind(e),
            L::Cancelled => ErrorKind::LoginCancelled,
            L::TimedOut(_) => ErrorKind::LoginTimedOut,
            L::Superseded => ErrorKind::LoginSuperseded,
            L::GrantCredential(_) | L::ClientSecret(_) => ErrorKind::GrantCredentialUnavailable,
            L::GrantFailed { .. } => ErrorKind::TokenExchangeFailed,
            L::ShuttingDown => ErrorKind::ShuttingDown,
            L::Dpop(_) => ErrorKind::ReauthenticationRequired,
            L::Enterprise(e) => enterprise_kind(e),
            L::DeviceUnavailable { .. } | L::DeviceAuthorization(_) | L::DeviceDenied => {
                ErrorKind::AuthorizationFailed
            }
            L::DeviceExpired => ErrorKind::LoginTimedOut,
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<&crate::engine::LoginError> for RequestError {
    fn from(e: &crate::engine::LoginError) -> Self {
        match e {
            // A bad clientMetadataUrlBase is a bad param.
            crate::engine::LoginError::InvalidClientMetadataUrlBase(m) => {
                RequestError::InvalidParams(format!(
                    "invalid params at `clientMetadataUrlBase`: {m}"
                ))
            }
            _ => RequestError::App(AppError::from(e)),
        }
    }
}

impl From<&crate::engine::VendError> for AppError {
    fn from(e: &crate::engine::VendError) -> Self {
        use crate::engine::VendError as V;
        let kind = match e {
            V::NotLoggedIn(_) => ErrorKind::NotLoggedIn,
            V::ReauthenticationRequired { .. } => ErrorKind::ReauthenticationRequired,
            V::RefreshTransient { .. } => ErrorKind::RefreshFailedRetryable,
            V::RefreshFailed { .. } => ErrorKind::ReauthenticationRequired,
            V::Store(e) => store_kind(e),
            V::ShuttingDown => ErrorKind::ShuttingDown,
            V::GrantCredential(_) => ErrorKind::GrantCredentialUnavailable,
            V::Enterprise(e) => enterprise_kind(e),
            V::IdpAnswer(_) => ErrorKind::TokenExchangeFailed,
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<crate::engine::CompleteError> for RequestError {
    fn from(e: crate::engine::CompleteError) -> Self {
        use crate::engine::CompleteError as C;
        let kind = match &e {
            C::NoPendingLogin(_) | C::DeviceLogin(_) => ErrorKind::NoPendingLogin,
            C::Paste(_) | C::Authorization(_) => ErrorKind::AuthorizationFailed,
        };
        AppError::new(kind, e.to_string()).into()
    }
}

impl From<crate::engine::LogoutError> for RequestError {
    fn from(e: crate::engine::LogoutError) -> Self {
        match e {
            crate::engine::LogoutError::Store(e) => e.into(),
        }
    }
}

impl From<crate::engine::ProofError> for RequestError {
    fn from(e: crate::engine::ProofError) -> Self {
        use crate::engine::ProofError as P;
        match &e {
            P::Input(input) => RequestError::InvalidParams(format!("invalid params: {input}")),
            P::Token(e) => AppError::from(e.as_ref()).into(),
            P::NotDpopBound(_) => AppError::new(ErrorKind::NotDpopBound, e.to_string()).into(),
            P::Dpop(_) => AppError::new(ErrorKind::ReauthenticationRequired, e.to_string()).into(),
        }
    }
}

impl From<crate::engine::ChallengeError> for RequestError {
    fn from(e: crate::engine::ChallengeError) -> Self {
        use crate::engine::ChallengeError as C;
        match e {
            C::Proof(e) => e.into(),
            C::Token(e) => AppError::from(e.as_ref()).into(),
            C::Login(e) => RequestError::from(e.as_ref()),
            C::InvalidChallenge(c) => {
                RequestError::InvalidParams(format!("invalid params at `{}`: {c}", c.field()))
            }
            C::StepUpLimitReached { .. } => {
                AppError::new(ErrorKind::StepUpLimitReached, e.to_string()).into()
            }
            C::NotLoggedIn(_) => AppError::new(ErrorKind::NotLoggedIn, e.to_string()).into(),
            C::Discovery(_) => AppError::new(ErrorKind::DiscoveryFailed, e.to_string()).into(),
            C::Store(e) => e.into(),
        }
    }
}

impl From<crate::engine::TargetError> for RequestError {
    fn from(e: crate::engine::TargetError) -> Self {
        use crate::engine::TargetError as T;
        let kind = match &e {
            T::NotFound(_) => ErrorKind::ServerNotFound,
            T::NotHttp(_) => ErrorKind::NotOAuthServer,
            T::SecretEnvMissing { .. } => ErrorKind::ConfigInvalid,
        };
        AppError::new(kind, e.to_string()).into()
    }
}

impl From<crate::credentials::StoreError> for RequestError {
    fn from(e: crate::credentials::StoreError) -> Self {
        RequestError::App(AppError::new(store_kind(&e), e.to_string()))
    }
}

/// The kind of an enterprise-managed authorization failure.
fn enterprise_kind(e: &crate::engine::EnterpriseError) -> ErrorKind {
    use crate::engine::EnterpriseError as E;
    match e {
        E::IdpDiscovery { .. } => ErrorKind::DiscoveryFailed,
        E::IdToken(_) => ErrorKind::AuthorizationFailed,
        E::Credential { .. } => ErrorKind::GrantCredentialUnavailable,
        _ if e.is_transient() => ErrorKind::RefreshFailedRetryable,
        E::Exchange { .. } | E::Grant { .. } => ErrorKind::TokenExchangeFailed,
    }
}

/// A lock wait that timed out is worth retrying; other store failures need the user.
fn store_kind(e: &crate::credentials::StoreError) -> ErrorKind {
    if e.is_retryable() {
        ErrorKind::CredentialStoreBusy
    } else {
        ErrorKind::CredentialStoreFailed
    }
}

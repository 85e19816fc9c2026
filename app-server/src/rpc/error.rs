//! The one place where failures become JSON-RPC error objects.

use mcp_app_server_protocol::{ErrorCode, ErrorKind, JsonRpcError};
use serde_json::json;

/// An application error: a stable kind plus a message a person can act on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub(super) struct AppError {
    pub(super) kind: ErrorKind,
    pub(super) message: String,
}

impl AppError {
    pub(super) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<AppError> for JsonRpcError {
    fn from(e: AppError) -> Self {
        JsonRpcError {
            code: e.kind.code(),
            message: e.message,
            data: Some(json!({ "kind": e.kind.as_str() })),
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
            L::Authorization(_) | L::Paste(_) => ErrorKind::AuthorizationFailed,
            L::TokenExchange(_) => ErrorKind::TokenExchangeFailed,
            L::Store(e) => store_kind(e),
            L::Cancelled => ErrorKind::LoginCancelled,
            L::TimedOut(_) => ErrorKind::LoginTimedOut,
            L::Superseded => ErrorKind::LoginSuperseded,
            L::NoPendingLogin(_) => ErrorKind::NoPendingLogin,
            L::NotLoggedIn(_) => ErrorKind::NotLoggedIn,
            L::ReauthenticationRequired { .. } => ErrorKind::ReauthenticationRequired,
            L::RefreshTransient { .. } => ErrorKind::RefreshFailedRetryable,
            L::RefreshFailed { .. } => ErrorKind::ReauthenticationRequired,
            L::StepUpLimitReached { .. } => ErrorKind::StepUpLimitReached,
            L::GrantCredential { .. } => ErrorKind::GrantCredentialUnavailable,
            L::GrantFailed { .. } => ErrorKind::TokenExchangeFailed,
            // Answered as -32602 (see below); never sent as an application error.
            L::InvalidChallenge(_) => ErrorKind::AuthorizationFailed,
            L::ShuttingDown => ErrorKind::ShuttingDown,
            L::NotDpopBound(_) => ErrorKind::NotDpopBound,
            L::Dpop(_) => ErrorKind::ReauthenticationRequired,
            L::Enterprise(e) => enterprise_kind(e),
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<crate::engine::LoginError> for RequestError {
    fn from(e: crate::engine::LoginError) -> Self {
        RequestError::from(&e)
    }
}

impl From<&crate::engine::LoginError> for RequestError {
    fn from(e: &crate::engine::LoginError) -> Self {
        use crate::engine::LoginError as L;
        match e {
            // A bad clientMetadataUrlBase is a bad param.
            L::InvalidClientMetadataUrlBase(m) => RequestError::InvalidParams(format!(
                "invalid params at `clientMetadataUrlBase`: {m}"
            )),
            L::InvalidChallenge(c) => {
                RequestError::InvalidParams(format!("invalid params at `{}`: {c}", c.field()))
            }
            _ => RequestError::App(AppError::from(e)),
        }
    }
}

impl From<crate::engine::ProofError> for RequestError {
    fn from(e: crate::engine::ProofError) -> Self {
        use crate::engine::ProofError as P;
        match e {
            P::Input(e) => RequestError::InvalidParams(format!("invalid params: {e}")),
            P::Failed(e) => RequestError::App(AppError::from(e.as_ref())),
        }
    }
}

impl From<crate::engine::ChallengeError> for RequestError {
    fn from(e: crate::engine::ChallengeError) -> Self {
        use crate::engine::ChallengeError as C;
        match e {
            C::Proof(e) => e.into(),
            C::Failed(e) => RequestError::from(e.as_ref()),
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

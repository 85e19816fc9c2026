//! Grants that obtain a token without a browser: OAuth client credentials
//! ([`client_credentials`]) and the JWT bearer grant with a workload identity token
//! ([`jwt_bearer`]). Both post to the token endpoint through [`super::token::request_token`],
//! so answers and refusals are read as for code exchange and refresh; the engine
//! (`crate::engine::grants`) drives them for logins and renewals. Enterprise-managed authorization adds the token exchange at the
//! identity provider ([`token_exchange`]) and the presentation of its ID-JAG at the MCP
//! server's authorization server ([`id_jag`]).

pub mod client_credentials;
pub mod id_jag;
pub mod jwt_bearer;
pub mod token_exchange;

use super::jose::JoseError;
use super::token::TokenError;

/// Why a grant did not produce a token. Never quotes a secret, key or assertion.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("environment variable `{0}` is not set or empty; set it to the {1} before logging in")]
    MissingEnv(String, &'static str),
    #[error("cannot read the {what} file {path}: {reason}")]
    File {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("the configured private key cannot sign: {0}")]
    Key(#[from] JoseError),
    #[error("the workload identity token from {0} is empty")]
    EmptyAssertion(String),
    #[error("no grant that needs no browser is configured for this server")]
    NotConfigured,
}

/// Adds `resource` (RFC 8707) and, when there are any, `scope` to a token request.
fn push_resource_and_scope<'a>(
    form: &mut Vec<(&'a str, &'a str)>,
    resource: &'a str,
    scope: Option<&'a str>,
) {
    form.push(("resource", resource));
    if let Some(scope) = scope.filter(|s| !s.is_empty()) {
        form.push(("scope", scope));
    }
}

/// The value of environment variable `var`, refused when unset or empty.
fn env_value(var: &str, what: &'static str) -> Result<String, GrantError> {
    match std::env::var(var) {
        Ok(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(GrantError::MissingEnv(var.to_string(), what)),
    }
}

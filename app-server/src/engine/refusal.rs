//! Reading an MCP server's refusal (401 or 403 with a Bearer challenge) into what the engine
//! acts on, and the pure decisions about it: the scopes of a step-up (rules 9 and 29), and
//! whether the challenge names another protected resource metadata document than discovery
//! used. A leaf: pure functions, no I/O.

use reqwest::StatusCode;
use url::Url;

use crate::oauth::discovery::Probe;
use crate::oauth::scopes::union_scopes;
use crate::oauth::www_authenticate::{BearerChallenge, bearer_challenge_from_values};

/// Step-up logins per server and scope set (rule 9: "at most 3 attempts").
pub const MAX_STEP_UPS: u32 = 3;

/// A refusal from an MCP server, read from its status and `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 401: no token, or the token sent is no longer good.
    Unauthorized(BearerChallenge),
    /// 403 `insufficient_scope`: the token lacks scopes the operation needs.
    InsufficientScope(BearerChallenge),
}

impl Refusal {
    pub fn challenge(&self) -> &BearerChallenge {
        match self {
            Refusal::Unauthorized(c) | Refusal::InsufficientScope(c) => c,
        }
    }

    pub(crate) fn probe(&self) -> Probe {
        let status = match self {
            Refusal::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Refusal::InsufficientScope(_) => StatusCode::FORBIDDEN,
        };
        Probe {
            status,
            challenge: Some(self.challenge().clone()),
        }
    }
}

/// Why a status and header are not a refusal the daemon can act on. `field` names the
/// request field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeInputError {
    #[error(
        "HTTP {0} is not an authorization refusal; only 401 (token refused) and 403 (insufficient scope) are"
    )]
    Status(u16),
    #[error(
        "no Bearer challenge in the header ({0}); pass the MCP server's WWW-Authenticate header as received"
    )]
    NoBearer(&'static str),
    #[error(
        "a 403 asks for more scopes only with error=\"insufficient_scope\"; this one says {0}, which no login can fix"
    )]
    NotInsufficientScope(String),
    #[error("resource_metadata {value:?} is not a URL: {reason}")]
    BadResourceMetadata { value: String, reason: String },
    /// A `use_dpop_nonce` refusal without what a new proof needs; names the missing field.
    #[error(
        "a use_dpop_nonce challenge needs `dpopNonce` (the DPoP-Nonce header), `method` and `url` of the refused request"
    )]
    IncompleteNonceRequest(&'static str),
}

impl ChallengeInputError {
    /// The request field the problem is in.
    pub fn field(&self) -> &'static str {
        match self {
            ChallengeInputError::Status(_) => "status",
            ChallengeInputError::IncompleteNonceRequest(field) => field,
            _ => "wwwAuthenticate",
        }
    }
}

/// Reads a refusal from the status and the raw header a frontend received. Pure.
pub fn read_challenge(status: u16, www_authenticate: &str) -> Result<Refusal, ChallengeInputError> {
    if status != 401 && status != 403 {
        return Err(ChallengeInputError::Status(status));
    }
    let challenge = bearer_challenge_from_values([www_authenticate]).ok_or(
        ChallengeInputError::NoBearer(if www_authenticate.trim().is_empty() {
            "it is empty"
        } else {
            "it names other schemes only, or cannot be read"
        }),
    )?;
    if status == 401 {
        return Ok(Refusal::Unauthorized(challenge));
    }
    match challenge.error.as_deref() {
        Some("insufficient_scope") => Ok(Refusal::InsufficientScope(challenge)),
        Some(other) => Err(ChallengeInputError::NotInsufficientScope(format!(
            "error={other:?}"
        ))),
        None => Err(ChallengeInputError::NotInsufficientScope("no error".into())),
    }
}

/// The `resource_metadata` of a challenge, resolved against the server URL (discovery
/// resolves it the same way). Pure.
pub fn resource_metadata_url(
    server_url: &Url,
    challenge: &BearerChallenge,
) -> Result<Option<Url>, ChallengeInputError> {
    let Some(value) = challenge.resource_metadata.as_deref() else {
        return Ok(None);
    };
    let url = server_url
        .join(value)
        .map_err(|e| ChallengeInputError::BadResourceMetadata {
            value: value.to_string(),
            reason: e.to_string(),
        })?;
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(ChallengeInputError::BadResourceMetadata {
            value: value.to_string(),
            reason: "not an http(s) URL".into(),
        });
    }
    Ok(Some(url))
}

/// Whether a challenge's `resource_metadata` means discovery must run again: it names a
/// document and the daemon does not know that discovery used that one (`known` is `None`
/// when no discovery for this server ran in this process, `Some(None)` when the last one
/// found no document). Pure.
pub fn resource_metadata_moved(known: Option<&Option<Url>>, challenged: Option<&Url>) -> bool {
    match (challenged, known) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(url), Some(used)) => used.as_ref() != Some(url),
    }
}

/// Rule 29: the scopes requested before (or granted, as stored) plus those the challenge
/// asks for, in order, without duplicates. Pure.
pub fn step_up_scopes(previous: &[String], challenge: &BearerChallenge) -> Vec<String> {
    union_scopes(previous, &challenge.scopes())
}

#[cfg(test)]
mod tests;

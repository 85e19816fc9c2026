//! The protocol steps of an MCP login, one file per step. Each builds a request, sends it
//! through [`http::HttpClient`] and parses the answer; each owns its error type. Nothing here
//! knows about JSON-RPC or the engine (`crate::engine`) that strings these steps together
//! into logins, token vending, refresh and logout.

pub mod authorization;
pub mod callback;
pub mod callback_id;
pub mod client_assertion;
pub mod discovery;
pub mod dpop;
pub mod grants;
pub mod http;
pub mod jose;
pub mod net_policy;
pub mod registration;
pub mod resource;
pub mod scopes;
pub(crate) mod state_file;
pub mod token;
pub mod www_authenticate;

#[cfg(test)]
mod props;
#[cfg(test)]
pub(crate) mod test_server;

pub use authorization::{Pkce, build_authorization_url, new_state};
pub use callback_id::callback_id;
pub use discovery::{
    AuthServerMetadata, Discovery, DiscoveryCache, DiscoveryError, ProtectedResourceMetadata,
    discover,
};
pub use http::{HttpClient, HttpError};
pub use registration::{
    CimdSource, ClientRegistration, RegistrationChoice, RegistrationError, TokenAuthMethod,
    choose_registration,
};
pub use resource::{canonical_resource, check_prm_resource, resource_indicator};
pub use scopes::{MAX_STEP_UPS, StepUpBudget, select_scopes, union_scopes};
pub use token::{TokenError, TokenResponse, TokenTypeHint, exchange_code, refresh, revoke};
pub use www_authenticate::{BearerChallenge, Challenge, bearer_challenge, parse_www_authenticate};

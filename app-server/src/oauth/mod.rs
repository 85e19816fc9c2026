//! The OAuth steps of an MCP login, one file per step, each made of pure functions (parse,
//! build, validate) and a thin async I/O shell over [`http::HttpClient`]. Nothing here knows
//! about JSON-RPC: `rpc/` drives these steps through [`OAuthService`]: `login.rs` strings them
//! together, `vending.rs` and `refresh.rs` hand out and renew tokens, `logout.rs` ends a login;
//! `live.rs`, `expiry.rs` and `store_watch.rs` keep the announced status live (expiry timers,
//! background refresh of tokens in use, other processes' writes).

pub mod authorization;
pub mod callback;
pub mod callback_id;
mod callback_ports;
pub mod challenge;
pub mod client_assertion;
pub mod discovery;
pub mod dpop;
pub mod enterprise;
pub mod error;
mod expiry;
pub mod grants;
pub mod http;
pub mod jose;
mod live;
pub mod login;
pub mod logout;
pub mod net_policy;
mod prewarm;
mod refresh;
pub mod registration;
pub mod resource;
pub mod resource_proof;
pub mod scopes;
pub mod service;
mod state_file;
pub mod status;
mod store_watch;
pub mod target;
pub mod token;
pub mod vending;
pub mod www_authenticate;

#[cfg(test)]
mod parser_props;
#[cfg(test)]
mod test_server;

pub use authorization::{Pkce, build_authorization_url, new_state};
pub use callback_id::callback_id;
pub use challenge::{ChallengeOutcome, Refusal, read_challenge};
pub use discovery::{
    AuthServerMetadata, Discovery, DiscoveryCache, DiscoveryError, ProtectedResourceMetadata,
    discover,
};
pub use error::LoginError;
pub use http::{HttpClient, HttpError};
pub use live::{IN_USE_WINDOW, configured_servers};
pub use login::{CLIENT_NAME, DEFAULT_LOGIN_TIMEOUT, LoginBegun, LoginOptions, LoginStarted};
pub use logout::LogoutOutcome;
pub use registration::{
    CimdSource, ClientRegistration, RegistrationChoice, RegistrationError, TokenAuthMethod,
    choose_registration,
};
pub use resource::{canonical_resource, check_prm_resource, resource_indicator};
pub use scopes::{MAX_STEP_UPS, StepUpBudget, select_scopes, union_scopes};
pub use service::{OAuthEvent, OAuthService};
pub use status::StatusInfo;
pub use target::ServerTarget;
pub use token::{TokenError, TokenResponse, TokenTypeHint, exchange_code, refresh, revoke};
pub use vending::{DEFAULT_MIN_VALIDITY_SECS, MAX_MIN_VALIDITY_SECS};
pub use www_authenticate::{BearerChallenge, Challenge, bearer_challenge, parse_www_authenticate};

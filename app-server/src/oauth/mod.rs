//! The OAuth steps of an MCP login, one file per step, each made of pure functions (parse,
//! build, validate) and a thin async I/O shell over [`http::HttpClient`]. Nothing here knows
//! about JSON-RPC: `rpc/` drives these steps through [`OAuthService`]: `login.rs` strings them
//! together, `vending.rs` and `refresh.rs` hand out and renew tokens, `logout.rs` ends a login.

pub mod authorization;
pub mod callback;
pub mod callback_id;
pub mod client_assertion;
pub mod discovery;
pub mod dpop;
pub mod error;
pub mod http;
pub mod jose;
pub mod login;
pub mod logout;
mod refresh;
pub mod registration;
pub mod resource;
pub mod scopes;
pub mod service;
pub mod status;
pub mod target;
pub mod token;
pub mod vending;
pub mod www_authenticate;

#[cfg(test)]
mod test_server;

pub use authorization::{Pkce, build_authorization_url, new_state};
pub use callback_id::callback_id;
pub use discovery::{
    AuthServerMetadata, Discovery, DiscoveryError, MetadataCache, ProtectedResourceMetadata,
    discover,
};
pub use error::LoginError;
pub use http::{HttpClient, HttpError};
pub use login::{CLIENT_NAME, DEFAULT_LOGIN_TIMEOUT, LoginOptions, LoginStarted};
pub use logout::LogoutOutcome;
pub use registration::{
    CimdSource, ClientRegistration, RegistrationChoice, RegistrationError, TokenAuthMethod,
    choose_registration,
};
pub use resource::{canonical_resource, check_prm_resource};
pub use scopes::{select_scopes, union_scopes};
pub use service::{OAuthEvent, OAuthService};
pub use status::StatusInfo;
pub use target::ServerTarget;
pub use token::{TokenError, TokenResponse, TokenTypeHint, exchange_code, refresh, revoke};
pub use vending::DEFAULT_MIN_VALIDITY_SECS;
pub use www_authenticate::{BearerChallenge, Challenge, bearer_challenge, parse_www_authenticate};

//! The OAuth steps of an MCP login, one file per step, each made of pure functions (parse,
//! build, validate) and a thin async I/O shell over [`http::HttpClient`]. Nothing here knows
//! about JSON-RPC: `rpc/` drives these steps, `login.rs` strings them together.

pub mod authorization;
pub mod callback;
pub mod callback_id;
pub mod discovery;
pub mod http;
pub mod login;
pub mod net_policy;
pub mod registration;
pub mod resource;
pub mod scopes;
pub mod token;
pub mod www_authenticate;

#[cfg(test)]
mod parser_props;
#[cfg(test)]
mod test_server;

pub use authorization::{Pkce, build_authorization_url, new_state};
pub use callback_id::callback_id;
pub use discovery::{
    AuthServerMetadata, Discovery, DiscoveryError, MetadataCache, ProtectedResourceMetadata,
    discover,
};
pub use http::{HttpClient, HttpError};
pub use registration::{
    CimdSource, ClientRegistration, RegistrationChoice, RegistrationError, TokenAuthMethod,
    choose_registration,
};
pub use resource::{canonical_resource, check_prm_resource};
pub use scopes::{select_scopes, union_scopes};
pub use token::{TokenError, TokenResponse, TokenTypeHint, exchange_code, refresh, revoke};
pub use www_authenticate::{BearerChallenge, Challenge, bearer_challenge, parse_www_authenticate};

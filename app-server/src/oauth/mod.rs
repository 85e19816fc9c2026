//! The protocol steps of an MCP login, one file per step. Each builds a request, sends it
//! through [`http::HttpClient`] and parses the answer; each owns its error type. Nothing here
//! knows about JSON-RPC or the engine (`crate::engine`) that strings these steps together
//! into logins, token vending, refresh and logout.

pub mod authorization;
pub mod bounds;
pub mod callback;
pub mod callback_id;
pub mod client_assertion;
pub mod device;
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

// Paths the engine's tests import; the product imports from the step modules.
#[cfg(test)]
pub use authorization::Pkce;
#[cfg(test)]
pub use registration::{ClientRegistration, TokenAuthMethod};
#[cfg(test)]
pub use token::TokenResponse;

//! The login engine: strings the protocol steps of `crate::oauth` together into logins,
//! token vending, refresh, challenges and logout, and keeps the announced status live.
//! Knows nothing of JSON-RPC: progress leaves as [`OAuthEvent`]s.
//!
//! [`OAuthService`] (`service.rs`) holds the state the flows share. Each flow is an `impl`
//! of it in a file of its own (`login.rs`, `vending.rs`, `refresh.rs`, `logout.rs`,
//! `challenge.rs`, `grants.rs`, `enterprise.rs`, `resource_proof.rs`); `live.rs`,
//! `expiry.rs` and `store_watch.rs` keep the announced status live (expiry timers,
//! background refresh of tokens in use, other processes' writes).

mod callback_ports;
pub mod challenge;
pub mod enterprise;
pub mod error;
mod expiry;
pub mod grants;
mod live;
pub mod login;
pub mod logout;
mod prewarm;
mod refresh;
pub mod resource_proof;
pub mod service;
pub mod status;
mod store_watch;
pub mod target;
pub mod vending;

pub use challenge::{ChallengeOutcome, Refusal, read_challenge};
pub use error::LoginError;
pub use live::{IN_USE_WINDOW, configured_servers};
pub use login::{CLIENT_NAME, DEFAULT_LOGIN_TIMEOUT, LoginBegun, LoginOptions, LoginStarted};
pub use logout::LogoutOutcome;
pub use service::{OAuthEvent, OAuthService};
pub use status::StatusInfo;
pub use target::ServerTarget;
pub use vending::{DEFAULT_MIN_VALIDITY_SECS, MAX_MIN_VALIDITY_SECS};

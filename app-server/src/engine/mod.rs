//! The login engine: strings the protocol steps of `crate::oauth` together into logins,
//! token vending, refresh, challenges and logout, and keeps the announced status live.
//! Knows nothing of JSON-RPC: progress leaves as [`OAuthEvent`]s.
//!
//! Two kinds of file, and which may import which:
//! - **leaves**: the engine's public types (`types.rs`), its errors (`error.rs`), server
//!   targets (`target.rs`), status (`status.rs`), pure rules (`refusal.rs`, `requests.rs`,
//!   `stored.rs`, `flow.rs`, `login/context.rs`, `enterprise/idp.rs`), the state the service
//!   holds, one concern per file (`state/`, `callback_ports.rs`), and the watch on the
//!   credential file (`store_watch.rs`). A leaf imports other leaves only, never the
//!   service or a flow.
//! - the **service** (`service.rs`, [`OAuthService`]: the state the flows share) and the
//!   **flows**, each an `impl OAuthService` in a file of its own: `login.rs` (and `login/`),
//!   `device.rs` (the device login, RFC 8628), `vending.rs`, `renewal.rs` (and
//!   `refresh.rs`), `logout.rs`, `challenge.rs`, `grants.rs`,
//!   `enterprise.rs` (and `enterprise/sign_in.rs`), `resource_proof.rs`, `accounts.rs`; `live.rs` and
//!   `expiry.rs` keep the announced status live (expiry timers, background refresh of
//!   tokens in use, other processes' writes); `prewarm.rs` discovers configured servers
//!   ahead of their first login. Flows import leaves and the service, and reach each other
//!   through the service's methods, never by importing each other.
//!
//! `app-server/tests/suite/layers.rs` holds the files to these rules.
//!
//! Callers outside use what this file re-exports.

mod accounts;
mod callback_ports;
mod challenge;
mod device;
mod enterprise;
mod error;
mod expiry;
mod flow;
mod gateway;
mod grants;
mod live;
mod login;
mod logout;
mod prewarm;
mod refresh;
mod refusal;
mod renewal;
mod requests;
mod resource_proof;
mod service;
mod state;
mod status;
mod store_watch;
mod stored;
mod target;
mod types;
mod vending;

pub use enterprise::idp::IDP_SESSION_NAME;
pub use error::{
    ChallengeError, CompleteError, EnterpriseError, LoginError, LogoutError, ProofError, VendError,
};
pub use refusal::Refusal;
pub use service::{Network, OAuthService};
pub use state::live::configured_servers;
pub use status::{ServerAccounts, StatusInfo};
pub use target::{EnterpriseTarget, ServerTarget, TargetError};
pub use types::{
    CLIENT_NAME, ChallengeOutcome, ChallengeRequest, DEFAULT_LOGIN_TIMEOUT,
    DEFAULT_MIN_VALIDITY_SECS, DeviceStarted, LoginBegun, LoginOptions, LoginStarted,
    MAX_MIN_VALIDITY_SECS, OAuthEvent, ResourceProof,
};

//! The end of the browser round trip (RFC 6749 §4.1.2, RFC 8252 §7.3, RFC 9207): checking an
//! authorization response against the login waiting for it, the page the browser shows, and
//! the loopback listener that receives the redirect.
//!
//! The checks are pure functions, [`parse_callback`](response::parse_callback) for a request the listener received and
//! [`parse_pasted_callback`] for a redirect URL a user pastes back (`mcpServer/oauth/complete`),
//! so both paths apply the same rules and are tested without sockets.
//!
//! Policy for a request on a login's own callback path (GET only):
//! - `state` comes first. A response without one (a reload of the bare callback URL, a cut-off
//!   link), with another (a stale tab, or a link any web page or local process can make the
//!   browser load) or with two is discarded (requirements rules 14 and 34): the browser gets
//!   a page saying so, the code goes nowhere, and the login keeps waiting for the real
//!   redirect. Ending the login instead would let anyone who can make the browser load a URL
//!   keep the user from ever logging in. A `state` of a login that ended (replaced by a newer
//!   one on the same path, cancelled, timed out, finished) gets the page of that ending from
//!   the listener while it remembers it; a waiting login on the path keeps waiting.
//! - `iss` (RFC 9207, MCP 2026-07-28's decision table) is checked before anything else of the
//!   response is looked at: advertised (`authorization_response_iss_parameter_supported:
//!   true`) and present, compare; advertised and absent, reject; not advertised and present,
//!   compare; neither, proceed. The comparison is simple string equality with the issuer
//!   recorded from the validated metadata. On a mismatch the response's `error`,
//!   `error_description` and `error_uri` are neither acted on nor shown.
//! - Then `error=` ends the login with the server's error; else `code` is the result.
//! - A parameter given twice (RFC 6749 §3.1 forbids it) ends the login; an empty value counts
//!   as absent.
//!
//! Anything else (another path, another method, HEAD included) is not ours and the login goes
//! on. Codes and state values never appear in errors, logs or pages.

mod ending;
mod listener;
mod page;
mod response;

pub use ending::{LoginEnding, PageNames};
pub use listener::{CallbackListenError, CallbackRegistration, CallbackServer};
#[cfg(test)]
use response::*;
pub use response::{
    CallbackError, CallbackOutcome, ExpectedCallback, PasteError, callback_path,
    parse_pasted_callback, redirect_uri,
};
#[cfg(test)]
pub use response::{DiscardReason, ParsedCallback, parse_callback};
#[cfg(test)]
use url::{Url, form_urlencoded};

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

//! Values the flows hand each other: what discovery found for a login, and the warning for
//! a token that could not be bound to a key.

use std::sync::Arc;

use crate::oauth::discovery::Discovery;
use crate::oauth::http::HttpClient;

/// What discovery found for a login, with the scopes to ask for.
pub(crate) struct Discovered {
    /// Held to the server's network policy (rule 35).
    pub http: HttpClient,
    /// Shared with the discovery cache.
    pub discovery: Arc<Discovery>,
    /// The discovery cache answered (see [`Discovery::cached`]).
    pub cached: bool,
    pub scopes: Option<Vec<String>>,
}

/// RFC 9449 5: a server that offers DPoP may still answer a request with a proof with a
/// Bearer token. It is kept and used as a Bearer token (the key stays for later token
/// requests); the user is told, since a stolen copy of it is usable.
pub(crate) fn warn_if_unbound(name: &str, token_type: &str) {
    if !token_type.eq_ignore_ascii_case("DPoP") {
        tracing::warn!(server = %name, token_type = %token_type, "the authorization server offers DPoP but issued an unbound token; it is used as a Bearer token");
    }
}

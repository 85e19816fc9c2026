//! Escape hatches (rules 43 and 60-64): what a server's configuration may change in
//! discovery when its authorization server does not publish its metadata the way the
//! specs say. Without any, discovery is strict; each one relaxes exactly one check.
//!
//! - `authorization_server_metadata_url`: that one document instead of the well-known
//!   locations (rule 60), fetched through the same bounded, policy-checked client.
//! - `issuer`: a document naming exactly this issuer is accepted although it was found for
//!   another one (rule 61); the login then works with the issuer the document names.
//! - the endpoints: they replace the document's, and with `authorization_endpoint` and
//!   `token_endpoint` a login needs no document at all (rule 63).

use crate::config::EscapeHatches;

/// One server's escape hatches as discovery applies them, with the server's name for the
/// errors that say which key would help.
#[derive(Debug, Clone, Copy)]
pub struct Overrides<'a> {
    /// The `[mcp_servers.NAME]` the discovery is for.
    pub server: &'a str,
    pub hatches: &'a EscapeHatches,
    /// The server presents a client certificate: the metadata's `mtls_endpoint_aliases`
    /// replace its endpoints (RFC 8705 §5, rule 42), before the configured ones do.
    pub mutual_tls: bool,
}

#[cfg(test)]
impl Overrides<'static> {
    /// Strict discovery, for no server in particular.
    pub const NONE: Overrides<'static> = Overrides {
        server: "NAME",
        hatches: &crate::config::escape_hatches::NO_ESCAPE_HATCHES,
        mutual_tls: false,
    };
}

impl<'a> Overrides<'a> {
    pub fn new(server: &'a str, hatches: &'a EscapeHatches) -> Self {
        Self {
            server,
            hatches,
            mutual_tls: false,
        }
    }

    /// These overrides for a server that presents a client certificate, or not.
    pub fn with_mutual_tls(self, mutual_tls: bool) -> Self {
        Self { mutual_tls, ..self }
    }
}

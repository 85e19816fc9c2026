//! The escape hatches of `[mcp_servers.NAME.oauth]` (rules 43 and 60-64): explicit settings
//! for an authorization server that does not publish its metadata the way the specs say.
//! None is on unless written in config.toml; each is checked when config.toml loads.

use url::{Host, Url};

use super::oauth_client::OauthClientConfig;

/// One server's escape hatches, checked. All `None` (the default) is strict discovery.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct EscapeHatches {
    /// `authorization_server_metadata_url`: the metadata document to use instead of the
    /// well-known locations of the issuer.
    pub authorization_server_metadata_url: Option<Url>,
    /// `issuer`: the issuer a metadata document may name although it was found for another
    /// one (it is also the authorization server a configured `client_id` belongs to).
    pub issuer: Option<String>,
    /// `authorization_endpoint`: replaces the document's.
    pub authorization_endpoint: Option<Url>,
    /// `token_endpoint`: replaces the document's.
    pub token_endpoint: Option<Url>,
    /// `registration_endpoint`: replaces the document's.
    pub registration_endpoint: Option<Url>,
    /// `revocation_endpoint`: replaces the document's.
    pub revocation_endpoint: Option<Url>,
}

/// No escape hatch at all.
pub const NO_ESCAPE_HATCHES: EscapeHatches = EscapeHatches {
    authorization_server_metadata_url: None,
    issuer: None,
    authorization_endpoint: None,
    token_endpoint: None,
    registration_endpoint: None,
    revocation_endpoint: None,
};

/// A value of an escape hatch that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct EscapeHatchError {
    /// The key under `[mcp_servers.NAME.oauth]`.
    pub key: &'static str,
    pub reason: String,
}

impl EscapeHatches {
    /// The keys set, in the order of docs/configuration.md: what status shows.
    pub fn keys(&self) -> Vec<&'static str> {
        [
            (
                "authorization_server_metadata_url",
                self.authorization_server_metadata_url.is_some(),
            ),
            ("issuer", self.issuer.is_some()),
            (
                "authorization_endpoint",
                self.authorization_endpoint.is_some(),
            ),
            ("token_endpoint", self.token_endpoint.is_some()),
            (
                "registration_endpoint",
                self.registration_endpoint.is_some(),
            ),
            ("revocation_endpoint", self.revocation_endpoint.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, set)| set.then_some(key))
        .collect()
    }

    /// What a server's status shows (rule 64): the keys set, `None` when none is.
    pub fn status(&self) -> Option<Vec<String>> {
        let keys = self.keys();
        (!keys.is_empty()).then(|| keys.into_iter().map(str::to_string).collect())
    }

    pub fn is_empty(&self) -> bool {
        self == &NO_ESCAPE_HATCHES
    }
}

impl OauthClientConfig {
    /// The escape hatches of this table, checked: URLs must be absolute, https (plain http
    /// only on a loopback host) and without a fragment; the issuer has no query either
    /// (RFC 8414 §2).
    pub fn escape_hatches(&self) -> Result<EscapeHatches, EscapeHatchError> {
        let url = |key: &'static str, value: &Option<String>| -> Result<_, EscapeHatchError> {
            value.as_deref().map(|v| secure_url(key, v)).transpose()
        };
        let issuer = match &self.issuer {
            None => None,
            Some(issuer) => {
                let parsed = secure_url("issuer", issuer)?;
                if parsed.query().is_some() {
                    return Err(EscapeHatchError {
                        key: "issuer",
                        reason: "an issuer has no query (RFC 8414 §2)".to_string(),
                    });
                }
                // Compared as written (rule 26): kept exactly so, not as `url` prints it.
                Some(issuer.clone())
            }
        };
        Ok(EscapeHatches {
            authorization_server_metadata_url: url(
                "authorization_server_metadata_url",
                &self.authorization_server_metadata_url,
            )?,
            issuer,
            authorization_endpoint: url("authorization_endpoint", &self.authorization_endpoint)?,
            token_endpoint: url("token_endpoint", &self.token_endpoint)?,
            registration_endpoint: url("registration_endpoint", &self.registration_endpoint)?,
            revocation_endpoint: url("revocation_endpoint", &self.revocation_endpoint)?,
        })
    }
}

/// Rule 22 at load time: https, or http to a loopback host; no fragment.
fn secure_url(key: &'static str, value: &str) -> Result<Url, EscapeHatchError> {
    let bad = |reason: String| EscapeHatchError { key, reason };
    let url = Url::parse(value).map_err(|e| bad(format!("not an absolute URL ({e})")))?;
    let loopback = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(name)) => name.trim_end_matches('.').eq_ignore_ascii_case("localhost"),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(bad(
                "must be an https URL (plain http only on 127.0.0.1, [::1] or localhost)"
                    .to_string(),
            ));
        }
        other => return Err(bad(format!("must be an https URL, not {other}:"))),
    }
    if url.fragment().is_some() {
        return Err(bad("must not have a fragment (`#...`)".to_string()));
    }
    Ok(url)
}

#[cfg(test)]
mod tests;

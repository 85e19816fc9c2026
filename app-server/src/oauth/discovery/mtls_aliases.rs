//! `mtls_endpoint_aliases` (RFC 8705 §5, rule 42): the URLs a client presenting a
//! certificate uses instead of the token, revocation, registration and device
//! authorization endpoints, read leniently and applied by
//! [`super::as_metadata::MetadataOf::complete`] for such a client only.

use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

use crate::oauth::bounds;

/// `mtls_endpoint_aliases` (RFC 8705 §5): the members this client uses; others (userinfo,
/// introspection, PAR) are ignored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MtlsEndpointAliases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<Url>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<Url>,
}

/// An `mtls_endpoint_aliases` that is not an object of URLs is as good as absent: the
/// regular endpoints serve, and a server that needs the aliases refuses the client there
/// with an error that says so. Members that are not URLs are dropped one by one.
pub(super) fn lenient<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<MtlsEndpointAliases>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let serde_json::Value::Object(map) = value else {
        return Ok(None);
    };
    let url = |name: &str| {
        map.get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|s| s.len() <= bounds::MAX_URL_BYTES)
            .and_then(|s| Url::parse(s).ok())
    };
    Ok(Some(MtlsEndpointAliases {
        token_endpoint: url("token_endpoint"),
        revocation_endpoint: url("revocation_endpoint"),
        registration_endpoint: url("registration_endpoint"),
        device_authorization_endpoint: url("device_authorization_endpoint"),
    }))
}

impl MtlsEndpointAliases {
    /// Puts the aliases in place of a document's endpoints (those it has aliases for):
    /// `token`, `revocation`, `registration`, `device_authorization`, in that order.
    pub(super) fn apply(self, endpoints: [&mut Option<Url>; 4]) {
        let [token, revocation, registration, device] = endpoints;
        let aliases = [
            (token, self.token_endpoint),
            (revocation, self.revocation_endpoint),
            (registration, self.registration_endpoint),
            (device, self.device_authorization_endpoint),
        ];
        for (endpoint, alias) in aliases {
            if alias.is_some() {
                *endpoint = alias;
            }
        }
    }
}

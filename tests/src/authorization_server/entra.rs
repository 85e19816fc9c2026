//! Microsoft Entra ID's quirks at the token endpoint ([`crate::KitConfig::entra`]).

use super::errors::OAuthError;
use crate::checks::{Form, split_scopes};

/// What Entra ID reports as granted: the scopes plus `<prefix>/.default` for each
/// `<prefix>/<name>` scope among them.
pub(super) fn entra_granted_mix(scopes: &[String]) -> Vec<String> {
    let mut mix = scopes.to_vec();
    for scope in scopes {
        if let Some((prefix, _)) = scope.rsplit_once('/') {
            let default = format!("{prefix}/.default");
            if !mix.contains(&default) {
                mix.push(default);
            }
        }
    }
    mix
}

/// Entra ID's refusals of a refresh: no `scope` (AADSTS90009, which names the client
/// asking a token for itself rather than the missing scope), and a `.default` scope
/// combined with another resource scope (AADSTS70011), such as the mix it reported as
/// granted.
pub(super) fn entra_refresh_checks(form: &Form, client_id: &str) -> Result<(), OAuthError> {
    let Some(scope) = form.get_nonempty("scope") else {
        return Err(OAuthError::invalid_request(format!(
            "AADSTS90009: Application '{client_id}' is requesting a token for itself. \
             This is supported only if the resource is given by its GUID based identifier."
        )));
    };
    // The OpenID Connect scopes go with anything.
    let resource_scopes: Vec<String> = split_scopes(scope)
        .into_iter()
        .filter(|s| {
            !matches!(
                s.as_str(),
                "openid" | "profile" | "email" | "offline_access"
            )
        })
        .collect();
    let has_default = resource_scopes.iter().any(|s| s.ends_with("/.default"));
    if has_default && resource_scopes.len() > 1 {
        return Err(OAuthError::new(
            "invalid_scope",
            format!(
                "AADSTS70011: The provided value '{scope}' for the input parameter 'scope' \
                 is not valid: a .default scope cannot be combined with other scopes."
            ),
        ));
    }
    Ok(())
}

//! Which scopes to ask for (rules 8, 30) and how to widen them on a step-up challenge
//! (rules 9, 29: the union of what was asked before and what the challenge names; the
//! engine counts the attempts per resource and scope set).

/// The scope that makes many OpenID-flavoured servers issue refresh tokens.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Splits a space-delimited `scope` string, keeping at most
/// [`MAX_LIST_ENTRIES`](super::bounds::MAX_LIST_ENTRIES) scopes (see [`super::bounds`]).
pub fn parse_scope(scope: &str) -> Vec<String> {
    super::bounds::scope_string(scope, "scope")
}

/// Rule 8: the first non-empty source wins — explicit request, the server's configured
/// scopes, the 401 challenge's `scope`, the PRM `scopes_supported`; otherwise no `scope`
/// parameter at all. Rule 30 (SEP-2207): `offline_access` is added when the authorization
/// server lists it in `scopes_supported`, and only then: whichever source named it, it is
/// dropped when the authorization server does not list it (asking for an unsupported scope
/// is an error at strict servers). A refresh token is still never assumed.
pub fn select_scopes(
    explicit: Option<&[String]>,
    configured: Option<&[String]>,
    challenge_scope: Option<&str>,
    prm_scopes_supported: Option<&[String]>,
    as_scopes_supported: Option<&[String]>,
) -> Option<Vec<String>> {
    let non_empty = |list: Option<&[String]>| {
        list.map(|l| dedup(l.iter().filter(|s| !s.trim().is_empty()).cloned()))
            .filter(|l| !l.is_empty())
    };
    let mut selected = non_empty(explicit)
        .or_else(|| non_empty(configured))
        .or_else(|| {
            challenge_scope
                .map(parse_scope)
                .filter(|l| !l.is_empty())
                .map(|l| dedup(l.into_iter()))
        })
        .or_else(|| non_empty(prm_scopes_supported));
    let as_offers_offline =
        as_scopes_supported.is_some_and(|supported| supported.iter().any(|s| s == OFFLINE_ACCESS));
    if as_offers_offline {
        let list = selected.get_or_insert_with(Vec::new);
        if !list.iter().any(|s| s == OFFLINE_ACCESS) {
            list.push(OFFLINE_ACCESS.to_string());
        }
    } else if let Some(list) = selected.as_mut() {
        list.retain(|s| s != OFFLINE_ACCESS);
    }
    selected.filter(|l| !l.is_empty())
}

/// Rule 9: the scopes already held plus those a step-up challenge asks for, in order,
/// without duplicates.
pub fn union_scopes(current: &[String], requested: &[String]) -> Vec<String> {
    dedup(current.iter().chain(requested).cloned())
}

/// First occurrences in order, in linear time, at most
/// [`MAX_LIST_ENTRIES`](super::bounds::MAX_LIST_ENTRIES) of them.
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if out.len() >= super::bounds::MAX_LIST_ENTRIES {
            break;
        }
        if seen.insert(item.clone()) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests;

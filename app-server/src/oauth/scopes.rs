//! Which scopes to ask for (rules 8, 30) and how to widen them on a step-up challenge
//! (rules 9, 29: the union of what was asked before and what the challenge names, a few
//! attempts per resource and scope set).

use std::collections::{BTreeSet, HashMap};

/// The scope that makes many OpenID-flavoured servers issue refresh tokens.
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Splits a space-delimited `scope` string.
pub fn parse_scope(scope: &str) -> Vec<String> {
    scope.split_whitespace().map(str::to_string).collect()
}

/// How many step-up authorizations one resource gets for one scope set before the client
/// treats the refusal as permanent (rule 9).
pub const MAX_STEP_UPS: u32 = 3;

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

/// Rule 29 (SEP-2350): counts step-up authorizations per resource and scope set, so a
/// server that keeps answering `insufficient_scope` for the same request ends in a clear
/// error instead of a login loop. The scope set is compared as a set (order and
/// duplicates do not make a new one).
#[derive(Debug, Default)]
pub struct StepUpBudget {
    attempts: HashMap<(String, BTreeSet<String>), u32>,
}

impl StepUpBudget {
    /// Records a step-up to `scopes` at `resource`; `false` when [`MAX_STEP_UPS`] were
    /// already spent on that pair (nothing is recorded then).
    pub fn try_step_up(&mut self, resource: &str, scopes: &[String]) -> bool {
        let key = (resource.to_string(), scopes.iter().cloned().collect());
        let used = self.attempts.entry(key).or_default();
        if *used >= MAX_STEP_UPS {
            return false;
        }
        *used += 1;
        true
    }

    /// Step-ups spent on `resource` with `scopes`.
    pub fn used(&self, resource: &str, scopes: &[String]) -> u32 {
        let key = (resource.to_string(), scopes.iter().cloned().collect());
        self.attempts.get(&key).copied().unwrap_or(0)
    }
}

fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests;

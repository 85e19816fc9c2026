//! The authorization request (rules 14-15): PKCE S256, a random `state`, and the URL the
//! browser opens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use url::Url;

/// A PKCE pair (RFC 7636). The verifier is a secret: it is never logged or shown by `Debug`.
#[derive(Clone)]
pub struct Pkce {
    verifier: String,
    challenge: String,
}

impl Pkce {
    /// A fresh pair: 32 random bytes as the verifier (43 base64url characters).
    pub fn new() -> Self {
        Self::from_verifier(random_token(32))
    }

    /// The pair for a known verifier (used to check the RFC 7636 test vector).
    pub fn from_verifier(verifier: String) -> Self {
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }

    /// The `code_verifier` sent with the token request.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The S256 `code_challenge` sent with the authorization request.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

impl Default for Pkce {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"<redacted>")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// A fresh `state` value: 256 random bits, base64url. Never log it.
pub fn new_state() -> String {
    random_token(32)
}

fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The authorization URL: the endpoint's own query parameters are kept, then
/// `response_type=code`, `client_id`, `redirect_uri`, `scope` (only when there are scopes),
/// `state`, `code_challenge`, `code_challenge_method=S256` and `resource`.
pub fn build_authorization_url(
    endpoint: &Url,
    client_id: &str,
    redirect_uri: &Url,
    scopes: Option<&[String]>,
    resource: &str,
    state: &str,
    code_challenge: &str,
) -> Url {
    let mut url = endpoint.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri.as_str());
        if let Some(scopes) = scopes.filter(|s| !s.is_empty()) {
            query.append_pair("scope", &scopes.join(" "));
        }
        query
            .append_pair("state", state)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", resource);
    }
    url
}

/// Rule 82: the `prompt` of a login that adds an account to a server, so that the browser
/// does not sign in again as whoever is signed in there: `select_account` when the
/// authorization server lists it among `prompt_values_supported`, else `login` (which
/// every OpenID provider takes, and a plain OAuth server ignores).
pub fn account_prompt(prompt_values_supported: Option<&[String]>) -> &'static str {
    if prompt_values_supported.is_some_and(|v| v.iter().any(|p| p == "select_account")) {
        "select_account"
    } else {
        "login"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn an_added_account_asks_to_select_one_where_the_server_can() {
        let listed = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            account_prompt(Some(&listed(&["none", "login", "select_account"]))),
            "select_account"
        );
        assert_eq!(account_prompt(Some(&listed(&["none", "login"]))), "login");
        assert_eq!(account_prompt(Some(&[])), "login");
        assert_eq!(account_prompt(None), "login");
        // Exact values only.
        assert_eq!(account_prompt(Some(&listed(&["SELECT_ACCOUNT"]))), "login");
    }

    #[test]
    fn pkce_matches_rfc7636_vector() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into());
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn fresh_pkce_and_state_are_random_and_well_formed() {
        let a = Pkce::new();
        let b = Pkce::new();
        assert_ne!(a.verifier(), b.verifier());
        assert_eq!(a.verifier().len(), 43);
        assert_eq!(
            a.challenge(),
            Pkce::from_verifier(a.verifier().into()).challenge()
        );
        assert!(!format!("{a:?}").contains(a.verifier()));
        let state = new_state();
        assert!(state.len() >= 22, "at least 128 bits");
        assert_ne!(state, new_state());
    }

    #[test]
    fn authorization_url_has_every_parameter() {
        let endpoint = Url::parse("https://as.example.com/authorize?tenant=t1").unwrap();
        let redirect = Url::parse("http://127.0.0.1:8765/callback/XuuuHAzzHOni").unwrap();
        let scopes = vec!["read".to_string(), "offline_access".to_string()];
        let url = build_authorization_url(
            &endpoint,
            "https://ide.example.com/XuuuHAzzHOni/client.json?redirect_uri=x",
            &redirect,
            Some(&scopes),
            "https://mcp.example.com/mcp",
            "st",
            "ch",
        );
        assert_eq!(url.host_str(), Some("as.example.com"));
        assert_eq!(url.path(), "/authorize");
        let params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
        let expected: BTreeMap<String, String> = [
            ("tenant", "t1"),
            ("response_type", "code"),
            (
                "client_id",
                "https://ide.example.com/XuuuHAzzHOni/client.json?redirect_uri=x",
            ),
            (
                "redirect_uri",
                "http://127.0.0.1:8765/callback/XuuuHAzzHOni",
            ),
            ("scope", "read offline_access"),
            ("state", "st"),
            ("code_challenge", "ch"),
            ("code_challenge_method", "S256"),
            ("resource", "https://mcp.example.com/mcp"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(params, expected);
    }

    #[test]
    fn authorization_url_omits_empty_scope() {
        let endpoint = Url::parse("https://as.example.com/authorize").unwrap();
        let redirect = Url::parse("http://127.0.0.1:1/callback/x").unwrap();
        for scopes in [None, Some(&[][..])] {
            let url = build_authorization_url(&endpoint, "c", &redirect, scopes, "r", "s", "c");
            assert!(url.query_pairs().all(|(k, _)| k != "scope"));
        }
    }
}

//! Pure checks the authorization server applies: redirect URI matching (RFC 8252), PKCE
//! (RFC 7636), HTTP Basic client credentials (RFC 6749 2.3.1) and form parsing.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use url::{Host, Url};

/// An HTTP client for loopback plain-http peers: no proxy, no redirects followed, and no
/// TLS roots (loading the platform's roots costs tens of milliseconds per client in debug
/// builds, and nothing the kit talks to uses https).
pub(crate) fn loopback_http_client(
    timeout: std::time::Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .tls_certs_only(crate::tls::test_roots())
        .timeout(timeout)
        .build()
}

/// An unguessable opaque value (codes, tokens, client ids, secrets).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `http` with a loopback IP literal host: RFC 8252 7.3 lets the port vary for these.
pub(crate) fn is_loopback_ip_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(Host::Ipv4(ip)) => ip.is_loopback(),
            Some(Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        }
}

/// Whether `requested` may be used for a client that registered `registered`: exact string
/// match, or for loopback IP redirects everything but the port equal. The host is compared
/// exactly, so `localhost` never matches `127.0.0.1`.
pub(crate) fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(reg), Ok(req)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    is_loopback_ip_http(&reg)
        && is_loopback_ip_http(&req)
        && reg.host() == req.host()
        && reg.path() == req.path()
        && reg.query() == req.query()
        && reg.fragment().is_none()
        && req.fragment().is_none()
        && req.username().is_empty()
        && req.password().is_none()
}

pub(crate) fn redirect_uri_allowed(registered: &[String], requested: &str) -> bool {
    registered
        .iter()
        .any(|reg| redirect_uri_matches(reg, requested))
}

fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// RFC 7636 4.1: 43 to 128 unreserved characters.
pub(crate) fn is_valid_code_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.chars().all(is_unreserved)
}

/// An S256 challenge is base64url (no padding) of a SHA-256 digest: exactly 43 characters.
pub(crate) fn is_valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(crate) fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Undo the `application/x-www-form-urlencoded` encoding RFC 6749 2.3.1 applies to the
/// client id and secret before they go into the Basic header.
fn form_decode(raw: &str) -> Option<String> {
    let plus_decoded = raw.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_decoded)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// `(client_id, client_secret)` from an `Authorization: Basic ...` value; `None` when it is
/// not Basic or is malformed.
pub(crate) fn decode_basic(header_value: &str) -> Option<(String, String)> {
    let (scheme, rest) = header_value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(rest.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((form_decode(id)?, form_decode(secret)?))
}

/// A parsed `application/x-www-form-urlencoded` body or query string, keeping repeats so
/// duplicated parameters can be refused (RFC 6749 3.1, 3.2).
#[derive(Debug, Default, Clone)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    pub fn parse(input: &[u8]) -> Self {
        Self {
            pairs: url::form_urlencoded::parse(input)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The value, with an empty value treated as absent (RFC 6749 3.1).
    pub fn get_nonempty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first parameter (other than `except`) that appears more than once.
    pub fn duplicate(&self, except: &[&str]) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (k, _))| {
            let repeated = self.pairs[..i].iter().any(|(earlier, _)| earlier == k);
            (repeated && !except.contains(&k.as_str())).then_some(k.as_str())
        })
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.pairs.iter().cloned().collect()
    }
}

/// Space-separated scope string to a list without repeats, order kept.
pub(crate) fn split_scopes(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in scope.split(' ').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}

/// Minimal HTML escaping for the AS's error and consent pages.
pub(crate) fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uri_matching_follows_rfc_8252() {
        let cases = [
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:1000/cb", true),
            ("http://127.0.0.1:1000/cb", "http://127.0.0.1:2000/cb", true),
            ("http://127.0.0.1/cb", "http://127.0.0.1:2000/cb", true),
            ("http://[::1]:1000/cb", "http://[::1]:5/cb", true),
            (
                "http://127.0.0.1:1000/cb",
                "http://localhost:1000/cb",
                false,
            ),
            (
                "http://localhost:1000/cb",
                "http://localhost:2000/cb",
                false,
            ),
            ("http://localhost:1000/cb", "http://localhost:1000/cb", true),
            (
                "http://127.0.0.1:1000/cb",
                "http://127.0.0.1:2000/cb/x",
                false,
            ),
            (
                "http://127.0.0.1:1000/cb?a=1",
                "http://127.0.0.1:2000/cb?a=2",
                false,
            ),
            (
                "http://127.0.0.1:1000/cb",
                "https://127.0.0.1:1000/cb",
                false,
            ),
            (
                "https://app.example/cb",
                "https://app.example:444/cb",
                false,
            ),
            ("http://127.0.0.1/cb", "http://127.0.0.1:9/cb#frag", false),
        ];
        for (registered, requested, expected) in cases {
            assert_eq!(
                redirect_uri_matches(registered, requested),
                expected,
                "{registered} vs {requested}"
            );
        }
    }

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(is_valid_code_verifier(verifier));
        assert_eq!(
            s256_challenge(verifier),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_valid_s256_challenge(&s256_challenge(verifier)));
        assert!(!is_valid_code_verifier("short"));
        assert!(!is_valid_code_verifier(&"a".repeat(129)));
        assert!(!is_valid_code_verifier(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // id "a b:c" and secret "s%&" encoded per RFC 6749 2.3.1, then base64.
        let encoded = STANDARD.encode("a+b%3Ac:s%25%26");
        assert_eq!(
            decode_basic(&format!("Basic {encoded}")),
            Some(("a b:c".to_owned(), "s%&".to_owned()))
        );
        assert_eq!(decode_basic("Bearer abc"), None);
        assert_eq!(decode_basic("Basic !!!"), None);
    }

    #[test]
    fn form_reports_duplicates() {
        let form = Form::parse(b"a=1&resource=x&resource=y&b=2&a=3");
        assert_eq!(form.duplicate(&["resource"]), Some("a"));
        assert_eq!(form.all("resource"), vec!["x", "y"]);
        assert_eq!(Form::parse(b"a=1&b=").get_nonempty("b"), None);
    }
}

//! The callback id that scopes a loopback redirect URI to one MCP server, and the redirect URI
//! itself (rule 16).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use url::Url;

/// Base64url (no padding) of the first 9 bytes of SHA-256 over the server URL without its
/// fragment, as the `url` crate serializes it. Stable across runs and interoperable with
/// Codex, so a registered redirect URI keeps working.
pub fn callback_id(server_url: &Url) -> String {
    let mut url = server_url.clone();
    url.set_fragment(None);
    let digest = Sha256::digest(url.as_str().as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..9])
}

/// The redirect URI for a login. Without a configured callback URL it is
/// `http://127.0.0.1:<port>/callback/<callback_id>` (a loopback IP literal, never `localhost`:
/// servers compare hosts exactly). A configured callback URL supplies scheme, host, port and
/// path prefix (its query and fragment are dropped, and `port` is not used: the configured URL
/// says which port the browser will reach); the callback id is appended as the last segment.
pub fn redirect_uri(base: Option<&Url>, port: u16, callback_id: &str) -> Url {
    match base {
        None => {
            let text = format!("http://127.0.0.1:{port}/callback/{callback_id}");
            Url::parse(&text).expect("a loopback URL with a base64url id always parses")
        }
        Some(base) => {
            let mut url = base.clone();
            url.set_query(None);
            url.set_fragment(None);
            let prefix = base.path().trim_end_matches('/').to_string();
            url.set_path(&format!("{prefix}/{callback_id}"));
            url
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_id_vectors() {
        let cases = [
            ("https://mcp.example.com/mcp?tenant=one", "XuuuHAzzHOni"),
            // The fragment is not part of the identity.
            (
                "https://mcp.example.com/mcp?tenant=one#section",
                "XuuuHAzzHOni",
            ),
            // Serialization normalises case and default ports before hashing.
            ("HTTPS://MCP.EXAMPLE.COM:443/mcp?tenant=one", "XuuuHAzzHOni"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                callback_id(&Url::parse(input).unwrap()),
                expected,
                "{input}"
            );
        }
        let other = callback_id(&Url::parse("https://mcp.example.com/mcp").unwrap());
        assert_ne!(other, "XuuuHAzzHOni");
        assert_eq!(other.len(), 12);
    }

    #[test]
    fn redirect_uri_table() {
        let cases = [
            (None, 8765, "http://127.0.0.1:8765/callback/XuuuHAzzHOni"),
            (
                Some("http://127.0.0.1:8765/callback"),
                1,
                "http://127.0.0.1:8765/callback/XuuuHAzzHOni",
            ),
            (
                Some("http://127.0.0.1:8765/callback/"),
                1,
                "http://127.0.0.1:8765/callback/XuuuHAzzHOni",
            ),
            (
                Some("http://localhost:9000/oauth/callback?x=1#y"),
                1,
                "http://localhost:9000/oauth/callback/XuuuHAzzHOni",
            ),
            (
                Some("http://[::1]:9000"),
                1,
                "http://[::1]:9000/XuuuHAzzHOni",
            ),
        ];
        for (base, port, expected) in cases {
            let base = base.map(|b| Url::parse(b).unwrap());
            assert_eq!(
                redirect_uri(base.as_ref(), port, "XuuuHAzzHOni").as_str(),
                expected
            );
        }
    }
}

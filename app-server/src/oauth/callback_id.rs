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
}

//! Small types the other files of `rpc` share; this file uses none of them.

use std::sync::Arc;

use mcp_app_server_protocol::CertificateBinding;
use serde::Serialize;
use serde_json::Value;

use crate::credentials::StoredCredentials;

/// What the end of a connection's input means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// Only this connection ends.
    Connection,
    /// The daemon's one connection: shut the daemon down (pending logins ended, refreshes
    /// settled and saved) before the last replies are flushed.
    Daemon,
}

/// A method's result, encoded once, straight into the reply's bytes.
pub(super) enum Answer {
    Json(Value),
    /// The hot path of `mcpServer/oauth/token`: no detour through a JSON value, and no
    /// copy of the stored entry (it is shared with the store's in-memory document); with
    /// the files of the certificate the token is bound to, when it is.
    Token(Arc<StoredCredentials>, Option<Box<CertificateBinding>>),
}

impl Serialize for Answer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Json(v) => v.serialize(s),
            Answer::Token(creds, binding) => TokenView::of(creds, binding.as_deref()).serialize(s),
        }
    }
}

impl Answer {
    /// Room for the encoded reply, so that it is written without growing its buffer (a
    /// token reply is mostly its token, which may be kilobytes long).
    pub(super) fn encoded_size_hint(&self) -> usize {
        const ENVELOPE: usize = 160;
        match self {
            Answer::Json(_) => ENVELOPE,
            Answer::Token(creds, binding) => {
                ENVELOPE
                    + binding.as_ref().map_or(0, |b| {
                        ENVELOPE
                            + b.certificate_file.len()
                            + b.key_file.len()
                            + 2 * b.certificate_pem.as_ref().map_or(0, String::len)
                            + 2 * b.key_pem.as_ref().map_or(0, String::len)
                    })
                    + creds.access_token.len()
                    + creds.token_type.len()
                    + creds.scopes.iter().map(|s| s.len() + 3).sum::<usize>()
            }
        }
    }
}

/// [`mcp_app_server_protocol::OauthTokenResponse`] borrowed from the stored entry: the same members, the same way.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenView<'a> {
    access_token: &'a str,
    token_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    scopes: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    certificate_binding: Option<&'a CertificateBinding>,
}

impl<'a> TokenView<'a> {
    fn of(
        creds: &'a StoredCredentials,
        certificate_binding: Option<&'a CertificateBinding>,
    ) -> TokenView<'a> {
        TokenView {
            access_token: &creds.access_token,
            token_type: &creds.token_type,
            expires_at: creds.expires_at,
            scopes: &creds.scopes,
            certificate_binding,
        }
    }
}

#[cfg(test)]
mod tests {
    use mcp_app_server_protocol::OauthTokenResponse;

    use super::*;
    use crate::credentials::fixtures;

    /// What `mcpServer/oauth/token` answers, as the protocol's own type encodes it.
    fn as_protocol(creds: &StoredCredentials, binding: Option<CertificateBinding>) -> Value {
        let creds = creds.clone();
        serde_json::to_value(OauthTokenResponse {
            access_token: creds.access_token,
            token_type: creds.token_type,
            expires_at: creds.expires_at,
            scopes: creds.scopes,
            certificate_binding: binding,
        })
        .unwrap()
    }

    #[test]
    fn a_bound_token_answer_encodes_as_the_protocol_type() {
        let creds = fixtures::credentials("a", "https://a.example/mcp");
        let binding = CertificateBinding {
            x5t_s256: "thumb".into(),
            certificate_file: "/c.pem".into(),
            key_file: "/k.pem".into(),
            certificate_pem: None,
            key_pem: None,
        };
        let answer = Answer::Token(Arc::new(creds.clone()), Some(Box::new(binding.clone())));
        let hint = answer.encoded_size_hint();
        let encoded = serde_json::to_value(&answer).unwrap();
        assert_eq!(encoded, as_protocol(&creds, Some(binding.clone())));
        assert_eq!(
            encoded["certificateBinding"],
            serde_json::json!({"x5tS256": "thumb", "certificateFile": "/c.pem", "keyFile": "/k.pem"})
        );
        assert!(serde_json::to_vec(&encoded).unwrap().len() <= hint);

        // With the PEMs (`client_key_to_frontends`): every newline is written as `\n`.
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n", "QUJD\n".repeat(200));
        let with_pems = CertificateBinding {
            certificate_pem: Some(pem.replace("PRIVATE KEY", "CERTIFICATE")),
            key_pem: Some(pem),
            ..binding
        };
        let answer = Answer::Token(Arc::new(creds), Some(Box::new(with_pems)));
        let encoded = serde_json::to_vec(&answer).unwrap();
        assert!(encoded.len() <= answer.encoded_size_hint());
    }

    #[test]
    fn token_answers_encode_as_the_protocol_type() {
        let mut creds = fixtures::credentials("a", "https://a.example/mcp");
        for expires_at in [Some(1_900_000_000), None] {
            creds.expires_at = expires_at;
            let shared = Arc::new(creds.clone());
            let answer = serde_json::to_value(Answer::Token(shared, None)).unwrap();
            assert_eq!(answer, as_protocol(&creds, None));
            // Exactly the members the protocol names: nothing else of the entry leaks.
            let members: Vec<&str> = answer
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let want: &[&str] = match expires_at {
                Some(_) => &["accessToken", "tokenType", "expiresAt", "scopes"],
                None => &["accessToken", "tokenType", "scopes"],
            };
            assert_eq!(members, want);
        }
    }

    #[test]
    fn a_token_reply_fits_its_size_hint() {
        let mut creds = fixtures::credentials("a", "https://a.example/mcp");
        creds.access_token = "t".repeat(4096);
        creds.scopes = (0..20).map(|i| format!("scope:{i}")).collect();
        let answer = Answer::Token(Arc::new(creds), None);
        let encoded = serde_json::to_vec(&serde_json::json!({
            "jsonrpc": "2.0",
            "id": "an-id-of-a-frontend-that-uses-long-ids",
            "result": answer,
        }))
        .unwrap();
        assert!(
            encoded.len() <= answer.encoded_size_hint(),
            "{}",
            encoded.len()
        );
    }
}

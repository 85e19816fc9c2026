//! Checks of what a frontend describes: a refusal it received with the request that was
//! refused, and a request it wants a DPoP proof for. Pure: bad input is refused, with the
//! field named, before anything is looked up or changed.

use url::Url;

use crate::engine::error::ProofInputError;
use crate::engine::refusal::{ChallengeInputError, Refusal, read_challenge};
use crate::engine::types::{ChallengeRequest, CheckedChallenge};
use crate::oauth::dpop::USE_DPOP_NONCE;

/// Checks a frontend's request description. Pure.
pub fn check_request(
    server_url: &Url,
    method: &str,
    url: &str,
    nonce: Option<&str>,
) -> Result<(String, Url), ProofInputError> {
    let method_ok =
        !method.is_empty() && method.len() <= 32 && method.bytes().all(|b| b.is_ascii_alphabetic());
    if !method_ok {
        return Err(ProofInputError::Method(method.chars().take(40).collect()));
    }
    let bad_url = || ProofInputError::Url {
        url: url.chars().take(200).collect(),
        server: server_url.origin().ascii_serialization(),
    };
    let parsed = Url::parse(url).map_err(|_| bad_url())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.origin() != server_url.origin() {
        return Err(bad_url());
    }
    if let Some(nonce) = nonce
        && (nonce.is_empty() || nonce.len() > 512 || !nonce.bytes().all(|b| b.is_ascii_graphic()))
    {
        return Err(ProofInputError::Nonce);
    }
    Ok((method.to_ascii_uppercase(), parsed))
}

impl<'a> ChallengeRequest<'a> {
    /// Reads the refusal and checks that a `use_dpop_nonce` one comes with what a new proof
    /// needs. Pure: bad input is refused before anything is looked up or changed.
    pub fn check(self) -> Result<CheckedChallenge<'a>, ChallengeInputError> {
        let refusal = read_challenge(self.status, self.www_authenticate)?;
        if let Refusal::Unauthorized(c) = &refusal
            && c.error.as_deref() == Some(USE_DPOP_NONCE)
        {
            let missing = ChallengeInputError::IncompleteNonceRequest;
            return Ok(CheckedChallenge::NonceRequest {
                nonce: self.dpop_nonce.ok_or(missing("dpopNonce"))?,
                method: self.method.ok_or(missing("method"))?,
                url: self.url.ok_or(missing("url"))?,
                body: self.body,
            });
        }
        Ok(CheckedChallenge::Refusal {
            refusal,
            dpop_nonce: self.dpop_nonce,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_checks_name_the_bad_param() {
        let server = Url::parse("https://mcp.example.com/mcp").unwrap();
        let ok = check_request(
            &server,
            "post",
            "https://mcp.example.com/mcp?x=1",
            Some("n-1"),
        );
        let (method, url) = ok.unwrap();
        assert_eq!(method, "POST");
        assert_eq!(url.as_str(), "https://mcp.example.com/mcp?x=1");
        for bad in ["", "PO ST", "GET\r\n", "P0ST"] {
            assert!(
                matches!(
                    check_request(&server, bad, "https://mcp.example.com/mcp", None),
                    Err(ProofInputError::Method(_))
                ),
                "{bad:?}"
            );
        }
        for bad in [
            "/mcp",
            "not a url",
            "https://evil.example.com/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
            "ftp://mcp.example.com/mcp",
        ] {
            let e = check_request(&server, "POST", bad, None).unwrap_err();
            assert!(matches!(e, ProofInputError::Url { .. }), "{bad:?}");
            assert!(e.to_string().contains("`url`"), "{e}");
        }
        for bad in ["", "a b", "n\n", &"x".repeat(513)] {
            assert_eq!(
                check_request(&server, "POST", "https://mcp.example.com/mcp", Some(bad)),
                Err(ProofInputError::Nonce),
                "{bad:?}"
            );
        }
    }
}

//! The JWT bearer grant (RFC 7523 section 2.1) with the workload's identity token (MCP
//! extension `workload-identity-federation`): a CI job or pod presents the token its platform
//! issued and gets an access token. The token is read fresh at every request, since platforms
//! rotate projected tokens in place. A refusal is final: no other grant is tried.

use reqwest::header::HeaderMap;

use super::client_credentials::GrantTarget;
use super::{GrantError, env_value, push_resource_and_scope};
use crate::config::grant::AssertionSource;
use crate::oauth::http::HttpClient;
use crate::oauth::token::{TokenResponse, request_token_dpop};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The largest identity token read from a file; real ones are a few kilobytes.
const MAX_ASSERTION_BYTES: u64 = 64 * 1024;

/// Reads the current workload identity token, trimmed of surrounding whitespace.
pub async fn read_assertion(source: &AssertionSource) -> Result<String, GrantError> {
    let (text, from) = match source {
        AssertionSource::Value(token) => (token.0.clone(), "the given token".to_string()),
        AssertionSource::EnvVar(var) => (
            env_value(var, "workload identity token")?,
            format!("environment variable `{var}`"),
        ),
        AssertionSource::File(path) => {
            let shown = path.display().to_string();
            let file_error = |reason: String| GrantError::File {
                what: "workload identity token",
                path: shown.clone(),
                reason,
            };
            let meta = tokio::fs::metadata(path)
                .await
                .map_err(|e| file_error(e.to_string()))?;
            if meta.len() > MAX_ASSERTION_BYTES {
                return Err(file_error(format!(
                    "larger than {MAX_ASSERTION_BYTES} bytes"
                )));
            }
            let text = tokio::fs::read_to_string(path)
                .await
                .map_err(|e| file_error(e.to_string()))?;
            (text, shown)
        }
    };
    let token = text.trim();
    if token.is_empty() {
        return Err(GrantError::EmptyAssertion(from));
    }
    Ok(token.to_string())
}

/// Runs the grant once with `assertion`, read by the caller with [`read_assertion`] just
/// before.
pub async fn request(
    http: &HttpClient,
    target: &GrantTarget<'_>,
    client_id: Option<&str>,
    assertion: &str,
) -> Result<TokenResponse, GrantError> {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", GRANT_TYPE), ("assertion", assertion)];
    if let Some(client_id) = client_id {
        form.push(("client_id", client_id));
    }
    push_resource_and_scope(&mut form, target.resource, target.scope);
    Ok(request_token_dpop(
        http,
        target.token_endpoint,
        &form,
        &HeaderMap::new(),
        target.dpop,
    )
    .await?)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};
    use url::Url;

    use super::*;
    use crate::oauth::test_server::{TestServer, json as json_answer, serve, status};

    async fn token_server(answer: Value, code: u16) -> TestServer {
        serve(move |req, _| match req.path.as_str() {
            "/token" => json_answer(code, answer.clone()),
            _ => status(404),
        })
        .await
    }

    fn target(url: &Url) -> GrantTarget<'_> {
        GrantTarget {
            token_endpoint: url,
            issuer: "http://as.test",
            auth_methods_supported: None,
            resource: "https://mcp.example.com/mcp",
            scope: None,
            dpop: None,
        }
    }

    fn forms(server: &TestServer) -> Vec<BTreeMap<String, String>> {
        server
            .requests()
            .iter()
            .map(|r| r.form().into_iter().collect())
            .collect()
    }

    #[tokio::test]
    async fn presents_the_current_token_of_a_rotating_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "workload.jwt.one\n").unwrap();
        let server = token_server(
            json!({"access_token": "wif-at", "token_type": "Bearer"}),
            200,
        )
        .await;
        let url = server.url("/token");
        let source = AssertionSource::File(path.clone());
        let http = HttpClient::for_tests();
        let first = read_assertion(&source).await.unwrap();
        let token = request(&http, &target(&url), Some("wif-client"), &first)
            .await
            .unwrap();
        assert_eq!(token.access_token, "wif-at");
        std::fs::write(&path, "workload.jwt.two").unwrap();
        let second = read_assertion(&source).await.unwrap();
        request(&http, &target(&url), None, &second).await.unwrap();

        let forms = forms(&server);
        assert_eq!(forms[0]["grant_type"], GRANT_TYPE);
        assert_eq!(forms[0]["assertion"], "workload.jwt.one");
        assert_eq!(forms[0]["client_id"], "wif-client");
        assert_eq!(forms[0]["resource"], "https://mcp.example.com/mcp");
        assert!(!forms[0].contains_key("scope"));
        assert_eq!(
            forms[1]["assertion"], "workload.jwt.two",
            "re-read each time"
        );
        assert!(!forms[1].contains_key("client_id"));
    }

    #[tokio::test]
    async fn a_refusal_is_final_and_sent_once() {
        let server = token_server(
            json!({"error": "invalid_grant", "error_description": "audience"}),
            400,
        )
        .await;
        let url = server.url("/token");
        let e = request(
            &HttpClient::for_tests(),
            &target(&url),
            None,
            "workload.jwt",
        )
        .await
        .unwrap_err();
        match &e {
            GrantError::Token(t) => assert!(t.is_invalid_grant(), "{t}"),
            other => panic!("{other}"),
        }
        assert!(!e.to_string().contains("workload.jwt"), "{e}");
        assert_eq!(server.count("/token"), 1);
        assert_eq!(forms(&server)[0]["grant_type"], GRANT_TYPE);
    }

    #[tokio::test]
    async fn a_missing_or_empty_token_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "  \n").unwrap();
        for source in [
            AssertionSource::File(empty),
            AssertionSource::File(dir.path().join("absent")),
            AssertionSource::EnvVar("MCP_TEST_WIF_UNSET".into()),
        ] {
            let e = read_assertion(&source).await.unwrap_err();
            assert!(!matches!(e, GrantError::Token(_)), "{e}");
        }
    }
}

//! Sorting what went wrong at the token or revocation endpoint into [`TokenError`]:
//! transient (network, 5xx, 429), the server's OAuth error, or an unusable answer. Response
//! bodies are never quoted: a malformed success answer may still hold a token.

use oauth2::RequestTokenError;
use oauth2::basic::BasicErrorResponse;
use reqwest::StatusCode;
use url::Url;

use super::error::TokenError;
use crate::oauth::http::{HttpError, HttpResponse};

/// A non-2xx answer: transient for 5xx and 429, else the OAuth error body when there is one.
pub(super) fn refusal(endpoint: String, response: &HttpResponse) -> TokenError {
    let status = response.status;
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        return TokenError::Transient {
            endpoint,
            reason: format!("HTTP {}", status.as_u16()),
        };
    }
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
    }
    match response.json::<ErrorBody>() {
        Ok(body) => TokenError::OAuth {
            endpoint,
            status: status.as_u16(),
            error: body.error,
            description: body.error_description,
        },
        Err(_) => TokenError::Invalid {
            endpoint,
            reason: format!("HTTP {} without an OAuth error body", status.as_u16()),
        },
    }
}

pub(super) fn from_http(endpoint: &str, error: HttpError) -> TokenError {
    if error.is_transient() {
        TokenError::Transient {
            endpoint: endpoint.to_string(),
            reason: error.to_string(),
        }
    } else {
        TokenError::Invalid {
            endpoint: endpoint.to_string(),
            reason: error.to_string(),
        }
    }
}

/// Sorts oauth2's error into ours. Response bodies are never quoted: a malformed success
/// response may still hold a token.
pub(super) fn classify(
    token_endpoint: &Url,
    status: Option<StatusCode>,
    error: RequestTokenError<HttpError, BasicErrorResponse>,
) -> TokenError {
    let endpoint = token_endpoint.to_string();
    let status_text = status.map_or_else(
        || "no status".to_string(),
        |s| format!("HTTP {}", s.as_u16()),
    );
    let transient_status =
        status.is_some_and(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS);
    match error {
        RequestTokenError::Request(e) => from_http(&endpoint, e),
        _ if transient_status => TokenError::Transient {
            endpoint,
            reason: status_text,
        },
        RequestTokenError::ServerResponse(response) => TokenError::OAuth {
            endpoint,
            status: status.map_or(0, |s| s.as_u16()),
            error: response.error().as_ref().to_string(),
            description: response.error_description().cloned(),
        },
        RequestTokenError::Parse(e, _body) => {
            let reason = if status.is_some_and(|s| s.is_redirection()) {
                format!("{status_text}: token requests do not follow redirects")
            } else {
                let path = e.path().to_string();
                let what = match e.inner().classify() {
                    // Our parser's message: it names a field, never a value.
                    serde_json::error::Category::Data => {
                        return TokenError::Invalid {
                            endpoint,
                            reason: format!("{status_text}: {}", data_error_text(e.inner())),
                        };
                    }
                    serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                        "not valid JSON"
                    }
                    serde_json::error::Category::Io => "unreadable body",
                };
                if path == "." || path.is_empty() {
                    format!("{status_text}: {what}")
                } else {
                    format!("{status_text}: {what} at {path}")
                }
            };
            TokenError::Invalid { endpoint, reason }
        }
        RequestTokenError::Other(message) => TokenError::Invalid {
            endpoint,
            reason: format!("{status_text}: {message}"),
        },
    }
}

/// serde_json's text of an error our parser raised, without the position suffix.
fn data_error_text(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

//! RFC 6749 5.2 error responses (JSON) and the HTML page shown when the AS cannot
//! redirect back (unknown client, unregistered redirect URI).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use crate::checks::html_escape;

#[derive(Debug, Clone)]
pub(crate) struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new("invalid_target", description)
    }

    /// 401: RFC 6749 5.2 allows it for every failed client authentication and requires it
    /// (with a challenge) when the client used the Authorization header.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(json!({"error": self.code, "error_description": self.description})),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"mcp-app-server-testkit\""),
            );
        }
        response
    }
}

/// An HTML error page: what browsers show when the AS must not redirect.
pub(crate) fn error_page(status: StatusCode, code: &str, description: &str) -> Response {
    let body = format!(
        "<!doctype html><html><head><title>Authorization error</title></head><body>\
         <h1>Authorization error</h1><p id=\"error\">{}</p><p id=\"error_description\">{}</p>\
         </body></html>",
        html_escape(code),
        html_escape(description)
    );
    (status, Html(body)).into_response()
}

pub(crate) fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

pub(crate) fn is_content_type(headers: &axum::http::HeaderMap, expected: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(expected))
}

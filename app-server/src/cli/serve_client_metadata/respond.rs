//! One request head to one response: the document, the health check, or an error in the
//! host's one format (JSON `{"error", "error_description"}` with `Cache-Control: no-store`).
//! The answer depends on the head alone; a request body is never read, so it is never
//! logged either.

use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::uri::Authority;
use hyper::{Method, Request, Response, StatusCode, Version};

use super::document::{Answer, DocumentHost, error_answer};

/// How long authorization servers may cache a document: it depends only on its URL.
pub const CACHE_CONTROL: &str = "public, max-age=3600";

/// Answers one request from its head.
pub(super) fn respond<B>(request: &Request<B>, host: &DocumentHost) -> Response<String> {
    if let Err(reason) = check_host(request.version(), request.headers()) {
        tracing::info!(reason, "refused a request with a bad Host header");
        return error(error_answer(400, "invalid_request", reason));
    }
    let method = request.method();
    if method != Method::GET && method != Method::HEAD {
        let mut response = error(error_answer(
            405,
            "method_not_allowed",
            "only GET and HEAD are supported",
        ));
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let uri = request.uri();
    if host.is_health_path(uri.path()) {
        return with_headers(StatusCode::OK, "text/plain", "no-store", "ok\n".into());
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = host.answer(target);
    if answer.status == 200 {
        tracing::info!(path = %uri.path(), "served a client metadata document");
        with_headers(
            StatusCode::OK,
            answer.content_type,
            CACHE_CONTROL,
            answer.body,
        )
    } else {
        tracing::info!(status = answer.status, path = %uri.path(), reason = %answer.body, "refused a client metadata document request");
        error(answer)
    }
}

/// RFC 9112 section 3.2: an HTTP/1.1 request needs exactly one `Host` field, and no request
/// may carry more than one or an invalid one. (The host never uses its value: documents
/// name the configured public base.)
fn check_host(version: Version, headers: &HeaderMap) -> Result<(), &'static str> {
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (None, _) if version == Version::HTTP_11 => {
            Err("an HTTP/1.1 request needs a Host header (RFC 9112 section 3.2)")
        }
        (None, _) => Ok(()),
        (Some(_), Some(_)) => Err("more than one Host header"),
        (Some(value), None) => {
            let value = value.as_bytes();
            if value.is_empty() || (!value.contains(&b'@') && Authority::try_from(value).is_ok()) {
                Ok(())
            } else {
                Err("the Host header is not a valid host[:port]")
            }
        }
    }
}

fn error(answer: Answer) -> Response<String> {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    with_headers(status, answer.content_type, "no-store", answer.body)
}

fn with_headers(
    status: StatusCode,
    content_type: &'static str,
    cache_control: &'static str,
    body: String,
) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

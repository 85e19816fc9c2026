//! A failed reqwest request as an [`HttpError`]: a destination the policy refused, a
//! refused certificate (told by [`super::tls`]), a timeout, a connection or request failure.

use url::Url;

use super::error::HttpError;
use crate::oauth::net_policy::Refused;

/// The [`HttpError`] of a failed reqwest request to `url`.
pub(super) fn map_send_error(url: &Url, error: &reqwest::Error) -> HttpError {
    #[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
    if let Some(refused) = super::tls::refused_certificate(url, error) {
        return refused;
    }
    let url = url.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return HttpError::DestinationRefused {
                url,
                refused: refused.clone(),
            };
        }
        source = cause.source();
    }
    if error.is_timeout() {
        HttpError::Timeout { url }
    } else if error.is_connect() {
        HttpError::Connect {
            url,
            reason: error_chain(error),
        }
    } else {
        HttpError::Request {
            url,
            reason: error_chain(error),
        }
    }
}

/// The causes of a reqwest error on one line. reqwest's own message embeds the URL, which
/// our variants already carry, so only the kind and the underlying causes are kept.
pub(super) fn error_chain(error: &reqwest::Error) -> String {
    let mut text = String::from(if error.is_connect() {
        "connection failed"
    } else if error.is_body() {
        "reading the response failed"
    } else if error.is_builder() {
        "invalid request"
    } else {
        "request failed"
    });
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document): a URL
//! client id whose document the AS fetches and validates as a strict server does.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;
use url::{Host, Url};

use crate::checks::redirect_uri_allowed;
use crate::counters::bump;
use crate::store::{AuthMethod, Client};

/// Documents larger than this are refused (the draft's suggested bound).
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `client_id` is in URL form, so the AS treats it as a metadata document.
pub(crate) fn is_url_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

fn is_dot_segment(segment: &str) -> bool {
    let decoded = percent_encoding::percent_decode_str(segment).decode_utf8_lossy();
    decoded == "." || decoded == ".."
}

/// Checks the client id URL itself: https (plain http only for loopback IP hosts, for
/// tests), a non-root path without dot segments, no fragment, no userinfo.
pub(crate) fn validate_client_id_url(client_id: &str) -> Result<Url, String> {
    let url = Url::parse(client_id).map_err(|e| format!("client_id is not a URL: {e}"))?;
    let loopback_ip = match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback_ip => {}
        _ => return Err("client_id URL must use https".to_owned()),
    }
    if url.fragment().is_some() || client_id.contains('#') {
        return Err("client_id URL must not have a fragment".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("client_id URL must not contain credentials".to_owned());
    }
    // The url crate removes dot segments while parsing, so look at the raw text.
    let after_scheme = client_id.split_once("://").map_or("", |(_, rest)| rest);
    let path_and_query = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let raw_path = path_and_query.split('?').next().unwrap_or("");
    if raw_path.split('/').any(is_dot_segment) {
        return Err("client_id URL must not contain . or .. path segments".to_owned());
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err("client_id URL must have a path".to_owned());
    }
    Ok(url)
}

/// Fetches the document: no redirects, only 200, at most [`MAX_DOCUMENT_BYTES`], bounded
/// by [`FETCH_TIMEOUT`] (set on the client).
async fn fetch(http: &reqwest::Client, url: Url, counter: &AtomicU64) -> Result<Value, String> {
    bump(counter);
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("fetching the client metadata document failed: {e}"))?;
    if response.status() != reqwest::StatusCode::OK {
        return Err(format!(
            "client metadata document answered HTTP {} (only 200 is accepted, redirects are not followed)",
            response.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading the client metadata document failed: {e}"))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_DOCUMENT_BYTES {
            return Err(format!(
                "client metadata document is larger than {MAX_DOCUMENT_BYTES} bytes"
            ));
        }
    }
    let doc: Value = serde_json::from_slice(&body)
        .map_err(|e| format!("client metadata document is not JSON: {e}"))?;
    if !doc.is_object() {
        return Err("client metadata document is not a JSON object".to_owned());
    }
    Ok(doc)
}

/// Validates a fetched document for `client_id` and the requested `redirect_uri`.
pub(crate) fn validate_document(
    doc: &Value,
    client_id: &str,
    redirect_uri: &str,
) -> Result<Client, String> {
    let Some(obj) = doc.as_object() else {
        return Err("client metadata document is not a JSON object".to_owned());
    };
    match obj.get("client_id").and_then(Value::as_str) {
        Some(id) if id == client_id => {}
        Some(_) => {
            return Err(
                "client metadata document's client_id differs from the URL it was fetched from"
                    .to_owned(),
            );
        }
        None => return Err("client metadata document has no client_id".to_owned()),
    }
    if obj.contains_key("client_secret") || obj.contains_key("client_secret_expires_at") {
        return Err("client metadata document must not contain a client_secret".to_owned());
    }
    match obj.get("token_endpoint_auth_method") {
        None => {}
        Some(Value::String(m)) if m == "none" => {}
        Some(_) => {
            return Err(
                "client metadata document must use token_endpoint_auth_method none".to_owned(),
            );
        }
    }
    let redirect_uris: Vec<String> = match obj.get("redirect_uris") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or("client metadata document redirect_uris must be strings")?,
        _ => return Err("client metadata document has no redirect_uris array".to_owned()),
    };
    if !redirect_uri_allowed(&redirect_uris, redirect_uri) {
        return Err(
            "redirect_uri is not listed in the client metadata document's redirect_uris".to_owned(),
        );
    }
    Ok(Client {
        client_id: client_id.to_owned(),
        secret: None,
        auth_method: AuthMethod::None,
        redirect_uris,
        from_metadata_document: true,
        jwt_public_key: None,
        tls_client_auth_subject_dn: None,
        tls_client_certificate_sha256: None,
    })
}

/// URL check, fetch and document validation.
pub(crate) async fn resolve(
    http: &reqwest::Client,
    client_id: &str,
    redirect_uri: &str,
    counter: &AtomicU64,
) -> Result<Client, String> {
    let url = validate_client_id_url(client_id)?;
    let doc = fetch(http, url, counter).await?;
    validate_document(&doc, client_id, redirect_uri)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_id_urls_are_checked() {
        let ok = [
            "https://app.example/client.json",
            "http://127.0.0.1:4000/meta/client.json?redirect_uri=x",
        ];
        for id in ok {
            assert!(validate_client_id_url(id).is_ok(), "{id}");
        }
        let bad = [
            "http://app.example/client.json",
            "http://localhost:4000/client.json",
            "https://app.example/",
            "https://app.example",
            "https://app.example/a/../client.json",
            "https://app.example/a/%2E%2E/client.json",
            "https://app.example/./client.json",
            "https://user:pw@app.example/client.json",
            "https://app.example/client.json#x",
        ];
        for id in bad {
            assert!(validate_client_id_url(id).is_err(), "{id}");
        }
    }

    #[test]
    fn documents_are_validated() {
        let id = "https://app.example/client.json";
        let redirect = "http://127.0.0.1:5000/callback/x";
        let good = json!({"client_id": id, "redirect_uris": ["http://127.0.0.1/callback/x"],
                          "token_endpoint_auth_method": "none"});
        assert!(validate_document(&good, id, redirect).is_ok());
        let cases = [
            json!({"client_id": format!("{id}?"), "redirect_uris": [redirect]}),
            json!({"client_id": id, "redirect_uris": [redirect], "client_secret": "s"}),
            json!({"client_id": id, "redirect_uris": [redirect],
                   "token_endpoint_auth_method": "client_secret_basic"}),
            json!({"client_id": id, "redirect_uris": ["http://localhost:5000/callback/x"]}),
            json!({"client_id": id}),
            json!(["not", "an", "object"]),
        ];
        for doc in cases {
            assert!(validate_document(&doc, id, redirect).is_err(), "{doc}");
        }
    }
}

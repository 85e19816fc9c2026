//! The hostile answers of [`Fault`]: huge lists, wrong types, bodies that trickle, lie about
//! their length or inflate to far more than they weigh, and redirects that loop or lead to
//! the cloud metadata address. Faults that rewrite the real answer or redirect are applied
//! around the handlers, by [`around`].

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::faults::{Endpoint, Fault, Faults, GZIP_BOMB_INFLATED_BYTES, OTHER_LIST_ENTRIES};

/// The endpoint of a request path, for the faults applied around the handlers.
pub(crate) fn endpoint_of(path: &str) -> Option<Endpoint> {
    if path.contains("/.well-known/oauth-protected-resource") {
        Some(Endpoint::Prm)
    } else if path.contains("/.well-known/oauth-authorization-server")
        || path.contains("/.well-known/openid-configuration")
    {
        Some(Endpoint::AsMetadata)
    } else if path.ends_with("/register") {
        Some(Endpoint::Register)
    } else if path.ends_with("/token") {
        Some(Endpoint::Token)
    } else if path.ends_with("/revoke") {
        Some(Endpoint::Revoke)
    } else if path == "/mcp" {
        Some(Endpoint::Mcp)
    } else {
        None
    }
}

/// Applies the redirecting and rewriting faults set for the request's endpoint; `next`
/// produces the real answer.
pub(crate) async fn around<F, Fut>(faults: &Faults, request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let path = request.uri().path().to_string();
    let Some(endpoint) = endpoint_of(&path) else {
        return next(request).await;
    };
    match faults.lookup(endpoint) {
        Some(Fault::RedirectLoop) => redirect(&path),
        Some(Fault::RedirectToLinkLocal) => redirect("http://169.254.169.254/latest/meta-data/"),
        Some(Fault::HugeLists {
            entries,
            entry_bytes,
        }) => {
            let response = next(request).await;
            rewrite(response, endpoint, |value| {
                grow_lists(value, entries, entry_bytes, &path)
            })
            .await
        }
        Some(Fault::WrongTypes) => {
            let response = next(request).await;
            rewrite(response, endpoint, wrong_types).await
        }
        Some(Fault::NoTokenType) => {
            let response = next(request).await;
            rewrite(response, endpoint, |mut value| {
                if let Some(members) = value.as_object_mut() {
                    members.remove("token_type");
                }
                value
            })
            .await
        }
        Some(Fault::HugeExpiresIn) => {
            let response = next(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let Ok(Value::Object(mut members)) = serde_json::from_slice::<Value>(&bytes) else {
                return Response::from_parts(parts, Body::from(bytes));
            };
            members.remove("expires_in");
            // Spliced in as text: no JSON number type holds it.
            let mut text = serde_json::to_string(&members).expect("JSON serializes");
            text.pop();
            text.push_str(if members.is_empty() { "" } else { "," });
            text.push_str("\"expires_in\":");
            text.push_str(&"9".repeat(900_000));
            text.push('}');
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(text))
        }
        _ => next(request).await,
    }
}

fn redirect(location: &str) -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, location.to_string())],
        "redirected by a test kit fault",
    )
        .into_response()
}

/// The real answer's JSON body (and, on the MCP endpoint, its challenge) rewritten.
async fn rewrite(
    response: Response,
    endpoint: Endpoint,
    change: impl Fn(Value) -> Value,
) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "unreadable body").into_response();
    };
    if endpoint == Endpoint::Mcp {
        // The probe's 401: the challenge names the huge scope list.
        if let Some(Ok(challenge)) = parts
            .headers
            .get(header::WWW_AUTHENTICATE)
            .map(|v| v.to_str().map(str::to_string))
        {
            let grown = change(Value::String(String::new()));
            let scope = match grown {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let value = format!("{challenge}, scope=\"{}\"", scope.replace('"', ""));
            if let Ok(value) = HeaderValue::from_str(&value) {
                parts.headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        parts.headers.remove(header::CONTENT_LENGTH);
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let changed = serde_json::to_vec(&change(value)).expect("JSON serializes");
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(changed))
}

/// A short distinct name for `i` (base 62), padded to `bytes`.
fn name(prefix: &str, i: usize, bytes: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut out = String::from(prefix);
    let mut n = i;
    loop {
        out.push(DIGITS[n % 62] as char);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    while out.len() < bytes {
        out.push('_');
    }
    out
}

/// The main list (`scopes_supported`, `scope`, `redirect_uris`; the empty string standing
/// for a challenge's scope) grown to `entries`, every other array of strings to
/// [`OTHER_LIST_ENTRIES`]. Entries differ between the kit's paths (the OAuth and OpenID
/// documents), so a merge of two documents holds twice as many distinct entries.
fn grow_lists(value: Value, entries: usize, entry_bytes: usize, path: &str) -> Value {
    let prefix = if path.contains("openid") { "i" } else { "o" };
    let names = |kept: Vec<String>, entries: usize| -> Vec<String> {
        let extra = entries.saturating_sub(kept.len());
        kept.into_iter()
            .chain((0..extra).map(|i| name(prefix, i, entry_bytes)))
            .collect()
    };
    let main = |key: &str| matches!(key, "scopes_supported" | "scope" | "redirect_uris");
    match value {
        Value::String(s) if s.is_empty() => Value::String(names(Vec::new(), entries).join(" ")),
        Value::Object(members) => {
            let mut out = Map::new();
            for (key, member) in members {
                let count = if main(&key) {
                    entries
                } else {
                    OTHER_LIST_ENTRIES
                };
                let grown = match member {
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        let kept = items
                            .into_iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect();
                        Value::from(names(kept, count))
                    }
                    Value::String(scope) if key == "scope" => {
                        let kept = scope.split_whitespace().map(str::to_string).collect();
                        Value::String(names(kept, count).join(" "))
                    }
                    other => other,
                };
                out.insert(key, grown);
            }
            // A token answer without `scope` still grants the huge list.
            if out.contains_key("access_token") && !out.contains_key("scope") {
                out.insert(
                    "scope".into(),
                    Value::String(names(Vec::new(), entries).join(" ")),
                );
            }
            Value::Object(out)
        }
        other => other,
    }
}

/// Every member of the wrong type.
fn wrong_types(value: Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .map(|(key, member)| {
                    let wrong = match member {
                        Value::String(_) => Value::from(12345),
                        Value::Array(_) | Value::Number(_) => {
                            serde_json::json!({"wrong": "type"})
                        }
                        Value::Object(_) => Value::from("an object was expected"),
                        Value::Bool(_) | Value::Null => Value::from([1, 2, 3]),
                    };
                    (key, wrong)
                })
                .collect(),
        ),
        Value::String(_) => Value::from(1),
        other => other,
    }
}

/// 200, then a byte of JSON whitespace every 100 ms, forever.
pub(crate) fn trickle() -> Response {
    let stream = futures::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), ()))
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// `Content-Length: claimed`, a few bytes of body, then the end of the connection.
pub(crate) fn lying_length(claimed: u64) -> Response {
    let stream = futures::stream::iter([
        Ok::<_, std::io::Error>(Bytes::from_static(b"{\"issuer\": \"")),
        Err(std::io::Error::other("the body ends before its length")),
    ]);
    let mut response = (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_LENGTH,
        HeaderValue::from_str(&claimed.to_string()).expect("a number is a header value"),
    );
    response
}

static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// A gzip member inflating to [`GZIP_BOMB_INFLATED_BYTES`] spaces (valid JSON whitespace).
/// Built once, off the async workers (its CRC-32 runs over 64 MiB), so the kit building it
/// does not delay the test that drives the daemon.
pub(crate) async fn gzip_bomb() -> Response {
    let body = match BOMB.get() {
        Some(body) => body.clone(),
        None => tokio::task::spawn_blocking(|| {
            BOMB.get_or_init(|| gzip_of_spaces(GZIP_BOMB_INFLATED_BYTES))
                .clone()
        })
        .await
        .expect("the gzip bomb builds"),
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_ENCODING, "gzip"),
        ],
        body,
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    response
}

/// Deflate with fixed Huffman codes: one literal space, then copies of 258 bytes at
/// distance 1 (13 bits each), then the gzip trailer (CRC-32 and length).
pub fn gzip_of_spaces(len: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `count` bits of `value`, least significant first.
        fn put(&mut self, value: u64, count: u32) {
            self.acc |= value << self.n;
            self.n += count;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code: most significant bit first.
        fn code(&mut self, code: u64, count: u32) {
            let reversed = (0..count).fold(0, |r, i| r | (((code >> i) & 1) << (count - 1 - i)));
            self.put(reversed, count);
        }
    }
    let mut bits = Bits {
        out: vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // final block
    bits.put(1, 2); // fixed Huffman codes
    bits.code(0x30 + u64::from(b' '), 8);
    let mut written = 1;
    while written + 258 <= len {
        bits.code(0b1100_0101, 8); // length 258 (code 285)
        bits.code(0, 5); // distance 1
        written += 258;
    }
    while written < len {
        bits.code(0x30 + u64::from(b' '), 8);
        written += 1;
    }
    bits.code(0, 7); // end of block
    if bits.n > 0 {
        bits.put(0, 8 - bits.n);
    }
    let mut out = bits.out;
    out.extend_from_slice(&crc32_of_spaces(len).to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

fn crc32_of_spaces(len: usize) -> u32 {
    let mut table = [0u32; 256];
    for (i, entry) in table.iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *entry = c;
    }
    let mut crc = !0u32;
    for _ in 0..len {
        crc = table[((crc ^ u32::from(b' ')) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

//! Misbehaviour switched on at run time, so one running kit can break mid-test.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The endpoint a [`Fault`] applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// Both PRM locations.
    Prm,
    /// Both AS metadata documents, at every location.
    AsMetadata,
    Register,
    /// `/authorize` and the consent form's decision endpoint.
    Authorize,
    Token,
    Revoke,
    Mcp,
    /// Every endpoint above (a per-endpoint fault takes precedence).
    All,
}

/// How an endpoint misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 500 with a small JSON body.
    Status500,
    /// 200, `Content-Type: application/json`, a body that is not JSON.
    InvalidJson,
    /// 200 with a valid JSON body larger than 2 MiB (bounded readers must give up).
    Oversized,
    /// Sleep this long, then answer normally.
    Slow(Duration),
    /// Added before every request of every endpoint, whichever endpoint it is set for.
    Latency(Duration),
    /// This status with a small JSON body.
    Status(u16),
    /// The real answer with its main list grown to `entries` distinct entries of at least
    /// `entry_bytes` bytes each (`scopes_supported`, a token answer's `scope`, a
    /// registration's `redirect_uris`, the 401 challenge's `scope` on the MCP endpoint),
    /// and every other array of strings to [`OTHER_LIST_ENTRIES`]. The entries the real
    /// answer had come first.
    HugeLists { entries: usize, entry_bytes: usize },
    /// A token answer whose `expires_in` is a number of 900,000 digits.
    HugeExpiresIn,
    /// A token answer without `token_type`.
    NoTokenType,
    /// The real answer with every member of the wrong JSON type (strings become numbers,
    /// arrays and numbers become objects, objects become strings).
    WrongTypes,
    /// 200 with headers, then one byte of body every 100 ms, never ending.
    Trickle,
    /// Accepts the request and never answers.
    Stall,
    /// `Content-Length` claims this many bytes; a few bytes follow and the connection ends.
    LyingLength(u64),
    /// 200 `Content-Encoding: gzip` (whatever the request accepted): a small body that
    /// inflates to [`GZIP_BOMB_INFLATED_BYTES`] of JSON whitespace.
    GzipBomb,
    /// 302 to the very URL asked for.
    RedirectLoop,
    /// 302 to the cloud metadata address, `http://169.254.169.254/latest/meta-data/`.
    RedirectToLinkLocal,
}

/// Entries of the lists [`Fault::HugeLists`] grows besides its main one.
pub const OTHER_LIST_ENTRIES: usize = 2000;

/// What a [`Fault::GzipBomb`] body inflates to: 64 MiB.
pub const GZIP_BOMB_INFLATED_BYTES: usize = 64 * 1024 * 1024;

/// Bytes in an [`Fault::Oversized`] body: 2 MiB plus some.
pub const OVERSIZED_BODY_BYTES: usize = 2 * 1024 * 1024 + 64 * 1024;

/// Runtime-switchable faults of a running kit.
#[derive(Debug, Default)]
pub struct Faults {
    table: Mutex<FaultTable>,
}

#[derive(Debug, Default)]
struct FaultTable {
    per_endpoint: HashMap<Endpoint, Fault>,
    latency: Option<Duration>,
}

impl Faults {
    /// Make `endpoint` misbehave with `fault` until cleared (replaces an earlier fault
    /// for the same endpoint). [`Fault::Latency`] is global whatever `endpoint` says.
    pub fn set(&self, endpoint: Endpoint, fault: Fault) {
        let mut table = lock(&self.table);
        match fault {
            Fault::Latency(delay) => table.latency = Some(delay),
            other => {
                table.per_endpoint.insert(endpoint, other);
            }
        }
    }

    /// Remove the fault set for `endpoint` (latency stays).
    pub fn clear_endpoint(&self, endpoint: Endpoint) {
        lock(&self.table).per_endpoint.remove(&endpoint);
    }

    /// Back to well-behaved: every fault and the latency removed.
    pub fn clear(&self) {
        let mut table = lock(&self.table);
        table.per_endpoint.clear();
        table.latency = None;
    }

    pub(crate) fn latency(&self) -> Option<Duration> {
        lock(&self.table).latency
    }

    pub(crate) fn lookup(&self, endpoint: Endpoint) -> Option<Fault> {
        let table = lock(&self.table);
        table
            .per_endpoint
            .get(&endpoint)
            .or_else(|| table.per_endpoint.get(&Endpoint::All))
            .copied()
    }

    /// The faulty response `endpoint` must give instead of its real one, if any.
    /// `Slow` sleeps here and then lets the real handler answer.
    pub(crate) async fn intercept(&self, endpoint: Endpoint) -> Option<Response> {
        match self.lookup(endpoint)? {
            Fault::Slow(delay) => {
                tokio::time::sleep(delay).await;
                None
            }
            Fault::Latency(_)
            | Fault::HugeLists { .. }
            | Fault::WrongTypes
            | Fault::HugeExpiresIn
            | Fault::NoTokenType => None,
            Fault::Stall => {
                std::future::pending::<()>().await;
                None
            }
            Fault::Trickle => Some(crate::hostile::trickle()),
            Fault::LyingLength(claimed) => Some(crate::hostile::lying_length(claimed)),
            Fault::GzipBomb => Some(crate::hostile::gzip_bomb().await),
            Fault::RedirectLoop | Fault::RedirectToLinkLocal => None,
            Fault::Status500 => Some(status_response(StatusCode::INTERNAL_SERVER_ERROR)),
            Fault::Status(code) => Some(status_response(
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            )),
            Fault::InvalidJson => Some(
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    "{\"issuer\": \"http://127.0.0.1/\", oops this is not JSON",
                )
                    .into_response(),
            ),
            Fault::Oversized => {
                let mut body = String::with_capacity(OVERSIZED_BODY_BYTES + 16);
                body.push_str("{\"padding\":\"");
                body.extend(std::iter::repeat_n('x', OVERSIZED_BODY_BYTES));
                body.push_str("\"}");
                Some(([(header::CONTENT_TYPE, "application/json")], body).into_response())
            }
        }
    }
}

fn status_response(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        "{\"error\":\"server_error\",\"error_description\":\"fault injected by the test kit\"}",
    )
        .into_response()
}

/// Poisoning only follows a panic in a test thread; the data is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

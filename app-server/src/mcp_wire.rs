//! The shape of MCP Streamable HTTP requests at each protocol revision the daemon speaks.
//!
//! Two eras: **modern** (2026-07-28) is stateless: no `initialize`, no session; every POST
//! carries `MCP-Protocol-Version`, `Mcp-Method` and, for `tools/call`, `resources/read` and
//! `prompts/get`, `Mcp-Name`; the body's `params._meta` carries the protocol version (equal
//! to the header), the client's identity and its capabilities. **Legacy** (2025-11-25,
//! 2025-06-18, 2025-03-26) opens with `initialize` and sends the negotiated version in
//! `MCP-Protocol-Version` on later requests. A modern server answers a request it cannot
//! serve with a recognised JSON-RPC error (unsupported version, header mismatch, missing
//! capability); anything else from a first modern request means a legacy server.

use base64::Engine as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

/// The stateless revision.
pub const MODERN_REVISION: &str = "2026-07-28";
/// The newest revision that opens with `initialize`.
pub const LEGACY_REVISION: &str = "2025-11-25";
/// Every revision the daemon speaks, preferred first.
pub const SUPPORTED_REVISIONS: [&str; 4] =
    [MODERN_REVISION, LEGACY_REVISION, "2025-06-18", "2025-03-26"];

pub const PROTOCOL_VERSION_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
pub const METHOD_HEADER: HeaderName = HeaderName::from_static("mcp-method");
pub const NAME_HEADER: HeaderName = HeaderName::from_static("mcp-name");
pub const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// The modern discovery request (2026-07-28 `server/discover`).
pub const DISCOVER_METHOD: &str = "server/discover";

/// Modern JSON-RPC error codes (2026-07-28 schema).
pub const HEADER_MISMATCH: i64 = -32020;
pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// Which way of talking a revision uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// Stateless, per-request metadata (2026-07-28).
    Modern,
    /// `initialize` handshake, optional session (2025-03-26 to 2025-11-25).
    Legacy,
}

/// The era of a revision the daemon speaks; `None` for one it does not.
pub fn era(revision: &str) -> Option<Era> {
    match revision {
        MODERN_REVISION => Some(Era::Modern),
        r if SUPPORTED_REVISIONS.contains(&r) => Some(Era::Legacy),
        _ => None,
    }
}

/// The most preferred revision of ours among `offered`.
pub fn best_supported<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered.into_iter().collect();
    SUPPORTED_REVISIONS
        .iter()
        .copied()
        .find(|ours| offered.contains(ours))
}

/// A JSON-RPC error code by which a modern server says what was wrong with a request.
pub fn is_modern_error(code: i64) -> bool {
    matches!(
        code,
        HEADER_MISMATCH | MISSING_REQUIRED_CLIENT_CAPABILITY | UNSUPPORTED_PROTOCOL_VERSION
    )
}

/// The MCP authorization extensions this client implements, by extension id: advertised
/// in the `extensions` capability of every `initialize` and modern request. The one list
/// to add an extension to.
pub const SUPPORTED_EXTENSIONS: &[&str] = &[
    // Client credentials (SEP-1046): `grant = "client_credentials"`.
    "io.modelcontextprotocol/oauth-client-credentials",
    // Workload identity federation (SEP-1933): `grant = "jwt_bearer"`.
    "io.modelcontextprotocol/auth/wif",
    // DPoP-bound tokens (SEP-1932): `Authorization: DPoP` and a proof per request.
    "io.modelcontextprotocol/auth/dpop",
    // Enterprise-managed authorization (SEP-990): `grant = "enterprise"`.
    "io.modelcontextprotocol/enterprise-managed-authorization",
];

/// The client's capabilities: the extensions it supports, each with empty settings.
pub fn client_capabilities() -> Value {
    let extensions: serde_json::Map<String, Value> = SUPPORTED_EXTENSIONS
        .iter()
        .map(|id| ((*id).to_string(), json!({})))
        .collect();
    json!({"extensions": extensions})
}

/// `clientInfo` (legacy `initialize`) and `io.modelcontextprotocol/clientInfo` (modern).
pub fn client_info() -> Value {
    json!({"name": "mcp-app-server", "version": env!("CARGO_PKG_VERSION")})
}

/// The params of a legacy `initialize` offering `revision`.
pub fn initialize_params(revision: &str) -> Value {
    json!({
        "protocolVersion": revision,
        "capabilities": client_capabilities(),
        "clientInfo": client_info(),
    })
}

/// `params` with the modern `_meta` fields added (existing `_meta` entries are kept; ours
/// win, so the body's protocol version always equals the header's).
pub fn with_modern_meta(params: Value, revision: &str) -> Value {
    let mut params = match params {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(serde_json::Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(serde_json::Map::new());
    }
    if let Some(meta) = meta.as_object_mut() {
        meta.insert(META_PROTOCOL_VERSION.into(), json!(revision));
        meta.insert(META_CLIENT_INFO.into(), client_info());
        meta.entry(META_CLIENT_CAPABILITIES)
            .or_insert_with(client_capabilities);
    }
    Value::Object(params)
}

/// The body value `Mcp-Name` mirrors: `params.name` of `tools/call` and `prompts/get`,
/// `params.uri` of `resources/read`.
pub fn name_source<'a>(method: &str, params: &'a Value) -> Option<&'a str> {
    let field = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return None,
    };
    params.get(field).and_then(Value::as_str)
}

/// A mirrored value as a header value: as-is when it is visible ASCII and spaces without
/// leading or trailing whitespace, else `=?base64?…?=` of its UTF-8 (also for a plain
/// value that looks like that form, so it cannot be mistaken for one).
pub fn encode_header_value(value: &str) -> HeaderValue {
    let unsafe_byte = value.bytes().any(|b| !(0x20..=0x7e).contains(&b));
    let sentinel = value.starts_with("=?base64?") && value.ends_with("?=");
    let plain = !(value.is_empty()
        || unsafe_byte
        || value.starts_with(' ')
        || value.ends_with(' ')
        || sentinel);
    let text = if plain {
        value.to_string()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
        )
    };
    HeaderValue::from_str(&text).expect("visible ASCII is a valid header value")
}

/// Adds the modern request metadata headers for a request of `method` with `params`.
pub fn insert_modern_headers(
    headers: &mut HeaderMap,
    revision: &str,
    method: &str,
    params: &Value,
) {
    headers.insert(PROTOCOL_VERSION_HEADER, encode_header_value(revision));
    headers.insert(METHOD_HEADER, encode_header_value(method));
    if let Some(name) = name_source(method, params) {
        headers.insert(NAME_HEADER, encode_header_value(name));
    }
}

/// A complete modern request: its headers (to add to the caller's) and its body.
pub fn modern_request(id: i64, revision: &str, method: &str, params: Value) -> (HeaderMap, Value) {
    let params = with_modern_meta(params, revision);
    let mut headers = HeaderMap::new();
    insert_modern_headers(&mut headers, revision, method, &params);
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    (headers, body)
}

/// The versions an `UnsupportedProtocolVersionError` lists in `data.supported`.
pub fn supported_versions(data: Option<&Value>) -> Vec<String> {
    data.and_then(|d| d.get("supported"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eras_and_preference() {
        assert_eq!(era("2026-07-28"), Some(Era::Modern));
        assert_eq!(era("2025-03-26"), Some(Era::Legacy));
        assert_eq!(era("2024-11-05"), None);
        assert_eq!(
            best_supported(["2025-06-18", "2026-07-28", "2099-01-01"]),
            Some("2026-07-28")
        );
        assert_eq!(
            best_supported(["2025-06-18", "2025-03-26"]),
            Some("2025-06-18")
        );
        assert_eq!(best_supported(["2099-01-01"]), None);
        assert!(is_modern_error(-32022) && is_modern_error(-32020) && !is_modern_error(-32601));
    }

    #[test]
    fn modern_request_mirrors_body_fields_into_headers() {
        let (headers, body) = modern_request(
            7,
            "2026-07-28",
            "resources/read",
            json!({"uri": "file:///a%20b.txt", "_meta": {"progressToken": 1}}),
        );
        assert_eq!(headers[&PROTOCOL_VERSION_HEADER], "2026-07-28");
        assert_eq!(headers[&METHOD_HEADER], "resources/read");
        assert_eq!(headers[&NAME_HEADER], "file:///a%20b.txt");
        let meta = &body["params"]["_meta"];
        assert_eq!(meta[META_PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(meta[META_CLIENT_INFO]["name"], "mcp-app-server");
        assert_eq!(meta[META_CLIENT_CAPABILITIES], client_capabilities());
        for id in SUPPORTED_EXTENSIONS {
            assert_eq!(meta[META_CLIENT_CAPABILITIES]["extensions"][*id], json!({}));
        }
        assert_eq!(
            initialize_params("2025-11-25")["capabilities"],
            client_capabilities()
        );
        assert_eq!(meta["progressToken"], 1, "the caller's _meta is kept");
        assert_eq!(body["id"], 7);

        let (headers, _) = modern_request(1, "2026-07-28", "tools/list", json!({}));
        assert!(headers.get(&NAME_HEADER).is_none());
        let (headers, _) = modern_request(1, "2026-07-28", "prompts/get", json!({"name": "p"}));
        assert_eq!(headers[&NAME_HEADER], "p");
    }

    #[test]
    fn unsafe_values_are_base64_encoded() {
        assert_eq!(encode_header_value("get_weather"), "get_weather");
        assert_eq!(
            encode_header_value("Hello, 世界"),
            "=?base64?SGVsbG8sIOS4lueVjA==?="
        );
        assert_eq!(encode_header_value(" padded "), "=?base64?IHBhZGRlZCA=?=");
        assert_eq!(
            encode_header_value("line1\nline2"),
            "=?base64?bGluZTEKbGluZTI=?="
        );
        assert_eq!(
            encode_header_value("=?base64?literal?="),
            "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="
        );
    }

    #[test]
    fn supported_versions_of_an_error() {
        let data = json!({"supported": ["2026-07-28", 3, "2025-11-25"], "requested": "x"});
        assert_eq!(
            supported_versions(Some(&data)),
            ["2026-07-28", "2025-11-25"]
        );
        assert!(supported_versions(None).is_empty());
    }
}

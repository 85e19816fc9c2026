//! Opening a connection at the revision the server speaks (MCP 2026-07-28,
//! basic/versioning and the Streamable HTTP backward-compatibility rules).
//!
//! 1. `server/discover` on the modern wire. A result listing our modern revision: modern.
//!    An `UnsupportedProtocolVersionError` (or a result listing other versions): retry once
//!    with the best modern revision the server names, or go legacy when it names only
//!    legacy ones, or fail when we share none.
//! 2. Any other answer (a 4xx without a recognised modern error, `Method not found`, a
//!    result without `supportedVersions`) means a legacy server: `initialize` offering
//!    2025-11-25 (or the best legacy version the server named), then
//!    `notifications/initialized`; the server's answer is the revision, and must be one we
//!    speak.
//!
//! 401 and 403 along the way start a login (see `Session::handle`). A server that answers
//! `initialize` with 400, 405 or 406 instead of 401 gets one login attempt from its
//! well-known metadata, and the opening starts again with the token.

use serde_json::{Value, json};

use super::Session;
use crate::cli::engine::CliError;
use crate::cli::mcp_client::McpError;
use crate::mcp_wire::{
    DISCOVER_METHOD, Era, LEGACY_REVISION, META_SERVER_INFO, MODERN_REVISION, SUPPORTED_REVISIONS,
    UNSUPPORTED_PROTOCOL_VERSION, best_supported, era, initialize_params, is_modern_error,
    supported_versions,
};
use reqwest::StatusCode;

/// What the opening found.
#[derive(Debug, Clone)]
pub struct Hello {
    pub revision: String,
    pub server_name: String,
    pub server_version: String,
    pub capabilities: Value,
}

impl Hello {
    fn new(revision: &str, server_info: &Value, capabilities: &Value) -> Self {
        Self {
            revision: revision.to_string(),
            server_name: server_info["name"]
                .as_str()
                .unwrap_or("an MCP server")
                .to_string(),
            server_version: server_info["version"].as_str().unwrap_or("").to_string(),
            capabilities: capabilities.clone(),
        }
    }
}

/// What a modern `server/discover` attempt says about the server.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// It speaks this modern revision (the one asked for).
    Modern,
    /// Ask again at this modern revision.
    RetryModern(&'static str),
    /// A legacy server; offer this version in `initialize`.
    Legacy(&'static str),
    /// It names only versions we do not speak.
    NoCommonRevision(Vec<String>),
    /// A modern server refused the request for another reason; not a fallback case.
    Refused,
}

/// Judges the answer to `server/discover` sent at `asked`.
pub(super) fn judge_discover(asked: &str, answer: &Result<Value, McpError>) -> Verdict {
    let offered: Vec<String> = match answer {
        Ok(result) => match result.get("supportedVersions").and_then(Value::as_array) {
            Some(list) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            // `{}` or anything else without the list: not a discover result.
            None => return Verdict::Legacy(LEGACY_REVISION),
        },
        Err(e) => match e.rpc_error() {
            Some(rpc) if rpc.code == UNSUPPORTED_PROTOCOL_VERSION => {
                supported_versions(rpc.data.as_ref())
            }
            Some(rpc) if is_modern_error(rpc.code) => return Verdict::Refused,
            _ if matches!(e, McpError::Unreachable { .. } | McpError::Invalid { .. }) => {
                return Verdict::Refused;
            }
            _ => return Verdict::Legacy(LEGACY_REVISION),
        },
    };
    if answer.is_ok() && offered.iter().any(|v| v == asked) {
        return Verdict::Modern;
    }
    match best_supported(offered.iter().map(String::as_str)) {
        Some(best) if era(best) == Some(Era::Modern) => Verdict::RetryModern(best),
        Some(best) => Verdict::Legacy(best),
        // A discover result naming none of ours, or an error without a usable list.
        None if offered.is_empty() && answer.is_err() => Verdict::RetryModern(MODERN_REVISION),
        None => Verdict::NoCommonRevision(offered),
    }
}

impl Session<'_> {
    /// Negotiates the revision and opens the connection.
    pub(super) async fn open(&mut self) -> Result<Hello, CliError> {
        let mut logged_in_for_status = false;
        loop {
            match self.open_once().await? {
                Ok(hello) => return Ok(hello),
                Err(e) => {
                    let status = e.status().unwrap_or(0);
                    if logged_in_for_status
                        || self.token.is_some()
                        || !matches!(status, 400 | 405 | 406)
                    {
                        return Err(CliError::Failed(e.to_string()));
                    }
                    // No 401 anywhere, but maybe an OAuth-protected server all the same:
                    // discovery goes on to the well-known metadata.
                    logged_in_for_status = true;
                    let status = StatusCode::from_u16(status).expect("a status read from HTTP");
                    if let Err(login) = self.authorize(status, None).await {
                        return Err(CliError::Failed(format!("{e}; {login}")));
                    }
                }
            }
        }
    }

    async fn open_once(&mut self) -> Result<Result<Hello, McpError>, CliError> {
        let mut asked = MODERN_REVISION;
        let mut retried = false;
        let offer = loop {
            self.client.use_modern(asked);
            let answer = self.call(DISCOVER_METHOD, json!({})).await?;
            match judge_discover(asked, &answer) {
                Verdict::Modern => {
                    let result = answer.expect("a Modern verdict comes from a result");
                    let info = result
                        .get("_meta")
                        .and_then(|m| m.get(META_SERVER_INFO))
                        .or_else(|| result.get("serverInfo"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    return Ok(Ok(Hello::new(asked, &info, &result["capabilities"])));
                }
                Verdict::RetryModern(next) if !retried => {
                    tracing::debug!(asked, next, "server/discover: retrying at another revision");
                    retried = true;
                    asked = next;
                }
                Verdict::Legacy(offer) => break offer,
                Verdict::NoCommonRevision(offered) => {
                    return Err(CliError::Failed(format!(
                        "{} speaks MCP {}, none of which this client speaks ({})",
                        self.client.url(),
                        offered.join(", "),
                        SUPPORTED_REVISIONS.join(", ")
                    )));
                }
                Verdict::RetryModern(_) | Verdict::Refused => {
                    return Ok(Err(answer.err().unwrap_or_else(|| McpError::Invalid {
                        url: self.client.url().to_string(),
                        method: DISCOVER_METHOD.into(),
                        reason: "the server keeps refusing every revision it names".into(),
                    })));
                }
            }
        };

        self.client.use_legacy();
        let init = match self.call("initialize", initialize_params(offer)).await? {
            Ok(init) => init,
            Err(e) => return Ok(Err(e)),
        };
        let version = init["protocolVersion"].as_str().unwrap_or("");
        if era(version) != Some(Era::Legacy) {
            return Err(CliError::Failed(format!(
                "{} answered `initialize` with protocol version {version:?}, which this client \
                 does not speak over `initialize` (it speaks {})",
                self.client.url(),
                SUPPORTED_REVISIONS.join(", ")
            )));
        }
        let hello = Hello::new(version, &init["serverInfo"], &init["capabilities"]);
        self.client.set_legacy_version(version);
        self.notify("notifications/initialized").await?;
        Ok(Ok(hello))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::mcp_client::RpcError;

    fn status(code: u16, rpc: Option<(i64, Value)>) -> Result<Value, McpError> {
        Err(McpError::Status {
            url: "http://127.0.0.1/mcp".into(),
            method: DISCOVER_METHOD.into(),
            status: code,
            body: String::new(),
            rpc: rpc.map(|(code, data)| {
                Box::new(RpcError {
                    code,
                    message: "m".into(),
                    data: Some(data),
                })
            }),
        })
    }

    #[test]
    fn discover_results_and_errors_pick_the_era() {
        let asked = MODERN_REVISION;
        let ok = |v: Value| -> Result<Value, McpError> { Ok(v) };
        assert_eq!(
            judge_discover(asked, &ok(json!({"supportedVersions": ["2026-07-28"]}))),
            Verdict::Modern
        );
        // A legacy server answering the unknown method with an empty result.
        assert_eq!(
            judge_discover(asked, &ok(json!({}))),
            Verdict::Legacy("2025-11-25")
        );
        assert_eq!(
            judge_discover(asked, &ok(json!({"supportedVersions": ["2025-06-18"]}))),
            Verdict::Legacy("2025-06-18")
        );
        assert_eq!(
            judge_discover(asked, &ok(json!({"supportedVersions": ["2099-01-01"]}))),
            Verdict::NoCommonRevision(vec!["2099-01-01".into()])
        );
        // Unsupported version listing ours: ask again (even for the same revision).
        assert_eq!(
            judge_discover(
                asked,
                &status(400, Some((-32022, json!({"supported": ["2026-07-28"]}))))
            ),
            Verdict::RetryModern("2026-07-28")
        );
        assert_eq!(
            judge_discover(
                asked,
                &status(400, Some((-32022, json!({"supported": ["2025-03-26"]}))))
            ),
            Verdict::Legacy("2025-03-26")
        );
        assert_eq!(
            judge_discover(asked, &status(400, Some((-32020, json!(null))))),
            Verdict::Refused
        );
        // 4xx without a modern error, or Method not found: legacy.
        for answer in [
            status(400, None),
            status(404, None),
            status(405, None),
            status(400, Some((-32000, json!(null)))),
            Err(McpError::Rpc {
                method: DISCOVER_METHOD.into(),
                error: Box::new(RpcError {
                    code: -32601,
                    message: "Method not found".into(),
                    data: None,
                }),
            }),
        ] {
            assert_eq!(
                judge_discover(asked, &answer),
                Verdict::Legacy("2025-11-25")
            );
        }
        let unreachable = Err(McpError::Unreachable {
            url: "u".into(),
            reason: "r".into(),
        });
        assert_eq!(judge_discover(asked, &unreachable), Verdict::Refused);
    }
}

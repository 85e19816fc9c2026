//! One function per method.

use std::sync::Arc;

use mcp_app_server_protocol::{
    ClientRequest, ErrorKind, ListMcpServerStatusParams, ListMcpServerStatusResponse,
    McpAuthStatus, McpServerStatus, McpServerTransport, ReloadConfigResponse,
};
use serde::Serialize;
use serde_json::Value;

use super::error::{AppError, RequestError};
use super::server::ServerState;
use crate::config::{ConfigError, ServerTransport};

pub(crate) async fn dispatch(
    state: &Arc<ServerState>,
    request: ClientRequest,
) -> Result<Value, RequestError> {
    match request {
        ClientRequest::Initialize(_) => Err(RequestError::Internal(
            "initialize is handled by the connection".into(),
        )),
        ClientRequest::McpServerStatusList(p) => to_value(list_status(state, p)?),
        ClientRequest::ConfigMcpServerReload(_) => {
            state.reload_config().map_err(config_error)?;
            to_value(ReloadConfigResponse {})
        }
        other => Err(RequestError::Internal(format!(
            "`{}` is not available in this build",
            other.method()
        ))),
    }
}

fn to_value<T: Serialize>(v: T) -> Result<Value, RequestError> {
    serde_json::to_value(v).map_err(|e| RequestError::Internal(e.to_string()))
}

fn config_error(e: ConfigError) -> RequestError {
    AppError::new(ErrorKind::ConfigInvalid, e.to_string()).into()
}

const MAX_PAGE: u32 = 1000;

fn list_status(
    state: &ServerState,
    params: ListMcpServerStatusParams,
) -> Result<ListMcpServerStatusResponse, RequestError> {
    if let Some(limit) = params.limit
        && !(1..=MAX_PAGE).contains(&limit)
    {
        return Err(RequestError::InvalidParams(format!(
            "invalid params at `limit`: must be between 1 and {MAX_PAGE}"
        )));
    }
    let config = state.config().map_err(config_error)?;
    let after = params.cursor.as_deref();
    let limit = params.limit.unwrap_or(u32::MAX) as usize;
    let mut remaining = config
        .servers
        .values()
        .filter(|s| after.is_none_or(|c| s.name.as_str() > c));
    let mut data = Vec::new();
    for server in remaining.by_ref().take(limit) {
        data.push(match &server.transport {
            ServerTransport::Stdio { .. } => McpServerStatus {
                name: server.name.clone(),
                transport: McpServerTransport::Stdio,
                url: None,
                auth_status: McpAuthStatus::Unsupported,
                expires_at: None,
                scopes: None,
                registration: None,
                issuer: None,
            },
            ServerTransport::Http(http) => McpServerStatus {
                name: server.name.clone(),
                transport: McpServerTransport::StreamableHttp,
                url: Some(http.url.to_string()),
                auth_status: McpAuthStatus::NotLoggedIn,
                expires_at: None,
                scopes: None,
                registration: None,
                issuer: None,
            },
        });
    }
    let next_cursor = match (remaining.next(), data.last()) {
        (Some(_), Some(last)) => Some(last.name.clone()),
        _ => None,
    };
    Ok(ListMcpServerStatusResponse { data, next_cursor })
}

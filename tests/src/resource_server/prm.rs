//! Protected Resource Metadata (RFC 9728) at the path-form and/or root location.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::authorization_server::errors::not_found;
use crate::config::PrmMode;
use crate::counters::bump;
use crate::faults::{Endpoint, lock};
use crate::kit::Shared;

pub(crate) async fn path_form(State(s): State<Arc<Shared>>) -> Response {
    bump(&s.counters.prm_path);
    let served = matches!(s.config.prm, PrmMode::HeaderAndPath | PrmMode::PathOnly);
    serve(&s, served).await
}

pub(crate) async fn root_form(State(s): State<Arc<Shared>>) -> Response {
    bump(&s.counters.prm_root);
    serve(&s, s.config.prm == PrmMode::RootOnly).await
}

async fn serve(s: &Shared, served: bool) -> Response {
    if let Some(fault) = s.faults.intercept(Endpoint::Prm).await {
        return fault;
    }
    if !served {
        return not_found();
    }
    let mut doc = Map::new();
    let resource = s
        .config
        .prm_resource_override
        .clone()
        .unwrap_or_else(|| s.urls.resource.clone());
    doc.insert("resource".into(), json!(resource));
    let issuer = lock(&s.prm_authorization_server)
        .clone()
        .unwrap_or_else(|| s.urls.issuer.clone());
    doc.insert("authorization_servers".into(), json!([issuer]));
    if !s.config.scopes_supported.is_empty() {
        doc.insert("scopes_supported".into(), json!(s.config.scopes_supported));
    }
    doc.insert("bearer_methods_supported".into(), json!(["header"]));
    doc.insert("resource_name".into(), json!("mcp-app-server test kit"));
    if s.config.dpop_required {
        doc.insert("dpop_bound_access_tokens_required".into(), json!(true));
    }
    crate::authorization_server::metadata::with_max_age(s, Json(Value::Object(doc)).into_response())
}

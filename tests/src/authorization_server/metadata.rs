//! Authorization server metadata: RFC 8414 and OpenID Connect Discovery documents.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::errors::not_found;
use crate::counters::bump;
use crate::faults::Endpoint;
use crate::kit::Shared;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    OAuth,
    OpenId,
}

pub(crate) async fn oauth_metadata(State(s): State<Arc<Shared>>) -> Response {
    bump(&s.counters.as_metadata_oauth);
    serve(&s, Flavor::OAuth, false).await
}

pub(crate) async fn openid_metadata(State(s): State<Arc<Shared>>) -> Response {
    bump(&s.counters.as_metadata_openid);
    serve(&s, Flavor::OpenId, false).await
}

/// The OAuth document at [`crate::KitConfig::metadata_path`].
pub(crate) async fn custom_metadata(State(s): State<Arc<Shared>>) -> Response {
    bump(&s.counters.as_metadata_oauth);
    serve(&s, Flavor::OAuth, true).await
}

async fn serve(s: &Shared, flavor: Flavor, at_custom_path: bool) -> Response {
    if let Some(fault) = s.faults.intercept(Endpoint::AsMetadata).await {
        return fault;
    }
    let published = match flavor {
        _ if s.config.metadata_path.is_some() => at_custom_path,
        Flavor::OAuth => s.config.publish_oauth_metadata,
        Flavor::OpenId => s.config.publish_openid_metadata,
    };
    if !published {
        return not_found();
    }
    with_max_age(s, Json(document(s, flavor)).into_response())
}

/// Adds the kit's `Cache-Control: max-age`, when one is set.
pub(crate) fn with_max_age(s: &Shared, mut response: Response) -> Response {
    if let Some(secs) = *crate::faults::lock(&s.metadata_max_age) {
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            format!("max-age={secs}").parse().expect("a valid header"),
        );
    }
    response
}

/// RFC 8705 5: the endpoints that take client certificates, on the alias listener.
fn aliases(s: &Shared, origin: &str, moved: &str) -> Value {
    let c = &s.config;
    let base = format!("{origin}{}", s.urls.issuer_path);
    let mut aliases = Map::new();
    aliases.insert(
        "token_endpoint".into(),
        json!(format!("{base}{moved}/token")),
    );
    if c.revocation {
        aliases.insert(
            "revocation_endpoint".into(),
            json!(format!("{base}/revoke")),
        );
    }
    if c.dcr {
        aliases.insert(
            "registration_endpoint".into(),
            json!(format!("{base}{moved}/register")),
        );
    }
    if c.device.is_some() {
        aliases.insert(
            "device_authorization_endpoint".into(),
            json!(format!("{base}/device_authorization")),
        );
    }
    Value::Object(aliases)
}

fn document(s: &Shared, flavor: Flavor) -> Value {
    let c = &s.config;
    let issuer = &s.urls.issuer;
    let mut doc = Map::new();
    let claimed_issuer = if c.wrong_issuer {
        format!("{}/impostor{}", s.urls.as_origin, s.urls.issuer_path)
    } else if c.metadata_issuer_trailing_slash {
        format!("{issuer}/")
    } else {
        issuer.clone()
    };
    doc.insert("issuer".into(), json!(claimed_issuer));
    doc.insert(
        "authorization_endpoint".into(),
        json!(format!("{issuer}/authorize")),
    );
    let moved = if s.endpoints_moved.load(std::sync::atomic::Ordering::SeqCst) {
        "/v2"
    } else {
        ""
    };
    doc.insert(
        "token_endpoint".into(),
        json!(format!("{issuer}{moved}/token")),
    );
    if c.dcr {
        doc.insert(
            "registration_endpoint".into(),
            json!(format!("{issuer}{moved}/register")),
        );
    }
    if c.revocation {
        doc.insert(
            "revocation_endpoint".into(),
            json!(format!("{issuer}/revoke")),
        );
        doc.insert(
            "revocation_endpoint_auth_methods_supported".into(),
            json!(crate::mtls::auth_methods(c)),
        );
    }
    if !c.scopes_supported.is_empty() {
        doc.insert("scopes_supported".into(), json!(c.scopes_supported));
    }
    if !c.prompt_values_supported.is_empty() {
        doc.insert(
            "prompt_values_supported".into(),
            json!(c.prompt_values_supported),
        );
    }
    doc.insert("response_types_supported".into(), json!(["code"]));
    if c.dpop {
        doc.insert("dpop_signing_alg_values_supported".into(), json!(["ES256"]));
    }
    doc.insert("response_modes_supported".into(), json!(["query"]));
    let mut grants = vec!["authorization_code"];
    if c.issue_refresh_tokens {
        grants.push("refresh_token");
    }
    if c.client_credentials {
        grants.push("client_credentials");
    }
    if c.workload_key.is_some() || c.trusted_idp.is_some() {
        grants.push(super::grants::JWT_BEARER);
    }
    if c.device.is_some() {
        grants.push(super::device::DEVICE_CODE);
        doc.insert(
            "device_authorization_endpoint".into(),
            json!(format!("{issuer}/device_authorization")),
        );
    }
    doc.insert("grant_types_supported".into(), json!(grants));
    if c.token_endpoint_auth_methods
        .iter()
        .any(|m| m == "private_key_jwt")
    {
        doc.insert(
            "token_endpoint_auth_signing_alg_values_supported".into(),
            json!(["ES256"]),
        );
    }
    if c.s256_advertised {
        doc.insert("code_challenge_methods_supported".into(), json!(["S256"]));
    }
    doc.insert(
        "token_endpoint_auth_methods_supported".into(),
        json!(crate::mtls::auth_methods(c)),
    );
    if let Some(mtls) = &c.mtls {
        if mtls.bound_tokens {
            doc.insert(
                "tls_client_certificate_bound_access_tokens".into(),
                json!(true),
            );
        }
        if let Some(origin) = &s.urls.mtls_origin {
            doc.insert("mtls_endpoint_aliases".into(), aliases(s, origin, moved));
        }
    }
    let cimd_flag_here = flavor == Flavor::OpenId || !c.cimd_flag_only_in_openid;
    if c.cimd && cimd_flag_here {
        doc.insert("client_id_metadata_document_supported".into(), json!(true));
    }
    doc.insert(
        "authorization_response_iss_parameter_supported".into(),
        json!(c.send_iss),
    );
    for member in &c.metadata_without {
        doc.remove(member);
    }
    Value::Object(doc)
}

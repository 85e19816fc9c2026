//! The authorization endpoint. Errors found before the redirect URI is trusted (client,
//! redirect URI) are an HTML page; later ones go back to the client as `error=...`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use url::Url;

use super::cimd;
use super::errors::error_page;
use crate::checks::{
    Form, html_escape, is_loopback_ip_http, is_valid_s256_challenge, random_token,
    redirect_uri_allowed, split_scopes,
};
use crate::counters::bump;
use crate::faults::{Endpoint, lock};
use crate::kit::Shared;
use crate::store::{Client, CodeGrant, PendingApproval};

/// Codes live ten minutes (RFC 6749 4.1.2 recommends at most that).
const CODE_LIFETIME: Duration = Duration::from_secs(600);

enum Outcome {
    Page(&'static str, String),
    Redirect(String),
    Consent(String),
}

fn page(code: &'static str, description: impl Into<String>) -> Outcome {
    Outcome::Page(code, description.into())
}

/// `redirect_uri` with `params` appended to its query (existing query kept).
fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(redirect_uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        Err(_) => redirect_uri.to_owned(),
    }
}

fn response_params<'a>(
    s: &'a Shared,
    mut params: Vec<(&'a str, &'a str)>,
    state: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    if let Some(state) = state {
        params.push(("state", state));
    }
    if let (true, Some(iss)) = (s.config.send_iss, s.urls.iss.as_deref()) {
        params.push(("iss", iss));
    }
    params
}

fn error_redirect(
    s: &Shared,
    redirect_uri: &str,
    code: &str,
    description: &str,
    state: Option<&str>,
) -> String {
    let params = response_params(
        s,
        vec![("error", code), ("error_description", description)],
        state,
    );
    redirect_with(redirect_uri, &params)
}

fn success_redirect(s: &Shared, redirect_uri: &str, code: &str, state: Option<&str>) -> String {
    redirect_with(
        redirect_uri,
        &response_params(s, vec![("code", code)], state),
    )
}

pub(crate) async fn authorize(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    bump(&s.counters.authorize);
    let form = Form::parse(query.as_deref().unwrap_or("").as_bytes());
    {
        let mut records = lock(&s.records);
        records.last_authorize_query = Some(form.to_map());
        records
            .authorize_prompts
            .push(form.get("prompt").map(str::to_owned));
    }
    if let Some(fault) = s.faults.intercept(Endpoint::Authorize).await {
        return fault;
    }
    match evaluate(&s, &form).await {
        Outcome::Page(code, description) => error_page(StatusCode::BAD_REQUEST, code, &description),
        Outcome::Redirect(location) => found(&location),
        Outcome::Consent(id) => consent_page(&s, &id),
    }
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_owned())]).into_response()
}

async fn resolve_client(
    s: &Shared,
    client_id: &str,
    redirect_uri: &str,
    state: Option<&str>,
) -> Result<Client, Outcome> {
    let known = lock(&s.store).clients.get(client_id).cloned();
    if let Some(client) = known.filter(|c| !c.from_metadata_document) {
        return Ok(client);
    }
    if !s.config.cimd || !cimd::is_url_client_id(client_id) {
        return Err(page("invalid_client", "unknown client_id"));
    }
    if s.config.reject_cimd {
        // A policy refusal, made without fetching. Only loopback redirect URIs are sent
        // back to, so the kit never acts as an open redirector.
        let loopback = Url::parse(redirect_uri).is_ok_and(|u| is_loopback_ip_http(&u));
        return Err(if loopback {
            Outcome::Redirect(error_redirect(
                s,
                redirect_uri,
                "invalid_client",
                "this server does not accept this client metadata document",
                state,
            ))
        } else {
            page("invalid_client", "client metadata documents are refused")
        });
    }
    let client = cimd::resolve(&s.http, client_id, redirect_uri, &s.counters.cimd_fetch)
        .await
        .map_err(|why| page("invalid_client", why))?;
    lock(&s.store)
        .clients
        .insert(client_id.to_owned(), client.clone());
    Ok(client)
}

async fn evaluate(s: &Shared, form: &Form) -> Outcome {
    if let Some(dup) = form.duplicate(&["resource"])
        && (dup == "client_id" || dup == "redirect_uri")
    {
        return page("invalid_request", format!("parameter {dup} is repeated"));
    }
    let Some(client_id) = form.get_nonempty("client_id") else {
        return page("invalid_request", "client_id is missing");
    };
    let Some(redirect_uri) = form.get_nonempty("redirect_uri") else {
        return page("invalid_request", "redirect_uri is missing");
    };
    let state = form.get_nonempty("state");
    let client = match resolve_client(s, client_id, redirect_uri, state).await {
        Ok(client) => client,
        Err(outcome) => return outcome,
    };
    if Url::parse(redirect_uri).is_err()
        || !redirect_uri_allowed(&client.redirect_uris, redirect_uri)
    {
        return page(
            "invalid_request",
            "redirect_uri is not registered for this client",
        );
    }

    let back = |code: &str, description: &str| {
        Outcome::Redirect(error_redirect(s, redirect_uri, code, description, state))
    };
    if let Some(dup) = form.duplicate(&["resource"]) {
        return back("invalid_request", &format!("parameter {dup} is repeated"));
    }
    match form.get_nonempty("response_type") {
        Some("code") => {}
        None => return back("invalid_request", "response_type is missing"),
        Some(_) => {
            return back(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    let Some(challenge) = form.get_nonempty("code_challenge") else {
        return back(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        );
    };
    match form.get_nonempty("code_challenge_method") {
        Some("S256") => {}
        None => return back("invalid_request", "code_challenge_method must be S256"),
        Some(_) => {
            return back(
                "invalid_request",
                "transform algorithm not supported; use code_challenge_method=S256",
            );
        }
    }
    if !is_valid_s256_challenge(challenge) {
        return back(
            "invalid_request",
            "code_challenge is not a base64url SHA-256 digest",
        );
    }
    let resource = match form.all("resource").as_slice() {
        [] => return back("invalid_target", "resource is required (RFC 8707)"),
        [one] if *one == s.urls.resource || s.config.also_protects.iter().any(|r| r == one) => {
            (*one).to_owned()
        }
        [_] => {
            return back(
                "invalid_target",
                "resource is not a resource this server protects",
            );
        }
        _ => return back("invalid_target", "exactly one resource is expected"),
    };
    let scopes = split_scopes(form.get("scope").unwrap_or(""));
    let supported = &s.config.scopes_supported;
    if !supported.is_empty() && scopes.iter().any(|sc| !supported.contains(sc)) {
        return back("invalid_scope", "a requested scope is not supported");
    }

    let user = lock(&s.signed_in_user).clone();
    let mut store = lock(&s.store);
    let grant = CodeGrant {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        code_challenge: challenge.to_owned(),
        resource,
        scopes,
        expires_at: Instant::now() + CODE_LIFETIME,
        used: false,
        family: store.new_family(),
    };
    if let Some(user) = user {
        store.family_users.insert(grant.family, user);
    }
    if s.config.auto_approve {
        let code = store.issue_code(grant);
        Outcome::Redirect(success_redirect(s, redirect_uri, &code, state))
    } else {
        let id = random_token();
        store.pending.push(PendingApproval {
            id: id.clone(),
            grant,
            state: state.map(str::to_owned),
        });
        Outcome::Consent(id)
    }
}

fn consent_page(s: &Shared, id: &str) -> Response {
    let action = format!("{}/authorize/decision", s.urls.issuer);
    Html(format!(
        "<!doctype html><html><head><title>Authorize</title></head><body>\
         <h1>Allow access to the MCP server?</h1>\
         <form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"request_id\" value=\"{}\">\
         <button name=\"decision\" value=\"approve\">Approve</button>\
         <button name=\"decision\" value=\"deny\">Deny</button></form></body></html>",
        html_escape(&action),
        html_escape(id)
    ))
    .into_response()
}

/// The redirect for a consent decision: a fresh code, or `access_denied`.
pub(crate) fn decide(s: &Shared, pending: PendingApproval, approve: bool) -> String {
    let redirect_uri = pending.grant.redirect_uri.clone();
    let state = pending.state.as_deref();
    if approve {
        let code = lock(&s.store).issue_code(pending.grant.clone());
        success_redirect(s, &redirect_uri, &code, state)
    } else {
        error_redirect(
            s,
            &redirect_uri,
            "access_denied",
            "the user denied the request",
            state,
        )
    }
}

/// The consent page's form target.
pub(crate) async fn decision(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    if let Some(fault) = s.faults.intercept(Endpoint::Authorize).await {
        return fault;
    }
    let form = Form::parse(&body);
    let id = form.get("request_id").unwrap_or("");
    let pending = {
        let mut store = lock(&s.store);
        let index = store.pending.iter().position(|p| p.id == id);
        index.map(|i| store.pending.remove(i))
    };
    let Some(pending) = pending else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "unknown or already decided authorization request",
        );
    };
    let location = decide(&s, pending, form.get("decision") == Some("approve"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

//! The sign-in at the enterprise identity provider: OpenID Connect authorization code with
//! PKCE, `state` and `nonce`, through the same callback listener as every login. The
//! callback path is `/callback/<callback id of the issuer>`. It runs as the pending login of
//! the server that asked for it (so cancel, paste-back and timeouts work as for any login);
//! once the ID token is stored, that server's exchange runs and the login is announced.

use std::sync::{Arc, Mutex};

use serde_json::Value;
use url::Url;

use crate::config::enterprise::EnterpriseIdpConfig;
use crate::credentials::unix_now;
use crate::engine::enterprise::idp::{IdpSession, check_id_token, read_id_token, resolve_auth};
use crate::engine::error::{EnterpriseError, LoginError, VendError};
use crate::engine::flow::login_ending;
use crate::engine::service::OAuthService;
use crate::engine::state::control::{Control, EndReason, channel as control_channel};
use crate::engine::state::logins::PendingLogin;
use crate::engine::target::{EnterpriseTarget, ServerTarget};
use crate::engine::types::{LoginOptions, SignInStarted};
use crate::oauth::authorization::{Pkce, new_state};
use crate::oauth::callback::{
    CallbackError, CallbackOutcome, ExpectedCallback, PageNames, callback_path, redirect_uri,
};
use crate::oauth::callback_id::callback_id;
use crate::oauth::grants::client_credentials::secret_method;
use crate::oauth::grants::id_jag::authenticate;
use crate::oauth::token::{TokenError, request_token_body};

/// What the callback of the sign-in is checked against and the code exchanged with.
struct SignIn {
    pkce: Pkce,
    nonce: String,
    redirect_uri: Url,
    token_endpoint: Url,
    secret_method: String,
}

impl OAuthService {
    pub(super) async fn start_idp_sign_in(
        self: &Arc<Self>,
        target: ServerTarget,
        enterprise: EnterpriseTarget,
        options: LoginOptions,
    ) -> Result<SignInStarted, LoginError> {
        let idp = &enterprise.idp;
        let metadata = self.idp_metadata(idp).await?;
        if !metadata.supports_s256() {
            return Err(LoginError::Enterprise(EnterpriseError::IdpDiscovery {
                issuer: idp.issuer.clone(),
                reason:
                    "its metadata does not list PKCE `S256` in code_challenge_methods_supported"
                        .into(),
            }));
        }
        let issuer_url = Url::parse(&idp.issuer).map_err(|e| {
            LoginError::Enterprise(EnterpriseError::IdpDiscovery {
                issuer: idp.issuer.clone(),
                reason: format!("not a URL ({e})"),
            })
        })?;
        self.end_login(&target.name, EndReason::Superseded);
        let id = callback_id(&issuer_url);
        let state = new_state();
        let expected = ExpectedCallback {
            callback_path: callback_path(target.callback_url.as_ref(), &id),
            state: state.clone(),
            issuer: Some(idp.issuer.clone()),
            iss_required: metadata.authorization_response_iss_parameter_supported,
        };
        let callback = self.callbacks.register(
            target.callback_port,
            target.callback_url.as_ref(),
            expected.clone(),
        )?;
        callback.describe(PageNames::new(
            options.frontend.as_deref(),
            Some(&target.name),
        ));
        let redirect = redirect_uri(target.callback_url.as_ref(), callback.port, &id);
        let redirect_url = Url::parse(&redirect).map_err(|e| {
            LoginError::Enterprise(EnterpriseError::IdpDiscovery {
                issuer: idp.issuer.clone(),
                reason: format!("the redirect URI {redirect} is not a URL ({e})"),
            })
        })?;
        let sign_in = SignIn {
            pkce: Pkce::new(),
            nonce: new_state(),
            redirect_uri: redirect_url,
            token_endpoint: metadata.token_endpoint.clone(),
            secret_method: secret_method(metadata.token_endpoint_auth_methods_supported.as_deref())
                .as_str()
                .to_string(),
        };
        let mut url = metadata.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &idp.client_id)
            .append_pair("redirect_uri", &redirect)
            .append_pair("scope", &idp.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &sign_in.nonce)
            .append_pair("code_challenge", sign_in.pkce.challenge())
            .append_pair("code_challenge_method", "S256");

        let login_id = self.new_id();
        let (control_tx, mut control_rx) = control_channel();
        let pending = Arc::new(PendingLogin {
            id: login_id,
            expected: Mutex::new(Some(expected)),
            control: control_tx,
        });
        if let Some(older) = self.lock_logins().insert(target.name.clone(), pending) {
            older.control.end(EndReason::Superseded);
        }
        let service = self.clone();
        let flow = tokio::spawn(async move {
            let name = target.name.clone();
            let deadline = tokio::time::Instant::now() + options.timeout;
            // The registration lives as long as the sign-in waits (dropping it frees the path).
            let mut callback = callback;
            let mut paste_reply = None;
            let outcome: Result<CallbackOutcome, LoginError> = tokio::select! {
                outcome = &mut callback.outcome => Ok(outcome.unwrap_or(CallbackOutcome::Error(
                    CallbackError::ListenerClosed { reason: "the callback listener stopped".into() },
                ))),
                msg = control_rx.recv() => match msg {
                    Control::Paste(outcome, reply) => {
                        paste_reply = Some(reply);
                        Ok(*outcome)
                    }
                    Control::End(EndReason::Cancelled) => Err(LoginError::Cancelled),
                    Control::End(EndReason::Superseded) => Err(LoginError::Superseded),
                    Control::End(EndReason::ShuttingDown) => Err(LoginError::ShuttingDown),
                },
                _ = tokio::time::sleep_until(deadline) => Err(LoginError::TimedOut(format!(
                    "the browser did not come back from the identity provider within {} s; start the login again and sign in there",
                    options.timeout.as_secs()
                ))),
            };
            let result = match outcome {
                Ok(CallbackOutcome::Code { code }) => {
                    service
                        .finish_sign_in(&target, &enterprise, &options, &sign_in, &code)
                        .await
                }
                Ok(CallbackOutcome::Error(CallbackError::Superseded)) => {
                    Err(LoginError::Superseded)
                }
                Ok(CallbackOutcome::Error(e)) => Err(LoginError::Authorization(e)),
                Err(e) => Err(e),
            };
            callback.finish(login_ending(&result));
            drop(callback);
            {
                let mut logins = service.lock_logins();
                if logins.get(&name).is_some_and(|p| p.id == login_id) {
                    logins.remove(&name);
                }
            }
            if let Some(reply) = paste_reply.take() {
                let _ = reply.send(result.as_ref().map(|_| ()).map_err(|e| e.to_string()));
            }
            service.announce_login(&name, target.account.clone(), &result.map_err(Arc::new));
        });
        self.track_flow(flow);
        Ok(SignInStarted {
            authorization_url: url,
            redirect_uri: redirect,
        })
    }

    /// The code for an ID token (checked), the session saved, then the server's exchange.
    async fn finish_sign_in(
        &self,
        target: &ServerTarget,
        enterprise: &EnterpriseTarget,
        options: &LoginOptions,
        sign_in: &SignIn,
        code: &str,
    ) -> Result<(), LoginError> {
        let idp = &enterprise.idp;
        let Some(saving) = self.begin_token_call() else {
            return Err(LoginError::ShuttingDown);
        };
        let auth = resolve_auth(idp.auth.as_ref(), None, "[enterprise_idp]")
            .await
            .map_err(LoginError::Enterprise)?;
        let methods = [sign_in.secret_method.clone()];
        let (auth_form, headers) = authenticate(
            &idp.client_id,
            auth.as_ref(),
            Some(&methods),
            &idp.issuer,
            unix_now(),
        )
        .map_err(|error| {
            LoginError::Enterprise(EnterpriseError::Credential {
                what: "[enterprise_idp]".into(),
                error,
            })
        })?;
        let redirect = sign_in.redirect_uri.to_string();
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect),
            ("code_verifier", sign_in.pkce.verifier()),
        ];
        form.extend(auth_form.iter().map(|(k, v)| (*k, v.as_str())));
        let http = self.idp_http(idp).await;
        let body = request_token_body(&http, &sign_in.token_endpoint, &form, &headers)
            .await
            .map_err(LoginError::TokenExchange)?;
        let session = session_from_answer(idp, sign_in, &body)?;
        self.save_idp_session(session.clone()).await?;
        drop(saving);
        tracing::info!(issuer = %idp.issuer, "signed in to the enterprise identity provider");
        self.enterprise_login_with(target, enterprise, options, &session)
            .await
    }

    /// A new ID token from the identity provider's refresh token; the session is saved
    /// before it is used.
    pub(super) async fn refresh_idp_session(
        &self,
        idp: &EnterpriseIdpConfig,
        session: &IdpSession,
    ) -> Result<IdpSession, VendError> {
        let Some(refresh_token) = session.refresh_token.as_deref() else {
            return Err(VendError::Enterprise(EnterpriseError::IdToken(
                "expired and there is no refresh token".into(),
            )));
        };
        let auth = resolve_auth(idp.auth.as_ref(), None, "[enterprise_idp]")
            .await
            .map_err(VendError::Enterprise)?;
        let methods =
            (!session.secret_method.is_empty()).then(|| vec![session.secret_method.clone()]);
        let (auth_form, headers) = authenticate(
            &idp.client_id,
            auth.as_ref(),
            methods.as_deref(),
            &idp.issuer,
            unix_now(),
        )
        .map_err(|error| {
            VendError::Enterprise(EnterpriseError::Credential {
                what: "[enterprise_idp]".into(),
                error,
            })
        })?;
        let scope = idp.scopes.join(" ");
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("scope", &scope),
        ];
        form.extend(auth_form.iter().map(|(k, v)| (*k, v.as_str())));
        let endpoint = Url::parse(&session.token_endpoint).map_err(|e| {
            VendError::Enterprise(EnterpriseError::IdpDiscovery {
                issuer: idp.issuer.clone(),
                reason: format!("the stored token endpoint is not a URL ({e})"),
            })
        })?;
        let Some(_saving) = self.begin_token_call() else {
            return Err(VendError::ShuttingDown);
        };
        let http = self.idp_http(idp).await;
        let body = request_token_body(&http, &endpoint, &form, &headers)
            .await
            .map_err(|error| {
                VendError::Enterprise(EnterpriseError::IdToken(format!(
                    "could not be refreshed ({error})"
                )))
            })?;
        let answer = read_answer(&endpoint, &body).map_err(VendError::IdpAnswer)?;
        let claims = read_id_token(&answer.id_token).map_err(VendError::Enterprise)?;
        check_id_token(&claims, &idp.issuer, &idp.client_id, None, unix_now())
            .map_err(VendError::Enterprise)?;
        let renewed = IdpSession {
            id_token: answer.id_token,
            refresh_token: answer
                .refresh_token
                .or_else(|| session.refresh_token.clone()),
            expires_at: claims.exp,
            ..session.clone()
        };
        self.save_idp_session(renewed.clone()).await?;
        Ok(renewed)
    }
}

struct OidcAnswer {
    id_token: String,
    refresh_token: Option<String>,
}

/// The `id_token` (required) and `refresh_token` of an OpenID Connect token answer.
fn read_answer(endpoint: &Url, body: &[u8]) -> Result<OidcAnswer, TokenError> {
    let invalid = |reason: &str| TokenError::Invalid {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let value: Value =
        serde_json::from_slice(body).map_err(|_| invalid("the answer is not a JSON object"))?;
    let id_token = match value.get("id_token") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(invalid(
                "the answer has no `id_token`; is `openid` among the scopes?",
            ));
        }
    };
    let refresh_token = value
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    Ok(OidcAnswer {
        id_token,
        refresh_token,
    })
}

fn session_from_answer(
    idp: &EnterpriseIdpConfig,
    sign_in: &SignIn,
    body: &[u8],
) -> Result<IdpSession, LoginError> {
    let answer = read_answer(&sign_in.token_endpoint, body).map_err(LoginError::TokenExchange)?;
    let claims = read_id_token(&answer.id_token).map_err(LoginError::Enterprise)?;
    check_id_token(
        &claims,
        &idp.issuer,
        &idp.client_id,
        Some(&sign_in.nonce),
        unix_now(),
    )
    .map_err(LoginError::Enterprise)?;
    Ok(IdpSession {
        issuer: idp.issuer.clone(),
        id_token: answer.id_token,
        refresh_token: answer.refresh_token,
        expires_at: claims.exp,
        token_endpoint: sign_in.token_endpoint.to_string(),
        client_id: idp.client_id.clone(),
        secret_method: sign_in.secret_method.clone(),
    })
}

//! The device login (RFC 8628, rules 75 to 78): for a machine whose loopback listener no
//! browser can reach. Discovery as for any login, a client id (the configured one, else a
//! DCR registration for the device grant), the device authorization request, an answer with
//! the code and the URL for the user, then polling of the token endpoint in the background
//! on a tokio timer until the tokens come (stored exactly as a browser login's are), the
//! user refuses, the code expires, or the login is cancelled or replaced. Ends with exactly
//! one `LoginCompleted` once it answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_app_server_protocol::{McpAuthStatus, RegistrationKind};
use tokio::time::Instant;

use crate::credentials::{StoredRegistration, unix_now};
use crate::engine::error::LoginError;
use crate::engine::flow::{Discovered, binds_dpop, warn_if_unbound};
use crate::engine::service::OAuthService;
use crate::engine::state::control::{
    Control, ControlReceiver, EndReason, channel as control_channel,
};
use crate::engine::state::logins::PendingLogin;
use crate::engine::stored::credentials_from;
use crate::engine::target::ServerTarget;
use crate::engine::types::{CLIENT_NAME, DeviceStarted, LoginOptions, OAuthEvent};
use crate::oauth::device::{
    DeviceAuthorization, DeviceError, PollStep, next_interval, poll_step, poll_token,
    request_device_authorization,
};
use crate::oauth::discovery::Probe;
use crate::oauth::dpop::{self, TokenDpop};
use crate::oauth::registration::dcr::{DEVICE_REGISTRATION_KEY, register_device_client};
use crate::oauth::registration::{ClientRegistration, TokenAuthMethod};
use crate::oauth::token::{TokenError, TokenResponse};

/// One poll's answer, as the polling loop sees it.
type PollFuture<'a> = Pin<Box<dyn Future<Output = Result<TokenResponse, TokenError>> + Send + 'a>>;

/// Polls with `poll` every `interval` (grown by 5 s at each `slow_down`, rule 77) until it
/// answers tokens, the authorization server ends the login (`access_denied`,
/// `expired_token`, another refusal), `deadline` passes, or `control` ends the login. A
/// poll under way when the login ends is dropped: its answer is never used. Network
/// trouble is polled through (the deadline bounds it). Never sleeps past the deadline.
pub(crate) async fn poll_until<'a>(
    mut interval: Duration,
    deadline: Instant,
    control: &mut ControlReceiver,
    poll: impl Fn() -> PollFuture<'a>,
) -> Result<TokenResponse, LoginError> {
    let mut next = Instant::now() + interval;
    loop {
        tokio::select! {
            biased;
            msg = control.recv() => match msg {
                Control::End(reason) => return Err(ended(reason)),
                Control::Paste(_, reply) => {
                    let _ = reply.send(Err(
                        "this is a device login: the user enters the code at the verification URL; there is no redirect to paste".into(),
                    ));
                    continue;
                }
            },
            _ = tokio::time::sleep_until(next.min(deadline)) => {}
        }
        if Instant::now() >= deadline {
            return Err(LoginError::DeviceExpired);
        }
        let answer = tokio::select! {
            biased;
            msg = control.recv() => match msg {
                Control::End(reason) => return Err(ended(reason)),
                // Answered at the next wait; a paste cannot end a device login.
                Control::Paste(_, reply) => {
                    let _ = reply.send(Err("this is a device login: there is no redirect to paste".into()));
                    continue;
                }
            },
            answer = poll() => answer,
        };
        let step = match answer {
            Ok(tokens) => return Ok(tokens),
            Err(e) => match poll_step(&e) {
                PollStep::Denied => return Err(LoginError::DeviceDenied),
                PollStep::Expired => return Err(LoginError::DeviceExpired),
                PollStep::Failed => return Err(LoginError::TokenExchange(e)),
                step => {
                    if step == PollStep::Retry {
                        tracing::debug!(error = %e, "device login poll failed for now; polling on");
                    }
                    step
                }
            },
        };
        interval = next_interval(interval, step);
        next = Instant::now() + interval;
    }
}

fn ended(reason: EndReason) -> LoginError {
    match reason {
        EndReason::Cancelled => LoginError::Cancelled,
        EndReason::Superseded => LoginError::Superseded,
        EndReason::ShuttingDown => LoginError::ShuttingDown,
    }
}

/// What a device login's background task carries.
struct DeviceFlow {
    target: ServerTarget,
    found: Discovered,
    registration: ClientRegistration,
    authorization: DeviceAuthorization,
    dpop: bool,
}

impl OAuthService {
    /// Starts a device login: answers with the code and URL once the device authorization
    /// is had; the polling goes on in the background and ends with one `LoginCompleted`.
    /// `Ok(None)` when `fall_back` and the authorization server has no device endpoint
    /// (`auto`): the caller starts the browser login instead.
    pub(in crate::engine) async fn start_device_login(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
        refused: Option<Probe>,
        fall_back: bool,
    ) -> Result<Option<DeviceStarted>, LoginError> {
        let found = self
            .discover_for_login(&target, options.scopes.as_deref(), refused)
            .await?;
        let Some(endpoint) = found
            .discovery
            .metadata
            .device_authorization_endpoint
            .clone()
        else {
            if fall_back {
                return Ok(None);
            }
            return Err(LoginError::DeviceUnavailable {
                name: target.name.clone(),
                reason: format!(
                    "its authorization server {} publishes no device_authorization_endpoint; log in with the browser (flow \"browser\"; on a machine the browser cannot reach, paste the redirect with mcpServer/oauth/complete)",
                    found.discovery.issuer
                ),
            });
        };
        // A newer login for the same server replaces the older one.
        self.end_login(&target.name, EndReason::Superseded);
        let (mut registration, mut reused) = self.device_client(&target, &found).await?;
        let scope = found.scopes.as_ref().map(|s| s.join(" "));
        let authorization = loop {
            match request_device_authorization(
                &found.http,
                &endpoint,
                &registration,
                scope.as_deref(),
                &found.discovery.resource,
            )
            .await
            {
                Ok(authorization) => break authorization,
                // The server pruned the stored registration: forget it, register once more.
                Err(DeviceError::Endpoint(e)) if reused && e.is_client_rejected() => {
                    tracing::info!(server = %target.name, error = %e, "the authorization server no longer knows the stored device client registration; registering again");
                    let issuer = found.discovery.metadata.issuer.clone();
                    self.registration_saves
                        .forget(&issuer, DEVICE_REGISTRATION_KEY);
                    self.queue
                        .write(move |s| s.delete_registration(&issuer, DEVICE_REGISTRATION_KEY))
                        .await?;
                    (registration, _) = self.device_client(&target, &found).await?;
                    // Once only: a fresh registration refused is the server's final word.
                    reused = false;
                }
                Err(e) => return Err(LoginError::DeviceAuthorization(e)),
            }
        };
        let started = DeviceStarted {
            verification_uri: authorization.verification_uri.clone(),
            verification_uri_complete: authorization.verification_uri_complete.clone(),
            user_code: authorization.user_code.clone(),
            expires_at: unix_now()
                .saturating_add(i64::try_from(authorization.expires_in.as_secs()).unwrap_or(0)),
            interval: authorization.interval,
        };
        let login_id = self.new_id();
        let (control_tx, control_rx) = control_channel();
        let pending = Arc::new(PendingLogin {
            id: login_id,
            expected: Mutex::new(None),
            control: control_tx,
        });
        if let Some(older) = self.lock_logins().insert(target.name.clone(), pending) {
            older.control.end(EndReason::Superseded);
        }
        let flow = Box::new(DeviceFlow {
            target,
            found,
            registration,
            authorization,
            dpop: options.dpop,
        });
        let service = self.clone();
        let task =
            tokio::spawn(async move { service.run_device_flow(flow, login_id, control_rx).await });
        self.track_flow(task);
        Ok(Some(started))
    }

    /// The client a device login uses: the configured client id, else the DCR registration
    /// kept for device logins at this issuer, else a new one (rule 75); and whether it is a
    /// stored DCR registration (which the server may have pruned). A client metadata
    /// document is not used: its redirect URIs say nothing of the device grant.
    async fn device_client(
        &self,
        target: &ServerTarget,
        found: &Discovered,
    ) -> Result<(ClientRegistration, bool), LoginError> {
        let metadata = &found.discovery.metadata;
        if let Some(client_id) = &target.client_id {
            let registration = target.preregistered_client(client_id, metadata)?;
            return Ok((registration, false));
        }
        let issuer = metadata.issuer.clone();
        let auth = target.registration_auth(metadata)?;
        let certificate = target.certificate_x5t();
        if let Some(reg) = self
            .stored_registration(&issuer, DEVICE_REGISTRATION_KEY)
            .await?
            .filter(|reg| !reg.secret_expiring(unix_now()) && reg.certificate_x5t == certificate)
        {
            let registration = ClientRegistration {
                kind: RegistrationKind::Dcr,
                client_id: reg.client_id,
                client_secret: reg.client_secret,
                auth_method: TokenAuthMethod::from_name(&reg.token_endpoint_auth_method)
                    .unwrap_or(TokenAuthMethod::None),
            };
            return Ok((registration, true));
        }
        let Some(registration_endpoint) = metadata.registration_endpoint.as_ref() else {
            return Err(LoginError::DeviceUnavailable {
                name: target.name.clone(),
                reason: "the daemon has no client id there: configure `client_id` in the server's [mcp_servers.NAME.oauth] table (a client registered for the device grant), since its authorization server offers no Dynamic Client Registration".into(),
            });
        };
        let (reg, secret_expires_at) = register_device_client(
            &found.http,
            registration_endpoint,
            CLIENT_NAME,
            found.scopes.as_deref(),
            metadata.token_endpoint_auth_methods_supported.as_deref(),
            &auth,
        )
        .await?;
        let stored = StoredRegistration {
            issuer,
            redirect_uri: DEVICE_REGISTRATION_KEY.to_string(),
            client_id: reg.client_id.clone(),
            client_secret: reg.client_secret.clone(),
            token_endpoint_auth_method: reg.auth_method.as_str().to_string(),
            registered_at: unix_now(),
            client_secret_expires_at: secret_expires_at,
            certificate_x5t: target.certificate_x5t(),
        };
        if let Err(e) = self.registration_saves.save(&self.queue, stored).await {
            tracing::warn!(server = %target.name, error = %e, "the new client registration was not saved; the next device login registers again");
        }
        Ok((reg, false))
    }

    async fn run_device_flow(
        self: Arc<Self>,
        flow: Box<DeviceFlow>,
        login_id: u64,
        mut control: ControlReceiver,
    ) {
        let name = flow.target.name.clone();
        let account = flow.target.account.clone();
        let result = self.poll_and_store(&flow, &mut control).await;
        if matches!(
            result,
            Err(LoginError::TokenExchange(_) | LoginError::DeviceAuthorization(_))
        ) {
            self.cache
                .invalidate_issuer(&flow.found.discovery.issuer)
                .await;
        }
        {
            let mut logins = self.lock_logins();
            if logins.get(&name).is_some_and(|p| p.id == login_id) {
                logins.remove(&name);
            }
        }
        match &result {
            Ok(()) => {
                tracing::info!(server = %name, "device login completed");
                self.emit(OAuthEvent::AuthStatusChanged {
                    name: name.clone(),
                    status: McpAuthStatus::LoggedIn,
                    reason: None,
                });
            }
            Err(e) => tracing::warn!(server = %name, error = %e, "device login failed"),
        }
        self.emit(OAuthEvent::LoginCompleted {
            name,
            account,
            result: result.map_err(Arc::new),
        });
    }

    /// The polling, then the tokens stored under the server's refresh lock as a browser
    /// login's are (rule 19: another issuer's tokens replaced).
    async fn poll_and_store(
        &self,
        flow: &DeviceFlow,
        control: &mut ControlReceiver,
    ) -> Result<(), LoginError> {
        let DeviceFlow {
            target,
            found,
            registration,
            authorization,
            dpop: login_can_prove,
        } = flow;
        // A new key per login when the tokens are to be bound (rule 49); every poll proves it.
        let dpop_key = if binds_dpop(target.dpop, *login_can_prove, &found.discovery) {
            Some(dpop::generate_key().map_err(|e| LoginError::Dpop(e.to_string()))?)
        } else {
            None
        };
        let deadline = Instant::now() + authorization.expires_in;
        let metadata = &found.discovery.metadata;
        let poll = || -> PollFuture<'_> {
            Box::pin(async {
                // Shutdown waits for a poll under way; none starts once it began.
                let Some(_call) = self.begin_token_call() else {
                    return Err(TokenError::Transient {
                        endpoint: metadata.token_endpoint.to_string(),
                        reason: "the daemon is shutting down".into(),
                    });
                };
                poll_token(
                    &found.http,
                    &metadata.token_endpoint,
                    registration,
                    &authorization.device_code,
                    &found.discovery.resource,
                    dpop_key.as_ref().map(|(key, _)| TokenDpop {
                        key,
                        nonces: &self.dpop_nonces,
                        slot: &target.name,
                    }),
                )
                .await
            })
        };
        let tokens = poll_until(authorization.interval, deadline, control, poll).await?;
        let lock_key = target.key();
        let _refresh_lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let Some(_saving) = self.begin_token_call() else {
            return Err(LoginError::ShuttingDown);
        };
        let mut creds = credentials_from(
            target,
            &found.discovery,
            registration,
            tokens,
            found.scopes.clone().unwrap_or_default(),
        );
        if let Some((_, stored)) = dpop_key {
            warn_if_unbound(&target.name, &creds.token_type);
            creds.dpop_key = Some(stored);
        }
        self.forget_tokens_of_other_issuer(target, creds).await
    }
}

#[cfg(test)]
mod tests;

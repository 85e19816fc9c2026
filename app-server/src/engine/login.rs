//! The login flow: discovery, registration, the browser round trip, the code exchange.
//!
//! Built from the step modules (discovery, registration, authorization, callback, token) and
//! the credential store; ends every login with exactly one `LoginCompleted`.

mod attempt;
mod context;
mod preregister;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mcp_app_server_protocol::{LoginFlowChoice, LoginGrant, McpAuthStatus, RegistrationKind};
use tokio::sync::oneshot;
use url::Url;

use crate::credentials::{StoredCredentials, Update};
use crate::engine::error::{ClientSecretError, CompleteError, LoginError};
use crate::engine::flow::{
    Discovered, binds_dpop, login_ending, no_local_browser, warn_escape_hatches, warn_if_unbound,
};
use crate::engine::login::context::{Attempt, FlowContext, cimd_source};
use crate::engine::service::OAuthService;
use crate::engine::state::control::{
    Control, ControlReceiver, EndReason, PasteReply, channel as control_channel,
};
use crate::engine::state::logins::PendingLogin;
use crate::engine::stored::{adds_account, credentials_from};
use crate::engine::target::ServerTarget;
use crate::engine::types::{EnterpriseLogin, LoginBegun, LoginOptions, LoginStarted, OAuthEvent};
use crate::oauth::authorization::account_prompt;
use crate::oauth::callback::{
    CallbackError, CallbackOutcome, callback_path, parse_pasted_callback,
};
use crate::oauth::callback_id::callback_id;
use crate::oauth::discovery::{
    DiscoveryError, Probe, discover_after_probe, discover_shared, issuers_match,
};
use crate::oauth::dpop::{self, TokenDpop};
use crate::oauth::http::header_map;
use crate::oauth::registration::CimdSource;
use crate::oauth::token::{self, TokenError};

impl OAuthService {
    /// Starts a login. With the browser login, answers with the authorization URL; the flow
    /// goes on in the background. With a configured grant that needs no browser, answers
    /// once the tokens are stored. Either way the login ends with exactly one
    /// `LoginCompleted` once it got past discovery.
    pub async fn start_login(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
    ) -> Result<LoginBegun, Arc<LoginError>> {
        self.begin_login(target, options, None).await
    }

    /// A login the user asked for (`mcpServer/oauth/login`, the CLI): the one place that
    /// chooses how the server is logged in to. An enterprise-managed server goes through the
    /// identity provider's sign-in and the token exchange; any other through
    /// [`OAuthService::start_login_after`] (a configured grant, else the browser).
    pub async fn begin_login(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
        refused: Option<Probe>,
    ) -> Result<LoginBegun, Arc<LoginError>> {
        let Some(enterprise) = target.enterprise.clone() else {
            return self.start_login_after(target, options, refused).await;
        };
        Ok(
            match self
                .start_enterprise_login(target, enterprise, options)
                .await?
            {
                EnterpriseLogin::Done => LoginBegun::Obtained(LoginGrant::EnterpriseManaged),
                EnterpriseLogin::SignIn(s) => LoginBegun::IdpSignIn(LoginStarted {
                    authorization_url: s.authorization_url,
                    redirect_uri: s.redirect_uri,
                }),
            },
        )
    }

    /// `target` with its client secret read from the OS keyring when config.toml keeps it
    /// there (rule 71): on a blocking thread, since the keyring may wait for an unlock
    /// prompt (at most 60 s).
    async fn with_keyring_secret(
        &self,
        mut target: ServerTarget,
    ) -> Result<ServerTarget, ClientSecretError> {
        let Some(label) = target.client_secret_keyring.clone() else {
            return Ok(target);
        };
        if target.client_secret.is_some() {
            return Ok(target);
        }
        let keyring = self.client_secrets.clone();
        let read = tokio::task::spawn_blocking({
            let label = label.clone();
            move || keyring.get(&label)
        })
        .await;
        let name = target.name.clone();
        match read {
            Ok(Ok(Some(secret))) => {
                target.client_secret = Some(secret);
                Ok(target)
            }
            Ok(Ok(None)) => Err(ClientSecretError::Missing { name, label }),
            Ok(Err(e)) => Err(ClientSecretError::Unavailable {
                name,
                reason: e.reason,
            }),
            Err(e) => Err(ClientSecretError::Unavailable {
                name,
                reason: format!("the keyring call failed ({e})"),
            }),
        }
    }

    /// [`OAuthService::start_login`] for a caller that already holds the server's 401 or 403
    /// answer (an MCP client whose request was refused): discovery starts from that challenge
    /// instead of probing, since a server may let the probe's `initialize` through.
    pub async fn start_login_after(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
        refused: Option<Probe>,
    ) -> Result<LoginBegun, Arc<LoginError>> {
        if target.grant.is_machine() {
            return self
                .grant_login(target, options, refused)
                .await
                .map(LoginBegun::Obtained);
        }
        // Rule 76: `device` always; `auto` only where no local browser can come back, and
        // then only if the authorization server offers it (else the browser login, whose
        // discovery the cache then answers).
        let (device, fall_back) = match options.flow {
            LoginFlowChoice::Browser => (false, false),
            LoginFlowChoice::Device => (true, false),
            LoginFlowChoice::Auto => (no_local_browser(), true),
        };
        if device {
            let started = self
                .start_device_login(target.clone(), options.clone(), refused, fall_back)
                .await
                .map_err(Arc::new)?;
            if let Some(started) = started {
                return Ok(LoginBegun::Device(started));
            }
            return self
                .start_browser_login(target, options, None)
                .await
                .map_err(Arc::new);
        }
        self.start_browser_login(target, options, refused)
            .await
            .map_err(Arc::new)
    }

    /// The browser login: discovery, registration, the authorization URL; the rest runs in
    /// the background.
    async fn start_browser_login(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
        refused: Option<Probe>,
    ) -> Result<LoginBegun, LoginError> {
        // Checked before any network I/O: a bad base is the caller's (or the config's) to fix.
        let cimd_source = cimd_source(&target, &options)?;
        let target = self.with_keyring_secret(target).await?;

        // A newer login for the same server replaces the older one.
        self.end_login(&target.name, EndReason::Superseded);
        let adds_account = match self.stored_set().await {
            Ok(stored) => adds_account(&stored, &target),
            Err(e) => {
                tracing::warn!(server = %target.name, error = %e, "cannot read the credential store; the login asks for no account choice");
                false
            }
        };

        let found = self
            .discover_for_login(&target, options.scopes.as_deref(), refused)
            .await?;
        // Another server's login at the same authorization server may serve this one
        // (rules 85 and 86).
        if self.shared_login(&target, &options, &found).await? {
            return Ok(LoginBegun::Obtained(LoginGrant::SharedLogin));
        }
        let Discovered {
            http,
            discovery,
            cached,
            scopes,
        } = found;
        let id = callback_id(&target.url);
        let path = callback_path(target.callback_url.as_ref(), &id);
        // Boxed, as is the attempt: the pending login's task then holds two pointers, not
        // the context by value (1,000 logins may wait).
        let mut ctx = Box::new(FlowContext {
            port: target.callback_port,
            target,
            http,
            options,
            discovery,
            cached,
            scopes,
            // Filled in once the listener's port is known.
            redirect_uri: Url::parse("http://127.0.0.1/").expect("static URL"),
            callback_path: path,
            prompt: None,
        });
        if adds_account {
            ctx.prompt = Some(account_prompt(
                ctx.discovery.metadata.prompt_values_supported.as_deref(),
            ));
        }
        let mut prepared = self
            .prepare_attempt(&mut ctx, cimd_source.as_ref(), false)
            .await;
        if let Err(e) = &prepared
            && ctx.cached
            && registration_endpoint_gone(e)
        {
            // The cached metadata named a registration endpoint that is gone: discover
            // again and go on, once.
            tracing::info!(server = %ctx.target.name, error = %e, "cached metadata is stale; discovering again");
            self.discover_again(&mut ctx).await?;
            prepared = self
                .prepare_attempt(&mut ctx, cimd_source.as_ref(), false)
                .await;
        }
        let attempt = match prepared {
            Ok(a) => Box::new(a),
            Err(e) => {
                if implicates_metadata(&e) {
                    self.cache.invalidate_issuer(&ctx.discovery.issuer).await;
                }
                return Err(e);
            }
        };
        let url = self.authorization_url(&ctx, &attempt);
        let login_id = self.new_id();
        let (control_tx, control_rx) = control_channel();
        let pending = Arc::new(PendingLogin {
            id: login_id,
            expected: Mutex::new(Some(self.expected(&ctx, &attempt))),
            control: control_tx,
        });
        // Two logins started at once for one server: the later one wins here too.
        if let Some(older) = self.lock_logins().insert(ctx.target.name.clone(), pending) {
            older.control.end(EndReason::Superseded);
        }
        let redirect_uri = ctx.redirect_uri.to_string();
        let service = self.clone();
        let flow = tokio::spawn(async move {
            service
                .run_flow(ctx, attempt, cimd_source, login_id, control_rx)
                .await
        });
        self.track_flow(flow);
        Ok(LoginBegun::Browser(LoginStarted {
            authorization_url: url,
            redirect_uri,
        }))
    }

    async fn run_flow(
        self: Arc<Self>,
        mut ctx: Box<FlowContext>,
        mut attempt: Box<Attempt>,
        cimd_source: Option<CimdSource>,
        login_id: u64,
        mut control: ControlReceiver,
    ) {
        let name = ctx.target.name.clone();
        let account = ctx.target.account.clone();
        // The login has answered; now the registration it made is saved for later logins.
        Box::pin(self.save_registration(&name, &mut attempt)).await;
        // While the user is in the browser: the lock the code exchange takes is made ready,
        // so the completion only opens it. On the store's writing lane: one thread for all
        // the logins started at once, not one each.
        let lock_key = ctx.target.key();
        if let Err(e) = self
            .queue
            .write(move |s| s.prepare_refresh_lock(&lock_key))
            .await
        {
            tracing::debug!(server = %name, error = %e, "refresh lock not prepared; made at completion");
        }
        let deadline = tokio::time::Instant::now() + ctx.options.timeout;
        let mut restarted = false;
        let mut paste_reply: Option<PasteReply> = None;
        let result: Result<(), LoginError> = loop {
            let outcome = tokio::select! {
                outcome = &mut attempt.callback.outcome => match outcome {
                    Ok(o) => o,
                    Err(_) => CallbackOutcome::Error(CallbackError::ListenerClosed {
                        reason: "the callback listener stopped".into(),
                    }),
                },
                msg = control.recv() => match msg {
                    Control::Paste(outcome, reply) => {
                        paste_reply = Some(reply);
                        *outcome
                    }
                    Control::End(EndReason::Cancelled) => break Err(LoginError::Cancelled),
                    Control::End(EndReason::Superseded) => break Err(LoginError::Superseded),
                    Control::End(EndReason::ShuttingDown) => break Err(LoginError::ShuttingDown),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    break Err(LoginError::TimedOut(timeout_message(&ctx, &attempt)));
                }
            };
            // A refused client (a metadata document, or a stale stored registration) gets one
            // restart with a fresh registration, whether the refusal came on the callback or
            // at the token endpoint.
            let refusal = match outcome {
                // Boxed: a pending login's task then holds only what waiting needs, not
                // the state of a token request it may never make (1,000 logins may wait).
                CallbackOutcome::Code { code } => {
                    match Box::pin(self.finish(&ctx, &attempt, &code)).await {
                        Err(LoginError::TokenExchange(e)) if e.is_client_rejected() => {
                            Rejection::AtTokenEndpoint(e)
                        }
                        Err(LoginError::TokenExchange(e))
                            if ctx.cached && token_endpoint_gone(&e) =>
                        {
                            Rejection::StaleMetadata(e)
                        }
                        other => break other,
                    }
                }
                CallbackOutcome::Error(CallbackError::Superseded) => {
                    break Err(LoginError::Superseded);
                }
                CallbackOutcome::Error(e) if client_refused(&e) => Rejection::OnCallback(e),
                CallbackOutcome::Error(e) => break Err(LoginError::Authorization(e)),
            };
            let stale = matches!(refusal, Rejection::StaleMetadata(_));
            if restarted || !(stale || self.can_fall_back(&attempt)) {
                break Err(refusal.into_error());
            }
            let reason = refusal.to_string();
            if let Err(err) = Box::pin(self.restart(
                &mut ctx,
                &mut attempt,
                cimd_source.as_ref(),
                login_id,
                &reason,
                stale,
            ))
            .await
            {
                break Err(err);
            }
            restarted = true;
            reply_paste(&mut paste_reply, Err(refusal.restart_message().into()));
        };

        if result.as_ref().is_err_and(implicates_metadata) {
            self.cache.invalidate_issuer(&ctx.discovery.issuer).await;
        }
        {
            let mut logins = self.lock_logins();
            if logins.get(&name).is_some_and(|p| p.id == login_id) {
                logins.remove(&name);
            }
        }
        attempt.callback.finish(login_ending(&result));
        drop(attempt);
        match &result {
            Ok(()) => tracing::info!(server = %name, "login completed"),
            Err(e) => tracing::warn!(server = %name, error = %e, "login failed"),
        }
        reply_paste(
            &mut paste_reply,
            result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        );
        if result.is_ok() {
            self.emit(OAuthEvent::AuthStatusChanged {
                name: name.clone(),
                status: McpAuthStatus::LoggedIn,
                reason: None,
            });
        }
        self.emit(OAuthEvent::LoginCompleted {
            name,
            account,
            result: result.map_err(Arc::new),
        });
    }

    /// Exchanges the code and stores the credentials. Runs under the server's refresh lock,
    /// taken before the code is spent: a refresh that started from older tokens can neither
    /// overwrite these nor be overwritten half way, in this process or another. Shutdown
    /// waits until the answer is saved.
    async fn finish(
        &self,
        ctx: &FlowContext,
        attempt: &Attempt,
        code: &str,
    ) -> Result<(), LoginError> {
        let lock_key = ctx.target.key();
        let _refresh_lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let Some(_saving) = self.begin_token_call() else {
            return Err(LoginError::ShuttingDown);
        };
        let metadata = &ctx.discovery.metadata;
        // A new key per login when the tokens are to be bound (RFC 9449, rule 49).
        let dpop_key = if binds_dpop(ctx.target.dpop, ctx.options.dpop, &ctx.discovery) {
            Some(dpop::generate_key().map_err(|e| LoginError::Dpop(e.to_string()))?)
        } else {
            None
        };
        let tokens = token::exchange_code(
            &ctx.http,
            &metadata.token_endpoint,
            &attempt.registration,
            code,
            attempt.pkce.verifier(),
            &ctx.redirect_uri,
            &ctx.discovery.resource,
            dpop_key.as_ref().map(|(key, _)| TokenDpop {
                key,
                nonces: &self.dpop_nonces,
                slot: &ctx.target.name,
            }),
        )
        .await
        .map_err(LoginError::TokenExchange)?;
        let mut creds = credentials_from(
            &ctx.target,
            &ctx.discovery,
            &attempt.registration,
            tokens,
            ctx.scopes.clone().unwrap_or_default(),
        );
        if let Some((_, stored)) = dpop_key {
            warn_if_unbound(&ctx.target.name, &creds.token_type);
            creds.dpop_key = Some(stored);
        }
        self.forget_tokens_of_other_issuer(&ctx.target, creds).await
    }

    /// Discovery for a login (from the server's refusal when the caller holds one, else by
    /// probing), the check of a configured client's issuer (rule 27), and the scopes to ask
    /// for. Shared by the browser login and the grants that need none.
    pub(super) async fn discover_for_login(
        &self,
        target: &ServerTarget,
        asked_scopes: Option<&[String]>,
        refused: Option<Probe>,
    ) -> Result<Discovered, LoginError> {
        let headers = header_map(
            target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| LoginError::Discovery(DiscoveryError::from(e)))?;
        // Everything the server's answers name is held to its network policy; the probe of
        // the configured URL itself is not.
        let http = self.server_http(target).await;
        let resource_override = target.resource_override.as_deref();
        let overrides = target.discovery_overrides();
        let (discovery, cached) = match refused {
            None => {
                discover_shared(
                    &http,
                    &target.url,
                    &headers,
                    resource_override,
                    overrides,
                    &self.cache,
                )
                .await?
            }
            Some(probe) => {
                let found = discover_after_probe(
                    &http,
                    &target.url,
                    &headers,
                    resource_override,
                    overrides,
                    &self.cache,
                    probe,
                )
                .await?;
                let cached = found.cached;
                (Arc::new(found), cached)
            }
        };
        warn_escape_hatches(&target.name, &discovery);
        self.check_preregistered_binding(target, &discovery.metadata.issuer)
            .await?;
        self.remember_discovered(target, discovery.protected_resource_url.as_ref());
        let scopes = discovery.scopes_for(asked_scopes, target.configured_scopes.as_deref());
        Ok(Discovered {
            http,
            discovery,
            cached,
            scopes,
        })
    }

    /// Cancels the pending login of a server.
    pub fn cancel(&self, name: &str) -> bool {
        self.end_login(name, EndReason::Cancelled)
    }

    pub(super) fn end_login(&self, name: &str, reason: EndReason) -> bool {
        match self.lock_logins().remove(name) {
            Some(p) => p.control.end(reason),
            None => false,
        }
    }

    /// Finishes a pending login from a pasted redirect URL; answers once the tokens are
    /// stored (or with what failed).
    pub async fn complete(&self, name: &str, callback_url: &str) -> Result<(), CompleteError> {
        let pending = self
            .lock_logins()
            .get(name)
            .cloned()
            .ok_or_else(|| CompleteError::NoPendingLogin(name.to_string()))?;
        let expected = pending
            .expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| CompleteError::DeviceLogin(name.to_string()))?;
        let outcome = parse_pasted_callback(callback_url, &expected)?;
        let (tx, rx) = oneshot::channel();
        // Waits while the login's paste slots are taken; fails once the login ended.
        pending
            .control
            .paste(outcome, tx)
            .await
            .map_err(|_| CompleteError::NoPendingLogin(name.to_string()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(CompleteError::Authorization(
                CallbackError::ListenerClosed { reason: message },
            )),
            Err(_) => Err(CompleteError::NoPendingLogin(name.to_string())),
        }
    }

    pub(super) fn lock_logins(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PendingLogin>>> {
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rule 27 for a configured `client_id`: it belongs to one authorization server, the
    /// configured `oauth.issuer` when set, else the issuer the stored credentials obtained
    /// with that same client id came from. When discovery names another issuer the login
    /// stops before anything is sent there (the stored tokens are kept for the user to
    /// decide). Without either record the configured client is trusted as it always was.
    pub(super) async fn check_preregistered_binding(
        &self,
        target: &ServerTarget,
        issuer: &str,
    ) -> Result<(), LoginError> {
        let Some(client_id) = target.client_id.clone() else {
            return Ok(());
        };
        let registered_with = match &target.client_issuer {
            Some(pinned) => Some(pinned.clone()),
            None => {
                let key = target.key();
                let stored = self.queue.load(key).await?;
                stored
                    .filter(|c| {
                        c.client.kind == RegistrationKind::Preregistered
                            && c.client.client_id == client_id
                    })
                    .map(|c| c.issuer)
            }
        };
        match registered_with {
            Some(registered_with) if !issuers_match(&registered_with, issuer) => {
                Err(LoginError::Registration(
                    crate::oauth::registration::RegistrationError::PreregisteredForOtherIssuer {
                        server: target.name.clone(),
                        client_id,
                        registered_with,
                        issuer: issuer.to_string(),
                    },
                ))
            }
            _ => Ok(()),
        }
    }

    /// Rule 19: tokens belong to the issuer that issued them. A finished login's
    /// credentials replace whatever the server had stored, in one locked read-modify-write,
    /// so tokens of a previous authorization server are deleted exactly when the login to
    /// the new one succeeded (a cancelled, failed or forged login leaves them in place) and
    /// are never refreshed, revoked or sent anywhere again.
    pub(super) async fn forget_tokens_of_other_issuer(
        &self,
        target: &ServerTarget,
        creds: StoredCredentials,
    ) -> Result<(), LoginError> {
        let key = creds.key();
        let other = Arc::new(AtomicBool::new(false));
        let seen = other.clone();
        self.store_update(
            key,
            Box::new(move |old| {
                let changed = old.is_some_and(|o| !issuers_match(&o.issuer, &creds.issuer));
                seen.store(changed, Ordering::Relaxed);
                Update::Save(creds)
            }),
        )
        .await?;
        let replaced_other_issuer = other.load(Ordering::Relaxed);
        if replaced_other_issuer {
            tracing::info!(
                server = %target.name,
                "the server's authorization server changed; the tokens of the previous one were deleted"
            );
        }
        Ok(())
    }
}

/// The authorization server refused the client itself, or the cached metadata is stale.
enum Rejection {
    OnCallback(CallbackError),
    AtTokenEndpoint(TokenError),
    /// The token endpoint of the cached metadata is gone.
    StaleMetadata(TokenError),
}

/// An HTTP status that says the endpoint is not (or no longer) there.
fn endpoint_gone_status(status: u16) -> bool {
    matches!(status, 404 | 405 | 410)
}

fn registration_endpoint_gone(e: &LoginError) -> bool {
    use crate::oauth::registration::RegistrationError;
    match e {
        LoginError::Registration(RegistrationError::Rejected { status, .. }) => {
            endpoint_gone_status(*status)
        }
        LoginError::Registration(RegistrationError::Http(h)) => h.is_transient(),
        _ => false,
    }
}

fn token_endpoint_gone(e: &TokenError) -> bool {
    match e {
        TokenError::OAuth { status, .. } => endpoint_gone_status(*status),
        // A status without an OAuth error body: the reason starts with `HTTP <status>`.
        TokenError::Invalid { reason, .. } => reason
            .strip_prefix("HTTP ")
            .and_then(|r| r.get(..3))
            .and_then(|code| code.parse().ok())
            .is_some_and(endpoint_gone_status),
        TokenError::Transient { .. } => false,
    }
}

impl Rejection {
    fn into_error(self) -> LoginError {
        match self {
            Rejection::OnCallback(e) => LoginError::Authorization(e),
            Rejection::AtTokenEndpoint(e) | Rejection::StaleMetadata(e) => {
                LoginError::TokenExchange(e)
            }
        }
    }

    /// What a paste-back caller is told when the login restarts instead of finishing.
    fn restart_message(&self) -> &'static str {
        match self {
            Rejection::OnCallback(_) => {
                "the authorization server refused the client; the login restarted with a new authorization URL"
            }
            Rejection::AtTokenEndpoint(_) => {
                "the token endpoint refused the client; the login restarted with a new authorization URL"
            }
            Rejection::StaleMetadata(_) => {
                "the authorization server's endpoints changed; the login restarted with a new authorization URL"
            }
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::OnCallback(e) => e.fmt(f),
            Rejection::AtTokenEndpoint(e) | Rejection::StaleMetadata(e) => e.fmt(f),
        }
    }
}

/// A failed login whose cause may be the discovered metadata (wrong endpoints, a moved
/// server): the cache forgets it. A cancelled or superseded login says nothing about it.
/// That includes a callback whose `iss` is not the recorded issuer (RFC 9207): its code is
/// never exchanged, since it may come from a mix-up attack, and it is not retried at
/// another authorization server; the next login discovers the server again instead.
fn implicates_metadata(e: &LoginError) -> bool {
    matches!(
        e,
        LoginError::Registration(_)
            | LoginError::Authorization(_)
            | LoginError::TokenExchange(_)
            | LoginError::TimedOut(_)
    )
}

fn client_refused(e: &CallbackError) -> bool {
    matches!(e, CallbackError::OAuth { error, .. } if error == "invalid_client" || error == "unauthorized_client")
}

fn reply_paste(reply: &mut Option<PasteReply>, result: Result<(), String>) {
    if let Some(tx) = reply.take() {
        let _ = tx.send(result);
    }
}

fn timeout_message(ctx: &FlowContext, attempt: &Attempt) -> String {
    let secs = ctx.options.timeout.as_secs();
    if attempt.registration.kind == RegistrationKind::Cimd {
        // Rule 13: many servers show a refused client document as an error page and never
        // redirect back, so a timeout is all the daemon sees.
        format!(
            "the browser did not come back within {secs} s. The authorization server may have refused the client metadata document {} (many servers show an error page instead of redirecting back), for example because it could not fetch it; retry the login with clientRegistration \"dcr\" to use Dynamic Client Registration instead",
            attempt.registration.client_id
        )
    } else {
        format!(
            "the browser did not come back within {secs} s; start the login again and finish it in the browser"
        )
    }
}

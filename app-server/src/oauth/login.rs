//! The login flow: discovery, registration, the browser round trip, the code exchange.
//!
//! Built from the step modules (discovery, registration, authorization, callback, token) and
//! the credential store; ends every login with exactly one `LoginCompleted`.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mcp_app_server_protocol::{ClientRegistrationMode, McpAuthStatus, RegistrationKind};
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::authorization::{Pkce, build_authorization_url, new_state};
use super::callback::{
    CallbackError, CallbackListenError, CallbackOutcome, CallbackRegistration, ExpectedCallback,
    callback_path, parse_pasted_callback, redirect_uri,
};
use super::callback_id::callback_id;
use super::discovery::{
    Discovery, DiscoveryError, Probe, discover, discover_after_probe, issuers_match,
};
use super::error::LoginError;
use super::http::header_map;
use super::registration::cimd::{validate_base, validate_client_id_url};
use super::registration::{
    CimdSource, ClientRegistration, RegistrationChoice, TokenAuthMethod, choose_registration, dcr,
    preregistered,
};
use super::scopes::select_scopes;
use super::service::{OAuthEvent, OAuthService};
use super::target::ServerTarget;
use super::token::{self, TokenResponse};
use super::vending::apply_tokens;
use crate::credentials::{StoredClient, StoredCredentials, StoredRegistration, unix_now};

/// Name under which the daemon registers itself with authorization servers.
pub const CLIENT_NAME: &str = "mcp-app-server";
/// Default time a login waits for the browser.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// What the caller of a login may choose.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    pub scopes: Option<Vec<String>>,
    pub client_metadata_url_base: Option<String>,
    pub mode: ClientRegistrationMode,
    pub timeout: Duration,
}

impl Default for LoginOptions {
    fn default() -> Self {
        Self {
            scopes: None,
            client_metadata_url_base: None,
            mode: ClientRegistrationMode::Auto,
            timeout: DEFAULT_LOGIN_TIMEOUT,
        }
    }
}

/// A started login: the URL for the browser.
#[derive(Debug, Clone)]
pub struct LoginStarted {
    pub authorization_url: Url,
    pub redirect_uri: String,
}

/// Why a pending login ends early.
#[derive(Debug, Clone, Copy)]
pub(super) enum EndReason {
    Cancelled,
    Superseded,
    ShuttingDown,
}

enum Control {
    Paste(CallbackOutcome, oneshot::Sender<Result<(), String>>),
    End(EndReason),
}

pub(super) struct PendingLogin {
    id: u64,
    expected: Mutex<ExpectedCallback>,
    control: mpsc::UnboundedSender<Control>,
}

/// Everything the flow task needs to turn a code into stored credentials.
struct Attempt {
    registration: ClientRegistration,
    pkce: Pkce,
    state: String,
    callback: CallbackRegistration,
    /// The stored DCR registration was reused (a refusal may mean it is stale).
    reused_registration: bool,
}

struct FlowContext {
    target: ServerTarget,
    options: LoginOptions,
    discovery: Discovery,
    scopes: Option<Vec<String>>,
    redirect_uri: Url,
    callback_path: String,
    port: Option<u16>,
}

impl OAuthService {
    /// Starts a login and answers with the authorization URL; the flow goes on in the
    /// background and ends with exactly one `LoginCompleted`.
    pub async fn start_login(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
    ) -> Result<LoginStarted, LoginError> {
        self.start_login_after(target, options, None).await
    }

    /// [`OAuthService::start_login`] for a caller that already holds the server's 401 or 403
    /// answer (an MCP client whose request was refused): discovery starts from that challenge
    /// instead of probing, since a server may let the probe's `initialize` through.
    pub async fn start_login_after(
        self: &Arc<Self>,
        target: ServerTarget,
        options: LoginOptions,
        refused: Option<Probe>,
    ) -> Result<LoginStarted, LoginError> {
        // Checked before any network I/O: a bad base is the caller's (or the config's) to fix.
        let cimd_source = cimd_source(&target, &options)?;

        // A newer login for the same server replaces the older one.
        self.end_login(&target.name, EndReason::Superseded);

        let headers = header_map(
            target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| LoginError::Discovery(DiscoveryError::from(e)))?;
        let discovery = match refused {
            None => {
                discover(
                    &self.http,
                    &target.url,
                    &headers,
                    target.resource_override.as_deref(),
                    &self.cache,
                )
                .await?
            }
            Some(probe) => {
                discover_after_probe(
                    &self.http,
                    &target.url,
                    &headers,
                    target.resource_override.as_deref(),
                    &self.cache,
                    probe,
                )
                .await?
            }
        };
        self.forget_tokens_of_other_issuer(&target, &discovery.metadata.issuer)
            .await?;
        let scopes = select_scopes(
            options.scopes.as_deref(),
            target.configured_scopes.as_deref(),
            discovery
                .challenge
                .as_ref()
                .and_then(|c| c.scope.as_deref()),
            discovery
                .protected_resource
                .as_ref()
                .and_then(|p| p.scopes_supported.as_deref()),
            discovery.metadata.scopes_supported.as_deref(),
        );
        let id = callback_id(&target.url);
        let path = callback_path(target.callback_url.as_ref(), &id);
        let mut ctx = FlowContext {
            port: target.callback_port,
            target,
            options,
            discovery,
            scopes,
            // Filled in once the listener's port is known.
            redirect_uri: Url::parse("http://127.0.0.1/").expect("static URL"),
            callback_path: path,
        };
        let attempt = match self
            .prepare_attempt(&mut ctx, cimd_source.as_ref(), false)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                self.cache.invalidate(&ctx.discovery.issuer);
                return Err(e);
            }
        };
        let url = self.authorization_url(&ctx, &attempt);
        let login_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (control_tx, control_rx) = mpsc::unbounded_channel();
        let pending = Arc::new(PendingLogin {
            id: login_id,
            expected: Mutex::new(self.expected(&ctx, &attempt)),
            control: control_tx,
        });
        // Two logins started at once for one server: the later one wins here too.
        if let Some(older) = self.lock_logins().insert(ctx.target.name.clone(), pending) {
            let _ = older.control.send(Control::End(EndReason::Superseded));
        }
        let redirect_uri = ctx.redirect_uri.to_string();
        let service = self.clone();
        let flow = tokio::spawn(async move {
            service
                .run_flow(ctx, attempt, cimd_source, login_id, control_rx)
                .await
        });
        let mut flows = self.flows.lock().unwrap_or_else(|e| e.into_inner());
        flows.retain(|f| !f.is_finished());
        flows.push(flow);
        Ok(LoginStarted {
            authorization_url: url,
            redirect_uri,
        })
    }

    fn expected(&self, ctx: &FlowContext, attempt: &Attempt) -> ExpectedCallback {
        ExpectedCallback {
            callback_path: ctx.callback_path.clone(),
            state: attempt.state.clone(),
            issuer: Some(ctx.discovery.metadata.issuer.clone()),
            iss_required: ctx
                .discovery
                .metadata
                .authorization_response_iss_parameter_supported,
        }
    }

    fn authorization_url(&self, ctx: &FlowContext, attempt: &Attempt) -> Url {
        build_authorization_url(
            &ctx.discovery.metadata.authorization_endpoint,
            &attempt.registration.client_id,
            &ctx.redirect_uri,
            ctx.scopes.as_deref(),
            &ctx.discovery.resource,
            &attempt.state,
            attempt.pkce.challenge(),
        )
    }

    /// Registers the callback, picks (or makes) the client registration, and makes fresh
    /// PKCE and state. `avoid_cimd` after a refused document.
    async fn prepare_attempt(
        &self,
        ctx: &mut FlowContext,
        cimd_source: Option<&CimdSource>,
        avoid_cimd: bool,
    ) -> Result<Attempt, LoginError> {
        let state = new_state();
        let pkce = Pkce::new();
        let metadata = &ctx.discovery.metadata;
        let expected = ExpectedCallback {
            callback_path: ctx.callback_path.clone(),
            state: state.clone(),
            issuer: Some(metadata.issuer.clone()),
            iss_required: metadata.authorization_response_iss_parameter_supported,
        };
        let callback = self.callbacks.register(ctx.port, expected)?;
        // Keep the same port for later attempts of this login.
        ctx.port.get_or_insert(callback.port);
        ctx.redirect_uri = Url::parse(&redirect_uri(
            ctx.target.callback_url.as_ref(),
            callback.port,
            &callback_id(&ctx.target.url),
        ))
        .map_err(|e| {
            LoginError::CallbackListener(CallbackListenError::InvalidCallbackPath {
                path: format!("{} ({e})", ctx.callback_path),
            })
        })?;

        let issuer = metadata.issuer.clone();
        let cimd_refused = {
            let issuer = issuer.clone();
            self.blocking(move |s| s.cimd_refused(&issuer)).await?
        };
        let mode = if avoid_cimd {
            ClientRegistrationMode::Dcr
        } else {
            ctx.options.mode
        };
        let choice = match (&ctx.target.client_id, avoid_cimd) {
            // A configured client id always wins.
            (Some(client_id), _) => RegistrationChoice::Ready(preregistered::preregistered(
                client_id,
                ctx.target.client_secret.as_deref(),
                metadata.token_endpoint_auth_methods_supported.as_deref(),
            )?),
            (None, _) => choose_registration(
                mode,
                None,
                cimd_source,
                metadata,
                &callback_id(&ctx.target.url),
                &ctx.redirect_uri,
                cimd_refused,
            )?,
        };
        let (registration, reused) = match choice {
            RegistrationChoice::Ready(r) => (r, false),
            RegistrationChoice::Dcr {
                registration_endpoint,
            } => {
                let redirect = ctx.redirect_uri.to_string();
                let stored = {
                    let (issuer, redirect) = (issuer.clone(), redirect.clone());
                    self.blocking(move |s| s.load_registration(&issuer, &redirect))
                        .await?
                };
                // A refused stored registration was deleted before this restart, so what is
                // left here is still trusted.
                match stored {
                    Some(reg) => (registration_from_stored(&reg), true),
                    _ => {
                        let reg = dcr::register(
                            &self.http,
                            &registration_endpoint,
                            &ctx.redirect_uri,
                            CLIENT_NAME,
                            ctx.scopes.as_deref(),
                            metadata.token_endpoint_auth_methods_supported.as_deref(),
                        )
                        .await?;
                        let stored = StoredRegistration {
                            issuer: issuer.clone(),
                            redirect_uri: redirect,
                            client_id: reg.client_id.clone(),
                            client_secret: reg.client_secret.clone(),
                            token_endpoint_auth_method: reg.auth_method.as_str().to_string(),
                            registered_at: unix_now(),
                        };
                        self.blocking(move |s| s.save_registration(&stored)).await?;
                        (reg, false)
                    }
                }
            }
        };
        Ok(Attempt {
            registration,
            pkce,
            state,
            callback,
            reused_registration: reused,
        })
    }

    async fn run_flow(
        self: Arc<Self>,
        mut ctx: FlowContext,
        mut attempt: Attempt,
        cimd_source: Option<CimdSource>,
        login_id: u64,
        mut control: mpsc::UnboundedReceiver<Control>,
    ) {
        let name = ctx.target.name.clone();
        let deadline = tokio::time::Instant::now() + ctx.options.timeout;
        let mut restarted = false;
        let mut paste_reply: Option<oneshot::Sender<Result<(), String>>> = None;
        let result: Result<(), LoginError> = loop {
            let outcome = tokio::select! {
                outcome = &mut attempt.callback.outcome => match outcome {
                    Ok(o) => o,
                    Err(_) => CallbackOutcome::Error(CallbackError::ListenerClosed {
                        reason: "the callback listener stopped".into(),
                    }),
                },
                msg = control.recv() => match msg {
                    Some(Control::Paste(outcome, reply)) => {
                        paste_reply = Some(reply);
                        outcome
                    }
                    Some(Control::End(EndReason::Cancelled)) => break Err(LoginError::Cancelled),
                    Some(Control::End(EndReason::Superseded)) => break Err(LoginError::Superseded),
                    Some(Control::End(EndReason::ShuttingDown)) | None => break Err(LoginError::ShuttingDown),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    break Err(LoginError::TimedOut(timeout_message(&ctx, &attempt)));
                }
            };
            let code = match outcome {
                CallbackOutcome::Code { code } => code,
                CallbackOutcome::Error(CallbackError::Superseded) => {
                    break Err(LoginError::Superseded);
                }
                CallbackOutcome::Error(e) => {
                    if !restarted && client_refused(&e) && self.can_fall_back(&attempt) {
                        match self
                            .restart(
                                &mut ctx,
                                &mut attempt,
                                cimd_source.as_ref(),
                                login_id,
                                &e.to_string(),
                            )
                            .await
                        {
                            Ok(()) => {
                                restarted = true;
                                reply_paste(&mut paste_reply, Err("the authorization server refused the client; the login restarted with a new authorization URL".into()));
                                continue;
                            }
                            Err(err) => break Err(err),
                        }
                    }
                    break Err(LoginError::Authorization(e));
                }
            };
            match self.finish(&ctx, &attempt, &code).await {
                Err(LoginError::TokenExchange(e))
                    if !restarted && e.is_client_rejected() && self.can_fall_back(&attempt) =>
                {
                    match self
                        .restart(
                            &mut ctx,
                            &mut attempt,
                            cimd_source.as_ref(),
                            login_id,
                            &e.to_string(),
                        )
                        .await
                    {
                        Ok(()) => {
                            restarted = true;
                            reply_paste(&mut paste_reply, Err("the token endpoint refused the client; the login restarted with a new authorization URL".into()));
                            continue;
                        }
                        Err(err) => break Err(err),
                    }
                }
                other => break other,
            }
        };

        if result.is_err() {
            self.cache.invalidate(&ctx.discovery.issuer);
        }
        {
            let mut logins = self.lock_logins();
            if logins.get(&name).is_some_and(|p| p.id == login_id) {
                logins.remove(&name);
            }
        }
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
            });
        }
        self.emit(OAuthEvent::LoginCompleted {
            name,
            result: result.map_err(Arc::new),
        });
    }

    fn can_fall_back(&self, attempt: &Attempt) -> bool {
        attempt.registration.kind == RegistrationKind::Cimd || attempt.reused_registration
    }

    /// The server refused the client: a metadata document (never offer it to this issuer
    /// again) or a stale stored registration. Start over with a fresh registration.
    async fn restart(
        &self,
        ctx: &mut FlowContext,
        attempt: &mut Attempt,
        cimd_source: Option<&CimdSource>,
        login_id: u64,
        reason: &str,
    ) -> Result<(), LoginError> {
        let issuer = ctx.discovery.metadata.issuer.clone();
        let why = if attempt.registration.kind == RegistrationKind::Cimd {
            let i = issuer.clone();
            self.blocking(move |s| s.mark_cimd_refused(&i)).await?;
            format!(
                "the authorization server refused the client metadata document ({reason}); retrying with Dynamic Client Registration"
            )
        } else {
            let (i, r) = (issuer.clone(), ctx.redirect_uri.to_string());
            self.blocking(move |s| s.delete_registration(&i, &r))
                .await?;
            format!(
                "the authorization server no longer knows the stored client registration ({reason}); registering again"
            )
        };
        let fresh = self.prepare_attempt(ctx, cimd_source, true).await?;
        *attempt = fresh;
        let url = self.authorization_url(ctx, attempt);
        if let Some(p) = self
            .lock_logins()
            .get(&ctx.target.name)
            .filter(|p| p.id == login_id)
        {
            *p.expected.lock().unwrap_or_else(|e| e.into_inner()) = self.expected(ctx, attempt);
        }
        tracing::info!(server = %ctx.target.name, "login restarted with a new client registration");
        self.emit(OAuthEvent::LoginRestarted {
            name: ctx.target.name.clone(),
            authorization_url: url.to_string(),
            reason: why,
        });
        Ok(())
    }

    /// Exchanges the code and stores the credentials.
    async fn finish(
        &self,
        ctx: &FlowContext,
        attempt: &Attempt,
        code: &str,
    ) -> Result<(), LoginError> {
        let metadata = &ctx.discovery.metadata;
        let tokens = token::exchange_code(
            &self.http,
            &metadata.token_endpoint,
            &attempt.registration,
            code,
            attempt.pkce.verifier(),
            &ctx.redirect_uri,
            &ctx.discovery.resource,
        )
        .await
        .map_err(LoginError::TokenExchange)?;
        let creds = credentials_from(
            &ctx.target,
            &ctx.discovery,
            &attempt.registration,
            tokens,
            ctx.scopes.clone().unwrap_or_default(),
        );
        self.blocking(move |s| s.save(&creds)).await?;
        Ok(())
    }

    /// Cancels the pending login of a server.
    pub fn cancel(&self, name: &str) -> bool {
        self.end_login(name, EndReason::Cancelled)
    }

    pub(super) fn end_login(&self, name: &str, reason: EndReason) -> bool {
        match self.lock_logins().remove(name) {
            Some(p) => p.control.send(Control::End(reason)).is_ok(),
            None => false,
        }
    }

    /// Finishes a pending login from a pasted redirect URL; answers once the tokens are
    /// stored (or with what failed).
    pub async fn complete(&self, name: &str, callback_url: &str) -> Result<(), LoginError> {
        let pending = self
            .lock_logins()
            .get(name)
            .cloned()
            .ok_or_else(|| LoginError::NoPendingLogin(name.to_string()))?;
        let expected = pending
            .expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let outcome = parse_pasted_callback(callback_url, &expected)?;
        let (tx, rx) = oneshot::channel();
        pending
            .control
            .send(Control::Paste(outcome, tx))
            .map_err(|_| LoginError::NoPendingLogin(name.to_string()))?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(LoginError::Authorization(CallbackError::ListenerClosed {
                reason: message,
            })),
            Err(_) => Err(LoginError::NoPendingLogin(name.to_string())),
        }
    }

    pub(super) fn lock_logins(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PendingLogin>>> {
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Rule 19: tokens belong to the issuer that issued them. When discovery names another
    /// authorization server than the stored credentials do, they are deleted before the
    /// login goes on, so they are never refreshed, revoked or sent anywhere again.
    async fn forget_tokens_of_other_issuer(
        &self,
        target: &ServerTarget,
        issuer: &str,
    ) -> Result<(), LoginError> {
        let key = target.key();
        let issuer = issuer.to_string();
        let deleted = self
            .blocking(move |s| {
                // Not while a refresh of the old tokens runs.
                let _lock = s.refresh_lock(&key)?;
                match s.load(&key)? {
                    Some(creds) if !issuers_match(&creds.issuer, &issuer) => s.delete(&key),
                    _ => Ok(false),
                }
            })
            .await?;
        if deleted {
            tracing::info!(
                server = %target.name,
                "the server's authorization server changed; its stored tokens were deleted"
            );
            self.emit(OAuthEvent::AuthStatusChanged {
                name: target.name.clone(),
                status: McpAuthStatus::NotLoggedIn,
            });
        }
        Ok(())
    }
}

fn credentials_from(
    target: &ServerTarget,
    discovery: &Discovery,
    registration: &ClientRegistration,
    tokens: TokenResponse,
    requested_scopes: Vec<String>,
) -> StoredCredentials {
    let mut creds = StoredCredentials {
        server_name: target.name.clone(),
        server_url: target.url.to_string(),
        access_token: String::new(),
        token_type: String::new(),
        refresh_token: None,
        expires_at: None,
        scopes: requested_scopes,
        issuer: discovery.metadata.issuer.clone(),
        token_endpoint: discovery.metadata.token_endpoint.to_string(),
        revocation_endpoint: discovery
            .metadata
            .revocation_endpoint
            .as_ref()
            .map(Url::to_string),
        resource: discovery.resource.clone(),
        client: StoredClient {
            kind: registration.kind,
            client_id: registration.client_id.clone(),
            client_secret: registration.client_secret.clone(),
            token_endpoint_auth_method: registration.auth_method.as_str().to_string(),
        },
        reauthentication_required: false,
        updated_at: unix_now(),
    };
    apply_tokens(&mut creds, tokens);
    creds
}

fn registration_from_stored(reg: &StoredRegistration) -> ClientRegistration {
    ClientRegistration {
        kind: RegistrationKind::Dcr,
        client_id: reg.client_id.clone(),
        client_secret: reg.client_secret.clone(),
        auth_method: TokenAuthMethod::from_name(&reg.token_endpoint_auth_method)
            .unwrap_or(TokenAuthMethod::None),
    }
}

/// Where this login's metadata document URL comes from: the server's fixed
/// `client_metadata_url`, else the `clientMetadataUrlBase` param, else the configured
/// `client_metadata_url_base`. Every value that applies is validated, so a bad one is
/// reported (naming where it came from) instead of silently skipped.
fn cimd_source(
    target: &ServerTarget,
    options: &LoginOptions,
) -> Result<Option<CimdSource>, LoginError> {
    let param = options
        .client_metadata_url_base
        .as_deref()
        .map(|b| {
            validate_base(b).map_err(|e| {
                LoginError::InvalidClientMetadataUrlBase(format!(
                    "clientMetadataUrlBase {b:?} is not usable: {e}"
                ))
            })
        })
        .transpose()?;
    if let Some(fixed) = &target.client_metadata_url {
        let url = validate_client_id_url(fixed).map_err(|e| {
            LoginError::InvalidClientMetadataConfig(format!(
                "mcp_servers.{}.oauth.client_metadata_url {fixed:?} is not usable: {e}",
                target.name
            ))
        })?;
        return Ok(Some(CimdSource::Fixed(url)));
    }
    if let Some(base) = param {
        return Ok(Some(CimdSource::Base(base)));
    }
    target
        .client_metadata_url_base
        .as_deref()
        .map(|b| {
            validate_base(b).map(CimdSource::Base).map_err(|e| {
                LoginError::InvalidClientMetadataConfig(format!(
                    "client_metadata_url_base {b:?} is not usable: {e}"
                ))
            })
        })
        .transpose()
}

fn client_refused(e: &CallbackError) -> bool {
    matches!(e, CallbackError::OAuth { error, .. } if error == "invalid_client" || error == "unauthorized_client")
}

fn reply_paste(
    reply: &mut Option<oneshot::Sender<Result<(), String>>>,
    result: Result<(), String>,
) {
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

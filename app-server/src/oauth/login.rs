//! The login flow, and what follows it: token vending with single-flight refresh, logout.
//!
//! Built from the step modules (discovery, registration, authorization, callback, token) and
//! the credential store. Knows nothing of JSON-RPC: progress leaves as [`OAuthEvent`]s.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use mcp_app_server_protocol::{ClientRegistrationMode, McpAuthStatus, RegistrationKind};
use tokio::sync::{mpsc, oneshot};
use url::Url;

use super::authorization::{Pkce, build_authorization_url, new_state};
use super::callback::{
    CallbackError, CallbackListenError, CallbackOutcome, CallbackRegistration, CallbackServer,
    ExpectedCallback, PasteError, callback_path, parse_pasted_callback, redirect_uri,
};
use super::callback_id::callback_id;
use super::discovery::{
    Discovery, DiscoveryError, MetadataCache, Probe, discover, discover_after_probe, issuers_match,
};
use super::http::{HttpClient, header_map};
use super::registration::cimd::{validate_base, validate_client_id_url};
use super::registration::{
    CimdSource, ClientRegistration, RegistrationChoice, RegistrationError, TokenAuthMethod,
    choose_registration, dcr, preregistered,
};
use super::scopes::select_scopes;
use super::token::{self, TokenError, TokenResponse, TokenTypeHint};
use crate::credentials::{
    CredentialKey, CredentialStore, StoreError, StoredClient, StoredCredentials,
    StoredRegistration, unix_now,
};

/// Name under which the daemon registers itself with authorization servers.
pub const CLIENT_NAME: &str = "mcp-app-server";
/// Default time a login waits for the browser.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
/// Refresh when the token expires within this many seconds, unless asked otherwise.
pub const DEFAULT_MIN_VALIDITY_SECS: u32 = 60;

/// A configured HTTP server, resolved for OAuth.
#[derive(Debug, Clone)]
pub struct ServerTarget {
    pub name: String,
    pub url: Url,
    pub resource_override: Option<String>,
    pub http_headers: BTreeMap<String, String>,
    pub configured_scopes: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Per-server port, else the global one; ephemeral when neither.
    pub callback_port: Option<u16>,
    /// `mcp_oauth_callback_url`: replaces the redirect base.
    pub callback_url: Option<Url>,
    /// A fixed, published client metadata document URL.
    pub client_metadata_url: Option<String>,
    /// The configured default base for callback-scoped metadata document URLs.
    pub client_metadata_url_base: Option<String>,
}

impl ServerTarget {
    /// A configured HTTP server; `client_secret` is the value of its
    /// `client_secret_env_var`, looked up by the caller.
    pub fn from_config(
        name: &str,
        http: &crate::config::HttpServerConfig,
        config: &crate::config::Config,
        client_secret: Option<String>,
    ) -> Self {
        Self {
            name: name.to_string(),
            url: http.url.clone(),
            resource_override: http.oauth_resource.clone(),
            http_headers: http.http_headers.clone(),
            configured_scopes: http.scopes.clone(),
            client_id: http.oauth.client_id.clone(),
            client_secret,
            callback_port: http
                .oauth
                .callback_port
                .or_else(|| config.callback_listener_port()),
            callback_url: config.callback_url.clone(),
            client_metadata_url: http.oauth.client_metadata_url.clone(),
            client_metadata_url_base: config.client_metadata_url_base.clone(),
        }
    }

    pub fn key(&self) -> CredentialKey {
        CredentialKey::new(self.name.clone(), self.url.to_string())
    }
}

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

/// Progress reported to whoever drives the service.
#[derive(Debug, Clone)]
pub enum OAuthEvent {
    LoginCompleted {
        name: String,
        result: Result<(), Arc<LoginError>>,
    },
    LoginRestarted {
        name: String,
        authorization_url: String,
        reason: String,
    },
    AuthStatusChanged {
        name: String,
        status: McpAuthStatus,
    },
}

/// Everything a login, a token request or a logout can fail with.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("discovery failed: {0}")]
    Discovery(#[from] DiscoveryError),
    #[error("client registration failed: {0}")]
    Registration(#[from] RegistrationError),
    /// A `clientMetadataUrlBase` param that is unusable (a bad request).
    #[error("{0}")]
    InvalidClientMetadataUrlBase(String),
    /// A configured `client_metadata_url_base` or `client_metadata_url` that is unusable.
    #[error("{0}; fix it in config.toml")]
    InvalidClientMetadataConfig(String),
    #[error("cannot receive the browser's redirect: {0}")]
    CallbackListener(#[from] CallbackListenError),
    #[error("authorization failed: {0}; start the login again")]
    Authorization(CallbackError),
    #[error("token exchange failed: {0}")]
    TokenExchange(TokenError),
    #[error("the credential store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the login was cancelled")]
    Cancelled,
    #[error("{0}")]
    TimedOut(String),
    #[error("a newer login for the same server replaced this one")]
    Superseded,
    #[error("no login is pending for `{0}`; start one with mcpServer/oauth/login")]
    NoPendingLogin(String),
    #[error("{0}")]
    Paste(#[from] PasteError),
    #[error("`{0}` is not logged in; log in first")]
    NotLoggedIn(String),
    #[error("`{name}` needs a new login: {reason}")]
    ReauthenticationRequired { name: String, reason: String },
    #[error(
        "refreshing the token of `{name}` failed for now, the stored credentials are kept: {error}"
    )]
    RefreshTransient { name: String, error: TokenError },
    #[error("refreshing the token of `{name}` failed: {error}")]
    RefreshFailed { name: String, error: TokenError },
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

/// Why a pending login ends early.
#[derive(Debug, Clone, Copy)]
enum EndReason {
    Cancelled,
    Superseded,
    ShuttingDown,
}

enum Control {
    Paste(CallbackOutcome, oneshot::Sender<Result<(), String>>),
    End(EndReason),
}

struct PendingLogin {
    id: u64,
    expected: Mutex<ExpectedCallback>,
    control: mpsc::UnboundedSender<Control>,
}

/// The OAuth engine of one daemon.
pub struct OAuthService {
    http: HttpClient,
    cache: MetadataCache,
    callbacks: Arc<CallbackServer>,
    store: Arc<dyn CredentialStore>,
    events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
    logins: Mutex<HashMap<String, Arc<PendingLogin>>>,
    next_id: AtomicU64,
    /// Refreshes under way, by credential storage key, with an id for their removal.
    refreshes: Mutex<HashMap<String, (u64, InFlightRefresh)>>,
    flows: Mutex<Vec<tokio::task::JoinHandle<()>>>,
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
    pub fn new(
        http: HttpClient,
        callbacks: Arc<CallbackServer>,
        store: Arc<dyn CredentialStore>,
        events: Arc<dyn Fn(OAuthEvent) + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new(Self {
            http,
            cache: MetadataCache::new(),
            callbacks,
            store,
            events,
            logins: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            refreshes: Mutex::new(HashMap::new()),
            flows: Mutex::new(Vec::new()),
        })
    }

    pub fn store(&self) -> &Arc<dyn CredentialStore> {
        &self.store
    }

    fn emit(&self, event: OAuthEvent) {
        (self.events)(event)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn CredentialStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Io {
                    path: Default::default(),
                    source: std::io::Error::other(e.to_string()),
                })
            })
    }

    /// The stored credentials of a server, for status listings.
    /// Every stored entry, read at once (status listings).
    pub async fn store_list(&self) -> Result<Vec<StoredCredentials>, StoreError> {
        self.blocking(|s| s.list()).await
    }

    pub async fn store_load(
        &self,
        key: CredentialKey,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.blocking(move |s| s.load(&key)).await
    }

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
        let callback =
            self.callbacks
                .register(ctx.port, ctx.target.callback_url.as_ref(), expected)?;
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

    /// Ends every pending login (daemon shutdown), waits (bounded) until each has announced
    /// its end, and closes the listeners.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self.lock_logins().keys().cloned().collect();
        for name in names {
            self.end_login(&name, EndReason::ShuttingDown);
        }
        let flows = std::mem::take(&mut *self.flows.lock().unwrap_or_else(|e| e.into_inner()));
        let _ =
            tokio::time::timeout(Duration::from_secs(5), futures::future::join_all(flows)).await;
        self.settle_refreshes().await;
        self.callbacks.shutdown();
    }

    fn end_login(&self, name: &str, reason: EndReason) -> bool {
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

    fn lock_logins(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PendingLogin>>> {
        self.logins.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ------------------------------------------------------------ tokens

    /// A valid access token, refreshed first when it expires within `min_validity_secs`.
    ///
    /// One refresh at a time per server. Within the daemon, callers that find a refresh under
    /// way wait for it and share its result, failures included. Across processes the store's
    /// refresh lock serializes refreshes and the store is re-read under it, so credentials
    /// another process wrote meanwhile are used as they are and a refresh always presents
    /// the newest refresh token (a rotated one used twice revokes the grant at strict
    /// servers). Credentials that changed since the caller looked count as fresh: they are as
    /// new as another refresh would make them.
    pub async fn token(
        self: &Arc<Self>,
        target: &ServerTarget,
        min_validity_secs: u32,
    ) -> Result<StoredCredentials, Arc<LoginError>> {
        let key = target.key();
        let mut seen = usable(self.load(&key).await?, &target.name)?;
        // A second round only when the refresh joined had started from older credentials.
        for _ in 0..3 {
            if fresh_enough(&seen, min_validity_secs) {
                return Ok(seen);
            }
            if seen.refresh_token.is_none() {
                return Ok(unrefreshable(seen, &target.name)?);
            }
            let result = self
                .shared_refresh(target, &seen, min_validity_secs)
                .await?;
            if result != seen || fresh_enough(&result, min_validity_secs) {
                return Ok(result);
            }
            seen = result;
        }
        Ok(seen)
    }

    /// Joins the refresh under way for this server, or starts one. The refresh runs as its
    /// own task: a caller that goes away (a closed connection) cannot stop it between the
    /// token endpoint's answer and the save, which would lose a rotated refresh token.
    async fn shared_refresh(
        self: &Arc<Self>,
        target: &ServerTarget,
        seen: &StoredCredentials,
        min_validity_secs: u32,
    ) -> RefreshOutcome {
        let slot = target.key().storage_key();
        let refresh = {
            let mut in_flight = self.lock_refreshes();
            match in_flight.get(&slot) {
                Some((_, refresh)) => refresh.clone(),
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let service = self.clone();
                    let (target, seen) = (target.clone(), seen.clone());
                    let slot_of_task = slot.clone();
                    // The task is spawned on the first poll, after the map's lock is
                    // released: a task the runtime drops at once (shutting down) takes that
                    // lock in its guard. The id keeps the guard from removing a successor.
                    let refresh = async move {
                        let (name, endpoint) = (target.name.clone(), seen.token_endpoint.clone());
                        let guard = InFlightGuard {
                            service: service.clone(),
                            slot: slot_of_task,
                            id,
                        };
                        let task = tokio::spawn(async move {
                            let _guard = guard;
                            service
                                .refresh(&target, seen, min_validity_secs)
                                .await
                                .map_err(Arc::new)
                        });
                        task.await.unwrap_or_else(|e| {
                            tracing::error!(server = %name, error = %e, "the refresh task failed");
                            Err(Arc::new(if e.is_cancelled() {
                                LoginError::ShuttingDown
                            } else {
                                LoginError::RefreshTransient {
                                    name,
                                    error: TokenError::Invalid {
                                        endpoint,
                                        reason: "the refresh stopped unexpectedly".into(),
                                    },
                                }
                            }))
                        })
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(slot, (id, refresh.clone()));
                    refresh
                }
            }
        };
        refresh.await
    }

    fn lock_refreshes(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, InFlightRefresh)>> {
        self.refreshes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (bounded) for refreshes under way, so that a rotated refresh token is saved
    /// before the process exits.
    async fn settle_refreshes(&self) {
        let refreshes: Vec<InFlightRefresh> = self
            .lock_refreshes()
            .values()
            .map(|(_, r)| r.clone())
            .collect();
        let _ = tokio::time::timeout(REFRESH_SETTLE_TIMEOUT, futures::future::join_all(refreshes))
            .await;
    }

    /// The refresh itself, under the cross-process lock (rule 20). `seen` is what the caller
    /// decided on; anything else in the store now was written meanwhile and is returned.
    async fn refresh(
        &self,
        target: &ServerTarget,
        seen: StoredCredentials,
        min_validity_secs: u32,
    ) -> Result<StoredCredentials, LoginError> {
        let name = &target.name;
        let key = target.key();
        let lock_key = key.clone();
        let _cross_process = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let current = usable(self.load(&key).await?, name)?;
        if current != seen || fresh_enough(&current, min_validity_secs) {
            return Ok(current);
        }
        let Some(refresh_token) = current.refresh_token.clone() else {
            return unrefreshable(current, name);
        };
        // Tokens only ever go to the token endpoint of the issuer that issued them.
        let endpoint =
            Url::parse(&current.token_endpoint).map_err(|e| LoginError::RefreshFailed {
                name: name.clone(),
                error: TokenError::Invalid {
                    endpoint: current.token_endpoint.clone(),
                    reason: format!("the stored token endpoint is not a URL ({e})"),
                },
            })?;
        let registration = registration_from_client(&current.client);
        let scopes = (!current.scopes.is_empty()).then(|| current.scopes.clone());
        let result = token::refresh(
            &self.http,
            &endpoint,
            &registration,
            &refresh_token,
            &current.resource,
            scopes.as_deref(),
        )
        .await;
        match result {
            Ok(tokens) => {
                let mut updated = current.clone();
                apply_tokens(&mut updated, tokens);
                // Saved before anyone sees the new access token: a rotated refresh token
                // must never be lost.
                let stored = self.save_unless_replaced(current, updated).await?;
                tracing::debug!(server = %name, "token refreshed");
                usable(stored, name)
            }
            // An OAuth error answer is the server refusing this grant for good: only a new
            // login helps (invalid_grant above all; also invalid_client, invalid_scope, ...).
            Err(error @ TokenError::OAuth { .. }) => {
                tracing::warn!(server = %name, error = %error, "refresh refused; a new login is needed");
                let mut flagged = current.clone();
                flagged.reauthentication_required = true;
                flagged.updated_at = unix_now();
                let stored = self.save_unless_replaced(current, flagged.clone()).await?;
                match stored {
                    Some(s) if s == flagged => {
                        self.emit(OAuthEvent::AuthStatusChanged {
                            name: name.clone(),
                            status: McpAuthStatus::ReauthenticationRequired,
                        });
                        Err(LoginError::ReauthenticationRequired {
                            name: name.clone(),
                            reason: format!(
                                "the authorization server refused the refresh: {error}"
                            ),
                        })
                    }
                    // A login finished meanwhile: its credentials stand.
                    other => usable(other, name),
                }
            }
            // Network trouble, 5xx, 429, or an answer that cannot be used: the stored
            // credentials stay as they are, a later try may work.
            Err(error) => {
                tracing::warn!(server = %name, error = %error, "refresh failed; credentials kept");
                Err(LoginError::RefreshTransient {
                    name: name.clone(),
                    error,
                })
            }
        }
    }

    /// Saves `new` unless the entry differs from `expected` (a login finished while the
    /// refresh ran; logouts wait for the refresh lock). Returns what is stored afterwards.
    async fn save_unless_replaced(
        &self,
        expected: StoredCredentials,
        new: StoredCredentials,
    ) -> Result<Option<StoredCredentials>, StoreError> {
        self.blocking(move |s| {
            let stored = s.load(&expected.key())?;
            if stored.as_ref() == Some(&expected) {
                s.save(&new)?;
                Ok(Some(new))
            } else {
                Ok(stored)
            }
        })
        .await
    }

    async fn load(&self, key: &CredentialKey) -> Result<Option<StoredCredentials>, LoginError> {
        let key = key.clone();
        Ok(self.blocking(move |s| s.load(&key)).await?)
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

    /// Deletes a server's credentials, revoking them first when asked (rule 21: the refresh
    /// token, then the access token). A failed revocation still deletes them, and says so.
    pub async fn logout(
        &self,
        target: &ServerTarget,
        revoke: bool,
    ) -> Result<LogoutOutcome, LoginError> {
        let key = target.key();
        // Waits for a refresh under way: the tokens revoked are then the newest, and no
        // refresh finishing later can write deleted credentials back.
        let lock_key = key.clone();
        let _lock = self.blocking(move |s| s.refresh_lock(&lock_key)).await?;
        let Some(creds) = self.load(&key).await? else {
            return Ok(LogoutOutcome {
                removed: false,
                revoked: false,
                revocation_error: revoke
                    .then(|| "there were no stored credentials to revoke".to_string()),
            });
        };
        let (revoked, revocation_error) = if revoke {
            match self.revoke_tokens(&creds).await {
                Ok(()) => (true, None),
                Err(reason) => (false, Some(reason)),
            }
        } else {
            (false, None)
        };
        let removed = self.blocking(move |s| s.delete(&key)).await?;
        if removed {
            self.emit(OAuthEvent::AuthStatusChanged {
                name: target.name.clone(),
                status: McpAuthStatus::NotLoggedIn,
            });
        }
        Ok(LogoutOutcome {
            removed,
            revoked,
            revocation_error,
        })
    }

    /// RFC 7009 at the stored revocation endpoint: the refresh token first (that ends the
    /// grant), then the access token, each tried whatever became of the other.
    async fn revoke_tokens(&self, creds: &StoredCredentials) -> Result<(), String> {
        let endpoint = match creds.revocation_endpoint.as_deref().map(Url::parse) {
            None => {
                return Err(format!(
                    "{} advertises no revocation endpoint; the tokens stay valid there until they expire",
                    creds.issuer
                ));
            }
            Some(Err(e)) => {
                return Err(format!("the stored revocation endpoint is not a URL: {e}"));
            }
            Some(Ok(endpoint)) => endpoint,
        };
        let registration = registration_from_client(&creds.client);
        let mut failures = Vec::new();
        let mut refresh_revoked = false;
        if let Some(rt) = &creds.refresh_token {
            match token::revoke(
                &self.http,
                &endpoint,
                &registration,
                rt,
                Some(TokenTypeHint::RefreshToken),
            )
            .await
            {
                Ok(()) => refresh_revoked = true,
                Err(e) => failures.push(format!("refresh token: {e}")),
            }
        }
        match token::revoke(
            &self.http,
            &endpoint,
            &registration,
            &creds.access_token,
            Some(TokenTypeHint::AccessToken),
        )
        .await
        {
            Ok(()) => {}
            // RFC 7009 2.2.1: a server may revoke only refresh tokens; revoking the refresh
            // token ended the grant, and the access token with it at such servers.
            Err(e) if refresh_revoked && e.oauth_error() == Some("unsupported_token_type") => {}
            Err(e) => failures.push(format!("access token: {e}")),
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "revocation failed ({}); the local credentials were deleted anyway",
                failures.join("; ")
            ))
        }
    }
}

/// Takes a finished (or failed, or cancelled) refresh out of the in-flight map, so that a
/// later caller starts a new one instead of joining a stale result.
struct InFlightGuard {
    service: Arc<OAuthService>,
    slot: String,
    id: u64,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut in_flight = self.service.lock_refreshes();
        if in_flight
            .get(&self.slot)
            .is_some_and(|(id, _)| *id == self.id)
        {
            in_flight.remove(&self.slot);
        }
    }
}

/// The result of one refresh, shared by every caller that waited for it.
type RefreshOutcome = Result<StoredCredentials, Arc<LoginError>>;
type InFlightRefresh = Shared<BoxFuture<'static, RefreshOutcome>>;

/// How long shutdown waits for refreshes under way.
const REFRESH_SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a logout did.
#[derive(Debug, Clone, PartialEq)]
pub struct LogoutOutcome {
    pub removed: bool,
    pub revoked: bool,
    pub revocation_error: Option<String>,
}

/// A server's credential state, for listings.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusInfo {
    pub status: McpAuthStatus,
    pub expires_at: Option<i64>,
    pub scopes: Option<Vec<String>>,
    pub registration: Option<RegistrationKind>,
    pub issuer: Option<String>,
}

impl StatusInfo {
    pub fn from_credentials(creds: Option<&StoredCredentials>) -> Self {
        let Some(c) = creds else {
            return StatusInfo {
                status: McpAuthStatus::NotLoggedIn,
                expires_at: None,
                scopes: None,
                registration: None,
                issuer: None,
            };
        };
        let expired = c.expires_at.is_some_and(|t| t <= unix_now());
        let status = if c.reauthentication_required {
            McpAuthStatus::ReauthenticationRequired
        } else if expired && c.refresh_token.is_none() {
            McpAuthStatus::Expired
        } else {
            McpAuthStatus::LoggedIn
        };
        StatusInfo {
            status,
            expires_at: c.expires_at,
            scopes: Some(c.scopes.clone()),
            registration: Some(c.client.kind),
            issuer: Some(c.issuer.clone()),
        }
    }
}

/// Credentials that may be handed out or refreshed.
fn usable(creds: Option<StoredCredentials>, name: &str) -> Result<StoredCredentials, LoginError> {
    let creds = creds.ok_or_else(|| LoginError::NotLoggedIn(name.to_string()))?;
    if creds.reauthentication_required {
        return Err(LoginError::ReauthenticationRequired {
            name: name.to_string(),
            reason: "the authorization server refused an earlier refresh".into(),
        });
    }
    Ok(creds)
}

/// Without a refresh token the access token serves until it expires: handed out while it
/// is valid (its `expires_at` tells the caller how long), a new login after that.
fn unrefreshable(creds: StoredCredentials, name: &str) -> Result<StoredCredentials, LoginError> {
    if creds.expires_at.is_some_and(|t| t <= unix_now()) {
        return Err(LoginError::ReauthenticationRequired {
            name: name.to_string(),
            reason: "the access token expired and the server issued no refresh token".into(),
        });
    }
    Ok(creds)
}

fn fresh_enough(creds: &StoredCredentials, min_validity_secs: u32) -> bool {
    match creds.expires_at {
        None => true,
        Some(t) => t - unix_now() > i64::from(min_validity_secs),
    }
}

fn apply_tokens(creds: &mut StoredCredentials, tokens: TokenResponse) {
    creds.access_token = tokens.access_token;
    creds.token_type = tokens.token_type;
    if let Some(rt) = tokens.refresh_token {
        creds.refresh_token = Some(rt);
    }
    creds.expires_at = tokens.expires_in.map(|s| unix_now() + s as i64);
    if let Some(scopes) = tokens.scopes {
        creds.scopes = scopes;
    }
    creds.reauthentication_required = false;
    creds.updated_at = unix_now();
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

fn registration_from_client(client: &StoredClient) -> ClientRegistration {
    ClientRegistration {
        kind: client.kind,
        client_id: client.client_id.clone(),
        client_secret: client.client_secret.clone(),
        auth_method: TokenAuthMethod::from_name(&client.token_endpoint_auth_method)
            .unwrap_or(TokenAuthMethod::None),
    }
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

#[cfg(test)]
mod token_tests {
    use super::*;

    fn credentials(name: &str, url: &str) -> StoredCredentials {
        StoredCredentials {
            server_name: name.to_owned(),
            server_url: url.to_owned(),
            access_token: format!("at-secret-{name}"),
            token_type: "Bearer".to_owned(),
            refresh_token: Some(format!("rt-secret-{name}")),
            expires_at: Some(1_900_000_000),
            scopes: vec!["read".to_owned(), "offline_access".to_owned()],
            issuer: "https://auth.example.com".to_owned(),
            token_endpoint: "https://auth.example.com/token".to_owned(),
            revocation_endpoint: None,
            resource: url.to_owned(),
            client: StoredClient {
                kind: RegistrationKind::Dcr,
                client_id: "client-123".to_owned(),
                client_secret: None,
                token_endpoint_auth_method: "none".to_owned(),
            },
            reauthentication_required: false,
            updated_at: 1_800_000_000,
        }
    }

    fn tokens(refresh_token: Option<&str>, expires_in: Option<u64>) -> TokenResponse {
        TokenResponse {
            access_token: "at-new".into(),
            token_type: "Bearer".into(),
            refresh_token: refresh_token.map(str::to_string),
            expires_in,
            scopes: None,
        }
    }

    #[test]
    fn applied_tokens_keep_what_the_response_leaves_out() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.reauthentication_required = true;
        apply_tokens(&mut creds, tokens(None, Some(600)));
        assert_eq!(creds.access_token, "at-new");
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-secret-a"));
        assert_eq!(creds.scopes, ["read", "offline_access"]);
        assert!(!creds.reauthentication_required);
        let expires_at = creds.expires_at.unwrap();
        assert!((unix_now() + 590..=unix_now() + 600).contains(&expires_at));

        apply_tokens(&mut creds, tokens(Some("rt-rotated"), None));
        assert_eq!(creds.refresh_token.as_deref(), Some("rt-rotated"));
        assert_eq!(creds.expires_at, None);
    }

    #[test]
    fn freshness_is_measured_against_the_asked_validity() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.expires_at = Some(unix_now() + 120);
        assert!(fresh_enough(&creds, 60));
        assert!(!fresh_enough(&creds, 120));
        creds.expires_at = None;
        assert!(fresh_enough(&creds, u32::MAX));
    }

    #[test]
    fn credentials_without_refresh_token_serve_until_they_expire() {
        let mut creds = credentials("a", "https://a.example/mcp");
        creds.refresh_token = None;
        creds.expires_at = Some(unix_now() + 5);
        assert!(unrefreshable(creds.clone(), "a").is_ok());
        creds.expires_at = Some(unix_now() - 1);
        assert!(matches!(
            unrefreshable(creds, "a"),
            Err(LoginError::ReauthenticationRequired { .. })
        ));
    }

    #[test]
    fn status_follows_the_stored_credentials() {
        assert_eq!(
            StatusInfo::from_credentials(None).status,
            McpAuthStatus::NotLoggedIn
        );
        let mut creds = credentials("a", "https://a.example/mcp");
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::LoggedIn);
        assert_eq!(info.registration, Some(RegistrationKind::Dcr));
        assert_eq!(info.issuer.as_deref(), Some("https://auth.example.com"));
        assert_eq!(info.expires_at, Some(1_900_000_000));

        // Expired with a refresh token: the next token request refreshes, still logged in.
        creds.expires_at = Some(unix_now() - 1);
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::LoggedIn);
        creds.refresh_token = None;
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::Expired);
        creds.reauthentication_required = true;
        let info = StatusInfo::from_credentials(Some(&creds));
        assert_eq!(info.status, McpAuthStatus::ReauthenticationRequired);
    }
}

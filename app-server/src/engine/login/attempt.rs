//! One attempt of a login: the callback registered, the client registration chosen (or
//! made), fresh PKCE and state; and the restart with a new registration after a refusal.

use mcp_app_server_protocol::{ClientRegistrationMode, McpAuthStatusReason, RegistrationKind};
use url::Url;

use crate::credentials::{StoredRegistration, unix_now};
use crate::engine::error::LoginError;
use crate::engine::login::context::{Attempt, FlowContext};
use crate::engine::service::OAuthService;
use crate::engine::types::{CLIENT_NAME, OAuthEvent};
use crate::oauth::authorization::{Pkce, build_authorization_url, new_state};
use crate::oauth::callback::{
    CallbackListenError, CallbackRegistration, ExpectedCallback, PageNames, redirect_uri,
};
use crate::oauth::callback_id::callback_id;
use crate::oauth::discovery::{DiscoveryCache, DiscoveryError, discover_shared};
use crate::oauth::http::header_map;
use crate::oauth::registration::{
    CimdSource, ClientRegistration, RegistrationChoice, TokenAuthMethod, choose_registration, dcr,
};

impl OAuthService {
    pub(super) fn expected(&self, ctx: &FlowContext, attempt: &Attempt) -> ExpectedCallback {
        ExpectedCallback {
            callback_path: ctx.callback_path.clone(),
            state: attempt.state.clone(),
            issuer: Some(attempt.issuer.clone()),
            iss_required: ctx
                .discovery
                .metadata
                .authorization_response_iss_parameter_supported,
        }
    }

    pub(super) fn authorization_url(&self, ctx: &FlowContext, attempt: &Attempt) -> Url {
        let mut url = build_authorization_url(
            &ctx.discovery.metadata.authorization_endpoint,
            &attempt.registration.client_id,
            &ctx.redirect_uri,
            ctx.scopes.as_deref(),
            &ctx.discovery.resource,
            &attempt.state,
            attempt.pkce.challenge(),
        );
        // Rule 82; the account's label itself is never sent (rule 84).
        if let Some(prompt) = ctx.prompt {
            url.query_pairs_mut().append_pair("prompt", prompt);
        }
        url
    }

    /// Registers the callback, picks (or makes) the client registration, and makes fresh
    /// PKCE and state. `avoid_cimd` after a refused document.
    pub(super) async fn prepare_attempt(
        &self,
        ctx: &mut FlowContext,
        cimd_source: Option<&CimdSource>,
        avoid_cimd: bool,
    ) -> Result<Attempt, LoginError> {
        // A pre-registration of this server under way decides the port and the client.
        self.preregistrations.wait(&ctx.target.name).await;
        let state = new_state();
        let pkce = Pkce::new();
        let metadata = &ctx.discovery.metadata;
        let expected = ExpectedCallback {
            callback_path: ctx.callback_path.clone(),
            state: state.clone(),
            issuer: Some(metadata.issuer.clone()),
            iss_required: metadata.authorization_response_iss_parameter_supported,
        };
        let callback = self.register_callback(ctx, expected).await?;
        callback.describe(PageNames::new(
            ctx.options.frontend.as_deref(),
            Some(&ctx.target.name),
        ));
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
        let redirect = ctx.redirect_uri.to_string();
        // A configured client id needs nothing from the store; otherwise what the choice
        // and a DCR registration need comes in one trip to the store's reading thread (a
        // cold login waits for each trip).
        let (cimd_refused, mut stored) = match &ctx.target.client_id {
            Some(_) => (false, Ok(None)),
            None => self.registration_facts(&issuer, &redirect).await?,
        };
        let mode = if avoid_cimd {
            ClientRegistrationMode::Dcr
        } else {
            ctx.options.mode
        };
        let choice = match (&ctx.target.client_id, avoid_cimd) {
            // A configured client id always wins.
            (Some(client_id), _) => {
                RegistrationChoice::Ready(ctx.target.preregistered_client(client_id, metadata)?)
            }
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
        let mut unsaved = None;
        let (registration, reused) = match choice {
            RegistrationChoice::Ready(r) => (r, false),
            RegistrationChoice::Dcr {
                registration_endpoint,
            } => {
                let stored = std::mem::replace(&mut stored, Ok(None))?;
                let auth = ctx.target.registration_auth(metadata)?;
                let certificate = ctx.target.certificate_x5t();
                // A registration a refresh found refused: dropped, registered again. So is
                // one made while another client certificate, or none, was configured: the
                // server may hold that certificate for it, or could take this one (rule 42).
                let stored = match stored {
                    Some(reg)
                        if reg.secret_expiring(unix_now())
                            || reg.certificate_x5t != certificate
                            || self.refused_at_refresh(ctx, &reg).await? =>
                    {
                        tracing::info!(server = %ctx.target.name, "dropping a client registration the authorization server refused at a refresh, whose client secret expires soon, or made for another client certificate; registering again");
                        let (i, r) = (issuer.clone(), redirect.clone());
                        self.registration_saves.forget(&i, &r);
                        self.queue
                            .write(move |s| s.delete_registration(&i, &r))
                            .await?;
                        None
                    }
                    stored => stored,
                };
                // Later logins listen on this port again, so this registration serves them.
                if self.sticky_port_applies(ctx) {
                    self.ports.remember(&ctx.target.key(), callback.port).await;
                }
                // A refused stored registration was deleted before this restart, so what is
                // left here is still trusted.
                match stored {
                    Some(reg) => (registration_from_stored(&reg), true),
                    _ => {
                        let (reg, secret_expires_at) = dcr::register_client(
                            &ctx.http,
                            &registration_endpoint,
                            &ctx.redirect_uri,
                            CLIENT_NAME,
                            ctx.scopes.as_deref(),
                            metadata.token_endpoint_auth_methods_supported.as_deref(),
                            &auth,
                        )
                        .await?;
                        let stored = StoredRegistration {
                            issuer: issuer.clone(),
                            redirect_uri: redirect,
                            client_id: reg.client_id.clone(),
                            client_secret: reg.client_secret.clone(),
                            token_endpoint_auth_method: reg.auth_method.as_str().to_string(),
                            registered_at: unix_now(),
                            client_secret_expires_at: secret_expires_at,
                            certificate_x5t: ctx.target.certificate_x5t(),
                        };
                        // Saved by the flow once the login has answered (state/registration_saves.rs).
                        unsaved = Some(Box::new(stored));
                        (reg, false)
                    }
                }
            }
        };
        Ok(Attempt {
            registration,
            pkce,
            state,
            issuer,
            callback,
            reused_registration: reused,
            unsaved,
        })
    }

    /// Whether `issuer` refused a metadata document, and the DCR registration stored for
    /// it and `redirect_uri` (one made moments ago and still on its way to the store
    /// included), in one read. A failure to load the registration is the caller's to report
    /// only when it registers with DCR.
    async fn registration_facts(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<(bool, Result<Option<StoredRegistration>, LoginError>), LoginError> {
        let unwritten = self.registration_saves.unwritten(issuer, redirect_uri);
        let load = unwritten.is_none();
        let (issuer, redirect) = (issuer.to_string(), redirect_uri.to_string());
        let (refused, stored) = self
            .queue
            .read(move |s| {
                let refused = s.cimd_refused(&issuer)?;
                let stored = if load {
                    s.load_registration(&issuer, &redirect)
                } else {
                    Ok(None)
                };
                Ok((refused, stored))
            })
            .await?;
        let stored = match unwritten {
            Some(reg) => Ok(Some(reg)),
            None => stored.map_err(LoginError::from),
        };
        Ok((refused, stored))
    }

    /// The DCR registration stored for `issuer` and `redirect_uri`, one made moments ago
    /// and still on its way to the store included.
    pub(in crate::engine) async fn stored_registration(
        &self,
        issuer: &str,
        redirect_uri: &str,
    ) -> Result<Option<StoredRegistration>, LoginError> {
        if let Some(reg) = self.registration_saves.unwritten(issuer, redirect_uri) {
            return Ok(Some(reg));
        }
        let (issuer, redirect) = (issuer.to_string(), redirect_uri.to_string());
        Ok(self
            .queue
            .read(move |s| s.load_registration(&issuer, &redirect))
            .await?)
    }

    /// Whether the server's stored credentials say a refresh found `reg` refused
    /// (`invalid_client`: the server pruned the client). Kept in the store, so a restart
    /// or another daemon sharing it knows too.
    async fn refused_at_refresh(
        &self,
        ctx: &FlowContext,
        reg: &StoredRegistration,
    ) -> Result<bool, LoginError> {
        let key = ctx.target.key();
        let Some(creds) = self.queue.read(move |s| s.load(&key)).await? else {
            return Ok(false);
        };
        Ok(creds.reauthentication_required
            && creds.login_reason == Some(McpAuthStatusReason::RegistrationDropped)
            && creds.client.kind == RegistrationKind::Dcr
            && creds.client.client_id == reg.client_id
            && creds.issuer == reg.issuer)
    }

    /// Saves the registration `attempt` made, if any (together with the other logins'
    /// saves queued meanwhile). A failure is logged: the next login registers again.
    pub(super) async fn save_registration(&self, name: &str, attempt: &mut Attempt) {
        let Some(reg) = attempt.unsaved.take() else {
            return;
        };
        if let Err(e) = self.registration_saves.save(&self.queue, *reg).await {
            tracing::warn!(server = %name, error = %e, "the new client registration was not saved; the next login registers again");
        }
    }

    /// A server without a configured port or callback URL listens on the port its DCR
    /// registration was made for.
    fn sticky_port_applies(&self, ctx: &FlowContext) -> bool {
        ctx.target.callback_port.is_none() && ctx.target.callback_url.is_none()
    }

    /// The callback on the login's port: the configured one, else (for the first attempt)
    /// the server's sticky port while it is free, else the shared ephemeral listener.
    async fn register_callback(
        &self,
        ctx: &FlowContext,
        expected: ExpectedCallback,
    ) -> Result<CallbackRegistration, LoginError> {
        let callback_url = ctx.target.callback_url.as_ref();
        if ctx.port.is_none()
            && self.sticky_port_applies(ctx)
            && let Some(port) = self.ports.get(&ctx.target.key()).await
        {
            match self
                .callbacks
                .register(Some(port), callback_url, expected.clone())
            {
                Ok(callback) => return Ok(callback),
                Err(CallbackListenError::PortInUse { .. }) => {
                    tracing::info!(server = %ctx.target.name, port, "the remembered callback port is taken; using a new one (and a new registration)");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.callbacks.register(ctx.port, callback_url, expected)?)
    }

    /// The cached discovery of this login turned out stale: forget it and discover again
    /// (the fresh result replaces it in the cache).
    pub(super) async fn discover_again(&self, ctx: &mut FlowContext) -> Result<(), LoginError> {
        let headers = header_map(
            ctx.target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| LoginError::Discovery(DiscoveryError::from(e)))?;
        let resource_override = ctx.target.resource_override.as_deref();
        self.cache
            .invalidate(&DiscoveryCache::key_for(
                &ctx.target.url,
                &headers,
                resource_override,
                ctx.target.discovery_overrides(),
            ))
            .await;
        let (fresh, cached) = discover_shared(
            &ctx.http,
            &ctx.target.url,
            &headers,
            resource_override,
            ctx.target.discovery_overrides(),
            &self.cache,
        )
        .await?;
        self.check_preregistered_binding(&ctx.target, &fresh.metadata.issuer)
            .await?;
        ctx.discovery = fresh;
        ctx.cached = cached;
        Ok(())
    }

    pub(super) fn can_fall_back(&self, attempt: &Attempt) -> bool {
        attempt.registration.kind == RegistrationKind::Cimd || attempt.reused_registration
    }

    /// The server refused the client: a metadata document (never offer it to this issuer
    /// again) or a stale stored registration. Start over with a fresh registration.
    pub(super) async fn restart(
        &self,
        ctx: &mut FlowContext,
        attempt: &mut Attempt,
        cimd_source: Option<&CimdSource>,
        login_id: u64,
        reason: &str,
        stale_metadata: bool,
    ) -> Result<(), LoginError> {
        let issuer = ctx.discovery.metadata.issuer.clone();
        let why = if stale_metadata {
            self.discover_again(ctx).await?;
            format!("the authorization server's metadata changed ({reason}); discovered it again")
        } else if attempt.registration.kind == RegistrationKind::Cimd {
            let i = issuer.clone();
            self.queue.write(move |s| s.mark_cimd_refused(&i)).await?;
            format!(
                "the authorization server refused the client metadata document ({reason}); retrying with Dynamic Client Registration"
            )
        } else {
            let (i, r) = (issuer.clone(), ctx.redirect_uri.to_string());
            self.registration_saves.forget(&i, &r);
            self.queue
                .write(move |s| s.delete_registration(&i, &r))
                .await?;
            format!(
                "the authorization server no longer knows the stored client registration ({reason}); registering again"
            )
        };
        let fresh = self
            .prepare_attempt(ctx, cimd_source, !stale_metadata)
            .await?;
        *attempt = fresh;
        self.save_registration(&ctx.target.name, attempt).await;
        let url = self.authorization_url(ctx, attempt);
        if let Some(p) = self
            .lock_logins()
            .get(&ctx.target.name)
            .filter(|p| p.id == login_id)
        {
            *p.expected.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(self.expected(ctx, attempt));
        }
        tracing::info!(server = %ctx.target.name, "login restarted with a new client registration");
        self.emit(OAuthEvent::LoginRestarted {
            name: ctx.target.name.clone(),
            authorization_url: url.to_string(),
            reason: why,
        });
        Ok(())
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

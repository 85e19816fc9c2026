//! Pre-registration: for a configured server that is not logged in and whose first login
//! will use Dynamic Client Registration, pre-warm registers the client ahead of that login,
//! for the redirect URI the login will use: the one of the server's sticky callback port
//! (remembered now if the server had none), or of its configured port or callback URL. The
//! registration is stored as a login's own is (by issuer and redirect URI, in the state
//! directory every daemon sharing it reads), so the first login finds it and answers
//! without a request, and no daemon registers that server again while the registration
//! and the port hold. A server with a configured client, a machine grant or an enterprise
//! identity provider needs no registration, and one whose authorization server accepts
//! Client ID Metadata Documents (not refused before) is left to its login; both are left
//! out. A login that starts meanwhile waits for the registration (`state/preregistrations.rs`).

use std::net::{Ipv4Addr, TcpListener};

use mcp_app_server_protocol::ClientRegistrationMode;
use url::Url;

use crate::credentials::{StoredRegistration, unix_now};
use crate::engine::error::LoginError;
use crate::engine::login::context::cimd_source;
use crate::engine::service::OAuthService;
use crate::engine::target::ServerTarget;
use crate::engine::types::{CLIENT_NAME, LoginOptions};
use crate::oauth::callback::{CallbackListenError, redirect_uri};
use crate::oauth::callback_id::callback_id;
use crate::oauth::discovery::Discovery;
use crate::oauth::http::HttpClient;
use crate::oauth::registration::{RegistrationChoice, choose_registration, dcr};

impl OAuthService {
    /// Registers a client for `target`'s first login when that login would register one.
    /// Answers whether a registration was made (`false`: none is needed, or one is stored).
    pub(crate) async fn preregister(
        &self,
        target: &ServerTarget,
        http: &HttpClient,
        discovery: &Discovery,
    ) -> Result<bool, LoginError> {
        if target.client_id.is_some() || target.grant.is_machine() || target.enterprise.is_some() {
            return Ok(false);
        }
        // The port the login will listen on, when it can be known now.
        let sticky = target.callback_port.is_none() && target.callback_url.is_none();
        let port = match (target.callback_port, &target.callback_url) {
            (_, Some(_)) => 0,
            (Some(0), None) => return Ok(false),
            (Some(port), None) => port,
            (None, None) => match self.ports.get(&target.key()).await {
                Some(port) => port,
                None => free_port()?,
            },
        };
        let id = callback_id(&target.url);
        let redirect =
            Url::parse(&redirect_uri(target.callback_url.as_ref(), port, &id)).map_err(|e| {
                LoginError::CallbackListener(CallbackListenError::InvalidCallbackPath {
                    path: format!("{id} ({e})"),
                })
            })?;
        let metadata = &discovery.metadata;
        let issuer = metadata.issuer.clone();
        let cimd_refused = {
            let issuer = issuer.clone();
            self.queue.read(move |s| s.cimd_refused(&issuer)).await?
        };
        // A server that takes metadata documents is left to its login: the frontend may
        // pass a document base with it.
        if metadata.client_id_metadata_document_supported && !cimd_refused {
            return Ok(false);
        }
        // What a login with no options of its own would choose.
        let options = LoginOptions::default();
        let source = cimd_source(target, &options)?;
        let choice = choose_registration(
            ClientRegistrationMode::Auto,
            None,
            source.as_ref(),
            metadata,
            &id,
            &redirect,
            cimd_refused,
        )?;
        let RegistrationChoice::Dcr {
            registration_endpoint,
        } = choice
        else {
            return Ok(false);
        };
        let redirect_text = redirect.to_string();
        // One whose secret expires soon is replaced now rather than at the login.
        let auth = target.registration_auth(metadata)?;
        let certificate = target.certificate_x5t();
        let stored = self
            .stored_registration(&issuer, &redirect_text)
            .await?
            .filter(|reg| !reg.secret_expiring(unix_now()) && reg.certificate_x5t == certificate);
        let made = stored.is_none();
        if made {
            let scopes = discovery.scopes_for(None, target.configured_scopes.as_deref());
            let (reg, secret_expires_at) = dcr::register_client(
                http,
                &registration_endpoint,
                &redirect,
                CLIENT_NAME,
                scopes.as_deref(),
                metadata.token_endpoint_auth_methods_supported.as_deref(),
                &auth,
            )
            .await?;
            let record = StoredRegistration {
                issuer,
                redirect_uri: redirect_text,
                client_id: reg.client_id,
                client_secret: reg.client_secret,
                token_endpoint_auth_method: reg.auth_method.as_str().to_string(),
                registered_at: unix_now(),
                client_secret_expires_at: secret_expires_at,
                certificate_x5t: target.certificate_x5t(),
            };
            if let Err(e) = self.registration_saves.save(&self.queue, record).await {
                tracing::warn!(server = %target.name, error = %e, "the pre-registered client was not saved; the first login registers");
                return Ok(false);
            }
        }
        // The login listens on this port again while it is free, and so finds the client.
        if sticky {
            self.ports.remember(&target.key(), port).await;
        }
        Ok(made)
    }
}

/// A loopback port free at this moment (the login binds it; when another program took it
/// meanwhile, that login uses a new port and registers as it would have without this).
fn free_port() -> Result<u16, LoginError> {
    let bound = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map_err(|source| {
            LoginError::CallbackListener(CallbackListenError::Bind { port: 0, source })
        })?;
    Ok(bound.port())
}

//! What to do when an MCP server refuses a request: a 401 gets the token refreshed now
//! (however valid it looks), a 403 `insufficient_scope` gets a step-up login for the scopes
//! held plus those asked for (rules 9 and 29), and a challenge that names another protected
//! resource metadata document than discovery used gets discovery again.
//!
//! The pure decisions are in `refusal.rs` (reading the refusal, the scopes of a step-up,
//! whether discovery runs again) and `state/challenges.rs` (the step-ups made so far); this
//! is the async shell on [`OAuthService`] that frontends (`mcpServer/oauth/challenge`) and
//! `connect` share.

use std::sync::Arc;

use mcp_app_server_protocol::{LoginFlowChoice, McpAuthStatus, McpAuthStatusReason};

use crate::credentials::{StoreError, StoredCredentials, unix_now};
use crate::engine::error::{ChallengeError, VendError};
use crate::engine::refusal::{
    Refusal, resource_metadata_moved, resource_metadata_url, step_up_scopes,
};
use crate::engine::service::OAuthService;
use crate::engine::status::StatusInfo;
use crate::engine::stored::{can_renew, check_unexpired, describe_reason};
use crate::engine::target::ServerTarget;
use crate::engine::types::{
    ChallengeOutcome, CheckedChallenge, LoginBegun, LoginOptions, OAuthEvent,
};
use crate::oauth::discovery::{
    Discovery, DiscoveryCache, DiscoveryError, discover_after_probe, issuers_match,
};
use crate::oauth::http::header_map;
use crate::oauth::www_authenticate::BearerChallenge;

impl OAuthService {
    /// Acts on a refusal of `target`'s MCP server; see the module docs. A step-up login
    /// uses `options` with its scopes replaced by the union.
    /// `mcpServer/oauth/challenge`, once [`ChallengeRequest::check`](crate::engine::types::ChallengeRequest::check) read it: answers a
    /// `use_dpop_nonce` refusal with a new proof, keeps any other nonce the server sent for
    /// later proofs, and acts on the refusal as [`OAuthService::challenge`] does.
    pub async fn answer_challenge(
        self: &Arc<Self>,
        target: &Arc<ServerTarget>,
        challenge: CheckedChallenge<'_>,
    ) -> Result<ChallengeOutcome, ChallengeError> {
        match challenge {
            CheckedChallenge::NonceRequest {
                nonce,
                method,
                url,
                body,
            } => {
                let body = body.map(str::as_bytes);
                let proof = self
                    .proof_for(target, method, url, Some(nonce), body)
                    .await?;
                Ok(ChallengeOutcome::DpopProof(proof))
            }
            CheckedChallenge::Refusal {
                refusal,
                dpop_nonce,
            } => {
                if let Some(nonce) = dpop_nonce {
                    self.remember_resource_nonce(target, nonce);
                }
                self.challenge(target, refusal, LoginOptions::default())
                    .await
            }
        }
    }

    /// Remembers the protected resource metadata document discovery used for `target`: a
    /// later challenge that names another one gets discovery again.
    pub(super) fn remember_discovered(&self, target: &ServerTarget, prm: Option<&url::Url>) {
        self.challenges.discovered(&target.key(), prm);
    }

    pub async fn challenge(
        self: &Arc<Self>,
        target: &ServerTarget,
        refusal: Refusal,
        options: LoginOptions,
    ) -> Result<ChallengeOutcome, ChallengeError> {
        let key = target.key();
        let prm_url = resource_metadata_url(&target.url, refusal.challenge())?;
        let stored = self.load(&key).await?;
        let known = self.challenges.known_prm(&key);
        let moved = if resource_metadata_moved(known.as_ref(), prm_url.as_ref()) {
            match self.rediscover(target, &refusal, stored.as_ref()).await {
                Ok(discovery) => Some(discovery),
                // A refresh only ever goes to the stored token endpoint, so a 401 still gets
                // one; a step-up needs discovery and fails with it.
                Err(e) if matches!(refusal, Refusal::Unauthorized(_)) => {
                    tracing::warn!(server = %target.name, error = %e, "discovery from the challenge failed; refreshing with the stored credentials");
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        match refusal {
            Refusal::Unauthorized(_) => self.on_unauthorized(target, stored, moved).await,
            Refusal::InsufficientScope(challenge) => {
                self.step_up(target, stored, challenge, options).await
            }
        }
    }

    /// Discovery from the challenge, without the discovery cache: the server named another
    /// protected resource metadata document, so what was cached may be out of date.
    async fn rediscover(
        &self,
        target: &ServerTarget,
        refusal: &Refusal,
        stored: Option<&StoredCredentials>,
    ) -> Result<Discovery, ChallengeError> {
        let headers = header_map(
            target
                .http_headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str())),
        )
        .map_err(|e| ChallengeError::Discovery(DiscoveryError::from(e)))?;
        // What the cache knows about this server is what was just refused: discover again
        // (the result replaces it, so later logins use it too).
        let key = DiscoveryCache::key_for(
            &target.url,
            &headers,
            target.resource_override.as_deref(),
            target.discovery_overrides(),
        );
        self.cache.invalidate(&key).await;
        let discovery = discover_after_probe(
            &self.http.with_network(&target.network),
            &target.url,
            &headers,
            target.resource_override.as_deref(),
            target.discovery_overrides(),
            &self.cache,
            refusal.probe(),
        )
        .await?;
        tracing::info!(
            server = %target.name,
            issuer = %discovery.issuer,
            "the server named other protected resource metadata; discovery ran again"
        );
        if let Some(creds) = stored
            && creds.issuer != discovery.issuer
        {
            self.cache.invalidate_issuer(&creds.issuer).await;
        }
        self.challenges
            .discovered(&target.key(), discovery.protected_resource_url.as_ref());
        Ok(discovery)
    }

    /// A 401: the token the daemon handed out was refused, whatever its expiry says.
    async fn on_unauthorized(
        self: &Arc<Self>,
        target: &ServerTarget,
        stored: Option<StoredCredentials>,
        moved: Option<Discovery>,
    ) -> Result<ChallengeOutcome, ChallengeError> {
        let name = &target.name;
        let creds = stored.ok_or_else(|| ChallengeError::NotLoggedIn(name.clone()))?;
        if creds.reauthentication_required {
            let cause = creds
                .login_reason
                .unwrap_or(McpAuthStatusReason::RefreshRefused);
            return Ok(ChallengeOutcome::ReauthenticationRequired {
                reason: format!(
                    "`{name}` already needs a new login: {}",
                    describe_reason(cause)
                ),
                cause,
            });
        }
        if let Some(discovery) = moved
            && !issuers_match(&creds.issuer, &discovery.metadata.issuer)
        {
            // Rule 27: these tokens belong to the old authorization server; a refresh there
            // cannot give a token this server takes.
            let reason = format!(
                "the server now names the authorization server {} instead of {}",
                discovery.metadata.issuer, creds.issuer
            );
            return self
                .flag_reauthentication(
                    target,
                    creds,
                    McpAuthStatusReason::AuthorizationServerChanged,
                    reason,
                )
                .await;
        }
        // A token refused before it expired was revoked (or its grant was): if the renewal
        // that follows is refused too, that is the cause recorded.
        let unexpired = check_unexpired(&creds, name).is_ok();
        if unexpired {
            self.challenges
                .refused_unexpired(&target.key(), &creds.access_token);
        }
        // A configured grant that needs no browser, or an enterprise server, gets a new
        // token itself.
        if !can_renew(target, &creds) {
            let reason =
                "the server refused the access token and no refresh token was issued".to_string();
            let cause = if unexpired {
                McpAuthStatusReason::TokenRevoked
            } else {
                McpAuthStatusReason::TokenExpired
            };
            self.challenges
                .take_refused_unexpired(&target.key(), &creds.access_token);
            return self
                .flag_reauthentication(target, creds, cause, reason)
                .await;
        }
        let refreshed = self.refresh_now(target).await;
        // Whatever became of the renewal, the mark is spent.
        self.challenges
            .take_refused_unexpired(&target.key(), &creds.access_token);
        match refreshed {
            Ok(fresh) => Ok(ChallengeOutcome::Token(Box::new(fresh))),
            // The refresh was refused: refresh.rs flagged the credentials and announced it.
            Err(e) => match e.as_ref() {
                VendError::ReauthenticationRequired { reason, .. } => {
                    Ok(ChallengeOutcome::ReauthenticationRequired {
                        reason: reason.clone(),
                        cause: self.recorded_cause(target).await,
                    })
                }
                _ => Err(ChallengeError::Token(e)),
            },
        }
    }

    /// The cause recorded with `target`'s flagged credentials (a refused refresh when none
    /// was, or the store cannot be read).
    async fn recorded_cause(&self, target: &ServerTarget) -> McpAuthStatusReason {
        self.load(&target.key())
            .await
            .ok()
            .flatten()
            .filter(|c| c.reauthentication_required)
            .and_then(|c| c.login_reason)
            .unwrap_or(McpAuthStatusReason::RefreshRefused)
    }

    /// Marks the credentials as needing a new login (unless they changed meanwhile: a
    /// login or refresh that finished stands) and announces it.
    async fn flag_reauthentication(
        &self,
        target: &ServerTarget,
        seen: StoredCredentials,
        cause: McpAuthStatusReason,
        reason: String,
    ) -> Result<ChallengeOutcome, ChallengeError> {
        let mut flagged = seen.clone();
        flagged.reauthentication_required = true;
        flagged.login_reason = Some(cause);
        flagged.updated_at = unix_now();
        let stored = self.save_unless_replaced(seen, flagged.clone()).await?;
        match stored {
            Some(s) if s == flagged => {
                tracing::warn!(server = %target.name, %reason, "a new login is needed");
                self.emit(OAuthEvent::AuthStatusChanged {
                    name: target.name.clone(),
                    status: McpAuthStatus::ReauthenticationRequired,
                    reason: Some(cause),
                });
                Ok(ChallengeOutcome::ReauthenticationRequired { reason, cause })
            }
            Some(newer) if !newer.reauthentication_required => {
                Ok(ChallengeOutcome::Token(Box::new(newer)))
            }
            // Flagged meanwhile by another: its cause stands.
            Some(other) => Ok(ChallengeOutcome::ReauthenticationRequired {
                reason,
                cause: other.login_reason.unwrap_or(cause),
            }),
            None => Err(ChallengeError::NotLoggedIn(target.name.clone())),
        }
    }

    /// Records on usable credentials that the server asked for scopes they lack (the
    /// status then says `moreScopesNeeded` until a login stores wider ones), and announces
    /// it. Credentials that changed meanwhile are left as they are.
    async fn mark_more_scopes_needed(
        &self,
        target: &ServerTarget,
        seen: StoredCredentials,
    ) -> Result<(), StoreError> {
        let cause = McpAuthStatusReason::MoreScopesNeeded;
        if seen.reauthentication_required || seen.login_reason == Some(cause) {
            return Ok(());
        }
        let mut marked = seen.clone();
        marked.login_reason = Some(cause);
        let stored = self.save_unless_replaced(seen, marked.clone()).await?;
        if stored.as_ref() == Some(&marked) {
            // Announced as listings show it (an expired token stays `expired`).
            let info = StatusInfo::from_credentials(Some(&marked));
            self.emit(OAuthEvent::AuthStatusChanged {
                name: target.name.clone(),
                status: info.status,
                reason: info.reason,
            });
        }
        Ok(())
    }

    /// A 403 `insufficient_scope`: a login for the union of the scopes held before and
    /// those asked for, at most [`MAX_STEP_UPS`](crate::engine::refusal::MAX_STEP_UPS) times per scope set.
    async fn step_up(
        self: &Arc<Self>,
        target: &ServerTarget,
        stored: Option<StoredCredentials>,
        challenge: BearerChallenge,
        options: LoginOptions,
    ) -> Result<ChallengeOutcome, ChallengeError> {
        let key = target.key();
        let previous = match &stored {
            Some(creds) => creds.scopes.clone(),
            None => target.configured_scopes.clone().unwrap_or_default(),
        };
        let scopes = step_up_scopes(&previous, &challenge);
        if let Err(attempts) = self.challenges.begin_step_up(&key, &scopes) {
            return Err(ChallengeError::StepUpLimitReached {
                name: target.name.clone(),
                scopes: scopes.join(" "),
                attempts,
            });
        }
        // The wider token is bound as the one it replaces is: whoever used that one can
        // use this one (rule 49).
        let dpop = options.dpop || stored.as_ref().is_some_and(|c| c.is_dpop_bound());
        // The cause is told where it can be; a store that fails here does not stop the
        // step-up (the login's own save will say what is wrong with it).
        if let Some(creds) = stored
            && let Err(e) = self.mark_more_scopes_needed(target, creds).await
        {
            tracing::warn!(server = %target.name, error = %e, "could not record that more scopes are needed");
        }
        let options = LoginOptions {
            scopes: (!scopes.is_empty()).then(|| scopes.clone()),
            dpop,
            // A step-up answers with a URL to open: always the browser login.
            flow: LoginFlowChoice::Browser,
            ..options
        };
        let refusal = Refusal::InsufficientScope(challenge);
        match self
            .start_login_after(target.clone(), options, Some(refusal.probe()))
            .await
        {
            Ok(LoginBegun::Browser(started) | LoginBegun::IdpSignIn(started)) => {
                Ok(ChallengeOutcome::Login { started, scopes })
            }
            // A grant that needs no browser already stored tokens for the wider scopes.
            Ok(LoginBegun::Obtained(_)) => match self.load(&key).await {
                Ok(Some(creds)) => Ok(ChallengeOutcome::Token(Box::new(creds))),
                Ok(None) => Err(ChallengeError::NotLoggedIn(target.name.clone())),
                Err(e) => Err(e.into()),
            },
            // Never: the step-up asked for the browser login above.
            Ok(LoginBegun::Device(_)) => {
                self.cancel(&target.name);
                self.challenges.undo_step_up(&key, &scopes);
                Err(ChallengeError::NotLoggedIn(target.name.clone()))
            }
            Err(e) => {
                self.challenges.undo_step_up(&key, &scopes);
                Err(ChallengeError::Login(e))
            }
        }
    }
}
